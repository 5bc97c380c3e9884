// Package notifier sends the welcome email of each new user through SES,
// with an effect of exactly once: the SQS handler of the notifications queue.
//
// Delivery is at least once, so each mail is guarded by a sent-mail record
// in the read-model table (mail#<eventId>): claim it, send, mark it sent. A
// repeat of a sent mail is acknowledged without sending.
//
// Why a lease: a delivery can crash after its claim and before (or after) its
// send. With a claim that never expires the mail would be lost (at most
// once); with no claim two concurrent deliveries could both send. The claim
// is a lease instead: while it lives, other deliveries of the same event
// fail and are retried by the queue later; once it has ended, the next
// delivery takes the claim over and sends. The only duplicate left is a
// crash in the instant between SES accepting the mail and the record being
// marked sent. A welcome mail sent twice in that rare case is better than
// one never sent, so the trade-off is at least once at the edge, exactly
// once in effect otherwise. The lease must outlast a send (the SES call's
// timeout) and be shorter than the queue's visibility timeout times its
// maxReceiveCount, or the message is dead-lettered before the lease ends.
package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// Mailer is the part of *sesv2.Client the notifier uses.
type Mailer interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, optFns ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

var _ Mailer = (*sesv2.Client)(nil)

// Ledger keeps the sent-mail records.
type Ledger interface {
	ClaimMail(ctx context.Context, eventID string, now time.Time, lease time.Duration) (string, error)
	MarkMailSent(ctx context.Context, eventID, token, messageID string, now time.Time) error
	ReleaseMail(ctx context.Context, eventID, token string) error
}

var _ Ledger = (*readmodel.Store)(nil)

// DefaultLease is the lease of a claim when Config leaves it zero.
const DefaultLease = 2 * time.Minute

// Config is what the mail says and where it comes from.
type Config struct {
	From    string        // verified sender address, "Chronicle <hello@example.com>" or bare
	Subject string        // default "Welcome to Chronicle"
	Lease   time.Duration // default DefaultLease
}

// Notifier is the notifications-queue handler. It is safe for concurrent use.
type Notifier struct {
	mailer   Mailer
	ledger   Ledger
	registry *es.Registry
	cfg      Config
	log      *slog.Logger
	now      func() time.Time

	metrics    *metrics.Recorder // nil: none
	failures   FailureLog        // nil: none
	maxReceive int               // the queue's maxReceiveCount; 0: unknown
}

// FailureLog records why a message failed, under its id, for the
// dead-letter tools: *readmodel.Store is one.
type FailureLog interface {
	RecordFailure(ctx context.Context, f readmodel.Failure) error
}

var _ FailureLog = (*readmodel.Store)(nil)

// Option tunes a Notifier.
type Option func(*Notifier)

// WithMetrics makes the notifier write EMF metrics to m after each batch:
// Messages, BatchFailures and DLQSends. Default: none.
func WithMetrics(m *metrics.Recorder) Option { return func(n *Notifier) { n.metrics = m } }

// WithFailureLog makes the notifier record each failed delivery in f, so
// that the dead-letter tools can say why a message failed. Default: only
// the log line.
func WithFailureLog(f FailureLog) Option { return func(n *Notifier) { n.failures = f } }

// WithMaxReceiveCount tells the notifier its queue's maxReceiveCount, so
// that it can tell a failure SQS will dead-letter. Default 0: unknown.
func WithMaxReceiveCount(max int) Option { return func(n *Notifier) { n.maxReceive = max } }

// New returns a notifier sending through mailer and keeping its records in
// ledger. It fails on a config without a sender.
func New(mailer Mailer, ledger Ledger, registry *es.Registry, cfg Config, logger *slog.Logger, now func() time.Time, opts ...Option) (*Notifier, error) {
	if cfg.From == "" {
		return nil, errors.New("notifier: no sender address")
	}
	if cfg.Subject == "" {
		cfg.Subject = "Welcome to Chronicle"
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	n := &Notifier{mailer: mailer, ledger: ledger, registry: registry, cfg: cfg, log: logger, now: now}
	for _, o := range opts {
		o(n)
	}
	return n, nil
}

// Handle sends the welcome mail of each user.created.v1 message and
// acknowledges every other event. A message that fails is reported in
// BatchItemFailures, with the later messages of its group, so that the queue
// retries them in order; per-message failures are never the handler's error.
func (n *Notifier) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	start := n.now()
	var (
		resp   events.SQSEventResponse
		failed = map[string]string{} // message groups with a failed message: its id
		dlq    int
		counts = map[outcome]int{}
		errs   []string
	)
	for _, msg := range ev.Records {
		group := msg.Attributes["MessageGroupId"]
		if group == "" { // a standard queue: no order to keep
			group = "message:" + msg.MessageId
		}
		if first, ok := failed[group]; ok {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
			if n.failed(ctx, msg, fmt.Errorf("not attempted: message %s of the same group failed before it", first)) {
				dlq++
			}
			continue
		}
		out, err := n.handleMessage(ctx, msg)
		if err != nil {
			failed[group] = msg.MessageId
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
			errs = append(errs, fmt.Sprintf("%s: %v", msg.MessageId, err))
			if n.failed(ctx, msg, err) {
				dlq++
			}
			continue
		}
		counts[out]++
	}
	level := slog.LevelInfo
	if len(resp.BatchItemFailures) > 0 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.Int("messages", len(ev.Records)),
		slog.Int("sent", counts[sent]),
		slog.Int("already_sent", counts[alreadySent]),
		slog.Int("ignored", counts[ignored]),
		slog.Int("failures", len(resp.BatchItemFailures)),
		slog.Int64("duration_ms", n.now().Sub(start).Milliseconds()),
	}
	if len(errs) > 0 {
		attrs = append(attrs, slog.Any("errors", errs))
	}
	n.log.LogAttrs(ctx, level, "notifier batch", attrs...)
	n.metrics.Batch(ctx, metrics.Batch{Messages: len(ev.Records), Failures: len(resp.BatchItemFailures),
		DLQSends: dlq, Duration: n.now().Sub(start)})
	return resp, nil
}

// failed reports why msg failed (relay.FailureReport) and whether this was
// its last allowed receive.
func (n *Notifier) failed(ctx context.Context, msg events.SQSMessage, err error) bool {
	return relay.FailureReport{Consumer: "notifier", MaxReceive: n.maxReceive, Log: n.log, Failures: n.failures, Now: n.now}.
		Report(ctx, msg, err)
}

type outcome int

const (
	ignored outcome = iota
	sent
	alreadySent
)

func (n *Notifier) handleMessage(ctx context.Context, msg events.SQSMessage) (outcome, error) {
	rec, err := relay.DecodeMessage(msg.Body)
	if err != nil {
		return 0, fmt.Errorf("message %s: %w", msg.MessageId, err)
	}
	if rec.Type != (user.Created{}).EventType() {
		return ignored, nil
	}
	e, err := n.registry.Decode(rec)
	if err != nil {
		return 0, err
	}
	created, ok := e.(user.Created)
	if !ok {
		return 0, fmt.Errorf("decode %s of %s: got %T", rec.Type, rec.AggregateID, e)
	}
	return n.welcome(ctx, rec, created)
}

// welcome sends the welcome mail of rec: claim, send, mark sent.
func (n *Notifier) welcome(ctx context.Context, rec es.Record, c user.Created) (outcome, error) {
	token, err := n.ledger.ClaimMail(ctx, rec.ID, n.now(), n.cfg.Lease)
	switch {
	case errors.Is(err, readmodel.ErrMailSent):
		return alreadySent, nil
	case err != nil: // ErrMailInFlight included: retried after the visibility timeout
		return 0, err
	}
	out, err := n.mailer.SendEmail(ctx, n.mail(c))
	if err != nil {
		// SES answered no, or did not answer. Releasing the claim lets the
		// retry send at once; if SES did accept the mail, that is the
		// duplicate the package comment accepts. A failed release only
		// makes the retry wait for the lease.
		if rerr := n.ledger.ReleaseMail(ctx, rec.ID, token); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return 0, fmt.Errorf("send welcome mail of %s (event %s): %w", rec.AggregateID, rec.ID, err)
	}
	if err := n.ledger.MarkMailSent(ctx, rec.ID, token, aws.ToString(out.MessageId), n.now()); err != nil {
		// The mail is out. Failing the message would send it again once
		// the lease ends, so it is acknowledged. ErrClaimLost: the lease
		// ended during the send and another delivery took over; it sends
		// too. Otherwise the record stays "sending" until a redelivery of
		// the event, after the lease, sends again.
		n.log.ErrorContext(ctx, "welcome mail sent but not recorded as sent",
			"aggregate_id", rec.AggregateID, "event_id", rec.ID, "err", err)
	}
	return sent, nil
}

func (n *Notifier) mail(c user.Created) *sesv2.SendEmailInput {
	body := fmt.Sprintf("Hello %s,\n\nwelcome to Chronicle. Your account is ready.\n", c.Name)
	return &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(n.cfg.From),
		Destination:      &types.Destination{ToAddresses: []string{c.Email}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String(n.cfg.Subject), Charset: aws.String("UTF-8")},
			Body:    &types.Body{Text: &types.Content{Data: aws.String(body), Charset: aws.String("UTF-8")}},
		}},
	}
}
