package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/httpapi"
)

var _ httpapi.FeedReader = (*dynamo.Store)(nil)

// lateFeed is a feed reader over tables that exist only once the
// environment is built.
type lateFeed struct{ *dynamo.Store }

type feedBody struct {
	Events []struct {
		EventID       string          `json:"eventId"`
		AggregateID   string          `json:"aggregateId"`
		AggregateType string          `json:"aggregateType"`
		Version       int64           `json:"version"`
		Type          string          `json:"type"`
		OccurredAt    time.Time       `json:"occurredAt"`
		Actor         string          `json:"actor"`
		Data          json.RawMessage `json:"data"`
	} `json:"events"`
	NextCursor *string `json:"nextCursor"`
}

// GET /events: every event, in pages, to an admin; a cursor on every page;
// an empty page once caught up; 403 to anyone else; 400 for a forged cursor
// or a limit out of range.
func TestFeedRoute(t *testing.T) {
	feed := &lateFeed{}
	e := newEnv(t, func(d *httpapi.QueriesDeps) { d.Feed = feed })
	// No window: the test's events are in the feed at once.
	feed.Store = dynamo.New(awstest.DynamoDB(t), e.tables, dynamo.WithFeedWindow(0))
	subs := []string{newSub("fay"), newSub("finn"), newSub("flo")}
	ids := map[string]bool{}
	for _, sub := range subs {
		id, _ := e.createUser(t, sub)
		ids[id] = true
	}
	admin := asAdmin()
	seen := map[string]int64{}
	n := 0
	after := ""
	for page := 0; ; page++ {
		opts := []opt{admin, withQuery("limit", "2")}
		if after != "" {
			opts = append(opts, withQuery("after", after))
		}
		var f feedBody
		wantJSON(t, do(t, e.qs, request(t, "queries/events.json", opts...)), http.StatusOK, &f)
		if f.NextCursor == nil || *f.NextCursor == "" {
			t.Fatalf("page %d without a nextCursor", page)
		}
		if len(f.Events) == 0 {
			if *f.NextCursor != after {
				t.Errorf("caught up: nextCursor %q, want the cursor read from %q", *f.NextCursor, after)
			}
			break
		}
		for _, ev := range f.Events {
			if !ids[ev.AggregateID] || ev.AggregateType != "user" || ev.Type != "user.created.v1" || ev.Version != seen[ev.AggregateID]+1 || ev.EventID == "" ||
				ev.OccurredAt.IsZero() || ev.Actor == "" || len(ev.Data) == 0 {
				t.Errorf("event %+v", ev)
			}
			seen[ev.AggregateID] = ev.Version
			n++
		}
		after = *f.NextCursor
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if n != len(subs) {
		t.Errorf("%d events, want %d", n, len(subs))
	}

	wantProblem(t, do(t, e.qs, request(t, "queries/events.json", as(subs[0]))), http.StatusForbidden)
	for _, q := range []struct{ k, v, field string }{
		{"after", "bm90LWEtY3Vyc29y", "after"},
		{"after", base64.RawURLEncoding.EncodeToString([]byte("f1:2026-13-01T00:00:00.000000000Z")), "after"},
		{"limit", "0", "limit"},
		{"limit", strconv.Itoa(1001), "limit"},
		{"limit", "ten", "limit"},
	} {
		p := wantProblem(t, do(t, e.qs, request(t, "queries/events.json", admin, withQuery(q.k, q.v))), http.StatusBadRequest)
		wantFields(t, p, q.field)
	}
}
