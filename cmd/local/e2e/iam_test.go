package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// TestRedeliveredWelcomeMailIsNotSentAgain: SQS delivers a message at least
// once, so a user.created notification can come again after its mail was
// sent. The notifier's claim then fails its condition and reads the
// sent-mail record in the old item the failed update returns: no second
// mail, and every call it made is one its role in the template grants. The
// runner checks the roles (infra/iamcheck). This test caught the notifier
// reading that record with a GetItem its role did not grant (AccessDenied
// in AWS: five retries, then the DLQ); the read now needs no grant of its
// own, and removing dynamodb:UpdateItem from the notifier's role fails it.
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

// TestSnapshotsAndRemoteRebuild reaches, under the IAM check, the paths the
// other tests do not: on a runner whose template snapshots every 2 events,
// commands write snapshots (on the events they follow); a rebuild asked of the replay function (what
// `chronicle rebuild --remote` sends) fills a new generation of the user
// view from the event store and switches to it, and the user reads the
// same view. Every call is one the functions' roles grant.
func TestSnapshotsAndRemoteRebuild(t *testing.T) {
	t.Parallel()
	var denied iamcheck.Denials
	lr := startTestRunner(t, runnerOptions{template: envOr(envTemplate, templatePath),
		params: map[string]string{"SnapshotInterval": "2"}, iam: &denied})
	c := client{base: lr.url}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ddb := dynamodb.NewFromConfig(*s.aws)

	var w written
	c.do(t, req{method: "POST", path: "/users", token: s.admin, body: map[string]string{"name": "Snap 0", "email": uniqueEmail("snap")}}).
		want(t, http.StatusCreated).decode(t, &w)
	for i := 1; i <= 2; i++ {
		c.do(t, req{method: "PUT", path: "/users/" + w.ID + "/name", token: s.admin, body: map[string]string{"name": fmt.Sprint("Snap ", i)}}).
			want(t, http.StatusOK)
	}
	// The snapshot is kept on the event it follows (es.StreamSnapshots).
	snap, ok, _, err := dynamo.New(ddb, dynamo.Tables{Events: lr.r.TableName("EventsTable")}).
		LoadLatest(ctx, w.ID, 0, func(es.Snapshot) bool { return true }, 4)
	if err != nil || !ok || snap.Version < 2 {
		t.Fatalf("snapshot of %s: %+v %v %v", w.ID, snap, ok, err)
	}
	c.do(t, req{method: "GET", path: "/users/" + w.ID + "/state", token: s.admin}).want(t, http.StatusOK)
	view := func() (bool, string) {
		r := c.do(t, req{method: "GET", path: "/users/" + w.ID, token: s.admin})
		return r.status == http.StatusOK && r.header.Get("X-Source") == "projection" && strings.Contains(string(r.body), `"Snap 2"`), string(r.body)
	}
	eventually(t, 30*time.Second, "the view at v3", view)

	rm := readmodel.New(ddb, lr.r.TableName("ReadModelTable"))
	projections := []string{userviews.ProjectionUserView, userviews.ProjectionActorActivity}
	before := map[string]int64{}
	for _, p := range projections {
		g, err := rm.Generation(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		before[p] = g.Active
		body, err := json.Marshal(rebuild.Request{Projection: p, Segments: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sqs.NewFromConfig(*s.aws).SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl: aws.String(lr.r.QueueURL("ReplayQueue")), MessageBody: aws.String(string(body)),
			MessageGroupId: aws.String(rebuild.MessageGroup(p)), MessageDeduplicationId: aws.String(uuid.NewString()),
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range projections {
		eventually(t, time.Minute, "the rebuilt generation of "+p+" is active", func() (bool, string) {
			g, err := rm.Generation(ctx, p)
			return err == nil && g.Active > before[p] && g.Building == 0, fmt.Sprintf("%+v %v", g, err)
		})
	}
	eventually(t, 30*time.Second, "the view, rebuilt", view)
	// On this runner the admin caused these three events only.
	var a activityAnswer
	c.do(t, req{method: "GET", path: "/actors/" + s.adminSub + "/activity", token: s.admin}).want(t, http.StatusOK).decode(t, &a)
	if len(a.Events) != 3 {
		t.Errorf("the admin's activity, rebuilt: %+v, want the 3 events", a.Events)
	}
	for _, d := range denied.Messages() {
		t.Error(d)
	}
}
