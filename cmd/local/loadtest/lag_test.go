package loadtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
)

const (
	// lagPoll is how often the read model of a write is read until it shows
	// the write: the resolution of the lag, the same for the floor.
	lagPoll = 20 * time.Millisecond
	// lagUsers are renamed in turn: at the default rate, each every 5s,
	// long after its previous write was projected.
	lagUsers = 50
	// lagMax bounds the wait for one write to be projected.
	lagMax = time.Minute
	// floorStreamPoll is the runner's shard poll interval (Lambda's is
	// 250ms), for the floor's stream reader.
	floorStreamPoll = 100 * time.Millisecond
)

// BenchmarkProjectionLag: the time from a command's 2xx answer to the read
// model holding its version (userviews.Store.UserView, polled every 20ms),
// at a steady rate of commands (renames of 50 users in turn, one create in
// ten), sent open-loop on a ticker, with the whole read side running as
// template.yaml has it (relay, projector, notifier). Its floor is the shortest pipeline over
// the same hops on the same emulators: a conditional PutItem into a table
// with a NEW_IMAGE stream, a stream reader polling as the runner does
// (GetRecords every 100ms when idle) that sends each record to a FIFO
// queue, and one consumer that long-polls the queue and writes each
// message with one PutItem, observed the same way.
//
// A write that fails (a 504 when the machine is overloaded) is counted in
// the errors metric and measures no lag; more than a tenth failing fails
// the benchmark.
//
// CHRONICLE_BENCH_LAG_RATE sets the commands per second (default 10, a
// load two cores shared with the emulators carry with room to spare),
// CHRONICLE_BENCH_LAG_PHASE how long each side is driven (default 12s).
func BenchmarkProjectionLag(b *testing.B) {
	rate := intSetting(b, "CHRONICLE_BENCH_LAG_RATE", 10)
	phase := durationSetting(b, "CHRONICLE_BENCH_LAG_PHASE", 12*time.Second)
	s := startService(b, templatePath)
	f := startFloorPipeline(b)
	users := s.createUsers(b, lagUsers)
	var subject, floor []time.Duration
	var errs int
	for b.Loop() {
		s.quiesce(b)
		subject, errs = steady(b, rate, phase, func(ctx context.Context, i int) (time.Duration, error) {
			return s.lagOf(ctx, i, users)
		})
		s.quiesce(b)
		floor, _ = steady(b, rate, phase, f.lagOf)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(percentile(subject, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(subject, 0.99)), "p99-ms")
	b.ReportMetric(float64(len(subject)), "writes")
	b.ReportMetric(float64(errs), "errors")
	b.ReportMetric(ms(percentile(floor, 0.50)), "floor-p50-ms")
	b.ReportMetric(ms(percentile(floor, 0.99)), "floor-p99-ms")
}

// steady calls write rate times a second for d, each call in a goroutine of
// its own so that a slow one does not slow the rate, and returns the lags
// they measured and how many failed.
func steady(b *testing.B, rate int, d time.Duration, write func(ctx context.Context, i int) (time.Duration, error)) ([]time.Duration, int) {
	ctx := b.Context()
	var (
		mu   sync.Mutex
		lags []time.Duration
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	n := int(d.Seconds() * float64(rate))
	for i := range n {
		select {
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		case <-tick.C:
		}
		wg.Go(func() {
			lag, err := write(ctx, i)
			if err != nil {
				if errs.Add(1) == 1 {
					b.Logf("write %d: %v", i, err)
				}
				return
			}
			mu.Lock()
			lags = append(lags, lag)
			mu.Unlock()
		})
	}
	wg.Wait()
	if failed := int(errs.Load()); failed*10 > n {
		b.Fatalf("%d of %d writes failed", failed, n)
	}
	return lags, int(errs.Load())
}

// lagOf sends command i (a rename of a user in turn, or a create) and
// waits for the read model to show it.
func (s *service) lagOf(ctx context.Context, i int, users []string) (time.Duration, error) {
	r := rename(users[i%len(users)], fmt.Sprintf("Lag %d.%d", i, time.Now().UnixNano()))
	if i%10 == 9 {
		r = create(i)
	}
	res := send(ctx, s.base, s.token, r)
	accepted := time.Now()
	if res.err != nil {
		return 0, res.err
	}
	return pollUntil(ctx, accepted, func() (bool, error) {
		v, ok, err := s.views.UserView(ctx, res.id)
		return ok && v.Version >= res.version, err
	})
}

// pollUntil reads until seen holds, and returns how long after accepted
// it first did.
func pollUntil(ctx context.Context, accepted time.Time, seen func() (bool, error)) (time.Duration, error) {
	for {
		ok, err := seen()
		at := time.Now()
		if err != nil {
			return 0, err
		}
		if ok {
			return at.Sub(accepted), nil
		}
		if at.Sub(accepted) > lagMax {
			return 0, fmt.Errorf("not projected after %s", lagMax)
		}
		sleep(ctx, lagPoll)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
}

// floorPipeline is the lag's floor: events table with a stream → stream
// reader → FIFO queue → consumer → view table.
type floorPipeline struct {
	ddb           *dynamodb.Client
	events, views string
	ids           []string
	versions      []atomic.Int64
	failures      atomic.Int64
	firstErr      atomic.Value // error
}

// startFloorPipeline creates the floor's tables and queue and runs its
// stream reader and consumer until the benchmark ends.
func startFloorPipeline(b *testing.B) *floorPipeline {
	b.Helper()
	cfg := awstest.Config(b)
	f := &floorPipeline{ddb: dynamodb.NewFromConfig(cfg), versions: make([]atomic.Int64, lagUsers)}
	f.events = newTable(b, f.ddb, "bench-floor-events", true, true)
	f.views = newTable(b, f.ddb, "bench-floor-views", false, false)
	for range lagUsers {
		f.ids = append(f.ids, uuid.NewString())
	}
	client := sqs.NewFromConfig(cfg)
	q := relaytest.FIFOQueue(b, client, relaytest.QueueOptions{VisibilityTimeout: 30})

	desc, err := f.ddb.DescribeTable(b.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(f.events)})
	if err != nil {
		b.Fatal(err)
	}
	streams := dynamodbstreams.NewFromConfig(cfg)
	arn := aws.ToString(desc.Table.LatestStreamArn)
	ctx, cancel := context.WithCancel(context.WithoutCancel(b.Context()))
	var wg sync.WaitGroup
	wg.Go(func() { f.readStream(ctx, streams, client, arn, q.URL) })
	wg.Go(func() { f.consume(ctx, client, q.URL) })
	b.Cleanup(func() {
		cancel()
		wg.Wait()
		if n := f.failures.Load(); n > 0 {
			b.Errorf("floor pipeline: %d failed calls, the first: %v", n, f.firstErr.Load())
		}
	})
	return f
}

// openShard returns an iterator on the stream's open shard, after the
// record with sequence number after, or from the shard's start.
func openShard(ctx context.Context, streams *dynamodbstreams.Client, arn, after string) (*string, error) {
	ds, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
	if err != nil {
		return nil, err
	}
	for _, sh := range ds.StreamDescription.Shards {
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn), ShardId: sh.ShardId,
			ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon}
		if after != "" {
			in.ShardIteratorType, in.SequenceNumber = streamtypes.ShardIteratorTypeAfterSequenceNumber, aws.String(after)
		}
		out, err := streams.GetShardIterator(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.ShardIterator, nil
	}
	return nil, fmt.Errorf("stream %s has no open shard", arn)
}

// readStream sends each new record of the stream to the queue, polling
// every floorStreamPoll when there is nothing new. Like the runner, it
// takes a new iterator after the last record read when DynamoDB Local
// reports the iterator expired or trimmed (it does so for an iterator
// taken on a shard that was still empty).
func (f *floorPipeline) readStream(ctx context.Context, streams *dynamodbstreams.Client, client *sqs.Client, arn, url string) {
	var iter *string
	last := ""
	for ctx.Err() == nil {
		if iter == nil {
			var err error
			if iter, err = openShard(ctx, streams, arn, last); err != nil {
				f.failed(ctx, err)
				sleep(ctx, time.Second)
				continue
			}
		}
		out, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
		var (
			expired *streamtypes.ExpiredIteratorException
			trimmed *streamtypes.TrimmedDataAccessException
		)
		switch {
		case errors.As(err, &expired), errors.As(err, &trimmed):
			iter = nil
			sleep(ctx, floorStreamPoll)
			continue
		case err != nil:
			f.failed(ctx, err)
			sleep(ctx, time.Second)
			continue
		}
		iter = out.NextShardIterator
		if len(out.Records) == 0 {
			sleep(ctx, floorStreamPoll)
			continue
		}
		last = aws.ToString(out.Records[len(out.Records)-1].Dynamodb.SequenceNumber)
		for i := 0; i < len(out.Records); i += 10 {
			var entries []sqstypes.SendMessageBatchRequestEntry
			for j, r := range out.Records[i:min(i+10, len(out.Records))] {
				pk := r.Dynamodb.Keys["pk"].(*streamtypes.AttributeValueMemberS).Value
				sk := r.Dynamodb.Keys["sk"].(*streamtypes.AttributeValueMemberN).Value
				entries = append(entries, sqstypes.SendMessageBatchRequestEntry{
					Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(pk + "|" + sk),
					MessageGroupId: aws.String(pk), MessageDeduplicationId: aws.String(pk + "-" + sk),
				})
			}
			if _, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err != nil {
				f.failed(ctx, err)
			}
		}
	}
}

// consume long-polls the queue and writes each message with one PutItem.
func (f *floorPipeline) consume(ctx context.Context, client *sqs.Client, url string) {
	for ctx.Err() == nil {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			f.failed(ctx, err)
			sleep(ctx, time.Second)
			continue
		}
		var done []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			pk, v, _ := strings.Cut(aws.ToString(m.Body), "|")
			_, err := f.ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.views), Item: map[string]dbtypes.AttributeValue{
				"pk": &dbtypes.AttributeValueMemberS{Value: pk}, "version": &dbtypes.AttributeValueMemberN{Value: v}}})
			if err != nil {
				f.failed(ctx, err)
				continue
			}
			done = append(done, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if len(done) > 0 {
			if _, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: done}); err != nil {
				f.failed(ctx, err)
			}
		}
	}
}

// failed counts a failed call, unless the pipeline is stopping.
func (f *floorPipeline) failed(ctx context.Context, err error) {
	if ctx.Err() == nil && f.failures.Add(1) == 1 {
		f.firstErr.Store(err)
	}
}

// lagOf writes the next version of a user in turn and waits for the view
// table to show it.
func (f *floorPipeline) lagOf(ctx context.Context, i int) (time.Duration, error) {
	u := i % len(f.ids)
	v := f.versions[u].Add(1)
	_, err := f.ddb.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(f.events),
		Item: map[string]dbtypes.AttributeValue{
			"pk": &dbtypes.AttributeValueMemberS{Value: f.ids[u]}, "sk": &dbtypes.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)},
		},
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	accepted := time.Now()
	if err != nil {
		return 0, err
	}
	return pollUntil(ctx, accepted, func() (bool, error) {
		out, err := f.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.views),
			Key: map[string]dbtypes.AttributeValue{"pk": &dbtypes.AttributeValueMemberS{Value: f.ids[u]}}})
		if err != nil || out.Item == nil {
			return false, err
		}
		n, _ := out.Item["version"].(*dbtypes.AttributeValueMemberN)
		got, _ := strconv.ParseInt(n.Value, 10, 64)
		return got >= v, nil
	})
}
