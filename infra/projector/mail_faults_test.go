package projector_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
)

// mailQueue is the notifier's part of a fault scenario: the notifications
// queue (user.created.v1 only, as template.yaml routes it), the notifier
// sending through moto's SES from an address of its own, and the checks:
// one welcome mail per user, each recorded as sent, nothing dead-lettered.
type mailQueue struct {
	q    *relaytest.Queue
	ses  *sesv2.Client
	cfg  aws.Config
	from string
}

func newMailQueue(t *testing.T, client *sqs.Client) *mailQueue {
	t.Helper()
	m := &mailQueue{
		q:    relaytest.FIFOQueue(t, client, relaytest.QueueOptions{VisibilityTimeout: faultVisibility, MaxReceiveCount: faultMaxReceives}),
		ses:  sesv2.NewFromConfig(awstest.Config(t)),
		cfg:  awstest.Config(t),
		from: "hello-" + uuid.NewString() + "@chronicle.example.com",
	}
	if _, err := m.ses.CreateEmailIdentity(t.Context(), &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(m.from)}); err != nil {
		t.Fatalf("create email identity: %v", err)
	}
	return m
}

// drive runs the notifier on the queue until the relay is done and the
// queue is empty. Its ledger writes go through ledger's client, SES's
// through a plain one: SES has no idempotency key, so a lost reply there
// is a second mail by construction, which is the notifier's crash policy's
// business, not this fault's.
func (m *mailQueue) drive(ctx context.Context, in *faults.Injector, client faults.QueueClient, ledger *notifier.Mails, failures *deadletter.Store,
	sesIAM func(*sesv2.Options), logger *slog.Logger, progress *atomic.Int64, relayDone <-chan struct{}) (faults.QueueStats, error) {
	// The notifier's own SES client (m.ses is the test's), with sesIAM.
	ses := sesv2.NewFromConfig(m.cfg, sesIAM)
	n, err := notifier.New(ses, ledger, user.NewRegistry(), notifier.Config{From: "Chronicle <" + m.from + ">"},
		logger, time.Now, notifier.WithMaxReceiveCount(faultMaxReceives), notifier.WithFailureLog(failures))
	if err != nil {
		return faults.QueueStats{}, err
	}
	return faults.DriveQueue(ctx, in, client, countAcked(n.Handle, progress), faults.QueueOptions{
		URL: m.q.URL, ARN: m.q.ARN, Visibility: faultVisibility, Pollers: 2,
		Done: func(context.Context) (bool, error) {
			select {
			case <-relayDone:
				return true, nil
			default:
				return false, nil
			}
		},
	})
}

// check: each user got one welcome mail, at the address it was created
// with, and its created event's mail record says sent; the dead-letter
// queue is empty.
func (m *mailQueue) check(t *testing.T, w *faultWorld, ledger *notifier.Mails) {
	t.Helper()
	ctx := t.Context()
	if n, err := depth(ctx, awstest.SQS(t), m.q.DLQ); err != nil || n != 0 {
		t.Errorf("the notifier's dead-letter queue holds %d messages (%v), want none", n, err)
	}
	sent := mailsFrom(t, m.from)
	created := map[string]string{} // aggregate id: its created event's id
	for id, r := range w.events {
		if r.Version == 1 {
			created[r.AggregateID] = id
		}
	}
	wrong := 0
	for _, u := range w.users {
		addr := "a-" + u.id + "@example.com"
		mm, ok, err := ledger.Mail(ctx, created[u.id])
		if n := sent[addr]; n != 1 || err != nil || !ok || mm.State != notifier.MailSent {
			if wrong++; wrong <= 5 {
				t.Errorf("user %s: %d welcome mails to %s, record %+v (found %v, %v); want one, recorded as sent", u.id, n, addr, mm, ok, err)
			}
		}
	}
	if total := len(w.users); len(sent) != total {
		t.Errorf("mails went to %d addresses, want %d", len(sent), total)
	}
	if wrong > 5 {
		t.Errorf("... %d users in all", wrong)
	}
}

// mailsFrom counts, per recipient, the mails moto's SES holds from the
// sender from.
func mailsFrom(t *testing.T, from string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range awstest.SentMails(t) {
		if !strings.Contains(m.Source, from) {
			continue
		}
		for _, to := range m.To {
			out[to]++
		}
	}
	return out
}
