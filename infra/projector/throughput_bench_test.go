package projector_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/rebuild/rebuildtest"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// Projector throughput, a figure of BENCHMARKS.md (cmd/bench runs it with
// -benchtime 1x -count N; one iteration is one round).
const (
	benchUsers   = 60 // aggregates, so message groups
	benchPerUser = 10 // events each: created, renamed, email changed, suspended, ...
	// benchConsumers is how many batches are in flight at once, as Lambda
	// starts an SQS event source mapping (and as the local runner polls).
	benchConsumers = 5
	benchDrainMax  = 3 * time.Minute
	benchBacklog   = 50 // messages sent and not yet deleted, at most
	// benchVisibility is the projections queue's visibility timeout in
	// template.yaml, in seconds.
	benchVisibility = 180
)

// BenchmarkProjectorThroughput: events per second through the projector
// (both projections, the checkpoint, conditional writes) from a FIFO queue
// fed 600 relay messages of 60 users, against the floor of the same
// consumer loop doing one raw PutItem per message group (aggregate) of each
// batch, the groups' writes at once as the projector handles them: the
// least a consumer that keeps one conditional item per aggregate can
// write. Each round drains two orders of the same messages:
//
//   - interleaved (events/s, floor-events/s): every user's first event,
//     then every user's second..., as many users writing at once produce;
//     with the bounded backlog a batch holds one message per user, so
//     nothing coalesces and the floor writes one item per message;
//   - bursts (bursts-events/s, bursts-floor-events/s): each user's ten
//     events one after the other, as one user's burst of commands
//     produces; a batch holds mostly one user's events, which the
//     projector folds and writes once and the floor writes as one item.
//
// Projector and floor drain queues fed the same messages, one after the
// other, on the same emulators; the events table has no stream (the
// projector only reads it to heal gaps, and there are none).
func BenchmarkProjectorThroughput(b *testing.B) {
	ctx := b.Context()
	ddb, sq := awstest.DynamoDB(b), awstest.SQS(b)
	floorTable := benchFloorTable(b, ddb)
	put := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		last := map[string]events.SQSMessage{} // per group, the batch's last message
		var order []string
		for _, m := range ev.Records {
			g := m.Attributes["MessageGroupId"]
			if _, ok := last[g]; !ok {
				order = append(order, g)
			}
			last[g] = m
		}
		// The groups' writes at once, as the projector handles a batch's
		// groups (projector.DefaultGroupConcurrency, at least a batch).
		errs := make([]error, len(order))
		var wg sync.WaitGroup
		for k, g := range order {
			m := last[g]
			wg.Go(func() {
				_, errs[k] = ddb.PutItem(ctx, &dynamodb.PutItemInput{
					TableName: aws.String(floorTable),
					Item: map[string]dbtypes.AttributeValue{
						"pk":   &dbtypes.AttributeValueMemberS{Value: g + "#" + m.MessageId},
						"body": &dbtypes.AttributeValueMemberS{Value: m.Body},
					},
				})
			})
		}
		wg.Wait()
		return events.SQSEventResponse{}, errors.Join(errs...)
	}
	rates := map[string]float64{}
	for b.Loop() {
		for _, order := range []string{"interleaved", "bursts"} {
			bodies, groups := benchMessages(b, order == "bursts")
			rm := userviews.New(readmodeltest.Store(b))
			store := dynamo.New(ddb, dynamo.Tables{Events: rebuildtest.EventsTable(b, ddb)})
			// As the function is built (lambdafn.Projector): a failed
			// message comes back after the backoff, not the queue's
			// visibility timeout.
			q := benchQueue(b, sq)
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			p := projector.New(store, user.NewRegistry(), rm, userviews.Projections(), logger, time.Now,
				projector.WithBackoff(&relay.Backoff{Client: sq, QueueURL: q.URL, Log: logger}))
			rates[order] = float64(len(bodies)) / benchDrain(b, sq, q, bodies, groups, p.Handle).Seconds()
			for _, id := range uniq(groups) {
				v, ok, err := rm.UserView(ctx, id)
				if err != nil || !ok || v.Version != benchPerUser {
					b.Fatalf("view of %s: v%d, found %v, %v: want v%d", id, v.Version, ok, err, benchPerUser)
				}
			}
			rates[order+"-floor"] = float64(len(bodies)) / benchDrain(b, sq, benchQueue(b, sq), bodies, groups, put).Seconds()
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rates["interleaved"], "events/s")
	b.ReportMetric(rates["interleaved-floor"], "floor-events/s")
	b.ReportMetric(rates["bursts"], "bursts-events/s")
	b.ReportMetric(rates["bursts-floor"], "bursts-floor-events/s")
}

// benchMessages returns the relay message bodies of benchUsers user
// streams and the message group of each: interleaved as concurrent users
// write them (every user's first event, then every user's second...), or
// with bursts, each user's events one after the other.
func benchMessages(b *testing.B, bursts bool) (bodies, groups []string) {
	t0 := time.Now().Add(-time.Hour)
	streams := make([][]es.Record, benchUsers)
	for i := range streams {
		streams[i] = rebuildtest.Stream(newID(), benchPerUser, t0, "bench")
	}
	add := func(r es.Record) {
		body, err := relay.EncodeMessage(r)
		if err != nil {
			b.Fatal(err)
		}
		bodies, groups = append(bodies, body), append(groups, r.AggregateID)
	}
	if bursts {
		for _, s := range streams {
			for _, r := range s {
				add(r)
			}
		}
		return bodies, groups
	}
	for v := range benchPerUser {
		for _, s := range streams {
			add(s[v])
		}
	}
	return bodies, groups
}

// benchQueue returns a new FIFO queue with the template's visibility
// timeout: a message comes back only if its batch failed.
func benchQueue(b *testing.B, client *sqs.Client) *relaytest.Queue {
	return relaytest.FIFOQueue(b, client, relaytest.QueueOptions{VisibilityTimeout: benchVisibility})
}

// benchSend sends bodies[i:j] as the relay sends them (group: aggregate,
// deduplication: position).
func benchSend(ctx context.Context, client *sqs.Client, url string, bodies, groups []string, i, j int) error {
	var entries []sqstypes.SendMessageBatchRequestEntry
	for k := i; k < j; k++ {
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{
			Id: aws.String(strconv.Itoa(k)), MessageBody: aws.String(bodies[k]),
			MessageGroupId: aws.String(groups[k]), MessageDeduplicationId: aws.String(strconv.Itoa(k)),
		})
	}
	out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
	if err != nil {
		return fmt.Errorf("send messages: %w", err)
	}
	if len(out.Failed) > 0 {
		return fmt.Errorf("send messages: %d refused", len(out.Failed))
	}
	return nil
}

// benchDrain feeds the messages to q, ten at a time, keeping at most
// benchBacklog of them undeleted, while benchConsumers consumer loops
// receive up to ten, handle them and delete those not reported failed. It
// returns how long it took until every message was deleted.
//
// The backlog is bounded because moto's FIFO queues slow down with their
// depth (each send and receive scans the queue): a thousand queued
// messages take minutes to receive. A relay feeding a projector in step
// keeps the queue short too.
func benchDrain(b *testing.B, client *sqs.Client, q *relaytest.Queue, bodies, groups []string,
	handle func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)) time.Duration {
	ctx, cancel := context.WithTimeout(b.Context(), benchDrainMax)
	defer cancel()
	want := int64(len(bodies))
	var sent, done, failures atomic.Int64
	var deletedMu sync.Mutex
	deleted := map[string]bool{} // message ids: a message received twice is deleted twice
	var once sync.Once
	var firstErr error
	fail := func(err error) { once.Do(func() { firstErr = err; cancel() }) }
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		for i := 0; i < len(bodies) && ctx.Err() == nil; {
			if sent.Load()-done.Load() >= benchBacklog {
				sleepCtx(ctx, 2*time.Millisecond)
				continue
			}
			j := min(i+10, len(bodies))
			if err := benchSend(ctx, client, q.URL, bodies, groups, i, j); err != nil {
				fail(err)
				return
			}
			sent.Add(int64(j - i))
			i = j
		}
	})
	// One receive at a time, as the local runner polls (and as a Lambda
	// poller of a FIFO queue hands out a group to one batch at a time):
	// moto serves concurrent receives of one FIFO queue without holding
	// its groups, and hands a group's later messages to one consumer while
	// the earlier ones are in flight in another's batch.
	var receiving sync.Mutex
	for range benchConsumers {
		wg.Go(func() {
			for done.Load() < want && ctx.Err() == nil {
				receiving.Lock()
				ev, err := relaytest.Receive(ctx, client, q, 10, benchVisibility)
				receiving.Unlock()
				if err != nil {
					if ctx.Err() == nil { // else the drain timed out: said below
						fail(err)
					}
					return
				}
				if len(ev.Records) == 0 {
					sleepCtx(ctx, 10*time.Millisecond) // as the runner does while batches are in flight
					continue
				}
				resp, err := handle(ctx, ev)
				if err != nil {
					fail(err)
					return
				}
				failures.Add(int64(len(resp.BatchItemFailures)))
				ids, err := deleteBatch(ctx, client, q.URL, ev, resp)
				if err != nil {
					fail(err)
					return
				}
				deletedMu.Lock()
				for _, id := range ids {
					if !deleted[id] {
						deleted[id] = true
						done.Add(1)
					}
				}
				deletedMu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	switch {
	case firstErr != nil:
		b.Fatal(firstErr)
	case done.Load() < want:
		b.Fatalf("drained %d of %d messages in %v (%d failures reported)", done.Load(), want, benchDrainMax, failures.Load())
	case failures.Load() > 0:
		b.Logf("%d messages reported failed and were received again", failures.Load())
	}
	return elapsed
}

// deleteBatch deletes the messages of ev that resp does not report failed,
// in one DeleteMessageBatch, and returns their ids.
func deleteBatch(ctx context.Context, client *sqs.Client, url string, ev events.SQSEvent, resp events.SQSEventResponse) ([]string, error) {
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	var ids []string
	for i, m := range ev.Records {
		if !failed[m.MessageId] {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.ReceiptHandle)})
			ids = append(ids, m.MessageId)
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	out, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
	if err != nil {
		return nil, fmt.Errorf("delete messages: %w", err)
	}
	if len(out.Failed) > 0 {
		f := out.Failed[0]
		return nil, fmt.Errorf("delete messages: %d refused, the first (%s) with %s: %s",
			len(out.Failed), aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message))
	}
	return ids, nil
}

// benchFloorTable creates the floor's table (pk S, no stream), deleted
// when the benchmark ends.
func benchFloorTable(b *testing.B, client *dynamodb.Client) string {
	name := awstest.TableName("bench-floor")
	_, err := client.CreateTable(b.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          dbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: dbtypes.ScalarAttributeTypeS}},
		KeySchema:            []dbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: dbtypes.KeyTypeHash}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
