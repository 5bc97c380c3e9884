package dynamo

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
)

// The event item codec is written by hand (ItemFromRecord, RecordFromItem).
// avEvent is the same item as a struct tagged for the SDK's attributevalue
// package: the codec it would replace. TestAttributeValueEventItem proves the
// two encode alike; BenchmarkEventItemCodec measures both, interleaved.

type avEvent struct {
	PK            string    `dynamodbav:"pk"`
	SK            int64     `dynamodbav:"sk"`
	ID            string    `dynamodbav:"id"`
	AggregateType string    `dynamodbav:"aggregateType"`
	Type          string    `dynamodbav:"type"`
	SchemaVersion int       `dynamodbav:"schemaVersion"`
	OccurredAt    time.Time `dynamodbav:"occurredAt"`
	Data          string    `dynamodbav:"data"` // a string, not the B a []byte would be
	Meta          *avMeta   `dynamodbav:"meta,omitempty"`
	FeedShard     int       `dynamodbav:"fs"`
	FeedKey       string    `dynamodbav:"fk"`
}

type avMeta struct {
	Actor         string `dynamodbav:"actor,omitempty"`
	Reason        string `dynamodbav:"reason,omitempty"`
	CorrelationID string `dynamodbav:"correlationId,omitempty"`
	CausationID   string `dynamodbav:"causationId,omitempty"`
	CommandID     string `dynamodbav:"commandId,omitempty"`
	RequestID     string `dynamodbav:"requestId,omitempty"`
	TraceParent   string `dynamodbav:"traceparent,omitempty"`
}

func avItemFromRecord(r es.Record) (map[string]types.AttributeValue, error) {
	e := avEvent{
		PK: r.AggregateID, SK: r.Version, ID: r.ID, AggregateType: r.AggregateType, Type: r.Type,
		SchemaVersion: r.SchemaVersion, OccurredAt: r.OccurredAt.UTC(), Data: string(r.Data),
		FeedShard: FeedShard(r.AggregateID), FeedKey: feedKey(r),
	}
	if r.Metadata != (es.Metadata{}) {
		m := avMeta(r.Metadata)
		e.Meta = &m
	}
	return attributevalue.MarshalMap(e)
}

func avRecordFromItem(item map[string]types.AttributeValue) (es.Record, error) {
	var e avEvent
	if err := attributevalue.UnmarshalMap(item, &e); err != nil {
		return es.Record{}, fmt.Errorf("decode event item: %w", err)
	}
	r := es.Record{
		ID: e.ID, AggregateID: e.PK, AggregateType: e.AggregateType, Version: e.SK, Type: e.Type,
		SchemaVersion: e.SchemaVersion, OccurredAt: e.OccurredAt.UTC(),
	}
	if e.Data != "" {
		r.Data = []byte(e.Data)
	}
	if e.Meta != nil {
		r.Metadata = es.Metadata(*e.Meta)
	}
	return r, nil
}

// codecRecords are events of the shapes the store writes: with and without
// metadata, some of it, no data, no aggregate type (items from before it was
// stored), times in other zones and to the nanosecond.
func codecRecords() []es.Record {
	at := time.Date(2026, 12, 2, 5, 30, 0, 123456789, time.UTC)
	full := es.Metadata{Actor: "user:alice", Reason: "asked", CorrelationID: "corr-1", CausationID: "cause-1",
		CommandID: "cmd-1", RequestID: "req-1", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	return []es.Record{
		{ID: "0193a0b2-7c3e-7000-8000-000000000001", AggregateID: "user-1", AggregateType: "user", Version: 1,
			Type: "user.created.v1", SchemaVersion: 1, OccurredAt: at,
			Data: []byte(`{"name":"Alice","email":"alice@example.com"}`), Metadata: full},
		{ID: "e2", AggregateID: "user-1", AggregateType: "user", Version: 2, Type: "user.renamed.v1", SchemaVersion: 2,
			OccurredAt: at.Add(time.Second), Data: []byte(`{"name":"Alíce ✓"}`), Metadata: es.Metadata{Actor: "system"}},
		{ID: "e3", AggregateID: "user-2", Version: 9_007_199_254_740_993, Type: "user.deleted.v1",
			OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))},
		{ID: "e4", AggregateID: "team#x", AggregateType: "team", Version: 3, Type: "team.renamed.v1", SchemaVersion: 1,
			OccurredAt: at, Data: []byte(`{}`), Metadata: es.Metadata{TraceParent: "00-x-y-01", RequestID: "r"}},
		{ID: "e5", AggregateID: "user-3", AggregateType: "user", Version: 7, Type: "user.email_changed.v1", SchemaVersion: 1,
			OccurredAt: at, Data: []byte(`{"email":"` + strings.Repeat("x", 400) + `@example.com"}`)},
	}
}

// TestAttributeValueEventItem: attributevalue would write the very items
// ItemFromRecord writes, and each codec reads the other's items back to
// the same record.
func TestAttributeValueEventItem(t *testing.T) {
	for _, r := range codecRecords() {
		hand := ItemFromRecord(r)
		av, err := avItemFromRecord(r)
		if err != nil {
			t.Fatalf("MarshalMap %s v%d: %v", r.AggregateID, r.Version, err)
		}
		if !reflect.DeepEqual(hand, av) {
			t.Errorf("%s v%d:\nhand           %s\nattributevalue %s", r.AggregateID, r.Version, describe(hand), describe(av))
		}
		fromHand, err := RecordFromItem(av)
		if err != nil {
			t.Fatalf("RecordFromItem: %v", err)
		}
		fromAV, err := avRecordFromItem(hand)
		if err != nil {
			t.Fatalf("UnmarshalMap: %v", err)
		}
		want := r
		want.OccurredAt = r.OccurredAt.UTC()
		if !reflect.DeepEqual(fromHand, want) || !reflect.DeepEqual(fromAV, want) {
			t.Errorf("%s v%d read back:\nhand           %+v\nattributevalue %+v\nwant           %+v", r.AggregateID, r.Version, fromHand, fromAV, want)
		}
	}
}

func describe(item map[string]types.AttributeValue) string {
	var b strings.Builder
	for _, k := range sortedKeys(item) {
		switch v := item[k].(type) {
		case *types.AttributeValueMemberS:
			fmt.Fprintf(&b, "%s:S%q ", k, v.Value)
		case *types.AttributeValueMemberN:
			fmt.Fprintf(&b, "%s:N%s ", k, v.Value)
		case *types.AttributeValueMemberM:
			fmt.Fprintf(&b, "%s:M{%s} ", k, describe(v.Value))
		default:
			fmt.Fprintf(&b, "%s:%T ", k, v)
		}
	}
	return b.String()
}

func sortedKeys(m map[string]types.AttributeValue) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// BenchmarkEventItemCodec: the hand-written event item codec against
// attributevalue, side by side. -count would run each sub-benchmark its
// count times in a row, so the machine's load would differ between the two;
// run rounds of all four instead, and compare each round's pair:
//
//	go test -c -o /tmp/dynamo.test ./infra/dynamo/
//	for i in $(seq 60); do /tmp/dynamo.test -test.run '^$' -test.bench EventItemCodec -test.benchtime 30ms; done
//
// The figures are at ItemFromRecord.
func BenchmarkEventItemCodec(b *testing.B) {
	r := codecRecords()[0] // metadata in full: the commands' events
	item := ItemFromRecord(r)
	b.Run("encode/hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkItem = ItemFromRecord(r)
		}
	})
	b.Run("encode/attributevalue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkItem, _ = avItemFromRecord(r)
		}
	})
	b.Run("decode/hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkRecord, _ = RecordFromItem(item)
		}
	})
	b.Run("decode/attributevalue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkRecord, _ = avRecordFromItem(item)
		}
	})
}

var (
	sinkItem   map[string]types.AttributeValue
	sinkRecord es.Record
)
