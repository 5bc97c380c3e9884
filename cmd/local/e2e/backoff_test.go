package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/iamcheck"
)

// TestFailedMessagesAreBackedOff: a message the projector or the notifier
// fails comes back in seconds (relay.Backoff: 1 s, then 2 s, ...), not
// after its queue's 20 s visibility timeout, through the runner as through
// Lambda: the function shortens the visibility, the runner leaves the
// message to the queue. Every call is one the roles grant
// (sqs:ChangeMessageVisibility on the function's own queue).
func TestFailedMessagesAreBackedOff(t *testing.T) {
	t.Parallel()
	var seen invocations
	var denied iamcheck.Denials
	lr := startTestRunner(t, runnerOptions{template: envOr(envTemplate, templatePath), observe: seen.observe, iam: &denied})
	client := sqs.NewFromConfig(*s.aws)
	for _, q := range []string{"ProjectionsQueue", "NotificationsQueue"} {
		id := uuid.NewString()
		if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{
			QueueUrl: aws.String(lr.r.QueueURL(q)), MessageBody: aws.String("not a relayed event"),
			MessageGroupId: aws.String("poison-" + id), MessageDeduplicationId: aws.String(id),
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Three receives take 1 + 2 s of backoff; without it, 40 s.
	start := time.Now()
	for _, fn := range []string{"ProjectorFunction", "NotifierFunction"} {
		eventually(t, 15*time.Second, fn+" receives its failed message three times", func() (bool, string) {
			failed := 0
			for _, inv := range seen.of(fn, "sqs") {
				failed += inv.Failures
			}
			return failed >= 3, fmt.Sprintf("%d failed deliveries", failed)
		})
	}
	t.Logf("three deliveries of each failed message within %s", time.Since(start).Round(100*time.Millisecond))
	for _, d := range denied.Messages() {
		t.Error(d)
	}
}
