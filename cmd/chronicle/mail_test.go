package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// TestMailInDoubt: chronicle mail list shows the welcome mails held in
// doubt; resolve --sent marks one sent, resolve --resend delivers its event
// to the notifications queue again and makes the mail claimable.
func TestMailInDoubt(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	client := awstest.SQS(t)
	queue := createQueue(t, client, s.name+"-notifications.fifo", nil)
	now := time.Now()
	mails := notifier.NewMails(s.ddb, s.rm.Table())

	var events []string
	for range 2 {
		id := newID()
		rec := s.exec(t, id, user.Create{Name: "Ada", Email: id + "@example.com"}, "admin", "").Records[0]
		tok, err := mails.ClaimMail(ctx, rec.ID, id, now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := mails.MarkMailUnknown(ctx, rec.ID, tok, "SES answered 500", now); err != nil {
			t.Fatal(err)
		}
		events = append(events, rec.ID)
	}
	out, _, code := s.chronicle(t, "mail", "list")
	if code != 0 || !strings.Contains(out, "2 welcome mail(s) in doubt") || !strings.Contains(out, events[0]) || !strings.Contains(out, "SES answered 500") {
		t.Fatalf("mail list: %d %s", code, out)
	}
	if _, _, code := s.chronicle(t, "mail", "resolve", events[0]); code != exitUsage {
		t.Errorf("resolve without --sent or --resend: exit %d", code)
	}
	if _, _, code := s.chronicle(t, "mail", "resolve", events[0], "--sent", "--note", "SES sending log"); code != 0 {
		t.Fatalf("resolve --sent: exit %d", code)
	}
	if m, _, _ := mails.Mail(ctx, events[0]); m.State != notifier.MailSent || m.MessageID != "operator: SES sending log" {
		t.Errorf("after resolve --sent: %+v", m)
	}
	if _, _, code := s.chronicle(t, "mail", "resolve", events[1], "--resend"); code != 0 {
		t.Fatalf("resolve --resend: exit %d", code)
	}
	if m, _, _ := mails.Mail(ctx, events[1]); m.State != notifier.MailRetry {
		t.Errorf("after resolve --resend: %+v", m)
	}
	ev := receive(t, client, queue)
	if len(ev.Records) != 1 {
		t.Fatalf("notifications queue: %d messages, want the event again", len(ev.Records))
	}
	if rec, err := relay.DecodeMessage(ev.Records[0].Body); err != nil || rec.ID != events[1] {
		t.Errorf("delivered again: %+v, %v", rec, err)
	}
	out, _, code = s.chronicle(t, "--json", "mail", "list")
	if code != 0 || !strings.Contains(out, `"inDoubt": []`) {
		t.Errorf("mail list once settled: %d %s", code, out)
	}
	if _, _, code := s.chronicle(t, "mail", "resolve", events[0], "--resend"); code != exitFail {
		t.Errorf("resend of a sent mail: exit %d, want %d", code, exitFail)
	}
}
