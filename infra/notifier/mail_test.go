package notifier_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestMailClaims(t *testing.T) {
	t.Parallel()
	rm := readmodeltest.Store(t)
	s := notifier.NewMails(rm.Client(), rm.Table())
	ctx := t.Context()
	ev := uuid.NewString()
	lease := time.Minute

	first, err := s.ClaimMail(ctx, ev, "u-1", t0, lease)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimMail(ctx, ev, "u-1", t0.Add(lease-time.Millisecond), lease); !errors.Is(err, notifier.ErrMailInFlight) {
		t.Errorf("claim during a live lease: %v, want ErrMailInFlight", err)
	}
	// The first delivery died; its lease ends. It may have sent: the next
	// claim holds the mail in doubt rather than taking it over.
	if _, err := s.ClaimMail(ctx, ev, "u-1", t0.Add(lease), lease); !errors.Is(err, notifier.ErrMailInDoubt) {
		t.Fatalf("claim after the lease: %v, want ErrMailInDoubt", err)
	}
	if _, err := s.ClaimMail(ctx, ev, "u-1", t0.Add(time.Hour), lease); !errors.Is(err, notifier.ErrMailInDoubt) {
		t.Errorf("claim of a mail in doubt: %v, want ErrMailInDoubt", err)
	}
	m, ok, err := s.Mail(ctx, ev)
	if err != nil || !ok || m.State != notifier.MailUnknown || m.AggregateID != "u-1" || m.DoubtReason == "" {
		t.Fatalf("mail = %+v, %v, %v; want unknown with a reason", m, ok, err)
	}
	if doubts, err := s.MailsInDoubt(ctx); err != nil || !slices.ContainsFunc(doubts, func(d notifier.Mail) bool { return d.EventID == ev }) {
		t.Errorf("mails in doubt %+v, %v: want %s", doubts, err, ev)
	}
	// The late answer of the first delivery, with SES's id, settles it.
	if err := s.MarkMailSent(ctx, ev, "another-token", "m-0", t0.Add(lease)); !errors.Is(err, notifier.ErrClaimLost) {
		t.Errorf("mark with another's token: %v, want ErrClaimLost", err)
	}
	if err := s.MarkMailSent(ctx, ev, first, "m-1", t0.Add(lease+time.Second)); err != nil {
		t.Fatal(err)
	}
	// An SDK retry of that write after a lost reply finds its own work.
	if err := s.MarkMailSent(ctx, ev, first, "m-1", t0.Add(lease+time.Second)); err != nil {
		t.Errorf("mark sent again with the same token: %v", err)
	}
	if _, err := s.ClaimMail(ctx, ev, "u-1", t0.Add(time.Hour), lease); !errors.Is(err, notifier.ErrMailSent) {
		t.Errorf("claim of a sent mail: %v, want ErrMailSent", err)
	}
	m, ok, err = s.Mail(ctx, ev)
	if err != nil || !ok || m.State != notifier.MailSent || m.MessageID != "m-1" || m.Attempts != 1 ||
		!m.SentAt.Equal(t0.Add(lease+time.Second)) {
		t.Errorf("mail = %+v, %v, %v", m, ok, err)
	}

	// A released claim (the send certainly failed) can be taken again at once.
	ev2 := uuid.NewString()
	tok, err := s.ClaimMail(ctx, ev2, "u-2", t0, lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseMail(ctx, ev2, tok); err != nil {
		t.Fatal(err)
	}
	tok2, err := s.ClaimMail(ctx, ev2, "u-2", t0.Add(time.Second), lease)
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}

	// An operator settles mails in doubt: resend makes it claimable, sent
	// marks it sent.
	if err := s.MarkMailUnknown(ctx, ev2, tok2, "SES answered 500", t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveMail(ctx, ev2, false, "", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveMail(ctx, ev2, true, "seen", t0.Add(time.Hour)); err == nil {
		t.Error("resolved as sent a mail that is not in doubt")
	}
	if _, err := s.ClaimMail(ctx, ev2, "u-2", t0.Add(time.Hour), lease); err != nil {
		t.Errorf("claim after an operator's resend: %v", err)
	}
	ev3 := uuid.NewString()
	tok3, _ := s.ClaimMail(ctx, ev3, "u-3", t0, lease)
	if err := s.MarkMailUnknown(ctx, ev3, tok3, "timeout", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveMail(ctx, ev3, true, "SES sending log", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m, _, _ := s.Mail(ctx, ev3); m.State != notifier.MailSent || m.MessageID != "operator: SES sending log" {
		t.Errorf("after resolve --sent: %+v", m)
	}
}

// lostReplies sends every UpdateItem twice and answers the second: the
// first applied and its reply was lost, and the SDK retried.
type lostReplies struct{ readmodel.Client }

func (c lostReplies) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if _, err := c.Client.UpdateItem(ctx, in, o...); err != nil {
		return nil, err
	}
	return c.Client.UpdateItem(ctx, in, o...)
}

// TestMailWritesSurviveALostReply: the claim and the sent mark, retried by
// the SDK after their first attempt applied, recognize their own write
// (same token) instead of failing their condition.
func TestMailWritesSurviveALostReply(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	table := awstest.TableName("readmodel")
	if err := readmodel.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = readmodel.DeleteTable(context.WithoutCancel(t.Context()), client, table) })
	s := notifier.NewMails(lostReplies{client}, table)
	ctx := t.Context()
	ev := uuid.NewString()
	tok, err := s.ClaimMail(ctx, ev, "u", t0, time.Minute)
	if err != nil {
		t.Fatalf("claim retried after a lost reply: %v", err)
	}
	if err := s.MarkMailSent(ctx, ev, tok, "m", t0); err != nil {
		t.Fatalf("mark retried after a lost reply: %v", err)
	}
	if m, _, _ := s.Mail(ctx, ev); m.State != notifier.MailSent || m.Attempts != 1 {
		t.Errorf("mail %+v: want sent after one claim", m)
	}
}
