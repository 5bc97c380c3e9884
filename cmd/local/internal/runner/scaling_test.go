package runner

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/template"
)

// TestParallelStreamProjectionsEqualFolds: the runner reads a real
// DynamoDB stream of 5,000 user events on 500 users with the mapping's
// ParallelizationFactor at 4. The function folds each user's events into
// its view as the projector does, and fails a batch that hands it a user's
// event out of version order; afterwards every view equals the fold of
// the user's events, and batches of the shard did run side by side.
//
// The relay → FIFO → projector leg is the end-to-end suite's and make
// bench's scaling group's: on DynamoDB Local and moto it takes minutes for
// 5,000 events on a loaded machine, and this is about the runner's order.
func TestParallelStreamProjectionsEqualFolds(t *testing.T) {
	const (
		users   = 500
		perUser = 10 // a create and nine renames
		factor  = 4
	)
	cfg := awstest.Config(t)
	ctx := t.Context()
	ddb := dynamodb.NewFromConfig(cfg)
	table := awstest.TableName("pf")
	if _, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: ddbtypes.ScalarAttributeTypeN}},
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: ddbtypes.KeyTypeRange}},
		StreamSpecification: &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewTypeNewImage},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	d, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}

	// The events: round v holds version v of every user, written only
	// after round v-1, so that the stream interleaves the users and holds
	// each user's events in version order.
	reg := user.NewRegistry()
	ids := make([]string, users)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	want := map[string]user.View{}
	rounds := make([][]es.Record, perUser)
	start := time.Now().UTC().Truncate(time.Millisecond)
	for v := range perUser {
		for i, id := range ids {
			var e es.Event = user.Renamed{Name: fmt.Sprintf("User %d v%d", i, v+1)}
			if v == 0 {
				e = user.Created{Name: fmt.Sprintf("User %d", i), Email: fmt.Sprintf("pf-%d@example.com", i)}
			}
			typ, schema, data, err := reg.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			rec := es.Record{ID: uuid.NewString(), AggregateID: id, AggregateType: "user", Version: int64(v + 1), Type: typ,
				SchemaVersion: schema, OccurredAt: start.Add(time.Duration(v) * time.Second), Data: data}
			rounds[v] = append(rounds[v], rec)
			rec.Event = e
			want[id] = user.ApplyView(want[id], rec)
		}
	}

	var (
		mu       sync.Mutex
		got      = map[string]user.View{}
		handed   atomic.Int32
		inFlight atomic.Int32
		peak     atomic.Int32
		disorder atomic.Value
	)
	fn := &function{id: "Fold", timeout: 30 * time.Second, handler: func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		for _, r := range ev.Records {
			rec, err := relay.RecordFromImage(r.Change.NewImage)
			if err != nil {
				return events.DynamoDBEventResponse{}, err
			}
			if rec.Event, err = reg.Decode(rec); err != nil {
				return events.DynamoDBEventResponse{}, err
			}
			mu.Lock()
			v := got[rec.AggregateID]
			if rec.Version != v.Version+1 {
				disorder.Store(fmt.Sprintf("user %s: v%d handed on after v%d", rec.AggregateID, rec.Version, v.Version))
			}
			got[rec.AggregateID] = user.ApplyView(v, rec)
			mu.Unlock()
			handed.Add(1)
		}
		time.Sleep(time.Millisecond) // a function's own time, so that batches overlap
		return events.DynamoDBEventResponse{}, nil
	}}
	r := testRunner(fn)
	r.streams = dynamodbstreams.NewFromConfig(cfg)
	r.res = &resources{streamARNs: map[string]string{"Events": aws.ToString(d.Table.LatestStreamArn)}}
	r.plan = &plan{tables: []template.Table{{Name: "Events", HashKey: template.KeyAttribute{Name: "pk"}}}}
	m := streamMapping{function: "Fold", event: template.StreamEvent{Table: "Events", StartingPosition: "TRIM_HORIZON",
		BatchSize: 100, MaximumRetryAttempts: 3, ParallelizationFactor: factor}}
	pctx, stop := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { defer close(polled); r.pollStream(pctx, m) }()
	t.Cleanup(func() { stop(); <-polled })

	begin := time.Now()
	for _, round := range rounds {
		var wg sync.WaitGroup
		var failed atomic.Value
		for chunk := range slices.Chunk(round, 25) {
			wg.Go(func() {
				reqs := make([]ddbtypes.WriteRequest, len(chunk))
				for i, rec := range chunk {
					reqs[i] = ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: dynamo.ItemFromRecord(rec)}}
				}
				for len(reqs) > 0 {
					out, err := ddb.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{table: reqs}})
					if err != nil {
						failed.Store(err)
						return
					}
					reqs = out.UnprocessedItems[table]
				}
			})
		}
		wg.Wait()
		if err, ok := failed.Load().(error); ok {
			t.Fatal(err)
		}
	}
	t.Logf("%d events written in %s", users*perUser, time.Since(begin).Round(time.Millisecond))

	deadline := time.Now().Add(2 * time.Minute)
	for int(handed.Load()) < users*perUser {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events handed on within 2 minutes", handed.Load(), users*perUser)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d events handed on %s after the first write; at most %d batches at once", handed.Load(), time.Since(begin).Round(time.Millisecond), peak.Load())
	if s, ok := disorder.Load().(string); ok {
		t.Errorf("an event out of order: %s", s)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if got[id] != want[id] {
			t.Errorf("user %s: view %+v, fold %+v", id, got[id], want[id])
		}
	}
	if peak.Load() < 2 {
		t.Errorf("at most %d batch at once with ParallelizationFactor %d", peak.Load(), factor)
	}
}
