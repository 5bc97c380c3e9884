package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// TestRedeliveredWelcomeMailIsNotSentAgain: SQS delivers a message at least
// once, so a user.created notification can come again after its mail was
// sent. The notifier's claim then fails its condition and it reads the
// sent-mail record (readmodel.Mail, a GetItem) to tell "sent" from "being
// sent": no second mail, and every call it made is one its role in the
// template grants. The runner checks the roles (infra/iamcheck); without
// dynamodb:GetItem on the read model the notifier's role fails this test,
// as it would fail in AWS (AccessDenied, five retries, the DLQ).
func TestRedeliveredWelcomeMailIsNotSentAgain(t *testing.T) {
	t.Parallel()
	if s.sesURL == "" {
		t.Skip("needs the SES emulator's records: set " + envSESURL)
	}
	var seen invocations
	var denied iamcheck.Denials
	lr := startTestRunner(t, runnerOptions{template: envOr(envTemplate, templatePath), observe: seen.observe, iam: &denied})
	c := client{base: lr.url}

	email := uniqueEmail("redelivered")
	var w written
	c.do(t, req{method: "POST", path: "/users", token: s.admin, body: map[string]string{"name": "Twice Told", "email": email}}).
		want(t, http.StatusCreated).decode(t, &w)
	eventually(t, 30*time.Second, "the welcome mail", func() (bool, string) {
		n := mailCounts(t)[email]
		return n == 1, fmt.Sprintf("%d mails", n)
	})

	// The same notification again, as SQS would redeliver it.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	recs, err := dynamo.New(dynamodb.NewFromConfig(*s.aws), dynamo.Tables{Events: lr.r.TableName("EventsTable")}).Load(ctx, w.ID, 1, 1)
	if err != nil || len(recs) != 1 || recs[0].Type != "user.created.v1" {
		t.Fatalf("the creation event of %s: %+v, %v", w.ID, recs, err)
	}
	body, err := relay.EncodeMessage(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	handled := len(notified(&seen))
	if _, err := sqs.NewFromConfig(*s.aws).SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(lr.r.QueueURL("NotificationsQueue")), MessageBody: aws.String(body),
		MessageGroupId: aws.String(w.ID), MessageDeduplicationId: aws.String(recs[0].ID + "-redelivered"),
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the notifier handles the redelivery", func() (bool, string) {
		inv := notified(&seen)
		return len(inv) > handled, fmt.Sprintf("%d notifier invocations", len(inv))
	})
	inv := notified(&seen)
	if last := inv[len(inv)-1]; last.Outcome != runner.OutcomeOK || last.Failures != 0 {
		t.Errorf("the redelivery: %+v, want it acknowledged", last)
	}
	if n := mailCounts(t)[email]; n != 1 {
		t.Errorf("%s received %d welcome mails, want 1", email, n)
	}
	for _, d := range denied.Messages() {
		t.Error(d)
	}
}

// notified lists the notifier's queue invocations so far.
func notified(seen *invocations) []runner.Invocation {
	return seen.of("NotifierFunction", "sqs")
}
