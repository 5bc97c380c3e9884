package dynamo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/estest"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// newTables creates fresh tables in the emulator and deletes them when the
// test ends.
func newTables(tb testing.TB) (*dynamodb.Client, dynamo.Tables) {
	tb.Helper()
	client := awstest.DynamoDB(tb)
	tables := dynamo.Tables{
		Events:    awstest.TableName("events"),
		Guards:    awstest.TableName("guards"),
		Snapshots: awstest.TableName("snapshots"),
	}
	if err := dynamo.CreateTables(tb.Context(), client, tables); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		// tb.Context is already cancelled when cleanups run.
		if err := dynamo.DeleteTables(context.Background(), client, tables); err != nil {
			tb.Errorf("delete tables: %v", err)
		}
	})
	return client, tables
}

// newStore returns a store over fresh tables.
func newStore(tb testing.TB, opts ...dynamo.Option) *dynamo.Store {
	tb.Helper()
	client, tables := newTables(tb)
	return dynamo.New(client, tables, opts...)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	estest.Run(t, func(t *testing.T) es.Store { return newStore(t) })
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// records makes n records of stream id after version after, each with a JSON
// string of about size bytes as data.
func records(id string, after int64, n, size int) []es.Record {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	out := make([]es.Record, n)
	for i := range out {
		v := after + int64(i) + 1
		out[i] = es.Record{
			ID: newID(), AggregateID: id, AggregateType: "user", Version: v,
			Type: "user.renamed.v1", SchemaVersion: 1, OccurredAt: at.Add(time.Duration(v) * time.Millisecond),
			Data:     json.RawMessage(strconv.Quote(strings.Repeat("x", size))),
			Metadata: es.Metadata{Actor: "alice", CorrelationID: "corr-1"},
		}
	}
	return out
}

// TestCancellationReasonsInOrder checks what the error mapping relies on:
// DynamoDB Local answers a cancelled transaction with one reason per item, in
// item order.
func TestCancellationReasonsInOrder(t *testing.T) {
	t.Parallel()
	client, tables := newTables(t)
	ctx := t.Context()
	id := newID()
	existing := records(id, 0, 2, 1)
	for _, r := range existing {
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Events), Item: dynamo.ItemFromRecord(r)}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(r es.Record) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(tables.Events),
			Item: dynamo.ItemFromRecord(r), ConditionExpression: aws.String("attribute_not_exists(pk)")}}
	}
	fresh := records(id, 2, 2, 1)
	_, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		put(fresh[0]), put(existing[0]), put(fresh[1]), put(existing[1]),
	}})
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		t.Fatalf("got %v, want TransactionCanceledException", err)
	}
	var codes []string
	for _, r := range canceled.CancellationReasons {
		codes = append(codes, aws.ToString(r.Code))
	}
	want := []string{"None", "ConditionalCheckFailed", "None", "ConditionalCheckFailed"}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("reasons %v, want %v", codes, want)
	}
}

// TestAppendErrors checks how each failed item of a transaction is reported,
// and which answer wins when several fail.
func TestAppendErrors(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	// holder has v1 and v2, holds key and key2, and used idempotency key idem.
	holder, key, key2, idem := newID(), "email#"+newID()+"@example.com", "email#"+newID()+"@example.com", "idem-"+newID()
	if err := s.Append(ctx, es.AppendRequest{AggregateID: holder, Records: records(holder, 0, 2, 10),
		Claims:      []es.Guard{{Key: key, Owner: holder}, {Key: key2, Owner: holder}},
		Idempotency: &es.IdempotencyRecord{Key: idem, RequestHash: "h", AggregateID: holder, Version: 2, ExpiresAt: time.Now().Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	other := newID()
	free := "email#" + newID() + "@example.com"
	liveIdem := func() *es.IdempotencyRecord {
		return &es.IdempotencyRecord{Key: idem, RequestHash: "h2", AggregateID: other, Version: 1, ExpiresAt: time.Now().Add(time.Hour)}
	}
	tests := []struct {
		name     string
		req      es.AppendRequest
		want     error  // errors.Is
		not      error  // !errors.Is
		dupKey   string // the key a *DuplicateError names
		limitErr bool
	}{
		{name: "event exists", want: es.ErrConflict, not: es.ErrDuplicate,
			req: es.AppendRequest{AggregateID: holder, ExpectedVersion: 1, Records: records(holder, 1, 1, 10)}},
		{name: "claim held by another", want: es.ErrDuplicate, not: es.ErrConflict, dupKey: key,
			req: es.AppendRequest{AggregateID: other, Records: records(other, 0, 1, 10), Claims: []es.Guard{{Key: free, Owner: other}, {Key: key, Owner: other}}}},
		{name: "release held by another", want: es.ErrConflict, not: es.ErrDuplicate,
			req: es.AppendRequest{AggregateID: other, Records: records(other, 0, 1, 10), Releases: []es.Guard{{Key: key, Owner: other}}}},
		{name: "idempotency key used", want: es.ErrIdempotencyReplay, not: es.ErrConflict,
			req: es.AppendRequest{AggregateID: other, Records: records(other, 0, 1, 10), Idempotency: liveIdem()}},
		{name: "replay before conflict and duplicate", want: es.ErrIdempotencyReplay, not: es.ErrConflict,
			req: es.AppendRequest{AggregateID: holder, ExpectedVersion: 1, Records: records(holder, 1, 1, 10),
				Claims: []es.Guard{{Key: key, Owner: holder + "x"}}, Idempotency: liveIdem()}},
		{name: "conflict before duplicate", want: es.ErrConflict, not: es.ErrDuplicate,
			req: es.AppendRequest{AggregateID: holder, ExpectedVersion: 1, Records: records(holder, 1, 1, 10),
				Claims: []es.Guard{{Key: key, Owner: holder + "x"}}}},
		{name: "duplicate before release", want: es.ErrDuplicate, dupKey: key,
			req: es.AppendRequest{AggregateID: other, Records: records(other, 0, 1, 10),
				Claims: []es.Guard{{Key: key, Owner: other}}, Releases: []es.Guard{{Key: key2, Owner: other}}}},
		{name: "guard key in the idempotency namespace", want: es.ErrInvalidAppend,
			req: es.AppendRequest{AggregateID: other, Records: records(other, 0, 1, 10), Claims: []es.Guard{{Key: "idem#" + idem, Owner: other}}}},
		{name: "partition key too long", want: es.ErrTooLarge, limitErr: true,
			req: es.AppendRequest{AggregateID: other, Records: records(other, 0, 1, 10), Claims: []es.Guard{{Key: "email#" + strings.Repeat("a", 2048), Owner: other}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Append(ctx, tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.not != nil && errors.Is(err, tc.not) {
				t.Errorf("%v also matches %v", err, tc.not)
			}
			var dup *es.DuplicateError
			if errors.As(err, &dup) != (tc.dupKey != "") || (dup != nil && dup.Key != tc.dupKey) {
				t.Errorf("got %v, want a DuplicateError for %q", err, tc.dupKey)
			}
			var lim *es.LimitError
			if errors.As(err, &lim) != tc.limitErr {
				t.Errorf("got %v, LimitError wanted: %v", err, tc.limitErr)
			}
		})
	}
	// Nothing of the failed appends was written.
	if got, err := s.Load(ctx, other, 1, 0); err != nil || len(got) != 0 {
		t.Errorf("load %s: %d records, %v; want none", other, len(got), err)
	}
	if got, err := s.Load(ctx, holder, 1, 0); err != nil || len(got) != 2 {
		t.Errorf("load %s: %d records, %v; want 2", holder, len(got), err)
	}
	if err := s.Append(ctx, es.AppendRequest{AggregateID: other, Records: records(other, 0, 1, 10),
		Claims: []es.Guard{{Key: free, Owner: other}}}); err != nil {
		t.Errorf("a value named in failed appends is held: %v", err)
	}
}

// TestLoadPaging loads a stream larger than one 1 MB Query page. The stream
// is 1.6 MB in 16 events of 100 KB: the paging is about bytes, and each
// event written costs DynamoDB Local the same work whatever its size, so
// few large events prove what 400 small ones did at a fraction of the time
// (the conformance suite's LoadPages covers many small ones).
func TestLoadPaging(t *testing.T) {
	t.Parallel()
	client, tables := newTables(t)
	s := dynamo.New(client, tables)
	ctx := t.Context()
	id := newID()
	const batches, per, size = 4, 4, 100_000 // 16 events, ~1.6 MB
	var want []es.Record
	for b := range batches {
		recs := records(id, int64(b*per), per, size)
		if err := s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: int64(b * per), Records: recs}); err != nil {
			t.Fatal(err)
		}
		want = append(want, recs...)
	}
	page, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(tables.Events),
		KeyConditionExpression:    aws.String("pk = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.LastEvaluatedKey) == 0 || len(page.Items) >= len(want) {
		t.Fatalf("one page held %d of %d items: the stream is too small to test paging", len(page.Items), len(want))
	}

	for _, r := range []struct{ from, to int64 }{{1, 0}, {0, 16}, {2, 15}, {6, 0}, {12, 1000}, {15, 16}} {
		got, err := s.Load(ctx, id, r.from, r.to)
		if err != nil {
			t.Fatalf("load [%d, %d]: %v", r.from, r.to, err)
		}
		end := int64(len(want))
		if r.to > 0 {
			end = min(end, r.to)
		}
		first := max(r.from, 1)
		if int64(len(got)) != end-first+1 {
			t.Fatalf("load [%d, %d]: %d records, want %d", r.from, r.to, len(got), end-first+1)
		}
		for i, g := range got {
			if w := want[first-1+int64(i)]; g.Version != w.Version || g.ID != w.ID || string(g.Data) != string(w.Data) {
				t.Fatalf("load [%d, %d]: record %d is v%d %s, want v%d %s", r.from, r.to, i, g.Version, g.ID, w.Version, w.ID)
			}
		}
	}
}

// TestItemShape checks the stored event item, which the stream relay and
// anyone reading the table see.
func TestItemShape(t *testing.T) {
	t.Parallel()
	client, tables := newTables(t)
	s := dynamo.New(client, tables)
	ctx := t.Context()
	id := newID()
	rec := records(id, 0, 1, 3)[0]
	rec.Data = json.RawMessage(`{"name":"Zoë"}`)
	rec.Metadata = es.Metadata{Actor: "alice", Reason: "typo"}
	rec.OccurredAt = time.Date(2026, 5, 6, 9, 8, 7, 123456789, time.FixedZone("CEST", 2*3600))
	if err := s.Append(ctx, es.AppendRequest{AggregateID: id, Records: []es.Record{rec}}); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tables.Events), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: id}, "sk": &types.AttributeValueMemberN{Value: "1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pk": "S " + id, "sk": "N 1", "id": "S " + rec.ID, "aggregateType": "S user", "type": "S user.renamed.v1",
		"schemaVersion": "N 1", "occurredAt": "S 2026-05-06T07:08:07.123456789Z", "data": `S {"name":"Zoë"}`,
		"meta": "M map[actor:S alice reason:S typo]",
		// the feed's index: shard and key
		"fs": fmt.Sprintf("N %d", dynamo.FeedShard(id)), "fk": "S 2026-05-06T07:08:07.123456789Z#" + id + "#00000000000000000001",
	}
	if got := describe(out.Item); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored item\n got %v\nwant %v", got, want)
	}
	got, err := dynamo.RecordFromItem(out.Item)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != rec.ID || !got.OccurredAt.Equal(rec.OccurredAt) || got.OccurredAt.Location() != time.UTC ||
		got.Metadata != rec.Metadata || string(got.Data) != string(rec.Data) {
		t.Errorf("decoded %+v, want %+v", got, rec)
	}
}

// describe renders an item as "type value" strings, for comparisons.
func describe(item map[string]types.AttributeValue) map[string]string {
	out := map[string]string{}
	for k, v := range item {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out[k] = "S " + v.Value
		case *types.AttributeValueMemberN:
			out[k] = "N " + v.Value
		case *types.AttributeValueMemberM:
			out[k] = fmt.Sprint("M ", describe(v.Value))
		default:
			out[k] = fmt.Sprintf("%T", v)
		}
	}
	return out
}

// TestIdempotencyExpiry: a record past its expiresAt is absent and its key
// free, by the store's clock, before TTL deletes it.
func TestIdempotencyExpiry(t *testing.T) {
	t.Parallel()
	client, tables := newTables(t)
	now := time.Now()
	s := dynamo.New(client, tables, dynamo.WithClock(func() time.Time { return now }))
	later := dynamo.New(client, tables, dynamo.WithClock(func() time.Time { return now.Add(2 * time.Hour) }))
	ctx := t.Context()
	id, key := newID(), "key-"+newID()
	expires := now.Add(time.Hour).Truncate(time.Second).Add(300 * time.Millisecond)
	rec := es.IdempotencyRecord{Key: key, RequestHash: "h", AggregateID: id, Version: 1, CreatedAt: now, ExpiresAt: expires}
	if err := s.Append(ctx, es.AppendRequest{AggregateID: id, Records: records(id, 0, 1, 1), Idempotency: &rec}); err != nil {
		t.Fatal(err)
	}

	// Stored for TTL in epoch seconds, rounded up: never expiring early.
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tables.Guards),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "idem#" + key}}})
	if err != nil {
		t.Fatal(err)
	}
	ceil := expires.Truncate(time.Second).Add(time.Second)
	if got, want := describe(out.Item)["expiresAt"], "N "+strconv.FormatInt(ceil.Unix(), 10); got != want {
		t.Errorf("expiresAt %s, want %s", got, want)
	}
	got, ok, err := s.Idempotency(ctx, key)
	if err != nil || !ok || !got.ExpiresAt.Equal(ceil) || !got.CreatedAt.Equal(now) || got.RequestHash != "h" {
		t.Fatalf("live record: %+v, %v, %v", got, ok, err)
	}

	// Two hours later the record has expired: absent, and its key can be reused.
	if _, ok, err := later.Idempotency(ctx, key); ok || err != nil {
		t.Fatalf("expired record: ok=%v err=%v, want absent", ok, err)
	}
	rec2 := es.IdempotencyRecord{Key: key, RequestHash: "h2", AggregateID: id, Version: 2, ExpiresAt: now.Add(3 * time.Hour)}
	if err := s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: 1, Records: records(id, 1, 1, 1), Idempotency: &rec2}); !errors.Is(err, es.ErrIdempotencyReplay) {
		t.Fatalf("reuse of a live key: got %v, want ErrIdempotencyReplay", err)
	}
	if err := later.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: 1, Records: records(id, 1, 1, 1), Idempotency: &rec2}); err != nil {
		t.Fatalf("reuse of an expired key: %v", err)
	}
	if got, ok, err := later.Idempotency(ctx, key); err != nil || !ok || got.RequestHash != "h2" || got.Version != 2 {
		t.Fatalf("replaced record: %+v, %v, %v", got, ok, err)
	}
}

// TestItemSize checks ItemSize against DynamoDB's own limit: the largest
// item DynamoDB Local accepts measures 400 KB, or a few bytes more, never
// less; and Append accepts exactly what its limit allows.
func TestItemSize(t *testing.T) {
	t.Parallel()
	client, tables := newTables(t)
	ctx := t.Context()
	id := newID()
	rec := records(id, 0, 1, 0)[0]
	rec.Metadata = es.Metadata{Actor: "alice", Reason: "size", RequestID: "req-1"}
	withData := func(n int) es.Record {
		r := rec
		r.Data = json.RawMessage(strings.Repeat("1", n))
		return r
	}
	fits := func(n int) bool {
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Events), Item: dynamo.ItemFromRecord(withData(n))})
		return err == nil
	}
	limit := es.DefaultLimits.MaxItemBytes
	lo, hi := limit-1000, limit // fits(lo), !fits(hi)
	if !fits(lo) || fits(hi) {
		t.Fatalf("DynamoDB's item limit is not between %d and %d data bytes", lo, hi)
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	size := dynamo.ItemSize(dynamo.ItemFromRecord(withData(lo)))
	if size < limit || size > limit+8 {
		t.Errorf("the largest item DynamoDB accepts measures %d bytes, want %d to %d", size, limit, limit+8)
	}

	// Append's check: exactly at the limit passes (and DynamoDB agrees), one more byte fails early.
	// Another aggregate: its feed shard (a number) may measure a byte more
	// or less, so the size is measured again with its id.
	other := newID()
	sized := func(n int) es.Record {
		r := withData(n)
		r.AggregateID = other
		return r
	}
	n := lo - (dynamo.ItemSize(dynamo.ItemFromRecord(sized(lo))) - limit)
	s := dynamo.New(client, tables)
	at := sized(n)
	if got := dynamo.ItemSize(dynamo.ItemFromRecord(at)); got != limit {
		t.Fatalf("record measures %d, want %d", got, limit)
	}
	over := withData(n + 1)
	over.AggregateID = at.AggregateID
	var lim *es.LimitError
	if err := s.Append(ctx, es.AppendRequest{AggregateID: over.AggregateID, Records: []es.Record{over}}); !errors.As(err, &lim) || lim.What != "item size" {
		t.Errorf("one byte over: got %v, want an item size LimitError", err)
	}
	if err := s.Append(ctx, es.AppendRequest{AggregateID: at.AggregateID, Records: []es.Record{at}}); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}

// TestItemSizeRules checks ItemSize on DynamoDB's documented examples.
func TestItemSizeRules(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	tests := []struct {
		name string
		item map[string]types.AttributeValue
		want int
	}{
		{"string in UTF-8 bytes", map[string]types.AttributeValue{"name": s("Zoë")}, 4 + 4},
		{"number", map[string]types.AttributeValue{"n": n("123")}, 1 + 3},
		{"leading zeros", map[string]types.AttributeValue{"n": n("0.0012")}, 1 + 2},
		{"negative", map[string]types.AttributeValue{"n": n("-12")}, 1 + 3},
		{"empty map", map[string]types.AttributeValue{"m": &types.AttributeValueMemberM{}}, 1 + 3},
		{"map", map[string]types.AttributeValue{"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"ab": s("xyz")}}}, 1 + 3 + 2 + 3 + 1},
		{"list", map[string]types.AttributeValue{"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("a"), n("7")}}}, 1 + 3 + 1 + 1 + 2 + 1},
		{"bool and null", map[string]types.AttributeValue{"b": &types.AttributeValueMemberBOOL{}, "z": &types.AttributeValueMemberNULL{}}, 2 + 2},
	}
	for _, tc := range tests {
		if got := dynamo.ItemSize(tc.item); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestRecordFromItem(t *testing.T) {
	rec := records("agg-1", 0, 1, 5)[0]
	rec.Metadata = es.Metadata{}
	item := dynamo.ItemFromRecord(rec)
	if _, ok := item["meta"]; ok {
		t.Error("empty metadata stored")
	}
	got, err := dynamo.RecordFromItem(item)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != rec.ID || got.AggregateID != rec.AggregateID || got.AggregateType != rec.AggregateType ||
		got.Version != rec.Version || got.Type != rec.Type || got.SchemaVersion != rec.SchemaVersion ||
		!got.OccurredAt.Equal(rec.OccurredAt) || got.Metadata != rec.Metadata || string(got.Data) != string(rec.Data) {
		t.Errorf("round trip: got %+v, want %+v", got, rec)
	}

	for name, mutate := range map[string]func(map[string]types.AttributeValue){
		"no pk":           func(m map[string]types.AttributeValue) { delete(m, "pk") },
		"sk not a number": func(m map[string]types.AttributeValue) { m["sk"] = &types.AttributeValueMemberS{Value: "1"} },
		"bad time":        func(m map[string]types.AttributeValue) { m["occurredAt"] = &types.AttributeValueMemberS{Value: "now"} },
		"meta not a map":  func(m map[string]types.AttributeValue) { m["meta"] = &types.AttributeValueMemberS{Value: "x"} },
	} {
		item := dynamo.ItemFromRecord(rec)
		mutate(item)
		if _, err := dynamo.RecordFromItem(item); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestCreateTables: the tables have the keys, stream and TTL the store needs,
// and creating or deleting twice is fine.
func TestCreateTables(t *testing.T) {
	t.Parallel()
	client, tables := newTables(t)
	ctx := t.Context()
	if err := dynamo.CreateTables(ctx, client, tables); err != nil {
		t.Fatalf("second create: %v", err)
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tables.Events)})
	if err != nil {
		t.Fatal(err)
	}
	if spec := desc.Table.StreamSpecification; spec == nil || !aws.ToBool(spec.StreamEnabled) || spec.StreamViewType != types.StreamViewTypeNewImage {
		t.Errorf("events stream: %+v, want NEW_IMAGE", spec)
	}
	if len(desc.Table.KeySchema) != 2 {
		t.Errorf("events key schema: %+v", desc.Table.KeySchema)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tables.Guards)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expiresAt" {
		t.Errorf("guards TTL: %s on %s", d.TimeToLiveStatus, aws.ToString(d.AttributeName))
	}
	if err := dynamo.DeleteTables(ctx, client, tables); err != nil {
		t.Fatal(err)
	}
	if err := dynamo.DeleteTables(ctx, client, tables); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}
