package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// TestFeedBackfill: events written before the feed existed (items without
// fs/fk) are not in the feed; chronicle feed backfill adds them, at their
// occurred-at, without touching the events that have them, snapshots or
// other items; a second run writes nothing.
func TestFeedBackfill(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	// Two users through the service (in the feed, one with a snapshot), and
	// three old events written as before the feed.
	a, b := newID(), newID()
	s.exec(t, a, user.Create{Name: "A", Email: a + "@example.com"}, "admin", "")
	s.exec(t, a, user.Rename{Name: "A 2"}, "admin", "")
	s.exec(t, a, user.Rename{Name: "A 3"}, "admin", "")
	old := newID()
	t0 := time.Now().Add(-time.Hour).UTC()
	for v := int64(1); v <= 3; v++ {
		rec := es.Record{ID: newID(), AggregateID: old, AggregateType: "user", Version: v, Type: "user.renamed.v1", SchemaVersion: 1,
			OccurredAt: t0.Add(time.Duration(v) * time.Second), Data: json.RawMessage(`{"name":"Old"}`)}
		if v == 1 {
			rec.Type, rec.Data = "user.created.v1", json.RawMessage(`{"name":"Old","email":"`+old+`@example.com"}`)
		}
		item := dynamo.ItemFromRecord(rec)
		delete(item, "fs")
		delete(item, "fk")
		if _, err := s.ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.name + "-events"), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	s.exec(t, b, user.Create{Name: "B", Email: b + "@example.com"}, "admin", "")
	reader := dynamo.New(s.ddb, dynamo.Tables{Events: s.name + "-events"}, dynamo.WithFeedWindow(0))
	feedOf := func() map[string][]int64 {
		t.Helper()
		page, err := reader.ReadFeed(ctx, dynamo.FeedCursor{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]int64{}
		for _, e := range page.Events {
			got[e.Record.AggregateID] = append(got[e.Record.AggregateID], e.Record.Version)
		}
		return got
	}
	if got := feedOf(); len(got[old]) != 0 || len(got[a]) != 3 {
		t.Fatalf("before the backfill: %v", got)
	}
	var rep struct{ Scanned, Written int }
	stdout, _, code := s.chronicle(t, "--json", "feed", "backfill", "--segments", "2")
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 || rep.Written != 3 {
		t.Fatalf("backfill: exit %d, %+v, %v", code, rep, err)
	}
	if got := feedOf(); len(got[old]) != 3 || got[old][0] != 1 || got[old][2] != 3 || len(got[a]) != 3 || len(got[b]) != 1 {
		t.Fatalf("after the backfill: %v", got)
	}
	if _, _, code := s.chronicle(t, "--json", "feed", "backfill"); code != 0 {
		t.Fatalf("second run: exit %d", code)
	}
	stdout, _, _ = s.chronicle(t, "--json", "feed", "backfill")
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Written != 0 {
		t.Fatalf("a run after the backfill wrote %d, %v", rep.Written, err)
	}
}
