package runner

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/chronicle-go/chronicle/infra/template"
)

// keyedRecords are n stream records with sequence numbers 1..n, record i
// on partition key "agg-<i mod keys>".
func keyedRecords(n, keys int) []streamtypes.Record {
	out := make([]streamtypes.Record, n)
	for i := range out {
		out[i] = streamtypes.Record{EventName: streamtypes.OperationTypeInsert,
			Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String(strconv.Itoa(i + 1)),
				Keys: map[string]streamtypes.AttributeValue{
					"pk": &streamtypes.AttributeValueMemberS{Value: fmt.Sprintf("agg-%d", i%keys)},
					"sk": &streamtypes.AttributeValueMemberN{Value: strconv.Itoa(i/keys + 1)},
				}}}
	}
	return out
}

// TestParallelBatchesKeepKeyOrder: with ParallelizationFactor 4 a shard's
// records are handed on in up to four batches at once, each of at most
// BatchSize, every record once, and the records of one partition key in
// the shard's order; with 1, one batch at a time.
func TestParallelBatchesKeepKeyOrder(t *testing.T) {
	for _, factor := range []int{1, 4} {
		t.Run(fmt.Sprintf("factor %d", factor), func(t *testing.T) {
			var (
				mu       sync.Mutex
				lastSeq  = map[string]int{}
				seen     = map[string]int{}
				inFlight atomic.Int32
				peak     atomic.Int32
				// full closes when factor batches are in flight at once. The
				// first batches wait for it (or give up after a while), so the
				// overlap does not depend on how a loaded machine schedules
				// the lanes: a runner that serialises them still fails.
				full     = make(chan struct{})
				fullOnce sync.Once
			)
			p := streamPollerWith(testRunner(), template.StreamEvent{BatchSize: 10, MaximumRetryAttempts: 1, ParallelizationFactor: factor},
				func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
					n := inFlight.Add(1)
					defer inFlight.Add(-1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					if int(n) >= factor {
						fullOnce.Do(func() { close(full) })
					}
					select {
					case <-full:
					case <-time.After(10 * time.Second):
						fullOnce.Do(func() { close(full) }) // no overlap: the peak check fails
					}
					if len(ev.Records) > 10 {
						t.Errorf("batch of %d records, BatchSize 10", len(ev.Records))
					}
					mu.Lock()
					for _, r := range ev.Records {
						key := r.Change.Keys["pk"].String()
						seq, _ := strconv.Atoi(r.Change.SequenceNumber)
						if seq <= lastSeq[key] {
							t.Errorf("%s: record %d after %d", key, seq, lastSeq[key])
						}
						lastSeq[key] = seq
						seen[r.Change.SequenceNumber]++
					}
					mu.Unlock()
					return events.DynamoDBEventResponse{}, nil
				})
			p.hashKey = "pk"
			recs := keyedRecords(400, 37)
			if !p.processLanes(t.Context(), "shard", recs) {
				t.Fatal("not finished")
			}
			for _, r := range recs {
				if n := seen[aws.ToString(r.Dynamodb.SequenceNumber)]; n != 1 {
					t.Errorf("record %s handed on %d times", aws.ToString(r.Dynamodb.SequenceNumber), n)
				}
			}
			if got := int(peak.Load()); got != factor {
				t.Errorf("at most %d batches in flight, want %d", got, factor)
			}
		})
	}
}
