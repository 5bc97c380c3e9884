package dynamo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// The figures of BENCHMARKS.md for the store (cmd/bench runs them with
// -benchtime 1x and -count N: one iteration is one round). Each measures the
// store and its raw SDK floor on the same emulator, interleaved operation by
// operation, so that both see the same machine noise, and reports the
// percentiles or medians as metrics, with ns/op suppressed.

// benchTables creates the store's tables with their key schemas but without
// the events table's stream, and deletes them when the benchmark ends.
// Neither the store nor its floor reads the stream, and DynamoDB Local
// writes a table with a stream about twice as slowly, and ever more slowly
// as stream records pile up over its lifetime.
func benchTables(tb testing.TB) (*dynamodb.Client, dynamo.Tables) {
	tb.Helper()
	client := awstest.DynamoDB(tb)
	tables := dynamo.Tables{
		Events:    awstest.TableName("bench-events"),
		Guards:    awstest.TableName("bench-guards"),
		Snapshots: awstest.TableName("bench-snapshots"),
	}
	ctx := tb.Context()
	for _, name := range []string{tables.Events, tables.Guards, tables.Snapshots} {
		in := &dynamodb.CreateTableInput{
			TableName:            aws.String(name),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		}
		if name == tables.Events {
			in.AttributeDefinitions = append(in.AttributeDefinitions,
				types.AttributeDefinition{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeN})
			in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange})
		}
		if _, err := client.CreateTable(ctx, in); err != nil {
			tb.Fatalf("create table %s: %v", name, err)
		}
	}
	tb.Cleanup(func() {
		// tb.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dynamo.DeleteTables(ctx, client, tables); err != nil {
			tb.Errorf("delete tables: %v", err)
		}
	})
	return client, tables
}

// BenchmarkAppendLatency: p50 and p99 of a one-event append (what a rename
// writes) against a raw conditional PutItem of the same item, 500 of each per
// round, alternating which goes first.
func BenchmarkAppendLatency(b *testing.B) {
	const ops, warmup = 500, 20
	client, tables := benchTables(b)
	s := dynamo.New(client, tables)
	ctx := b.Context()
	storeID, rawID := newID(), newID()
	tmpl := records(storeID, 0, 1, benchDataBytes)[0]
	var storeLat, rawLat []time.Duration
	var storeV, rawV int64

	appendOne := func() time.Duration {
		r := tmpl
		r.ID, r.Version = newID(), storeV+1
		start := time.Now()
		if err := s.Append(ctx, es.AppendRequest{AggregateID: storeID, ExpectedVersion: storeV, Records: []es.Record{r}}); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		storeV++
		return d
	}
	putOne := func() time.Duration {
		r := tmpl
		r.ID, r.AggregateID, r.Version = newID(), rawID, rawV+1
		item := dynamo.ItemFromRecord(r) // the store encodes inside its timing, so the floor does too
		start := time.Now()
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           aws.String(tables.Events),
			Item:                item,
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		if err != nil {
			b.Fatal(err)
		}
		rawV++
		return time.Since(start)
	}
	for b.Loop() {
		storeLat, rawLat = storeLat[:0], rawLat[:0]
		for i := range ops + warmup {
			var ds, dr time.Duration
			if i%2 == 0 {
				ds, dr = appendOne(), putOne()
			} else {
				dr, ds = putOne(), appendOne()
			}
			if i >= warmup {
				storeLat, rawLat = append(storeLat, ds), append(rawLat, dr)
			}
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(percentile(storeLat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(storeLat, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(rawLat, 0.50)), "floor-p50-ms")
	b.ReportMetric(ms(percentile(rawLat, 0.99)), "floor-p99-ms")
}

// BenchmarkAggregateLoad: loading a user of 10, 1,000 and 10,000 events
// through the kernel (query, decode, fold), without snapshots and with the
// snapshot policy of 100, against a raw paged Query of the same items left
// undecoded. The three are interleaved, in rotating order; each metric is
// the median of its repetitions in the round.
//
// With the policy, the latest snapshot lies on average 50 events before the
// end, so the snapshot is taken there; at 10 events the policy has written
// none yet, and the load pays a snapshot read that finds nothing.
func BenchmarkAggregateLoad(b *testing.B) {
	for _, n := range []int{10, 1_000, 10_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			reps := max(3, min(50, 30_000/n)) // about the same time per size
			client, tables := benchTables(b)
			store := dynamo.New(client, tables)
			id := seedUser(b, client, tables.Events, n)
			ctx := b.Context()
			plain := es.NewService(user.Decider(), user.NewRegistry(), store, es.Options{})
			snapshotting := es.NewService(user.Decider(), user.NewRegistry(), store, es.Options{SnapshotEvery: 100})
			if n >= 100 {
				putSnapshot(b, plain, client, tables.Events, id, int64(n-50))
			}
			load := func(svc *es.Service[user.State, user.Command]) time.Duration {
				start := time.Now()
				agg, err := svc.Load(ctx, id)
				d := time.Since(start)
				if err != nil || agg.Version != int64(n) {
					b.Fatalf("load: v%d, %v", agg.Version, err)
				}
				return d
			}
			query := func() time.Duration {
				start := time.Now()
				got := rawQuery(b, client, tables.Events, id)
				d := time.Since(start)
				if got != n {
					b.Fatalf("queried %d items, want %d", got, n)
				}
				return d
			}
			var none, snap, raw []time.Duration
			for b.Loop() {
				none, snap, raw = none[:0], snap[:0], raw[:0]
				load(plain) // warm-up: connections, the emulator's caches
				for i := range reps {
					for k := range 3 {
						switch (i + k) % 3 {
						case 0:
							none = append(none, load(plain))
						case 1:
							snap = append(snap, load(snapshotting))
						case 2:
							raw = append(raw, query())
						}
					}
				}
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(percentile(none, 0.5)), "nosnap-ms")
			b.ReportMetric(ms(percentile(snap, 0.5)), "snap-ms")
			b.ReportMetric(ms(percentile(raw, 0.5)), "floor-ms")
		})
	}
}

// seedUser stores a user of n events (a create, then renames) with
// BatchWriteItem and returns its id.
func seedUser(tb testing.TB, client *dynamodb.Client, table string, n int) string {
	tb.Helper()
	reg := user.NewRegistry()
	id := newID()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := make([]es.Record, n)
	for i := range recs {
		var e es.Event = user.Renamed{Name: fmt.Sprint("name ", i)}
		if i == 0 {
			e = user.Created{Name: "Bench", Email: "bench@example.com"}
		}
		typ, schema, data, err := reg.Encode(e)
		if err != nil {
			tb.Fatal(err)
		}
		recs[i] = es.Record{ID: newID(), AggregateID: id, AggregateType: user.AggregateType, Version: int64(i + 1),
			Type: typ, SchemaVersion: schema, OccurredAt: at.Add(time.Duration(i) * time.Millisecond), Data: data,
			Metadata: es.Metadata{Actor: "bench", CorrelationID: "corr"}}
	}
	writeRecords(tb, client, table, recs)
	return id
}

// putSnapshot stores the snapshot of user id at version v, as the policy
// would have written it.
func putSnapshot(tb testing.TB, svc *es.Service[user.State, user.Command], client *dynamodb.Client, table, id string, v int64) {
	tb.Helper()
	ctx := tb.Context()
	agg, err := svc.LoadAt(ctx, id, v)
	if err != nil {
		tb.Fatal(err)
	}
	state, err := json.Marshal(agg.State)
	if err != nil {
		tb.Fatal(err)
	}
	// Where the store keeps it (es.StreamSnapshots): on the item of the
	// event it follows, as the append that crosses the interval writes it.
	if _, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: id},
			"sk": &types.AttributeValueMemberN{Value: fmt.Sprint(agg.Version)},
		},
		UpdateExpression: aws.String("SET snapState = :s, snapSchema = :n, snapTakenAt = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s": &types.AttributeValueMemberS{Value: string(state)},
			":n": &types.AttributeValueMemberN{Value: fmt.Sprint(user.StateSchema)},
			":t": &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339Nano)},
		},
		ConditionExpression: aws.String("attribute_exists(pk)"),
	}); err != nil {
		tb.Fatal(err)
	}
}

// rawQuery reads stream id with the paged, consistent Query the store
// sends, leaving the items undecoded, and returns how many it read.
func rawQuery(tb testing.TB, client *dynamodb.Client, table, id string) int {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("pk = :id AND sk >= :from"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id":   &types.AttributeValueMemberS{Value: id},
			":from": &types.AttributeValueMemberN{Value: "1"},
		},
		ConsistentRead: aws.Bool(true),
	}
	n := 0
	for {
		out, err := client.Query(tb.Context(), in)
		if err != nil {
			tb.Fatal(err)
		}
		n += len(out.Items)
		if len(out.LastEvaluatedKey) == 0 {
			return n
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// percentile is the nearest-rank percentile p (0 < p <= 1) of d.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
