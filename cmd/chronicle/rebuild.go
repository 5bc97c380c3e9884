package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/service"
)

func rebuildCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	segments := fs.Int("segments", rebuild.DefaultSegments, "parallel scan segments of a new build (1..64)")
	pageSize := fs.Int("page-size", rebuild.DefaultPageSize, "items per Scan page (the checkpoint granularity)")
	writers := fs.Int("writers", rebuild.DefaultWriters, "aggregates written at once per segment")
	settle := fs.Duration("settle", rebuild.DefaultSettle, "wait after allocating the new generation, until every projector writes it (0: none; only when no projector runs)")
	restart := fs.Bool("restart", false, "abandon the build in progress and start a new one")
	aggregate := fs.String("aggregate", "", "rebuild only this aggregate, in place (active generation, and the one building)")
	status := fs.Bool("status", false, "print the generations and the build's progress; change nothing")
	abort := fs.Bool("abort", false, "abandon the build in progress (readers keep the active generation)")
	prune := fs.Bool("prune", false, "delete the rows of generations that are neither active nor building")
	remote := fs.Bool("remote", false, "ask the replay function (its queue: --replay-queue-url, or <stack>-replay.fifo) to run it in AWS")
	replayURL := fs.String("replay-queue-url", "", "the replay function's queue (REPLAY_QUEUE_URL)")
	progressMode := fs.String("progress", "auto", "auto (a bar on a terminal, else lines), bar, lines or none")
	fromFeed := fs.Bool("from-feed", false, "fill a new build from the durable feed in commit order (resumable from its checkpoint) instead of the parallel scan; slower for a full fold (docs/feed.md)")
	feedWindow := fs.Duration("feed-window", dynamo.FeedWindow, "with --from-feed: how far behind now the feed is read (newer events are the live projector's)")
	return func(ctx context.Context, args []string) error {
		names := projection.Names(service.Projections())
		if len(args) != 1 {
			return usagef("want one projection: %v or all", names)
		}
		projections := []string{args[0]}
		if args[0] == "all" {
			projections = names
		}
		for _, p := range projections {
			if !contains(names, p) {
				return usagef("unknown projection %q: want one of %v or all", p, names)
			}
		}
		if *segments < 1 || *segments > rebuild.MaxSegments {
			return usagef("--segments must be 1..%d", rebuild.MaxSegments)
		}
		modes := 0
		for _, m := range []bool{*aggregate != "", *status, *abort, *prune, *remote} {
			if m {
				modes++
			}
		}
		if modes > 1 {
			return usagef("give at most one of --aggregate, --status, --abort, --prune and --remote")
		}
		if *fromFeed && (*remote || *aggregate != "") {
			return usagef("--from-feed fills a new build here: not with --remote or --aggregate")
		}
		if *remote {
			return a.rebuildRemote(ctx, projections, *segments, *restart, *replayURL)
		}
		rb, rm, err := a.rebuilder(ctx)
		if err != nil {
			return err
		}
		switch {
		case *aggregate != "":
			id, err := userID([]string{*aggregate}, 1)
			if err != nil {
				return err
			}
			return a.repair(ctx, rb, projections, id)
		case *status:
			return a.rebuildStatus(ctx, rb, projections)
		case *abort:
			for _, p := range projections {
				gen, err := rb.Abort(ctx, p)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s: generation %d abandoned; readers keep the active one\n", p, gen)
			}
			return nil
		case *prune:
			for _, p := range projections {
				pr, _ := projection.Find(service.Projections(), p)
				n, err := rm.Prune(ctx, pr)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s: %d rows of old generations deleted\n", p, n)
			}
			return nil
		}

		mode := *progressMode
		if mode == "auto" {
			mode = "lines"
			if isTerminal(a.stderr) {
				mode = "bar"
			}
		}
		var results []rebuild.Result
		for _, p := range projections {
			bar := newProgressBar(a.stderr, mode == "bar")
			opts := rebuild.Options{Segments: *segments, PageSize: int32(*pageSize), Writers: *writers,
				Settle: *settle, Restart: *restart}
			if *settle == 0 {
				opts.Settle = -1
			}
			if *fromFeed {
				if opts.Feed, err = a.feedSource(ctx, *feedWindow); err != nil {
					return err
				}
			}
			if mode != "none" {
				opts.Progress = bar.update
			}
			res, err := rb.Run(ctx, p, opts)
			bar.finish()
			if err != nil {
				if errors.Is(err, context.Canceled) {
					fmt.Fprintf(a.stderr, "%s: interrupted at %s events; run the same command again to resume generation %d\n",
						p, count(res.Events), res.Generation)
				}
				return err
			}
			results = append(results, res)
			if !a.asJSON {
				rate := 0.0
				if s := res.Elapsed.Seconds(); s > 0 {
					rate = float64(res.RunEvents) / s
				}
				fmt.Fprintf(a.stdout, "%s: generation %d active (was %d): %s events, %s aggregates; this run %s events in %s (%s events/s)\n",
					p, res.Generation, res.Previous, count(res.Events), count(res.Aggregates), count(res.RunEvents),
					res.Elapsed.Round(time.Millisecond), count(int64(rate)))
			}
		}
		if a.asJSON {
			return a.printJSON(results)
		}
		return nil
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (a *app) repair(ctx context.Context, rb *rebuild.Rebuilder, projections []string, id string) error {
	var reps []rebuild.Repair
	for _, p := range projections {
		rep, err := rb.Aggregate(ctx, p, id)
		if err != nil {
			return err
		}
		reps = append(reps, rep)
		switch {
		case a.asJSON:
		case rep.NotTaken:
			fmt.Fprintf(a.stdout, "%s: %s is not of the kind it projects; nothing to rebuild\n", p, id)
		default:
			fmt.Fprintf(a.stdout, "%s: %s rebuilt in place at v%d (generations %v)\n", p, id, rep.Version, rep.Generations)
		}
	}
	if a.asJSON {
		return a.printJSON(reps)
	}
	return nil
}

// statusJSON is what rebuild --status prints per projection.
type statusJSON struct {
	Projection string     `json:"projection"`
	Active     int64      `json:"active"`
	Building   int64      `json:"building,omitempty"`
	SwitchedAt *time.Time `json:"switchedAt,omitempty"`
	Build      *buildJSON `json:"build,omitempty"`
}

type buildJSON struct {
	Generation int64      `json:"generation"`
	Segments   int        `json:"segments"`
	SegmentsOK int        `json:"segmentsDone"`
	Events     int64      `json:"events"`
	Aggregates int64      `json:"aggregates"`
	Total      int64      `json:"totalEstimate"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

func (a *app) rebuildStatus(ctx context.Context, rb *rebuild.Rebuilder, projections []string) error {
	var out []statusJSON
	for _, p := range projections {
		st, err := rb.Status(ctx, p)
		if err != nil {
			return err
		}
		s := statusJSON{Projection: p, Active: st.Active, Building: st.Building}
		if !st.SwitchedAt.IsZero() {
			t := st.SwitchedAt
			s.SwitchedAt = &t
		}
		if st.HasBuild {
			b := buildJSON{Generation: st.Build.Generation, Segments: len(st.Build.Segments), Events: st.Build.Events(),
				Aggregates: st.Build.Aggregates(), Total: st.Build.Total, StartedAt: st.Build.StartedAt}
			for _, seg := range st.Build.Segments {
				if seg.Done {
					b.SegmentsOK++
				}
			}
			if !st.Build.FinishedAt.IsZero() {
				t := st.Build.FinishedAt
				b.FinishedAt = &t
			}
			s.Build = &b
		}
		out = append(out, s)
	}
	if a.asJSON {
		return a.printJSON(out)
	}
	for _, s := range out {
		fmt.Fprintf(a.stdout, "%s: active generation %d", s.Projection, s.Active)
		if s.Building > 0 {
			fmt.Fprintf(a.stdout, ", building %d", s.Building)
		}
		fmt.Fprintln(a.stdout)
		if b := s.Build; b != nil {
			state := "in progress"
			if b.FinishedAt != nil {
				state = "finished " + b.FinishedAt.Format(timeLayout)
			}
			fmt.Fprintf(a.stdout, "  build of generation %d: %s events, %s aggregates, %d/%d segments done, started %s, %s\n",
				b.Generation, count(b.Events), count(b.Aggregates), b.SegmentsOK, b.Segments, b.StartedAt.Format(timeLayout), state)
		}
	}
	return nil
}

// rebuildRemote sends the replay function a request per projection.
func (a *app) rebuildRemote(ctx context.Context, projections []string, segments int, restart bool, url string) error {
	client, err := a.queues(ctx)
	if err != nil {
		return err
	}
	if url == "" {
		url = a.env("REPLAY_QUEUE_URL")
	}
	if url == "" {
		if a.stack == "" {
			return usagef("--remote needs --replay-queue-url (REPLAY_QUEUE_URL) or --stack")
		}
		if url, err = queueURL(ctx, client, a.stack+"-replay.fifo"); err != nil {
			return err
		}
	}
	for _, p := range projections {
		body, _ := json.Marshal(rebuild.Request{Projection: p, Segments: segments, Restart: restart})
		out, err := client.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl: aws.String(url), MessageBody: aws.String(string(body)),
			MessageGroupId: aws.String(rebuild.MessageGroup(p)), MessageDeduplicationId: aws.String(uuid.NewString()),
		})
		if err != nil {
			return fmt.Errorf("ask the replay function to rebuild %s: %w", p, err)
		}
		fmt.Fprintf(a.stdout, "%s: rebuild requested (message %s); follow it with: chronicle rebuild %s --status\n",
			p, aws.ToString(out.MessageId), p)
	}
	return nil
}

// feedSource is what a rebuild --from-feed reads: the events table's feed,
// behind window, with its checkpoints in the read-model table.
func (a *app) feedSource(ctx context.Context, window time.Duration) (*rebuild.FeedSource, error) {
	events, err := a.events()
	if err != nil {
		return nil, err
	}
	rmTable, err := a.readModel()
	if err != nil {
		return nil, err
	}
	ddb, err := a.dynamo(ctx)
	if err != nil {
		return nil, err
	}
	return &rebuild.FeedSource{Feed: dynamo.New(ddb, dynamo.Tables{Events: events}, dynamo.WithFeedWindow(window)),
		Checkpoints: feed.NewCheckpoints(ddb, rmTable)}, nil
}
