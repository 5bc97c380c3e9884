package dynamo_test

import (
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// Each store benchmark has a raw SDK twin doing the same DynamoDB work: the
// floor the store's own cost is measured against.

const benchDataBytes = 100 // a small event, like user.renamed.v1

// BenchmarkAppend appends one event per operation, at the next version.
func BenchmarkAppend(b *testing.B) {
	client, tables := benchTables(b)
	s := dynamo.New(client, tables)
	ctx := b.Context()
	id := newID()
	tmpl := records(id, 0, 1, benchDataBytes)[0]
	b.ReportAllocs()
	for v := int64(0); b.Loop(); v++ {
		r := tmpl
		r.ID, r.Version = newID(), v+1
		if err := s.Append(ctx, es.AppendRequest{AggregateID: id, ExpectedVersion: v, Records: []es.Record{r}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawPutItem is the floor of BenchmarkAppend: a conditional PutItem
// of the same item.
func BenchmarkRawPutItem(b *testing.B) {
	client, tables := benchTables(b)
	ctx := b.Context()
	id := newID()
	tmpl := records(id, 0, 1, benchDataBytes)[0]
	b.ReportAllocs()
	for v := int64(0); b.Loop(); v++ {
		r := tmpl
		r.ID, r.Version = newID(), v+1
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           aws.String(tables.Events),
			Item:                dynamo.ItemFromRecord(r),
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawTransactWriteItems is the floor of BenchmarkAppend on the
// transaction path: one TransactWriteItems with the same conditional Put.
// DynamoDB charges a transactional write double, and DynamoDB Local is slower
// on it too, so this is the fair floor; BenchmarkRawPutItem is the absolute one.
func BenchmarkRawTransactWriteItems(b *testing.B) {
	client, tables := benchTables(b)
	ctx := b.Context()
	id := newID()
	tmpl := records(id, 0, 1, benchDataBytes)[0]
	b.ReportAllocs()
	for v := int64(0); b.Loop(); v++ {
		r := tmpl
		r.ID, r.Version = newID(), v+1
		if _, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{
			Put: &types.Put{
				TableName:           aws.String(tables.Events),
				Item:                dynamo.ItemFromRecord(r),
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			},
		}}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad10k loads a 10,000-event stream.
func BenchmarkLoad10k(b *testing.B) {
	client, tables := benchTables(b)
	id := writeStream(b, client, tables.Events, 10_000)
	s := dynamo.New(client, tables)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		recs, err := s.Load(ctx, id, 1, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) != 10_000 {
			b.Fatalf("loaded %d records", len(recs))
		}
	}
}

// BenchmarkRawQuery10k is the floor of BenchmarkLoad10k: the same paged,
// consistent Query, items left undecoded.
func BenchmarkRawQuery10k(b *testing.B) {
	client, tables := benchTables(b)
	id := writeStream(b, client, tables.Events, 10_000)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		in := &dynamodb.QueryInput{
			TableName:              aws.String(tables.Events),
			KeyConditionExpression: aws.String("pk = :id AND sk >= :from"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":id":   &types.AttributeValueMemberS{Value: id},
				":from": &types.AttributeValueMemberN{Value: "1"},
			},
			ConsistentRead: aws.Bool(true),
		}
		n := 0
		for {
			out, err := client.Query(ctx, in)
			if err != nil {
				b.Fatal(err)
			}
			n += len(out.Items)
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
		if n != 10_000 {
			b.Fatalf("queried %d items", n)
		}
	}
}

// BenchmarkRecordFromItem is the decoding part of a load, per event.
func BenchmarkRecordFromItem(b *testing.B) {
	item := dynamo.ItemFromRecord(records(newID(), 0, 1, benchDataBytes)[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dynamo.RecordFromItem(item); err != nil {
			b.Fatal(err)
		}
	}
}

// writeStream stores a stream of n events with BatchWriteItem, in parallel,
// and returns its id.
func writeStream(tb testing.TB, client *dynamodb.Client, table string, n int) string {
	tb.Helper()
	id := newID()
	writeRecords(tb, client, table, records(id, 0, n, benchDataBytes))
	return id
}

// writeRecords stores recs with BatchWriteItem, in parallel.
func writeRecords(tb testing.TB, client *dynamodb.Client, table string, recs []es.Record) {
	tb.Helper()
	ctx := tb.Context()
	n := len(recs)
	const batch, workers = 25, 8
	batches := make(chan []es.Record)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for recs := range batches {
				reqs := make([]types.WriteRequest, len(recs))
				for i, r := range recs {
					reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: dynamo.ItemFromRecord(r)}}
				}
				pending := map[string][]types.WriteRequest{table: reqs}
				for len(pending) > 0 {
					out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
					if err != nil {
						tb.Error(err)
						break
					}
					pending = out.UnprocessedItems
				}
			}
		})
	}
	for i := 0; i < n; i += batch {
		batches <- recs[i:min(i+batch, n)]
	}
	close(batches)
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
}
