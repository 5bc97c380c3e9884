package notifier_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/notifier"
)

// TestMetricsAndFailureLog: a message that is not an event fails, is
// recorded with its error, counts as a DLQ send on its last receive, and
// holds back the next message of its group.
func TestMetricsAndFailureLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	var emf bytes.Buffer
	failures := deadletter.New(e.rm.Client(), e.rm.Table())
	n, err := notifier.New(e.ses, e.ledger, registry, notifier.Config{From: e.from}, slog.New(slog.DiscardHandler), e.clock.now,
		notifier.WithMetrics(metrics.New(&emf, "", "notifier")), notifier.WithFailureLog(failures), notifier.WithMaxReceiveCount(5))
	if err != nil {
		t.Fatal(err)
	}
	attrs := func(receives string) map[string]string {
		return map[string]string{"MessageGroupId": "g", "ApproximateReceiveCount": receives}
	}
	resp, err := n.Handle(t.Context(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "n-bad", Body: "not json", Attributes: attrs("5")},
		{MessageId: "n-held", Body: "{}", Attributes: attrs("1")},
	}})
	if err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("%+v %v", resp, err)
	}
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(emf.Bytes()), &m); err != nil {
		t.Fatal(err)
	}
	if m["Messages"] != 2.0 || m["BatchFailures"] != 2.0 || m["DLQSends"] != 1.0 || m["Function"] != "notifier" {
		t.Errorf("metrics %v", m)
	}
	f, ok, err := failures.Failure(t.Context(), "n-bad")
	if err != nil || !ok || f.Consumer != "notifier" || !strings.Contains(f.Error, "malformed event message") || f.ReceiveCount != 5 {
		t.Errorf("failure %+v %v %v", f, ok, err)
	}
	if f, ok, _ := failures.Failure(t.Context(), "n-held"); !ok || !strings.Contains(f.Error, "n-bad") {
		t.Errorf("held-back failure %+v %v", f, ok)
	}
}
