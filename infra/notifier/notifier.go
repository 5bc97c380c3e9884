// Package notifier sends the welcome email of each new user through SES:
// the SQS handler of the notifications queue.
//
// Delivery is at least once and SES has no idempotency key, so each mail is
// guarded by a sent-mail record in the read-model table (mail#<eventId>,
// see MailState): claim it, send, mark it sent. A repeat of a sent
// mail is acknowledged without sending.
//
// The policy: never two mails; a mail sent automatically exactly once,
// unless a crash or an unanswered send leaves it in doubt, where it is held
// for an operator rather than sent again.
//
//   - A claim is a lease that outlasts its delivery (the invocation's
//     deadline plus a margin), so that two deliveries never send at once.
//   - SES refused the mail before accepting it (any 4xx: throttled,
//     rejected, sending paused; or the connection never opened): the claim
//     is released and the queue retries; the mail is certainly not out.
//   - SES's answer is unknown (a 5xx, a timeout, a connection lost after
//     the request went out): the mail may be out. It is marked unknown,
//     logged ("welcome mail in doubt") and counted (MailsInDoubt), and the
//     message is acknowledged: nothing sends it again automatically.
//   - The delivery died between its claim and its mark (a crash, a kill, a
//     timeout): the next delivery finds the claim expired and marks it
//     unknown in the same way. A claim expired but never attempted looks the
//     same from outside (the claim and the send are microseconds apart).
//   - An operator settles each mail in doubt with its evidence (SES's
//     sending records, the recipient): chronicle mail list, then chronicle
//     mail resolve <event-id> --sent, or --resend, which sends it again.
//
// The SES client must not retry on its own either where the first attempt
// may have been accepted: SendRetryer retries only throttling and
// connections that never opened.
package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/tracing"
)

// Mailer is the part of *sesv2.Client the notifier uses.
type Mailer interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, optFns ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

var _ Mailer = (*sesv2.Client)(nil)

// Ledger keeps the sent-mail records.
type Ledger interface {
	ClaimMail(ctx context.Context, eventID, aggregateID string, now time.Time, lease time.Duration) (string, error)
	MarkMailSent(ctx context.Context, eventID, token, messageID string, now time.Time) error
	ReleaseMail(ctx context.Context, eventID, token string) error
	MarkMailUnknown(ctx context.Context, eventID, token, reason string, now time.Time) error
}

var _ Ledger = (*Mails)(nil)

// DefaultLease is the lease of a claim made without a deadline in its
// context (never in Lambda) when Config leaves it zero.
const DefaultLease = time.Minute

// LeaseMargin is added to the time left to an invocation to make its
// claims' lease: the clocks of two Lambda hosts may differ a little.
const LeaseMargin = 2 * time.Second

// SendBudget is the least time left to an invocation for it to claim and
// send a mail: with less, the message is failed before the claim and
// retried, rather than cut short mid-send (which would put it in doubt).
const SendBudget = time.Second

// Config is what the mail says and where it comes from.
type Config struct {
	From    string        // verified sender address, "Chronicle <hello@example.com>" or bare
	Subject string        // default "Welcome to Chronicle"
	Lease   time.Duration // of a claim when the context has no deadline; default DefaultLease
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
	backoff    *relay.Backoff    // nil: failed messages wait the visibility timeout
	// open opens the personal fields of a message's event (sealed, as the
	// events table holds them); nil: none are sealed.
	open func(ctx context.Context, recs []es.Record) error
	warm func(ctx context.Context, recs []es.Record) error // nil: none (WithWarmer)
}

// FailureLog records why a message failed, under its id, for the
// dead-letter tools: *deadletter.Store is one.
type FailureLog = deadletter.Recorder

var _ FailureLog = (*deadletter.Store)(nil)

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

// WithBackoff makes the notifier shorten the visibility of the messages it
// reports failed (relay.Backoff), so that they come back within seconds.
// Default: none.
func WithBackoff(b *relay.Backoff) Option { return func(n *Notifier) { n.backoff = b } }

// WithOpener makes the notifier open the address of a user.created event
// with open (pii.Cipher.Open) before it mails it. A user forgotten before
// its welcome mail went has no address any more: the mail is not sent.
func WithOpener(open func(ctx context.Context, recs []es.Record) error) Option {
	return func(n *Notifier) { n.open = open }
}

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
// Failed messages come back after a short backoff when WithBackoff is set.
func (n *Notifier) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	start := n.now()
	var (
		resp   events.SQSEventResponse
		failed = map[string]string{} // message groups with a failed message: its id
		dlq    int
		counts = map[outcome]int{}
		errs   []string
	)
	n.warmKeys(ctx, ev.Records)
	for i, msg := range ev.Records {
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
		mctx, span := tracing.StartMessages(ctx, "notify", ev.Records, []int{i})
		out, err := n.handleMessage(mctx, msg)
		tracing.End(span, err)
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
		slog.Int("in_doubt", counts[inDoubt]),
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
	if counts[inDoubt] > 0 {
		n.metrics.Emit(ctx, nil, nil, metrics.Metric{Name: "MailsInDoubt", Unit: metrics.Count, Value: float64(counts[inDoubt])})
	}
	n.backoff.Apply(ctx, ev, resp)
	return resp, nil
}

// failed reports why msg failed (deadletter.Report) and whether this was
// its last allowed receive.
func (n *Notifier) failed(ctx context.Context, msg events.SQSMessage, err error) bool {
	return deadletter.Report{Consumer: "notifier", MaxReceive: n.maxReceive, Log: n.log, Failures: n.failures, Now: n.now}.
		Report(ctx, msg, err)
}

type outcome int

const (
	ignored outcome = iota
	sent
	alreadySent
	inDoubt // held for an operator: acknowledged, not sent
)

func (n *Notifier) handleMessage(ctx context.Context, msg events.SQSMessage) (outcome, error) {
	rec, err := relay.DecodeMessage(msg.Body)
	if err != nil {
		return 0, fmt.Errorf("message %s: %w", msg.MessageId, err)
	}
	if rec.Type != (user.Created{}).EventType() {
		return ignored, nil
	}
	if n.open != nil {
		one := []es.Record{rec}
		if err := n.open(ctx, one); err != nil {
			return 0, err
		}
		rec = one[0]
	}
	e, err := n.registry.Decode(rec)
	if err != nil {
		return 0, err
	}
	created, ok := e.(user.Created)
	if !ok {
		return 0, fmt.Errorf("decode %s of %s: got %T", rec.Type, rec.AggregateID, e)
	}
	if created.Email == "" {
		// Forgotten before its welcome mail went: nobody to write to.
		return ignored, nil
	}
	return n.welcome(ctx, rec, created)
}

// welcome sends the welcome mail of rec: claim, send, mark sent.
func (n *Notifier) welcome(ctx context.Context, rec es.Record, c user.Created) (outcome, error) {
	lease := n.cfg.Lease
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if left < SendBudget {
			return 0, fmt.Errorf("welcome mail of %s (event %s) not attempted: %s left to the invocation", rec.AggregateID, rec.ID, left.Round(time.Millisecond))
		}
		lease = left + LeaseMargin
	}
	token, err := n.ledger.ClaimMail(ctx, rec.ID, rec.AggregateID, n.now(), lease)
	switch {
	case errors.Is(err, ErrMailSent):
		return alreadySent, nil
	case errors.Is(err, ErrMailInDoubt):
		n.doubt(ctx, rec, err)
		return inDoubt, nil
	case err != nil: // ErrMailInFlight included: retried after the visibility timeout
		return 0, err
	}
	out, err := n.mailer.SendEmail(ctx, n.mail(c))
	if err != nil {
		err = fmt.Errorf("send welcome mail of %s (event %s): %w", rec.AggregateID, rec.ID, scrubbed{err, c.Email})
		if NotSent(err) {
			// SES answered no before accepting: the retry may send.
			if rerr := n.ledger.ReleaseMail(ctx, rec.ID, token); rerr != nil {
				// The claim stays until its lease ends; the retry then
				// finds it expired and holds the mail in doubt.
				err = errors.Join(err, rerr)
			}
			return 0, err
		}
		// SES may have accepted it: hold it for an operator.
		if merr := n.ledger.MarkMailUnknown(context.WithoutCancel(ctx), rec.ID, token, err.Error(), n.now()); merr != nil {
			// The redelivery finds the claim expired: in doubt all the same.
			return 0, errors.Join(err, merr)
		}
		n.doubt(ctx, rec, err)
		return inDoubt, nil
	}
	msgID := aws.ToString(out.MessageId)
	// The mail is out: record it even if the invocation's time is up.
	if err := n.ledger.MarkMailSent(context.WithoutCancel(ctx), rec.ID, token, msgID, n.now()); err != nil {
		// Failing the message would only make its redelivery find the
		// claim expired and hold the mail in doubt; acknowledging it keeps
		// the one mail. The log line has SES's id, the operator's evidence
		// should the event come again.
		n.log.ErrorContext(ctx, "welcome mail sent but not recorded as sent",
			"aggregate_id", rec.AggregateID, "event_id", rec.ID, "ses_message_id", msgID, "err", err)
	}
	return sent, nil
}

// doubt reports a mail held for an operator.
func (n *Notifier) doubt(ctx context.Context, rec es.Record, err error) {
	n.log.ErrorContext(ctx, "welcome mail in doubt: held for an operator (chronicle mail list)",
		"aggregate_id", rec.AggregateID, "event_id", rec.ID, "err", err)
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

// scrubbed is an error with the recipient's address taken out of its
// message: an SES error may name it, and the error goes to the logs and
// to the mail ledger, which hold no personal data.
type scrubbed struct {
	err  error
	addr string
}

func (e scrubbed) Error() string {
	if e.addr == "" {
		return e.err.Error()
	}
	return strings.ReplaceAll(e.err.Error(), e.addr, "<recipient>")
}

func (e scrubbed) Unwrap() error { return e.err }
