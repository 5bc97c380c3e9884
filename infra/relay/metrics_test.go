package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// acceptAll is an SQS that takes every message.
type acceptAll struct{}

func (acceptAll) SendMessageBatch(_ context.Context, _ *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return &sqs.SendMessageBatchOutput{}, nil
}

// TestRelayMetrics: a batch writes Messages and BatchFailures, and the lag
// of each event sent.
func TestRelayMetrics(t *testing.T) {
	t.Parallel()
	var emf bytes.Buffer
	r := relay.New(acceptAll{}, relay.Routes{"*": {"https://q/1"}}, testLogger(t), time.Now, relay.WithMetrics(metrics.New(&emf, "", "relay")))
	var ev events.DynamoDBEvent
	for i, rec := range userRecords(uuid.NewString(), 3, "user.renamed.v1") {
		rec.OccurredAt = time.Now().Add(-2 * time.Second)
		ev.Records = append(ev.Records, streamRecord(t, rec, i+1))
	}
	if resp, err := r.Handle(t.Context(), ev); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%+v %v", resp, err)
	}
	ls := strings.Split(strings.TrimSpace(emf.String()), "\n")
	if len(ls) != 2 {
		t.Fatalf("lines %q", ls)
	}
	var batch, lag map[string]any
	_ = json.Unmarshal([]byte(ls[0]), &batch)
	_ = json.Unmarshal([]byte(ls[1]), &lag)
	if batch["Messages"] != 3.0 || batch["BatchFailures"] != 0.0 || batch["Function"] != "relay" {
		t.Errorf("batch %v", batch)
	}
	vals, _ := lag["RelayLag"].([]any)
	if len(vals) != 3 || vals[0].(float64) < 2000 {
		t.Errorf("lag %v", lag)
	}
}
