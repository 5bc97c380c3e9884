package notifier_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/notifier"
)

// The crash tests stop a delivery at each step of the notifier as a killed
// process stops: runtime.Goexit ends the invocation's goroutine where it
// stands, so nothing after the step runs (no release, no mark, no answer
// to the queue). The queue then redelivers the message after its
// visibility timeout (the test clock moves past the claim's lease).

// step is where a delivery dies.
type step int

const (
	beforeClaim step = iota
	afterClaim       // claimed, SES not called
	afterSend        // SES accepted the mail, not marked sent
	afterMark        // marked sent, the message not deleted: the queue redelivers it
)

func (s step) String() string {
	return [...]string{"before the claim", "after the claim, before the send", "after the send, before the mark",
		"after the mark, before the delete"}[s]
}

// dying wraps the ledger and the mailer, and ends the goroutine at its step.
type dying struct {
	ledger notifier.Ledger
	mailer notifier.Mailer
	at     atomic.Int64 // step+1 to die at; 0: live
}

func (d *dying) die(s step) {
	if d.at.CompareAndSwap(int64(s)+1, 0) {
		runtime.Goexit()
	}
}

func (d *dying) ClaimMail(ctx context.Context, eventID, aggregateID string, now time.Time, lease time.Duration) (string, error) {
	d.die(beforeClaim)
	return d.ledger.ClaimMail(ctx, eventID, aggregateID, now, lease)
}

func (d *dying) MarkMailSent(ctx context.Context, eventID, token, messageID string, now time.Time) error {
	d.die(afterSend)
	return d.ledger.MarkMailSent(ctx, eventID, token, messageID, now)
}

func (d *dying) ReleaseMail(ctx context.Context, eventID, token string) error {
	return d.ledger.ReleaseMail(ctx, eventID, token)
}

func (d *dying) MarkMailUnknown(ctx context.Context, eventID, token, reason string, now time.Time) error {
	return d.ledger.MarkMailUnknown(ctx, eventID, token, reason, now)
}

func (d *dying) SendEmail(ctx context.Context, in *sesv2.SendEmailInput, o ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	d.die(afterClaim)
	return d.mailer.SendEmail(ctx, in, o...)
}

// invocationTimeout is the deadline of a test's invocation: longer than
// template.yaml's (5 s), for the emulators on a loaded machine; the claim's
// lease follows it. visibility is the notifications queue's visibility
// timeout (template.yaml's 20 s), longer than any such lease.
const (
	invocationTimeout = 10 * time.Second
	visibility        = 20 * time.Second
)

// deliver runs one invocation on msg with Lambda's deadline, and reports
// whether it answered (false: it died) and the failed message ids.
func deliver(t *testing.T, n *notifier.Notifier, msg events.SQSMessage) (answered bool, failed []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), invocationTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := n.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{msg}})
		if err != nil {
			t.Errorf("Handle: %v", err)
		}
		answered = true
		for _, f := range resp.BatchItemFailures {
			failed = append(failed, f.ItemIdentifier)
		}
	}()
	<-done
	return answered, failed
}

// TestCrashAtEveryStep: a delivery dies at each step; the redelivery (and,
// where the policy says so, the operator) ends with exactly one mail, and
// never two.
func TestCrashAtEveryStep(t *testing.T) {
	t.Parallel()
	for _, at := range []step{beforeClaim, afterClaim, afterSend, afterMark} {
		t.Run(at.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, true)
			d := &dying{ledger: e.ledger, mailer: e.ses}
			n, err := notifier.New(d, d, registry, notifier.Config{From: e.from},
				slog.New(slog.NewJSONHandler(testWriter{t}, nil)), e.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			to := "crash-" + uuid.NewString() + "@example.com"
			rec := created(t, "Crash", to)
			msg := message(t, rec)

			if at != afterMark {
				d.at.Store(int64(at) + 1)
			}
			answered, failed := deliver(t, n, msg)
			if answered != (at == afterMark) || len(failed) > 0 {
				t.Fatalf("first delivery: answered %v, failures %v", answered, failed)
			}
			wantAfterCrash := map[step]int{beforeClaim: 0, afterClaim: 0, afterSend: 1, afterMark: 1}[at]
			if got := len(mailsTo(t, to)); got != wantAfterCrash {
				t.Fatalf("%d mails after the crash, want %d", got, wantAfterCrash)
			}

			// A redelivery while the dead delivery's lease would still run
			// (a duplicate delivered at once) never sends.
			if at == afterClaim || at == afterSend {
				if _, failed := deliver(t, n, msg); len(failed) != 1 {
					t.Errorf("redelivery during the lease: failures %v, want the message (retried later)", failed)
				}
			}

			// The queue redelivers after its visibility timeout.
			e.clock.add(visibility)
			answered, failed = deliver(t, n, msg)
			if !answered || len(failed) > 0 {
				t.Fatalf("redelivery: answered %v, failures %v", answered, failed)
			}
			m, _, err := e.ledger.Mail(t.Context(), rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			mails := len(mailsTo(t, to))
			switch at {
			case beforeClaim, afterMark:
				// Nothing was in doubt: the redelivery sends, or knows it was sent.
				if mails != 1 || m.State != notifier.MailSent {
					t.Fatalf("after the redelivery: %d mails, record %+v; want 1, sent", mails, m)
				}
				return
			case afterClaim, afterSend:
				// In doubt: held for an operator, not sent again.
				if mails != wantAfterCrash || m.State != notifier.MailUnknown || m.AggregateID != rec.AggregateID {
					t.Fatalf("after the redelivery: %d mails, record %+v; want %d, unknown", mails, m, wantAfterCrash)
				}
			}
			doubts, err := e.ledger.MailsInDoubt(t.Context())
			if err != nil || len(doubts) != 1 || doubts[0].EventID != rec.ID {
				t.Fatalf("mails in doubt: %+v, %v", doubts, err)
			}
			// Further redeliveries (a redrive, a late duplicate) do not send.
			if _, failed := deliver(t, n, msg); len(failed) > 0 || len(mailsTo(t, to)) != wantAfterCrash {
				t.Fatalf("another redelivery: failures %v, %d mails", failed, len(mailsTo(t, to)))
			}

			// The operator looks at the evidence (here, moto's record of
			// what SES accepted) and settles it.
			sent := len(mailsTo(t, to)) > 0
			if err := e.ledger.ResolveMail(t.Context(), rec.ID, sent, "the SES record", e.clock.now()); err != nil {
				t.Fatal(err)
			}
			if !sent { // resend: the event is delivered again (chronicle mail resolve --resend queues it)
				if _, failed := deliver(t, n, msg); len(failed) > 0 {
					t.Fatalf("delivery after the resend: failures %v", failed)
				}
			}
			if got := len(mailsTo(t, to)); got != 1 {
				t.Errorf("%d mails in the end, want 1", got)
			}
			if m, _, _ := e.ledger.Mail(t.Context(), rec.ID); m.State != notifier.MailSent {
				t.Errorf("record %+v, want sent", m)
			}
		})
	}
}

// answering is a mailer whose SendEmail does what SES does (or not) and
// then fails with err: SES's answer lost, or a refusal.
type answering struct {
	ses  notifier.Mailer
	send bool // call SES first
	err  error
}

func (a answering) SendEmail(ctx context.Context, in *sesv2.SendEmailInput, o ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	if a.send {
		if _, err := a.ses.SendEmail(ctx, in, o...); err != nil {
			return nil, err
		}
	}
	return nil, a.err
}

// statusError is the SDK's error for an answer with that status.
func statusError(status int, code string) error {
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}}
	return &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: resp, Err: &smithy.GenericAPIError{Code: code, Message: code}}}}
}

// TestSendErrorsByClass: SES refused (4xx) → released and retried; SES's
// answer unknown (5xx, timeout) → held in doubt, acknowledged, never sent
// again automatically, even when it had in fact been accepted.
func TestSendErrorsByClass(t *testing.T) {
	t.Parallel()
	reset := &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail",
		Err: &smithyhttp.RequestSendError{Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}}
	cases := []struct {
		name      string
		mailer    func(ses notifier.Mailer) notifier.Mailer
		wantState notifier.MailState
		wantMails int
	}{
		{"500 after SES accepted", func(ses notifier.Mailer) notifier.Mailer {
			return answering{ses: ses, send: true, err: statusError(500, "InternalFailure")}
		}, notifier.MailUnknown, 1},
		{"reset after SES accepted", func(ses notifier.Mailer) notifier.Mailer {
			return answering{ses: ses, send: true, err: reset}
		}, notifier.MailUnknown, 1},
		{"503 before SES accepted", func(ses notifier.Mailer) notifier.Mailer {
			return answering{ses: ses, err: statusError(503, "ServiceUnavailable")}
		}, notifier.MailUnknown, 0},
		{"429 throttled", func(ses notifier.Mailer) notifier.Mailer {
			return answering{ses: ses, err: statusError(429, "TooManyRequestsException")}
		}, notifier.MailRetry, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, true)
			n, err := notifier.New(tc.mailer(e.ses), e.ledger, registry, notifier.Config{From: e.from},
				slog.New(slog.NewJSONHandler(testWriter{t}, nil)), e.clock.now)
			if err != nil {
				t.Fatal(err)
			}
			to := "class-" + uuid.NewString() + "@example.com"
			rec := created(t, "Class", to)
			msg := message(t, rec)
			_, failed := deliver(t, n, msg)
			if wantFailed := tc.wantState == notifier.MailRetry; (len(failed) == 1) != wantFailed {
				t.Errorf("failures %v, want the message failed: %v", failed, wantFailed)
			}
			m, _, _ := e.ledger.Mail(t.Context(), rec.ID)
			if m.State != tc.wantState || len(mailsTo(t, to)) != tc.wantMails {
				t.Fatalf("record %+v, %d mails; want %s, %d", m, len(mailsTo(t, to)), tc.wantState, tc.wantMails)
			}
			// The real SES now answers: only a refused mail is sent again.
			n2, _ := notifier.New(e.ses, e.ledger, registry, notifier.Config{From: e.from}, slog.New(slog.DiscardHandler), e.clock.now)
			e.clock.add(visibility)
			deliver(t, n2, msg)
			want := max(tc.wantMails, map[bool]int{true: 1}[tc.wantState == notifier.MailRetry])
			if got := len(mailsTo(t, to)); got != want {
				t.Errorf("after the redelivery: %d mails, want %d", got, want)
			}
		})
	}
}

func TestNotSent(t *testing.T) {
	t.Parallel()
	dial := &smithy.OperationError{Err: &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}}
	read := &smithy.OperationError{Err: &smithyhttp.RequestSendError{Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("i/o timeout")}}}
	cases := []struct {
		err  error
		want bool
	}{
		{statusError(400, "MessageRejected"), true},
		{statusError(429, "TooManyRequestsException"), true},
		{statusError(403, "AccessDeniedException"), true},
		{statusError(500, "InternalFailure"), false},
		{statusError(503, "ServiceUnavailable"), false},
		{statusError(200, ""), false}, // an answer that did not decode
		{dial, true},
		{read, false},
		{&smithy.OperationError{Err: &smithy.CanceledError{Err: context.DeadlineExceeded}}, false},
		{&smithy.OperationError{Err: errors.New("failed to retrieve credentials")}, true},
		{errors.New("not from the SDK"), false},
		{context.DeadlineExceeded, false},
	}
	for _, tc := range cases {
		if got := notifier.NotSent(tc.err); got != tc.want {
			t.Errorf("NotSent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestSESClientRetries: the SES client built with SESOptions retries a
// throttled send (SES refused it) but sends a 500 or a timed-out request
// once: SES may have accepted it.
func TestSESClientRetries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		answer   func(w http.ResponseWriter)
		attempts int64
	}{
		{"429", func(w http.ResponseWriter) {
			w.Header().Set("X-Amzn-Errortype", "TooManyRequestsException")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"Maximum sending rate exceeded."}`)
		}, 3},
		{"500", func(w http.ResponseWriter) {
			w.Header().Set("X-Amzn-Errortype", "InternalFailure")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"message":"internal"}`)
		}, 1},
		{"timeout", func(w http.ResponseWriter) { time.Sleep(300 * time.Millisecond) }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var attempts atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				attempts.Add(1)
				tc.answer(w)
			}))
			defer srv.Close()
			cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
				BaseEndpoint: aws.String(srv.URL), HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}}
			c := sesv2.NewFromConfig(cfg, notifier.SESOptions)
			_, err := c.SendEmail(t.Context(), &sesv2.SendEmailInput{FromEmailAddress: aws.String("a@example.com"),
				Content: &sestypes.EmailContent{Raw: &sestypes.RawMessage{Data: []byte("Subject: x\r\n\r\nx")}}})
			if err == nil {
				t.Fatal("no error")
			}
			if got := attempts.Load(); got != tc.attempts {
				t.Errorf("%d attempts, want %d (%v)", got, tc.attempts, err)
			}
			if notifier.NotSent(err) != (tc.name == "429") {
				t.Errorf("NotSent(%v) = %v", err, notifier.NotSent(err))
			}
		})
	}
}
