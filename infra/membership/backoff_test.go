package membership_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/membership"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
)

// TestFailedMessageComesBackInSeconds: a message the manager fails is
// visible again within seconds (relay.Backoff, as the function is wired),
// not after the queue's visibility timeout, and the call that does it is
// granted by the membership role (the IAM check on its SQS client).
func TestFailedMessageComesBackInSeconds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	client := awstest.SQS(t)
	const visibility = 30 // seconds: what the failed message would wait without backoff
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{VisibilityTimeout: visibility})
	fnSQS := sqs.NewFromConfig(awstest.Config(t),
		awstest.UnderIAM[*sqs.Options](t, "MembershipFunction", map[string]string{"MembershipQueue": awstest.QueueName(q.URL)}))
	m := membership.New(e.table, e.teams, testLogger(t), time.Now, membership.WithMaxReceiveCount(5),
		membership.WithBackoff(&relay.Backoff{Client: fnSQS, QueueURL: q.URL, Log: testLogger(t)}))

	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("{not an event"),
		MessageGroupId: aws.String("g-" + newID()), MessageDeduplicationId: aws.String(newID())}); err != nil {
		t.Fatal(err)
	}
	ev, err := relaytest.Receive(ctx, client, q, 10, visibility)
	if err != nil || len(ev.Records) != 1 {
		t.Fatalf("received %d messages, %v; want 1", len(ev.Records), err)
	}
	failedAt := time.Now()
	resp, err := m.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("failures %v, %v; want the message", resp.BatchItemFailures, err)
	}
	again, err := relaytest.Redelivered(ctx, client, q, []string{ev.Records[0].MessageId}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 {
		t.Fatalf("not received again after %s: the failed message waits the queue's %d s visibility timeout",
			time.Since(failedAt).Round(time.Millisecond), visibility)
	}
	t.Logf("failed message received again %s after the batch", time.Since(failedAt).Round(time.Millisecond))
}
