package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
)

// deadLetterQueues are the template's queues where a message ends that the
// read side gave up on: the consumers' DLQs and the relay's OnFailure
// destination (a stream batch that failed past its retries). Nothing
// redrives them during a benchmark, so anything there is lost to it.
var deadLetterQueues = []string{"ProjectionsDLQ", "NotificationsDLQ", "RelayDLQ"}

// settleStall is how long the read side may sit idle, queues empty, with
// views or mails still missing before settle gives up: nothing is left
// that could bring them.
const settleStall = time.Minute

// settle waits, up to limit, until the read side has worked off everything
// before the measurement: every user of ids projected, a welcome mail sent
// for each, the queues empty and no stream or queue invocation for a
// second. A measurement on top of a setup still being worked off would
// share the emulators with it. Anything in a dead-letter queue fails the
// benchmark at once (failOnDeadLetters).
func (s *scalingService) settle(b *testing.B, ids []string, limit time.Duration) {
	b.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	var idleSince time.Time
	for {
		s.failOnDeadLetters(b)
		idle := time.Since(time.Unix(0, s.lastAsync.Load())) > time.Second && s.queuesEmpty(b)
		if idle {
			// Only once idle: the checks below read a table and moto's
			// whole state.
			s.checkViews(b, ids)
			s.checkMails(b, len(ids))
			if s.viewsMissing == 0 && s.mailsMissing == 0 {
				b.Logf("read side settled in %s: %d views, %d welcome mails (%d of them held in doubt), queues empty",
					time.Since(start).Round(time.Millisecond), len(ids), len(ids), s.mailsHeld)
				return
			}
			if idleSince.IsZero() {
				idleSince = time.Now()
			}
		} else {
			idleSince = time.Time{}
		}
		stalled := !idleSince.IsZero() && time.Since(idleSince) > settleStall
		if stalled || time.Now().After(deadline) {
			why := fmt.Sprintf("still busy after %s", limit)
			if stalled {
				why = fmt.Sprintf("idle for %s with work missing", settleStall)
			}
			b.Fatalf("the read side did not settle after the setup (%s): %d of %d views not projected, %d of %d welcome mails neither sent nor held in doubt; %s",
				why, s.viewsMissing, len(ids), s.mailsMissing, len(ids), s.depths(b))
		}
		sleep(b.Context(), 250*time.Millisecond)
	}
}

// checkViews counts the users of ids whose view is not projected yet,
// reading only those not seen before (a view, once there, stays).
func (s *scalingService) checkViews(b *testing.B, ids []string) {
	if s.viewSeen == nil {
		s.viewSeen = make(map[string]bool, len(ids))
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 8)
		found []string
		asked int
	)
	for _, id := range ids {
		if s.viewSeen[id] {
			continue
		}
		asked++
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, ok, err := s.views.UserView(b.Context(), id); err == nil && ok {
				mu.Lock()
				found = append(found, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, id := range found {
		s.viewSeen[id] = true
	}
	s.viewsMissing = asked - len(found)
}

// checkMails counts the welcome mails neither sent (moto's SES: the
// group's emulators are its own, and only the setup's creates send mail)
// nor held in doubt. A mail in doubt (a send cut off by its invocation's
// end on a loaded machine, which may or may not have gone) is done with
// as far as the read side goes: the notifier acknowledged it and leaves it
// to an operator.
func (s *scalingService) checkMails(b *testing.B, want int) {
	s.mailsMissing = max(want-len(awstest.SentMails(b)), 0)
	if s.mailsMissing == 0 {
		s.mailsHeld = 0
		return
	}
	held, err := s.mails.MailsInDoubt(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	s.mailsHeld = len(held)
	s.mailsMissing = max(s.mailsMissing-len(held), 0)
}

// failOnDeadLetters fails the benchmark when a dead-letter queue holds a
// message, naming the queue and what is known of its first message: the
// failure the consumer recorded under its id, or, for the relay's
// OnFailure records (which carry only the batch's place in the stream),
// the first error the runner or a function logged.
func (s *scalingService) failOnDeadLetters(b *testing.B) {
	b.Helper()
	for _, id := range deadLetterQueues {
		url := s.r.QueueURL(id)
		if url == "" {
			continue
		}
		visible, inFlight, err := relaytest.Depth(b.Context(), s.sqs, &relaytest.Queue{URL: url})
		if err != nil {
			b.Fatal(err)
		}
		if visible+inFlight == 0 {
			continue
		}
		b.Fatalf("%s holds %d message(s): the read side gave up on them and nothing redrives them during the benchmark; the first: %s; %s",
			id, visible+inFlight, s.firstDeadLetter(b.Context(), url), s.depths(b))
	}
}

// firstDeadLetter describes the first message of the dead-letter queue at
// url without consuming it.
func (s *scalingService) firstDeadLetter(ctx context.Context, url string) string {
	out, err := s.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 1,
		VisibilityTimeout: 0, WaitTimeSeconds: 1,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
	switch {
	case err != nil:
		return fmt.Sprintf("not readable (%v)", err)
	case len(out.Messages) == 0:
		return "in flight, not readable yet"
	}
	msg := out.Messages[0]
	id := aws.ToString(msg.MessageId)
	if f, ok, err := s.failures.Failure(ctx, id); err == nil && ok {
		return fmt.Sprintf("message %s (event %s, %s v%d of %s), %d failed deliveries, the last by the %s: %s",
			id, f.EventID, f.EventType, f.Version, f.AggregateID, f.Failures, f.Consumer, f.Error)
	}
	body := aws.ToString(msg.Body)
	if len(body) > 400 {
		body = body[:400] + "…"
	}
	return fmt.Sprintf("message %s: %s; first error logged: %s", id, body, s.errs.first())
}

// firstError keeps the first record logged at ERROR by the runner or a
// function, for a failure that leaves no other trace (a stream batch sent
// to the relay's OnFailure queue), and passes every record on to next.
type firstError struct {
	next slog.Handler
	once *errOnce
}

type errOnce struct {
	mu   sync.Mutex
	text string
}

func newFirstError(next slog.Handler) firstError { return firstError{next: next, once: &errOnce{}} }

func (f firstError) first() string {
	f.once.mu.Lock()
	defer f.once.mu.Unlock()
	if f.once.text == "" {
		return "none"
	}
	return f.once.text
}

func (f firstError) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || f.next.Enabled(ctx, l)
}

func (f firstError) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		f.once.mu.Lock()
		if f.once.text == "" {
			var sb strings.Builder
			sb.WriteString(r.Message)
			r.Attrs(func(a slog.Attr) bool {
				fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
				return true
			})
			f.once.text = sb.String()
		}
		f.once.mu.Unlock()
	}
	if f.next.Enabled(ctx, r.Level) {
		return f.next.Handle(ctx, r)
	}
	return nil
}

func (f firstError) WithAttrs(as []slog.Attr) slog.Handler {
	return firstError{next: f.next.WithAttrs(as), once: f.once}
}

func (f firstError) WithGroup(name string) slog.Handler {
	return firstError{next: f.next.WithGroup(name), once: f.once}
}

// accepted notes that the write side accepted version of user id.
func (s *scalingService) accepted(id string, version int64) {
	s.latestMu.Lock()
	defer s.latestMu.Unlock()
	if s.latest == nil {
		s.latest = map[string]int64{}
	}
	s.latest[id] = max(s.latest[id], version)
}

// caughtUp reports whether every user measure renamed has its view at
// the version accepted.
func (s *scalingService) caughtUp(b *testing.B) bool {
	s.latestMu.Lock()
	latest := maps.Clone(s.latest)
	s.latestMu.Unlock()
	for id, want := range latest {
		if v, ok, err := s.views.UserView(b.Context(), id); err != nil || !ok || v.Version < want {
			return false
		}
	}
	return true
}

// behind names the users whose view is older than what the write side
// accepted of them: for a drain that never ends, it tells an event that
// never reached the projector (a view behind) from a miscount of the
// projector's invocations (every view caught up).
func (s *scalingService) behind(b *testing.B) string {
	s.latestMu.Lock()
	latest := maps.Clone(s.latest)
	s.latestMu.Unlock()
	var out []string
	for id, want := range latest {
		v, ok, err := s.views.UserView(b.Context(), id)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("%s: %v", id, err))
		case !ok || v.Version < want:
			out = append(out, fmt.Sprintf("%s at v%d, accepted v%d", id, v.Version, want))
		}
	}
	if len(out) == 0 {
		return fmt.Sprintf("yet every one of the %d users renamed has its view at the version accepted (a miscount of the projector's invocations, not a lost event)", len(latest))
	}
	slices.Sort(out)
	return fmt.Sprintf("views behind the write side: %d of %d users renamed: %s", len(out), len(latest), strings.Join(out[:min(len(out), 5)], "; "))
}
