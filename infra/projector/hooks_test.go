package projector_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// TestMetricsAndFailureLog: a batch reports its messages, failures, DLQ
// sends and lags as EMF; a failed message is recorded under its id with
// the error, and so is a later message of its group it held back.
func TestMetricsAndFailureLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var emf bytes.Buffer
	failures := deadletter.New(e.views.Client(), e.views.Table())
	p := projector.New(e.events, user.NewRegistry(), e.views, userviews.Projections(), testLogger(t), time.Now,
		projector.WithMetrics(metrics.New(&emf, "", "projector")),
		projector.WithFailureLog(failures), projector.WithMaxReceiveCount(3))

	ok, bad := newID(), newID()
	res, err := e.svc.Execute(ctx, ok, user.Create{Name: "Ada", Email: ok + "@example.com"}, es.ExecOptions{Metadata: es.Metadata{Actor: "admin"}})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := relay.EncodeMessage(res.Records[0])
	// An event of an unknown type fails; the next message of its group is held back.
	unknown := res.Records[0]
	unknown.AggregateID, unknown.ID, unknown.Type = bad, newID(), "user.teleported.v1"
	body1, _ := relay.EncodeMessage(unknown)
	unknown.Version, unknown.ID = 2, newID()
	body2, _ := relay.EncodeMessage(unknown)
	msg := func(id, group, body, receives string) events.SQSMessage {
		return events.SQSMessage{MessageId: id, Body: body,
			Attributes: map[string]string{"MessageGroupId": group, "ApproximateReceiveCount": receives}}
	}
	resp, err := p.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{
		msg("m-ok", ok, good, "1"), msg("m-bad", bad, body1, "3"), msg("m-held", bad, body2, "2"),
	}})
	if err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("handle: %+v %v", resp, err)
	}

	var batch, lag map[string]any
	for _, l := range strings.Split(strings.TrimSpace(emf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		switch {
		case m["Messages"] != nil:
			batch = m
		case m["Projection"] == "user-view":
			lag = m
		}
	}
	if batch["Messages"] != 3.0 || batch["BatchFailures"] != 2.0 || batch["DLQSends"] != 1.0 {
		t.Errorf("batch metrics %v", batch)
	}
	if vals, _ := lag["ProjectionLag"].([]any); len(vals) != 1 || vals[0].(float64) < 0 {
		t.Errorf("lag metrics %v", lag)
	}

	f, found, err := failures.Failure(ctx, "m-bad")
	if err != nil || !found || f.Consumer != "projector" || f.AggregateID != bad || f.ReceiveCount != 3 ||
		!strings.Contains(f.Error, "unknown event type") || f.Failures != 1 {
		t.Errorf("failure of m-bad: %+v %v %v", f, found, err)
	}
	f, found, err = failures.Failure(ctx, "m-held")
	if err != nil || !found || !strings.Contains(f.Error, "m-bad") || f.Version != 2 {
		t.Errorf("failure of m-held: %+v %v %v", f, found, err)
	}
	if _, found, _ := failures.Failure(ctx, "m-ok"); found {
		t.Error("a failure recorded for a message that succeeded")
	}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
