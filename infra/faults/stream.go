package faults

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-lambda-go/events"
)

// StreamHandler is a DynamoDB Streams handler: (*relay.Relay).Handle.
type StreamHandler func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

// StreamOptions shape DriveStream.
type StreamOptions struct {
	// BatchSize is the records per invocation (default 100, as template.yaml).
	BatchSize int
	// MaxRetries bounds the retries of one batch (default 10, the
	// template's MaximumRetryAttempts). Past it Lambda would hand the batch
	// to the on-failure destination and move on: DriveStream fails instead.
	MaxRetries int
	// Redeliver, per batch that succeeded, hands it to the handler once
	// more: stream delivery is at least once.
	Redeliver float64
	// Crash, per invocation, makes the handler process part of the batch
	// and then die (a panic, or an error return), so that Lambda retries
	// the batch, bisected (BisectBatchOnFunctionError).
	Crash float64
	// Before, when set, runs before each invocation; an error ends the
	// drive. A test can hold the stream back there: moto's queues get
	// slower the more messages they hold (each receive scans the queue once
	// per message received), which real SQS does not.
	Before func(context.Context) error
}

// StreamStats count what DriveStream did.
type StreamStats struct {
	Relayed      int // records handled for good
	Invocations  int
	Retries      int // invocations of a batch that had failed, partly or wholly
	Crashes      int
	Redeliveries int
}

// errCrash is the panic value of an injected crash.
var errCrash = errors.New("injected crash half-way through the batch")

// DriveStream hands records to handle as Lambda's stream event source
// mapping with ReportBatchItemFailures does: in order, BatchSize at a time;
// a batch whose response lists failed records is retried from the first
// of them; a batch whose invocation fails (panics or returns an error) is
// retried bisected. A handler error that is not an injected crash ends the
// drive: the handlers of this service never return one.
func DriveStream(ctx context.Context, in *Injector, records []events.DynamoDBEventRecord, handle StreamHandler, opts StreamOptions) (StreamStats, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 10
	}
	var st StreamStats
	pos, size, retries := 0, opts.BatchSize, 0
	for pos < len(records) {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if opts.Before != nil {
			if err := opts.Before(ctx); err != nil {
				return st, err
			}
		}
		batch := events.DynamoDBEvent{Records: records[pos:min(pos+size, len(records))]}
		st.Invocations++
		if retries > 0 {
			st.Retries++
		}
		resp, err := invokeStream(ctx, in, handle, batch, opts.Crash)
		switch {
		case errors.Is(err, errCrash):
			st.Crashes++
			size = max(1, len(batch.Records)/2)
		case err != nil:
			return st, fmt.Errorf("stream handler: %w", err)
		case len(resp.BatchItemFailures) > 0:
			first := slices.IndexFunc(batch.Records, func(r events.DynamoDBEventRecord) bool {
				return r.Change.SequenceNumber == resp.BatchItemFailures[0].ItemIdentifier
			})
			if first < 0 {
				return st, fmt.Errorf("stream handler reported unknown record %q", resp.BatchItemFailures[0].ItemIdentifier)
			}
			pos += first
			st.Relayed = pos
			if first > 0 {
				retries = 0
			}
		default:
			if in.Strike("stream.redeliver", opts.Redeliver) {
				st.Redeliveries++
				continue // the same batch again
			}
			pos += len(batch.Records)
			st.Relayed = pos
			size, retries = opts.BatchSize, 0
			continue
		}
		if retries++; retries > opts.MaxRetries {
			return st, fmt.Errorf("stream records from %s failed %d times: Lambda would give them up to the on-failure destination",
				records[pos].Change.SequenceNumber, retries)
		}
	}
	return st, nil
}

// invokeStream is one invocation, which may crash after handing the
// handler part of the batch.
func invokeStream(ctx context.Context, in *Injector, handle StreamHandler, ev events.DynamoDBEvent, crash float64) (resp events.DynamoDBEventResponse, err error) {
	if len(ev.Records) < 2 || !in.Strike("stream.crash", crash) {
		return handle(ctx, ev)
	}
	return crashAfter(in, len(ev.Records), func(k int) error {
		_, err := handle(ctx, events.DynamoDBEvent{Records: ev.Records[:k]})
		return err
	}, resp)
}

// crashAfter runs part, the processing of the first k of n records (1 <=
// k < n), then dies: half the time with a panic, which it recovers as the
// Lambda runtime does, half the time with an error return.
func crashAfter[R any](in *Injector, n int, part func(k int) error, zero R) (resp R, err error) {
	k := 1 + in.IntN(n-1)
	if in.IntN(2) == 0 {
		defer func() {
			if v := recover(); v != nil {
				if v != errCrash {
					panic(v)
				}
				err = errCrash
			}
		}()
		if err := part(k); err != nil {
			return zero, err
		}
		panic(errCrash)
	}
	if err := part(k); err != nil {
		return zero, err
	}
	return zero, errCrash
}
