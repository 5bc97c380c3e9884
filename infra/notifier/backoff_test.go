package notifier_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
)

// lockedBuffer is a log sink safe for the handler's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBackoffFailureFailsNothing: when SQS refuses to change a failed
// message's visibility (here: a receipt handle it never gave), the batch
// answers as without backoff and the refusal is logged.
func TestBackoffFailureFailsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	client := awstest.SQS(t)
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{})
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	n, err := notifier.New(e.ses, e.ledger, registry, notifier.Config{From: e.from, Lease: lease}, logger, time.Now,
		notifier.WithBackoff(&relay.Backoff{Client: client, QueueURL: q.URL, Log: logger}))
	if err != nil {
		t.Fatal(err)
	}
	bad := events.SQSMessage{MessageId: "m1", Body: "not json", ReceiptHandle: "never-given",
		Attributes: map[string]string{"MessageGroupId": "g1", "ApproximateReceiveCount": "1"}}
	ok := message(t, created(t, "Fine", "fine-"+uuid.NewString()+"@example.com"))
	if failed := handle(t, n, bad, ok); !slices.Equal(failed, []string{"m1"}) {
		t.Errorf("failures %v, want [m1]", failed)
	}
	if !strings.Contains(logs.String(), "back off failed message") {
		t.Errorf("the refused visibility change is not logged:\n%s", logs.String())
	}
}
