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
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/template"
)

// TestQueueConcurrencyFollowsTheMapping: the batches of a queue mapping in
// flight at once are its MaximumConcurrency (five without one), never more
// than the function's reserved concurrency.
func TestQueueConcurrencyFollowsTheMapping(t *testing.T) {
	r := testRunner(&function{id: "Fn"}, &function{id: "Capped", reserved: 3})
	for _, c := range []struct {
		fn   string
		max  int
		want int
	}{{"Fn", 0, 5}, {"Fn", 2, 2}, {"Fn", 50, 50}, {"Capped", 50, 3}, {"Capped", 2, 2}} {
		m := queueMapping{function: c.fn, event: template.QueueEvent{MaximumConcurrency: c.max}}
		if got := r.concurrency(m); got != c.want {
			t.Errorf("%s with MaximumConcurrency %d: %d batches, want %d", c.fn, c.max, got, c.want)
		}
	}
}

// TestFIFOBatchesInParallel: on a FIFO queue with many message groups the
// mapping runs several batches at once, at most MaximumConcurrency, and
// never two batches holding the same group; with one group, one batch at
// a time.
func TestFIFOBatchesInParallel(t *testing.T) {
	for _, c := range []struct {
		groups, max, want int
	}{{40, 4, 4}, {1, 4, 1}} { // want: the most batches at once allowed
		t.Run(fmt.Sprintf("%d groups", c.groups), func(t *testing.T) {
			r := testRunner()
			r.sqs = awstest.SQS(t)
			ctx := t.Context()
			out, err := r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.TableName("fifo") + ".fifo"),
				Attributes: map[string]string{"FifoQueue": "true", "VisibilityTimeout": "30"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = r.sqs.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
			const total = 40
			for chunk := 0; chunk < total; chunk += 10 {
				var entries []sqstypes.SendMessageBatchRequestEntry
				for i := chunk; i < chunk+10; i++ {
					g := strconv.Itoa(i % c.groups)
					entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)),
						MessageBody: aws.String(g + ":" + strconv.Itoa(i)), MessageGroupId: aws.String(g), MessageDeduplicationId: aws.String(strconv.Itoa(i))})
				}
				if _, err := r.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: out.QueueUrl, Entries: entries}); err != nil {
					t.Fatal(err)
				}
			}
			r.res = &resources{queues: map[string]queueInfo{"Q": {name: "fifo", url: aws.ToString(out.QueueUrl), arn: "arn:aws:sqs:us-east-1:123456789012:fifo"}}}
			r.plan = &plan{queues: []template.Queue{{Name: "Q", FIFO: true, VisibilityTimeout: 30}}}

			var (
				mu       sync.Mutex
				holding  = map[string]bool{} // groups of the batches in flight
				lastOf   = map[string]int{}
				handled  atomic.Int32
				inFlight atomic.Int32
				peak     atomic.Int32
			)
			fn := &function{id: "Fn", timeout: 5 * time.Second, handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				groups := map[string]bool{}
				mu.Lock()
				for _, m := range ev.Records {
					g := m.Attributes["MessageGroupId"]
					if holding[g] {
						t.Errorf("group %s in two batches at once", g)
					}
					groups[g] = true
					var i int
					fmt.Sscanf(m.Body[len(g)+1:], "%d", &i)
					if last, ok := lastOf[g]; ok && i <= last {
						t.Errorf("group %s: message %d after %d", g, i, last)
					}
					lastOf[g] = i
				}
				for g := range groups {
					holding[g] = true
				}
				mu.Unlock()
				time.Sleep(time.Second) // far longer than a receive, even on a loaded machine
				mu.Lock()
				for g := range groups {
					holding[g] = false
				}
				mu.Unlock()
				handled.Add(int32(len(ev.Records)))
				return events.SQSEventResponse{}, nil
			}}
			r.functions = map[string]*function{"Fn": fn}
			pctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.pollQueue(pctx, queueMapping{function: "Fn", event: template.QueueEvent{Queue: "Q", BatchSize: 10, MaximumConcurrency: c.max}})
			}()
			deadline := time.Now().Add(30 * time.Second)
			for handled.Load() < total && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			<-done
			if got := handled.Load(); got != total {
				t.Fatalf("%d of %d messages handled within 30 s", got, total)
			}
			// The exact peak depends on how fast moto answers the
			// pollers' receives; more than the mapping allows, or one
			// batch at a time with groups to spare, is wrong.
			switch got := int(peak.Load()); {
			case got > c.want:
				t.Errorf("%d batches at once, more than the %d allowed", got, c.want)
			case c.want > 1 && got < 2:
				t.Errorf("one batch at a time with %d groups and MaximumConcurrency %d", c.groups, c.max)
			default:
				t.Logf("at most %d batches at once (MaximumConcurrency %d, %d groups)", got, c.max, c.groups)
			}
		})
	}
}
