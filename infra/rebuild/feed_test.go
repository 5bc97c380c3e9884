package rebuild_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/rebuild/rebuildtest"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// TestRebuildFromFeedThenFollow: new generations of both projections,
// started after 2,000 events, catch up from the feed in commit order (the
// first run interrupted after a page, the second resuming at its
// checkpoint) while live writes go on, switch, and then follow live writes
// through the projector with no gap: the completeness audit finds every
// event of the feed applied by every projection, and every view equals the
// fold of its events.
func TestRebuildFromFeedThenFollow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, dynamo.Tables{})
	ctx := t.Context()
	// 2,000 events, an hour old, that no projection has seen.
	ids, err := rebuildtest.Seed(ctx, e.client, e.tables.Events, 250, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Live: commands, each event handed to the projector as the relay would.
	svc := usertest.Service(e.events)
	proj := projector.New(e.events, user.NewRegistry(), e.rm, userviews.Projections(), slog.New(slog.DiscardHandler), time.Now)
	written := 2000
	exec := func(id string, c user.Command) {
		t.Helper()
		res, err := svc.Execute(ctx, id, c, es.ExecOptions{Metadata: es.Metadata{Actor: "admin"}})
		if err != nil {
			t.Fatal(err)
		}
		written += len(res.Records)
		for _, r := range res.Records {
			body, err := relay.EncodeMessage(r)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := proj.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: r.ID, Body: body,
				Attributes: map[string]string{"MessageGroupId": r.AggregateID, "ApproximateReceiveCount": "1"}}}})
			if err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatalf("project: %+v %v", resp, err)
			}
		}
	}
	live := func(n int) {
		t.Helper()
		for i := range n {
			exec(ids[(i*7)%len(ids)], user.Rename{Name: "Live " + newID()})
		}
		id := newID()
		ids = append(ids, id)
		exec(id, user.Create{Name: "Late", Email: id + "@example.com"})
	}

	const window = 2 * time.Second
	reader := dynamo.New(e.client, e.tables, dynamo.WithFeedWindow(window))
	src := &rebuild.FeedSource{Feed: reader, Checkpoints: feed.NewCheckpoints(e.client, e.rmName), PageSize: 300}
	for _, p := range []string{userviews.ProjectionUserView, userviews.ProjectionActorActivity} {
		// First run: live writes after the first page, then cut after the second.
		runCtx, cut := context.WithCancel(ctx)
		pages := 0
		_, err := e.rb.Run(runCtx, p, rebuild.Options{Settle: -1, Feed: src, Progress: func(pr rebuild.Progress) {
			if pr.Phase != rebuild.PhaseScanning || pr.RunEvents == 0 {
				return
			}
			if pages++; pages == 1 {
				live(20)
			} else {
				cut()
			}
		}})
		cut()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: the interrupted run: %v", p, err)
		}
		res, err := e.rb.Run(ctx, p, rebuild.Options{Settle: -1, Feed: src})
		if err != nil || !res.Done {
			t.Fatalf("%s: the resumed run: %+v %v", p, res, err)
		}
		if res.RunEvents >= res.Events || res.Events < 2000 {
			t.Fatalf("%s: the resumed run folded %d events of %d: it did not resume at the checkpoint", p, res.RunEvents, res.Events)
		}
	}
	// Following: the new generations are active; live writes go on.
	live(30)
	checkViews(t, e, ids)
	// Every event of the feed, up to now, reached both projections.
	time.Sleep(window) // the feed shows an event once it is behind the window
	rep, err := feed.AuditCompleteness(ctx, reader, feed.Stores{Views: e.rm.Store, Mails: notifier.NewMails(e.rm.Client(), e.rm.Table())}, userviews.Projections(), dynamo.FeedCursor{})
	if err != nil {
		t.Fatal(err)
	}
	if want := written; rep.Events != want || rep.Aggregates != len(ids) {
		t.Errorf("audit read %d events of %d users, want %d of %d", rep.Events, rep.Aggregates, want, len(ids))
		inFeed := map[string]bool{}
		for cur := (dynamo.FeedCursor{}); ; {
			page, err := reader.ReadFeed(ctx, cur, 1000)
			if err != nil || len(page.Events) == 0 {
				break
			}
			for _, e := range page.Events {
				inFeed[e.Record.ID] = true
			}
			cur = page.Next
		}
		shown := 0
		for _, id := range ids {
			recs, err := e.events.Load(ctx, id, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if !inFeed[r.ID] && shown < 10 {
					shown++
					t.Errorf("not in the feed: %s v%d %s at %s", r.AggregateID, r.Version, r.Type, r.OccurredAt.Format(time.RFC3339Nano))
				}
			}
		}
		t.FailNow()
	}
	for _, m := range rep.Missing {
		if m.Subscriber != "welcome-mail" { // no notifier runs here
			t.Errorf("missing: %+v", m)
		}
	}
	audit, err := e.rb.Audit(ctx, rebuild.AuditOptions{Segments: 2})
	if err != nil || len(audit.Differences) > 0 {
		t.Fatalf("audit: %+v %v", audit.Differences, err)
	}
}
