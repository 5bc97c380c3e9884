package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/rebuild/rebuildtest"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// stack is a deployment's tables (and, when asked, queues) on the
// emulators, named as template.yaml names them after a new stack name.
type stack struct {
	name   string
	ddb    *dynamodb.Client
	events *dynamo.Store
	rm     *userviews.Store
	svc    *es.Service[user.State, user.Command]
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := t.Context()
	s := &stack{name: "t" + strings.ReplaceAll(uuid.NewString()[:18], "-", ""), ddb: awstest.DynamoDB(t)}
	tables := dynamo.Tables{Events: s.name + "-events", Guards: s.name + "-guards", Snapshots: s.name + "-snapshots"}
	if err := dynamo.CreateTables(ctx, s.ddb, tables); err != nil {
		t.Fatal(err)
	}
	if err := userviews.CreateTable(ctx, s.ddb, s.name+"-readmodel"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = dynamo.DeleteTables(ctx, s.ddb, tables)
		_ = readmodel.DeleteTable(ctx, s.ddb, s.name+"-readmodel")
	})
	s.events = dynamo.New(s.ddb, tables)
	s.rm = userviews.New(readmodel.New(s.ddb, s.name+"-readmodel", readmodel.WithGenerationTTL(0)))
	s.svc = user.NewService(s.events, es.Options{SnapshotEvery: 2})
	return s
}

// chronicle runs the command line in-process with the stack's name in the
// environment.
func (s *stack) chronicle(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	env := map[string]string{"CHRONICLE_STACK": s.name}
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, &out, &errOut, func(k string) string { return env[k] })
	t.Logf("chronicle %s -> %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

func (s *stack) exec(t *testing.T, id string, cmd user.Command, actor, reason string) es.Result[user.State] {
	t.Helper()
	res, err := s.svc.Execute(t.Context(), id, cmd, es.ExecOptions{Metadata: es.Metadata{Actor: actor, Reason: reason}})
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
	return res
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// TestWhoDeletedMyUser: history names the actor and reason of every event,
// the deletion included; state travels in time and diffs two versions.
func TestWhoDeletedMyUser(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	id := newID()
	s.exec(t, id, user.Create{Name: "Ada", Email: id + "@example.com"}, "admin-alice", "signup")
	s.exec(t, id, user.Rename{Name: "Ada L."}, "sub-ada", "")
	beforeDelete := time.Now().UTC()
	s.exec(t, id, user.Delete{Reason: "asked to be forgotten"}, "admin-bob", "asked to be forgotten")

	out, _, code := s.chronicle(t, "history", id)
	if code != 0 || !strings.Contains(out, "user.deleted.v1") || !strings.Contains(out, "admin-bob") ||
		!strings.Contains(out, `"asked to be forgotten"`) {
		t.Fatalf("history: %d\n%s", code, out)
	}
	out, _, code = s.chronicle(t, "--json", "history", id)
	h := decode[struct {
		Events []eventJSON `json:"events"`
	}](t, out)
	if code != 0 || len(h.Events) != 3 || h.Events[2].Type != "user.deleted.v1" || h.Events[2].Actor != "admin-bob" {
		t.Fatalf("history --json: %+v", h)
	}

	out, _, code = s.chronicle(t, "state", id, "--at", beforeDelete.Format(time.RFC3339Nano), "--json")
	st := decode[stateJSON](t, out)
	if code != 0 || st.Version != 2 || st.State.Status != user.StatusActive || st.State.Name != "Ada L." {
		t.Fatalf("state --at before the deletion: %+v", st)
	}
	out, _, code = s.chronicle(t, "state", id, "--version", "1")
	if code != 0 || !strings.Contains(out, `"Ada"`) || !strings.Contains(out, "v1") {
		t.Fatalf("state --version 1: %s", out)
	}
	out, _, code = s.chronicle(t, "state", id, "--diff", "1..3")
	if code != 0 || !strings.Contains(out, `"Ada" → "Ada L."`) || !strings.Contains(out, `"active" → "deleted"`) ||
		!strings.Contains(out, `deletedBy:`) || !strings.Contains(out, "admin-bob") {
		t.Fatalf("state --diff: %s", out)
	}
	out, _, code = s.chronicle(t, "state", id, "--diff", "1..", "--json")
	d := decode[struct {
		Changes []change    `json:"changes"`
		Events  []eventJSON `json:"events"`
	}](t, out)
	if code != 0 || len(d.Events) != 2 || len(d.Changes) < 3 {
		t.Fatalf("state --diff 1.. --json: %+v", d)
	}
	if _, _, code = s.chronicle(t, "state", id, "--at", "2000-01-01T00:00:00Z"); code != exitFail {
		t.Fatalf("state before the user existed: exit %d", code)
	}
	if _, _, code = s.chronicle(t, "state", "not-a-uuid"); code != exitUsage {
		t.Fatalf("state of a malformed id: exit %d", code)
	}
	if _, _, code = s.chronicle(t, "history", newID()); code != exitFail {
		t.Fatalf("history of an unknown user: exit %d", code)
	}
}

// TestWhatIf: on a deleted user, at a time before the deletion, the tool
// answers as the user was then; after it, the rule that refuses.
func TestWhatIf(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	id := newID()
	s.exec(t, id, user.Create{Name: "Ada", Email: id + "@example.com"}, "admin", "")
	s.exec(t, id, user.Suspend{Reason: "spam"}, "admin", "spam")
	before := time.Now().UTC()
	s.exec(t, id, user.Delete{Reason: "gone"}, "admin-bob", "gone")

	out, _, code := s.chronicle(t, "what-if", id, "--at", before.Format(time.RFC3339Nano), `{"command":"reactivate","reason":"appeal"}`, "--json")
	w := decode[whatIfJSON](t, out)
	if code != 0 || w.Rejected != "" || w.Before.Version != 2 || w.Before.State.Status != user.StatusSuspended ||
		len(w.Events) != 1 || w.Events[0].Type != "user.reactivated.v1" || w.Events[0].Version != 3 ||
		w.After.State.Status != user.StatusActive || w.Written {
		t.Fatalf("what-if before the deletion: %d %+v", code, w)
	}
	out, _, code = s.chronicle(t, "what-if", id, `{"command":"rename","name":"Zed"}`)
	if code != 0 || !strings.Contains(out, "rejected: user is deleted") || !strings.Contains(out, "Nothing was written.") {
		t.Fatalf("what-if now: %d %s", code, out)
	}
	out, _, code = s.chronicle(t, "what-if", id, "--at", before.Format(time.RFC3339Nano), `{"event":"user.renamed.v1","data":{"name":"Zed"}}`)
	if code != 0 || !strings.Contains(out, "would append:") || !strings.Contains(out, `"Ada" → "Zed"`) {
		t.Fatalf("what-if event: %d %s", code, out)
	}
	// Nothing was written.
	if recs, err := s.events.Load(t.Context(), id, 1, 0); err != nil || len(recs) != 3 {
		t.Fatalf("events after what-if: %d, %v", len(recs), err)
	}
	for _, bad := range []string{`{"command":"fly"}`, `{"event":"user.flown.v1"}`, `{"command":"rename","colour":"red"}`, `not json`} {
		if _, _, code := s.chronicle(t, "what-if", id, bad); code != exitUsage {
			t.Errorf("what-if %s: exit %d", bad, code)
		}
	}
}

// TestRebuildAndAudit: rebuild switches to a new generation; the audit
// finds a deliberately corrupted view row and exits 1; --aggregate repairs it.
func TestRebuildAndAudit(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	ids, err := rebuildtest.Seed(ctx, s.ddb, s.name+"-events", 25, 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := s.chronicle(t, "rebuild", "all", "--settle", "0", "--page-size", "7")
	if code != 0 || !strings.Contains(out, "user-view: generation 2 active (was 1): 125 events") ||
		!strings.Contains(out, "actor-activity: generation 2 active") || !strings.Contains(errOut, "events/s") {
		t.Fatalf("rebuild: %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = s.chronicle(t, "rebuild", "user-view", "--status", "--json")
	st := decode[[]statusJSON](t, out)
	if code != 0 || len(st) != 1 || st[0].Active != 2 || st[0].Build == nil || st[0].Build.Events != 125 || st[0].Build.FinishedAt == nil {
		t.Fatalf("rebuild --status: %+v", st)
	}
	if out, _, code = s.chronicle(t, "audit", "--recheck", "0"); code != 0 || !strings.Contains(out, "audited 25 aggregates (125 events)") {
		t.Fatalf("audit of a rebuilt read model: %d %s", code, out)
	}

	victim := ids[7]
	v, ok, err := s.rm.UserView(ctx, victim)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	v.Name = "Mallory"
	body, _ := json.Marshal(v)
	// Only the view's JSON changes: its other attributes (the user-list
	// index keys) stay as the rebuild wrote them.
	if _, err := s.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.name + "-readmodel"),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "g2#user#" + victim}, "sk": &types.AttributeValueMemberS{Value: "view"},
		},
		UpdateExpression:          aws.String("SET #v = :v"),
		ExpressionAttributeNames:  map[string]string{"#v": "view"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: string(body)}},
	}); err != nil {
		t.Fatal(err)
	}
	out, _, code = s.chronicle(t, "audit", "--recheck", "0")
	if code != exitFail || !strings.Contains(out, victim+"  fields") || !strings.Contains(out, `name: want "User `) ||
		!strings.Contains(out, `got "Mallory"`) || !strings.Contains(out, "1 difference(s)") {
		t.Fatalf("audit of a corrupted row: %d %s", code, out)
	}
	if out, _, code = s.chronicle(t, "rebuild", "user-view", "--aggregate", victim); code != 0 || !strings.Contains(out, "rebuilt in place at v5") {
		t.Fatalf("rebuild --aggregate: %d %s", code, out)
	}
	if out, _, code = s.chronicle(t, "audit", "--json"); code != 0 || len(decode[struct {
		Differences []json.RawMessage `json:"differences"`
	}](t, out).Differences) != 0 {
		t.Fatalf("audit after the repair: %d %s", code, out)
	}
	if out, _, code = s.chronicle(t, "rebuild", "user-view", "--prune"); code != 0 || !strings.Contains(out, "0 rows") {
		t.Fatalf("prune: %d %s", code, out) // generation 1 was empty
	}
}

// TestDLQRedrive: a message that failed until SQS dead-lettered it is
// listed and shown with its error, redriven to its queue with its group,
// and then applied once.
func TestDLQRedrive(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	client := awstest.SQS(t)
	dlq := createQueue(t, client, s.name+"-projections-dlq.fifo", nil)
	src := createQueue(t, client, s.name+"-projections.fifo", map[string]string{
		"VisibilityTimeout": "0", // a failed message is at once received again
		"RedrivePolicy":     `{"deadLetterTargetArn":"` + arn(t, client, dlq) + `","maxReceiveCount":"1"}`,
	})

	id := newID()
	res := s.exec(t, id, user.Create{Name: "Ada", Email: id + "@example.com"}, "admin-alice", "")
	rec := res.Records[0]
	body, err := relay.EncodeMessage(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(src), MessageBody: aws.String(body),
		MessageGroupId: aws.String(id), MessageDeduplicationId: aws.String(rec.ID)}); err != nil {
		t.Fatal(err)
	}

	logger := slog.New(slog.DiscardHandler)
	// A projector whose read model is missing fails, and records why.
	broken := projector.New(s.events, user.NewRegistry(), readmodel.New(s.ddb, s.name+"-missing"), userviews.Projections(), logger, time.Now,
		projector.WithFailureLog(deadletter.New(s.ddb, s.rm.Table())), projector.WithMaxReceiveCount(1))
	ev := receive(t, client, src)
	if len(ev.Records) != 1 {
		t.Fatalf("received %d", len(ev.Records))
	}
	failedID := ev.Records[0].MessageId
	if resp, _ := broken.Handle(ctx, ev); len(resp.BatchItemFailures) != 1 {
		t.Fatalf("the broken projector acknowledged: %+v", resp)
	}
	// The next receive moves it to the DLQ (maxReceiveCount 1).
	if ev := receive(t, client, src); len(ev.Records) != 0 {
		t.Fatalf("received %d after the last allowed receive", len(ev.Records))
	}

	out, _, code := s.chronicle(t, "dlq", "list", "projections")
	if code != 0 || !strings.Contains(out, "1 message(s)") || !strings.Contains(out, failedID) ||
		!strings.Contains(out, id+" v1 user.created.v1") || !strings.Contains(out, "ResourceNotFoundException") {
		t.Fatalf("dlq list: %d %s", code, out)
	}
	out, _, code = s.chronicle(t, "dlq", "show", "projections", failedID, "--json")
	shown := decode[dlqMessage](t, out)
	if code != 0 || shown.Failure == nil || shown.Failure.Consumer != "projector" || shown.Failure.AggregateID != id ||
		!strings.Contains(shown.Failure.Error, "ResourceNotFoundException") || shown.GroupID != id || shown.Event == nil {
		t.Fatalf("dlq show: %d %+v", code, shown)
	}
	if _, _, code = s.chronicle(t, "dlq", "show", "projections", "no-such-message"); code != exitFail {
		t.Fatalf("dlq show of a missing message: exit %d", code)
	}

	out, _, code = s.chronicle(t, "dlq", "redrive", "projections", "--json")
	redriven := decode[[]redriveJSON](t, out)
	if code != 0 || len(redriven) != 1 || redriven[0].MessageID != failedID || redriven[0].GroupID != id {
		t.Fatalf("dlq redrive: %d %+v", code, redriven)
	}
	if out, _, code = s.chronicle(t, "dlq", "redrive", "projections"); code != 0 || !strings.Contains(out, "0 message(s)") {
		t.Fatalf("second redrive: %d %s", code, out)
	}

	// The working projector applies the redriven message, once.
	good := projector.New(s.events, user.NewRegistry(), s.rm, userviews.Projections(), logger, time.Now)
	ev = receive(t, client, src)
	if len(ev.Records) != 1 || ev.Records[0].Attributes["MessageGroupId"] != id {
		t.Fatalf("redriven message: %+v", ev.Records)
	}
	if resp, err := good.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("projector: %+v %v", resp, err)
	}
	if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(src), ReceiptHandle: aws.String(ev.Records[0].ReceiptHandle)}); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, client, src); len(ev.Records) != 0 {
		t.Fatalf("source queue not empty: %d", len(ev.Records))
	}
	v, ok, err := s.rm.UserView(ctx, id)
	if err != nil || !ok || v.Version != 1 || v.Name != "Ada" {
		t.Fatalf("view: %+v %v %v", v, ok, err)
	}
	cps, err := s.rm.Checkpoints(ctx)
	if err != nil || len(cps) != 2 || cps[0].Processed != 1 || cps[1].Processed != 1 {
		t.Fatalf("checkpoints: %+v %v", cps, err)
	}
	acts, _, err := s.rm.ActorActivity(ctx, "admin-alice", 10, "")
	if err != nil || len(acts) != 1 {
		t.Fatalf("activity: %d %v", len(acts), err)
	}
}

func createQueue(t *testing.T, client *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	a := map[string]string{"FifoQueue": "true"}
	for k, v := range attrs {
		a[k] = v
	}
	out, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: a})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	})
	return url
}

func arn(t *testing.T, client *sqs.Client, url string) string {
	t.Helper()
	out, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["QueueArn"]
}

// receive receives what is visible in url, with the queue's visibility
// timeout, as a Lambda event.
func receive(t *testing.T, client *sqs.Client, url string) events.SQSEvent {
	t.Helper()
	out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	for _, m := range out.Messages {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId),
			ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body), Attributes: m.Attributes})
	}
	return ev
}

// TestToken: the token verifies with the local secret, issuer and audience.
func TestToken(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	env := map[string]string{"LOCAL_JWT_SECRET": "s3cret"}
	code := run(t.Context(), []string{"token", "--sub", "alice", "--roles", "admin, ops", "--ttl", "10m"}, &out, &errOut,
		func(k string) string { return env[k] })
	if code != 0 {
		t.Fatalf("token: %d %s", code, errOut.String())
	}
	v, err := auth.NewVerifier(auth.Config{Issuer: "chronicle-local", Audience: "chronicle-api", LocalSecret: []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(t.Context(), strings.TrimSpace(out.String()))
	if err != nil || p.Sub != "alice" || !p.IsAdmin() || len(p.Roles) != 2 {
		t.Fatalf("verify: %+v %v", p, err)
	}
	out.Reset()
	if code := run(t.Context(), []string{"token", "--json", "--sub", "bob"}, &out, &errOut, func(string) string { return "" }); code != 0 {
		t.Fatal(code)
	}
	tok := decode[struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expiresAt"`
	}](t, out.String())
	if tok.Token == "" || time.Until(tok.ExpiresAt) < 59*time.Minute {
		t.Fatalf("token --json: %+v", tok)
	}
}

// TestUsage: mistakes in the command line exit 2 before touching AWS.
func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"fly"},
		{"history"},
		{"history", "x", "y"},
		{"state", newID(), "--at", "yesterday"},
		{"state", newID(), "--at", "2026-01-01T00:00:00Z", "--version", "2"},
		{"state", newID(), "--diff", "5..3"},
		{"rebuild", "nope"},
		{"rebuild", "user-view", "--segments", "0"},
		{"rebuild", "user-view", "--status", "--abort"},
		{"dlq", "peek", "projections"},
		{"dlq", "list"},
		{"audit", "extra"},
		{"token"},
		{"history", newID(), "--no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		if code := run(t.Context(), args, &out, &errOut, func(string) string { return "" }); code != exitUsage {
			t.Errorf("chronicle %s: exit %d, want %d\n%s", strings.Join(args, " "), code, exitUsage, errOut.String())
		}
	}
	var out bytes.Buffer
	if code := run(t.Context(), []string{"history", newID()}, &out, &out, func(string) string { return "" }); code != exitUsage ||
		!strings.Contains(out.String(), "--stack") {
		t.Errorf("no table configured: %d %s", code, out.String())
	}
	if code := run(t.Context(), []string{"help"}, &out, &out, func(string) string { return "" }); code != 0 {
		t.Errorf("help: %d", code)
	}
}

// TestDLQRedriveKeepsGroupOrder: a FIFO DLQ hands out at most ten messages
// of a group at a time; redrive sends back all of a long group, in order.
func TestDLQRedriveKeepsGroupOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	client := awstest.SQS(t)
	name := "t" + strings.ReplaceAll(uuid.NewString()[:18], "-", "")
	dlq := createQueue(t, client, name+"-notifications-dlq.fifo", nil)
	src := createQueue(t, client, name+"-notifications.fifo", nil)
	for i := range 23 {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String(`{"n":` + itoa(i) + `}`),
			MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String(uuid.NewString())}); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	env := map[string]string{"CHRONICLE_STACK": name}
	if code := run(ctx, []string{"dlq", "redrive", "notifications", "--json"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("redrive: %d %s", code, errOut.String())
	}
	if n := len(decode[[]redriveJSON](t, out.String())); n != 23 {
		t.Fatalf("redrove %d", n)
	}
	for i := 0; i < 23; {
		ev := receive(t, client, src)
		if len(ev.Records) == 0 {
			t.Fatalf("source has %d messages, want 23", i)
		}
		for _, m := range ev.Records {
			if m.Body != `{"n":`+itoa(i)+`}` || m.Attributes["MessageGroupId"] != "g" {
				t.Fatalf("message %d: %s in group %q", i, m.Body, m.Attributes["MessageGroupId"])
			}
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(src), ReceiptHandle: aws.String(m.ReceiptHandle)}); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestFeed: chronicle feed prints every event of every user in order, as
// JSON lines with --json, resumes after a printed cursor or from a time, and
// follows new events.
func TestFeed(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a, b := newID(), newID()
	s.exec(t, a, user.Create{Name: "Ann", Email: a + "@example.com"}, "admin", "")
	s.exec(t, b, user.Create{Name: "Bo", Email: b + "@example.com"}, "admin", "")
	s.exec(t, a, user.Rename{Name: "Anne"}, "admin", "typo")
	middle := time.Now().UTC()
	s.exec(t, b, user.Rename{Name: "Bob"}, "admin", "")

	out, errOut, code := s.chronicle(t, "feed", "--json", "--window", "0s")
	var evs []feedEventJSON
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		evs = append(evs, decode[feedEventJSON](t, l))
	}
	if code != 0 || len(evs) != 4 || evs[0].AggregateID != a || evs[1].AggregateID != b || evs[2].Version != 2 ||
		evs[3].AggregateID != b || evs[3].Version != 2 || evs[0].AggregateType != "user" || !strings.Contains(errOut, evs[3].Cursor) {
		t.Fatalf("feed --json: %d %+v", code, evs)
	}
	out, _, code = s.chronicle(t, "feed", "--window", "0s", "--after", evs[1].Cursor)
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "Anne") || !strings.Contains(out, "Bob") {
		t.Fatalf("feed --after: %d\n%s", code, out)
	}
	out, _, code = s.chronicle(t, "feed", "--window", "0s", "--from", middle.Format(time.RFC3339Nano))
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "Bob") {
		t.Fatalf("feed --from: %d\n%s", code, out)
	}
	if _, _, code := s.chronicle(t, "feed", "--after", "forged"); code != exitUsage {
		t.Fatalf("feed --after forged: exit %d, want %d", code, exitUsage)
	}

	// --follow prints what is written while it runs, until interrupted.
	ctx, cancel := context.WithCancel(t.Context())
	var fout, ferr lockedBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"feed", "--follow", "--poll", "50ms", "--window", "0s", "--after", evs[3].Cursor},
			&fout, &ferr, func(k string) string { return map[string]string{"CHRONICLE_STACK": s.name}[k] })
	}()
	s.exec(t, a, user.Rename{Name: "Annie"}, "admin", "")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(fout.String(), "Annie") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("--follow did not print the new event:\n%s", fout.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("feed --follow: exit %d\n%s", code, ferr.String())
	}
}

// lockedBuffer is a buffer one goroutine writes while another reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRelayRedrive: chronicle relay redrive reads the relay's OnFailure
// records, finds each failed batch's events in the feed by its arrival
// window, routes them to the subscribers' queues as the relay does, and
// deletes the record; a record too recent for the feed's horizon stays.
func TestRelayRedrive(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	client := awstest.SQS(t)
	notif := createQueue(t, client, s.name+"-notifications.fifo", nil)
	proj := createQueue(t, client, s.name+"-projections.fifo", nil)
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(s.name + "-relay-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	dlq := aws.ToString(out.QueueUrl)
	t0 := time.Now().UTC()
	// Two users created and one renamed a minute ago (the failed batch),
	// and an event half a minute ago, outside its window.
	a, b, c := newID(), newID(), newID()
	for _, e := range []struct {
		id, typ string
		v       int64
		ago     time.Duration
	}{{a, "user.created.v1", 1, 60 * time.Second}, {b, "user.created.v1", 1, 59 * time.Second}, {a, "user.renamed.v1", 2, 58 * time.Second}, {c, "user.created.v1", 1, 30 * time.Second}} {
		rec := es.Record{ID: newID(), AggregateID: e.id, AggregateType: "user", Version: e.v, Type: e.typ, SchemaVersion: 1,
			OccurredAt: t0.Add(-e.ago), Data: json.RawMessage(`{"name":"N","email":"` + e.id + `@example.com"}`)}
		if err := s.events.Append(ctx, es.AppendRequest{AggregateID: e.id, ExpectedVersion: e.v - 1, Records: []es.Record{rec}}); err != nil {
			t.Fatal(err)
		}
	}
	record := func(first, last time.Time) string {
		return `{"requestContext":{"condition":"RetryAttemptsExhausted"},"version":"1.0","DDBStreamBatchInfo":{"shardId":"shardId-1",` +
			`"approximateArrivalOfFirstRecord":"` + first.Format(time.RFC3339Nano) + `","approximateArrivalOfLastRecord":"` + last.Format(time.RFC3339Nano) + `","batchSize":3}}`
	}
	for _, body := range []string{record(t0.Add(-60*time.Second), t0.Add(-57*time.Second)),
		// too recent: ahead of t0, so that no slow start ages it past the horizon
		record(t0.Add(time.Minute), t0.Add(time.Minute))} {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	stdout, _, code := s.chronicle(t, "--json", "relay", "redrive")
	rep := decode[struct {
		Batches []redriveBatchJSON `json:"batches"`
	}](t, stdout)
	outcomes := map[string]redriveBatchJSON{}
	for _, r := range rep.Batches {
		outcomes[r.Outcome] = r
	}
	if code != 0 || len(rep.Batches) != 2 || outcomes["redriven"].Events != 3 || outcomes["redriven"].Messages != 5 || outcomes["too-recent"].MessageID == "" {
		t.Fatalf("relay redrive: exit %d, %+v", code, rep)
	}
	count := func(url string) map[string]bool {
		ids := map[string]bool{}
		for {
			out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Messages) == 0 {
				return ids
			}
			for _, m := range out.Messages {
				ids[aws.ToString(m.Body)] = true
			}
		}
	}
	if n, p, d := len(count(notif)), len(count(proj)), len(count(dlq)); n != 2 || p != 3 || d != 1 {
		t.Fatalf("after the redrive: %d welcome-mail messages (want 2), %d projection messages (want 3), %d OnFailure records left (want 1)", n, p, d)
	}
}

// TestAuditFeed: chronicle audit --feed lists, per subscriber, the events of
// the feed it has not taken in: here, a user the projector never saw and
// whose welcome mail was never sent; a user fully delivered is not listed.
func TestAuditFeed(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	done, lost := newID(), newID()
	s.exec(t, done, user.Create{Name: "Dee", Email: done + "@example.com"}, "admin", "")
	s.exec(t, done, user.Rename{Name: "Dee Dee"}, "admin", "")
	s.exec(t, lost, user.Create{Name: "Lou", Email: lost + "@example.com"}, "admin", "")

	recs, err := s.events.Load(ctx, done, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	for _, r := range recs {
		body, err := relay.EncodeMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: uuid.NewString(), Body: body,
			Attributes: map[string]string{"MessageGroupId": r.AggregateID, "MessageDeduplicationId": r.ID}})
	}
	proj := projector.New(s.events, user.NewRegistry(), s.rm, userviews.Projections(), slog.New(slog.DiscardHandler), time.Now)
	if resp, err := proj.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("projector: %+v %v", resp, err)
	}
	mails := notifier.NewMails(s.ddb, s.rm.Table())
	token, err := mails.ClaimMail(ctx, recs[0].ID, done, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := mails.MarkMailSent(ctx, recs[0].ID, token, "ses-1", time.Now()); err != nil {
		t.Fatal(err)
	}

	out, _, code := s.chronicle(t, "--json", "audit", "--feed", "--window", "0s")
	rep := decode[struct {
		Events  int `json:"events"`
		Missing []struct {
			Subscriber  string `json:"subscriber"`
			AggregateID string `json:"aggregateId"`
		} `json:"missing"`
	}](t, out)
	got := map[string]bool{}
	for _, m := range rep.Missing {
		if m.AggregateID != lost {
			t.Errorf("missing %+v: that user was delivered", m)
		}
		got[m.Subscriber] = true
	}
	if code != exitFail || rep.Events != 3 || len(rep.Missing) != 3 || !got["welcome-mail"] || !got[userviews.ProjectionUserView] || !got[userviews.ProjectionActorActivity] {
		t.Fatalf("audit --feed: exit %d, %+v", code, rep)
	}
}
