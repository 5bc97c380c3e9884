// Package rebuildtest fills an events table fast, for the tests and the
// benchmark of rebuilds: whole user streams written with BatchWriteItem,
// without the command path (no guards, no stream consumers needed).
package rebuildtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// Stream returns the records of a user's life of n events (n >= 1): created,
// then renamed, email changed, suspended, reactivated, renamed..., each one
// second after the previous one from t0, caused by actor.
func Stream(id string, n int, t0 time.Time, actor string) []es.Record {
	reg := user.NewRegistry()
	events := []es.Event{user.Created{Name: "User " + id[:8], Email: id + "@example.com", Sub: "sub-" + id}}
	for i := 1; len(events) < n; i++ {
		switch i % 4 {
		case 1:
			events = append(events, user.Renamed{Name: fmt.Sprintf("User %s #%d", id[:8], i)})
		case 2:
			events = append(events, user.EmailChanged{Email: fmt.Sprintf("%s+%d@example.com", id, i), Previous: ""})
		case 3:
			events = append(events, user.Suspended{Reason: "review"})
		case 0:
			events = append(events, user.Reactivated{Reason: "ok"})
		}
	}
	recs := make([]es.Record, len(events))
	for i, e := range events {
		typ, schema, data, err := reg.Encode(e)
		if err != nil {
			panic(err) // the user events always encode
		}
		recs[i] = es.Record{
			ID: uuid.Must(uuid.NewV7()).String(), AggregateID: id, AggregateType: user.AggregateType,
			Version: int64(i + 1), Type: typ, SchemaVersion: schema, Data: data,
			OccurredAt: t0.Add(time.Duration(i) * time.Second).UTC(),
			Metadata:   es.Metadata{Actor: actor, Reason: "seed", CorrelationID: uuid.NewString()},
		}
	}
	return recs
}

// EventsTable creates an events table (pk S, sk N) without a stream, for
// benchmarks: DynamoDB Local writes a table with a stream about ten times
// slower, and a rebuild reads only with Scan and Query. It is deleted when
// the benchmark ends.
func EventsTable(tb testing.TB, client *dynamodb.Client) string {
	tb.Helper()
	name := "events-nostream-" + uuid.NewString()
	_, err := client.CreateTable(tb.Context(), &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// Seed writes users streams of perUser events each into table, with up to
// workers BatchWriteItem calls at once, and returns the user ids.
func Seed(ctx context.Context, client *dynamodb.Client, table string, users, perUser, workers int) ([]string, error) {
	ids := make([]string, users)
	var reqs []types.WriteRequest
	t0 := time.Now().Add(-time.Hour).UTC()
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		for _, r := range Stream(ids[i], perUser, t0, "seeder") {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: dynamo.ItemFromRecord(r)}})
		}
	}
	return ids, Write(ctx, client, table, reqs, workers)
}

// Write writes reqs into table in batches of 25, workers at once, sending
// unprocessed items again.
func Write(ctx context.Context, client *dynamodb.Client, table string, reqs []types.WriteRequest, workers int) error {
	batches := make(chan []types.WriteRequest)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for b := range batches {
				pending := map[string][]types.WriteRequest{table: b}
				for len(pending) > 0 {
					out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
					if err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
					pending = out.UnprocessedItems
				}
			}
		})
	}
	for i := 0; i < len(reqs); i += 25 {
		select {
		case batches <- reqs[i:min(i+25, len(reqs))]:
		case err := <-errs:
			close(batches)
			wg.Wait()
			return fmt.Errorf("seed %s: %w", table, err)
		}
	}
	close(batches)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("seed %s: %w", table, err)
	default:
	}
	return nil
}

// Items returns every item of a read-model table as "pk|sk" → its
// attributes as Go values, for comparing two tables.
func Items(ctx context.Context, client *dynamodb.Client, table string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}
	for {
		page, err := client.Scan(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			m := map[string]any{}
			for k, v := range item {
				m[k] = value(v)
			}
			out[fmt.Sprint(m["pk"], "|", m["sk"])] = m
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func value(av types.AttributeValue) any {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberBOOL:
		return v.Value
	case *types.AttributeValueMemberM:
		m := map[string]any{}
		for k, e := range v.Value {
			m[k] = value(e)
		}
		return m
	default:
		return fmt.Sprintf("%T", av)
	}
}
