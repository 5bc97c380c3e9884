package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// Stream polling. Lambda polls each shard four times a second; the runner
// a little more often, as nothing else shares the stream's read capacity.
const (
	shardPollInterval = 100 * time.Millisecond
	// shardListInterval is how often the stream's shards are listed again,
	// to find new shards (DynamoDB rolls them over, and splits them).
	shardListInterval = time.Second
	// maxGetRecords is GetRecords' limit per call.
	maxGetRecords = 1000
	// retryBackoff bounds the pause between two attempts at a failed batch.
	retryBackoffMin = 100 * time.Millisecond
	retryBackoffMax = 5 * time.Second
)

// streamPoller runs one DynamoDB stream event source mapping.
type streamPoller struct {
	r   *Runner
	m   streamMapping
	fn  *function
	arn string
	// hashKey is the partition key attribute of the table, by which
	// parallel batches of a shard are split.
	hashKey string

	mu     sync.Mutex
	shards map[string]*shardState
	cp     *checkpoints
}

type shardState struct {
	id, parent string
	done       chan struct{} // closed when the shard is read to its end
}

// pollStream runs m until ctx ends: one reader per shard, each starting
// after its parent shard has been read to its end, so that records of one
// key stay in order across splits and rollovers.
func (r *Runner) pollStream(ctx context.Context, m streamMapping) {
	p := &streamPoller{r: r, m: m, fn: r.functions[m.function], arn: r.res.streamARNs[m.event.Table],
		shards: map[string]*shardState{}}
	for _, t := range r.plan.tables {
		if t.Name == m.event.Table {
			p.hashKey = t.HashKey.Name
		}
	}
	if p.arn == "" {
		r.log.Error("event source mapping has no stream", "function", m.function, "table", m.event.Table)
		return
	}
	cp, err := loadCheckpoints(r.cfg.StateDir, p.arn)
	if err != nil {
		r.log.Error("stream checkpoints: reading the stream from the mapping's starting position", "table", m.event.Table, "error", err)
		cp = &checkpoints{seq: map[string]string{}}
	}
	// A table kept from an earlier run (emulators -data-dir) with queues made
	// afresh: what the mapping had handed on sat in queues that are gone, so
	// its positions no longer say what reached the consumers. The stream is
	// read again from its start; the consumers skip what they had already
	// applied (and the notifier's sent records keep mails single).
	replay := r.res.tablesFound[m.event.Table] && r.res.queuesCreated
	if replay {
		r.log.Info("the queues are new but the table is kept: reading its stream again from the start", "table", m.event.Table)
		if err := cp.reset(); err != nil {
			r.log.Warn("stream checkpoints", "table", m.event.Table, "error", err)
		}
	}
	p.cp = cp
	var readers sync.WaitGroup
	defer readers.Wait()
	first := true
	for {
		shards, err := p.listShards(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("describe stream", "table", m.event.Table, "error", err)
		}
		// Register every new shard before starting any reader, so that a
		// child finds its parent whatever the listing's order.
		var fresh []*shardState
		p.mu.Lock()
		for _, sh := range shards {
			id := aws.ToString(sh.ShardId)
			if _, known := p.shards[id]; !known {
				st := &shardState{id: id, parent: aws.ToString(sh.ParentShardId), done: make(chan struct{})}
				p.shards[id] = st
				fresh = append(fresh, st)
			}
		}
		p.mu.Unlock()
		for _, st := range fresh {
			// Shards there at start-up begin at the mapping's starting
			// position; shards that appear later are read from their start.
			pos := streamtypes.ShardIteratorTypeTrimHorizon
			if first && m.event.StartingPosition == "LATEST" && !replay {
				pos = streamtypes.ShardIteratorTypeLatest
			}
			readers.Go(func() { p.readShard(ctx, st, pos) })
		}
		if err == nil {
			first = false
		}
		if backoff.Sleep(ctx, shardListInterval) != nil {
			return
		}
	}
}

func (p *streamPoller) listShards(ctx context.Context) ([]streamtypes.Shard, error) {
	var out []streamtypes.Shard
	var start *string
	for {
		d, err := p.r.streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(p.arn), ExclusiveStartShardId: start})
		if err != nil {
			return out, err
		}
		out = append(out, d.StreamDescription.Shards...)
		if start = d.StreamDescription.LastEvaluatedShardId; start == nil {
			return out, nil
		}
	}
}

// readShard reads one shard to its end (or until ctx ends), handing its
// records to the function in batches.
func (p *streamPoller) readShard(ctx context.Context, st *shardState, pos streamtypes.ShardIteratorType) {
	defer close(st.done)
	p.mu.Lock()
	parent := p.shards[st.parent]
	p.mu.Unlock()
	if parent != nil {
		select {
		case <-parent.done:
		case <-ctx.Done():
			return
		}
	}
	// After a restart, a shard resumes after the last record the mapping
	// had finished with, as Lambda's mapping does after a crash.
	resume := p.cp.get(st.id)
	var it *string
	var err error
	if resume != "" {
		it, err = p.iterator(ctx, st.id, streamtypes.ShardIteratorTypeAfterSequenceNumber, resume)
		if err != nil && ctx.Err() == nil {
			p.r.log.Warn("resume from checkpoint: reading the shard from its start", "table", p.m.event.Table, "shard", st.id, "error", err)
			resume = ""
		}
	}
	if resume == "" {
		it, err = p.iterator(ctx, st.id, pos, "")
	}
	if err != nil {
		if ctx.Err() == nil {
			p.r.log.Error("shard iterator", "table", p.m.event.Table, "shard", st.id, "error", err)
		}
		return
	}
	ev := p.m.event
	window := time.Duration(ev.MaximumBatchingWindowInSeconds) * time.Second
	// What is read together and handed on at once: a batch for each of the
	// ParallelizationFactor lanes (parallel.go).
	capacity := ev.BatchSize * p.parallelization()
	var (
		batch      []streamtypes.Record
		batchStart time.Time
		last       = resume // sequence number of the last record handed on
	)
	flush := func() {
		if len(batch) > 0 {
			done := p.processLanes(ctx, st.id, batch)
			last = aws.ToString(batch[len(batch)-1].Dynamodb.SequenceNumber)
			batch = nil
			if done {
				if err := p.cp.set(p.arn, st.id, last); err != nil {
					p.r.log.Warn("stream checkpoint", "table", p.m.event.Table, "shard", st.id, "error", err)
				}
			}
		}
	}
	for it != nil {
		if ctx.Err() != nil {
			return
		}
		out, err := p.r.streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it,
			Limit: aws.Int32(int32(min(capacity, maxGetRecords)))})
		var (
			expired *streamtypes.ExpiredIteratorException
			trimmed *streamtypes.TrimmedDataAccessException
		)
		switch {
		case errors.As(err, &expired), errors.As(err, &trimmed):
			// A new iterator from the last record handed on. DynamoDB
			// Local sometimes answers TrimmedDataAccess to an iterator
			// taken on a shard that was still empty.
			pos := streamtypes.ShardIteratorTypeAfterSequenceNumber
			if last == "" {
				pos = streamtypes.ShardIteratorTypeTrimHorizon
			}
			p.r.log.Debug("new shard iterator", "table", ev.Table, "shard", st.id, "error", err)
			if it, err = p.iterator(ctx, st.id, pos, last); err != nil {
				if ctx.Err() == nil {
					p.r.log.Error("shard iterator", "table", ev.Table, "shard", st.id, "error", err)
				}
				return
			}
			if trimmed != nil {
				_ = backoff.Sleep(ctx, shardPollInterval)
			}
			continue
		case err != nil:
			if ctx.Err() == nil {
				p.r.log.Warn("get records", "table", ev.Table, "shard", st.id, "error", err)
				_ = backoff.Sleep(ctx, time.Second)
			}
			continue
		}
		it = out.NextShardIterator
		arrivals(out.Records, time.Now())
		if len(out.Records) > 0 && len(batch) == 0 {
			batchStart = time.Now()
		}
		batch = append(batch, out.Records...)
		for len(batch) >= capacity {
			full := batch[:capacity]
			rest := slices.Clone(batch[capacity:])
			batch = full
			flush()
			batch = rest
			batchStart = time.Now()
		}
		if len(batch) > 0 && (window == 0 || time.Since(batchStart) >= window || it == nil) {
			flush()
		}
		if it == nil {
			return // the shard is closed and read to its end
		}
		if len(out.Records) == 0 || len(batch) > 0 {
			wait := shardPollInterval
			if len(batch) > 0 {
				wait = min(wait, window-time.Since(batchStart))
			}
			_ = backoff.Sleep(ctx, wait)
		}
	}
}

func (p *streamPoller) iterator(ctx context.Context, shard string, pos streamtypes.ShardIteratorType, after string) (*string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(p.arn), ShardId: aws.String(shard), ShardIteratorType: pos}
	if after != "" {
		in.SequenceNumber = aws.String(after)
	}
	out, err := p.r.streams.GetShardIterator(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.ShardIterator, nil
}

// process hands recs to the function as Lambda does: a batch that fails
// (an error, or failed items reported) is retried from its first failed
// record; with BisectBatchOnFunctionError, a batch that failed as a whole
// is split in two and each half retried (splits do not count as retries);
// after MaximumRetryAttempts the records are described to the on-failure
// destination and skipped. Only ctx ending stops it early: records are
// never skipped otherwise. It reports whether it finished with recs.
func (p *streamPoller) process(ctx context.Context, shard string, recs []streamtypes.Record) bool {
	ev := p.m.event
	if out := p.r.cfg.StreamOutage; out != nil && out(p.fn.id, len(recs)) {
		p.r.log.Error("stream records given up (outage)", "function", p.fn.id, "table", ev.Table, "shard", shard, "records", len(recs))
		p.onFailure(ctx, shard, recs, max(ev.MaximumRetryAttempts, 0)+1)
		return true
	}
	pending := [][]streamtypes.Record{recs}
	retries := 0
	for len(pending) > 0 {
		batch := pending[0]
		from, err := p.invoke(ctx, batch)
		if from == len(batch) {
			pending, retries = pending[1:], 0
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		rest := batch[from:]
		if ev.BisectBatchOnFunctionError && err != nil && len(rest) > 1 { // a function error, not failed items
			half := len(rest) / 2
			pending = append([][]streamtypes.Record{rest[:half], rest[half:]}, pending[1:]...)
			continue
		}
		retries++
		if ev.MaximumRetryAttempts >= 0 && retries > ev.MaximumRetryAttempts {
			p.r.log.Error("stream records given up", "function", p.fn.id, "table", ev.Table, "shard", shard,
				"records", len(rest), "attempts", retries, "error", err)
			p.onFailure(ctx, shard, rest, retries)
			pending, retries = pending[1:], 0
			continue
		}
		pending[0] = rest
		_ = backoff.Sleep(ctx, batchRetry.Delay(retries, 0))
	}
	return true
}

// invoke runs the function on batch and returns the index of the first
// record that failed: len(batch) when all succeeded, 0 when the batch
// failed as a whole (an error, or an answer Lambda cannot use).
func (p *streamPoller) invoke(ctx context.Context, batch []streamtypes.Record) (int, error) {
	ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, len(batch))}
	for i, rec := range batch {
		ev.Records[i] = relay.EventRecord(rec, p.arn)
	}
	var resp events.DynamoDBEventResponse
	start := time.Now()
	p.r.inflight.Add(1)
	// Started batches finish even when the runner stops: the function's
	// timeout bounds them.
	awsRequestID, err := p.r.invoke(context.WithoutCancel(ctx), p.fn, ev, &resp)
	p.r.inflight.Done()
	inv := Invocation{Function: p.fn.id, Trigger: triggerStream, Source: p.m.event.Table, Records: len(batch),
		Outcome: outcomeOf(err), Duration: time.Since(start)}
	from := len(batch)
	switch {
	case err != nil:
		from, inv.Failures = 0, len(batch)
	case p.m.event.ReportsBatchItemFailures() && len(resp.BatchItemFailures) > 0:
		from = math.MaxInt
		for _, f := range resp.BatchItemFailures {
			i := slices.IndexFunc(batch, func(r streamtypes.Record) bool {
				return aws.ToString(r.Dynamodb.SequenceNumber) == f.ItemIdentifier
			})
			if i < 0 { // Lambda treats an unknown identifier as a failure of the whole batch
				from, err = 0, fmt.Errorf("batch item failure %q is not a record of the batch", f.ItemIdentifier)
				inv.Outcome = OutcomeInvalid
				break
			}
			from = min(from, i)
		}
		if err == nil {
			inv.Outcome = OutcomePartial
		}
		inv.Failures = len(batch) - from
	}
	p.r.report(ctx, inv, awsRequestID, err)
	return from, err
}

// onFailure describes records given up on to the mapping's on-failure
// destination (an SQS queue), as Lambda does: the batch's place in the
// stream, not the records.
func (p *streamPoller) onFailure(ctx context.Context, shard string, recs []streamtypes.Record, attempts int) {
	dest := p.m.event.OnFailure
	if dest == "" {
		return
	}
	q := p.r.res.queues[dest]
	first, last := recs[0].Dynamodb, recs[len(recs)-1].Dynamodb
	arrival := func(d *streamtypes.StreamRecord) string {
		if d.ApproximateCreationDateTime == nil {
			return ""
		}
		return d.ApproximateCreationDateTime.UTC().Format(time.RFC3339Nano)
	}
	body, _ := json.Marshal(map[string]any{
		"requestContext": map[string]any{
			"requestId": fmt.Sprintf("local-%d", time.Now().UnixNano()), "functionArn": p.fn.arn,
			"condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts,
		},
		"responseContext": map[string]any{"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
		"version":         "1.0",
		"timestamp":       time.Now().UTC().Format(time.RFC3339Nano),
		"DDBStreamBatchInfo": map[string]any{
			"shardId": shard, "startSequenceNumber": aws.ToString(first.SequenceNumber),
			"endSequenceNumber":               aws.ToString(last.SequenceNumber),
			"approximateArrivalOfFirstRecord": arrival(first), "approximateArrivalOfLastRecord": arrival(last),
			"batchSize": len(recs), "streamArn": p.arn,
		},
	})
	_, err := p.r.sqs.SendMessage(context.WithoutCancel(ctx), &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(body))})
	if err != nil {
		p.r.log.Error("on-failure destination", "queue", dest, "error", err)
	}
}

// batchRetry is the pause before the n-th retry of a failed batch:
// doubling from retryBackoffMin to retryBackoffMax.
var batchRetry = backoff.Policy{Base: retryBackoffMin, Cap: retryBackoffMax, Mode: backoff.Exponential}

// arrivals gives records read at now the arrival time DynamoDB would: it
// rounds ApproximateCreationDateTime down to the second, DynamoDB Local to
// the minute, which would put a record up to a minute before its event was
// written (and the OnFailure records' windows, which redrives read the
// feed by, with it). A whole-minute time less than a minute before now is
// taken as DynamoDB Local's (under two minutes before now: a record written
// at 21:06:59.9 and read at 21:07:00.1 says 21:06:00) and replaced by now, to
// the second: the runner reads a shard every 100 ms, so a record read live
// arrived about then. A record read long after it arrived (a restart
// reading a backlog) keeps DynamoDB Local's time.
func arrivals(recs []streamtypes.Record, now time.Time) {
	for i := range recs {
		d := recs[i].Dynamodb
		if d == nil || d.ApproximateCreationDateTime == nil {
			continue
		}
		t := *d.ApproximateCreationDateTime
		if t.Equal(t.Truncate(time.Minute)) && now.Sub(t) >= 0 && now.Sub(t) < 2*time.Minute {
			now := now.Truncate(time.Second)
			d.ApproximateCreationDateTime = &now
		}
	}
}
