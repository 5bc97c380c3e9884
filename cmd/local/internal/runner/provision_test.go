package runner

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/template"
)

var localParams = map[string]string{"JwtIssuer": "chronicle-local", "EmailSender": "no-reply@example.com", "MaxReceiveCount": "3"}

// TestPlanOfTheTemplate: what the runner reads from template.yaml.
func TestPlanOfTheTemplate(t *testing.T) {
	r, err := New(Config{Template: templatePath, StackName: "plan", Parameters: localParams})
	if err != nil {
		t.Fatal(err)
	}
	p := r.plan
	if p.stage != "dev" || len(p.routes) < 14 || p.gatewayReplies[replyUnauthorized].ResponseTemplates["application/json"] == "" {
		t.Errorf("stage %q, %d routes, replies %v", p.stage, len(p.routes), p.gatewayReplies)
	}
	for _, rt := range p.routes {
		public := rt.key() == "GET /healthz" || strings.HasPrefix(rt.key(), "GET /console") // no data: no authorizer
		if public != (rt.authorizer == nil) {
			t.Errorf("%s: authorizer %+v", rt.key(), rt.authorizer)
		}
	}
	i := slices.IndexFunc(p.streamMappings, func(m streamMapping) bool { return m.function == "RelayFunction" })
	if i < 0 {
		t.Fatalf("no stream mapping of the relay: %+v", p.streamMappings)
	}
	if ev := p.streamMappings[i].event; ev.Table != "EventsTable" || ev.BatchSize != 100 || !ev.BisectBatchOnFunctionError ||
		ev.MaximumRetryAttempts != 10 || ev.OnFailure != "RelayDLQ" || !ev.ReportsBatchItemFailures() {
		t.Errorf("relay mapping %+v", ev)
	}
	for _, fn := range []string{"ProjectorFunction", "NotifierFunction", "MembershipFunction"} {
		if !slices.ContainsFunc(p.queueMappings, func(m queueMapping) bool { return m.function == fn && m.event.ReportsBatchItemFailures() }) {
			t.Errorf("no SQS mapping of %s reporting item failures: %+v", fn, p.queueMappings)
		}
	}
	// Dead-letter queues come before the queues that redrive to them.
	pos := map[string]int{}
	for i, q := range p.queues {
		pos[q.Name] = i
	}
	for _, q := range p.queues {
		if q.DeadLetterQueue != "" && pos[q.DeadLetterQueue] > pos[q.Name] {
			t.Errorf("%s comes before its DLQ %s", q.Name, q.DeadLetterQueue)
		}
	}
}

// TestProvision creates the template's resources in the emulators, twice
// (the second run reuses them), and resolves the functions' environments.
func TestProvision(t *testing.T) {
	cfg := awstest.Config(t)
	stack := "rt-" + uuid.NewString()[:8]
	r, err := New(Config{Template: templatePath, StackName: stack, Parameters: localParams, AWS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.Destroy(ctx); err != nil {
			t.Error(err)
		}
	})
	for range 2 {
		if err := r.Provision(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()

	events, err := r.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(stack + "-events")})
	if err != nil {
		t.Fatal(err)
	}
	d := events.Table
	if len(d.KeySchema) != 2 || aws.ToString(d.KeySchema[1].AttributeName) != "sk" || d.StreamSpecification == nil ||
		d.StreamSpecification.StreamViewType != ddbtypes.StreamViewTypeNewImage {
		t.Errorf("events table %+v", d)
	}
	ttl, err := r.ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(stack + "-guards")})
	if err != nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "expiresAt" {
		t.Errorf("guards TTL %+v, %v", ttl, err)
	}
	// The failure records of the read model expire too.
	ttl, err = r.ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(stack + "-readmodel")})
	if err != nil || ttl.TimeToLiveDescription.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled ||
		aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "expiresAt" {
		t.Errorf("read-model TTL %+v, %v", ttl, err)
	}

	attrs, err := r.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(r.QueueURL("ProjectionsQueue")),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	a := attrs.Attributes
	var redrive struct {
		Target string `json:"deadLetterTargetArn"`
		Max    any    `json:"maxReceiveCount"`
	}
	_ = json.Unmarshal([]byte(a["RedrivePolicy"]), &redrive)
	if a["FifoQueue"] != "true" || a["VisibilityTimeout"] != "20" || !strings.HasSuffix(redrive.Target, stack+"-projections-dlq.fifo") ||
		strings.Trim(jsonString(redrive.Max), `"`) != "3" {
		t.Errorf("projections queue %v", a)
	}

	env := r.functions["QueriesFunction"].env
	if !strings.Contains(env["PROJECTION_QUEUES"], r.QueueURL("ProjectionsQueue")+"|"+r.QueueURL("ProjectionsDLQ")) ||
		env["EVENTS_TABLE"] != stack+"-events" || env["AWS_LAMBDA_FUNCTION_NAME"] != stack+"-QueriesFunction" {
		t.Errorf("queries environment %v", env)
	}
	if env := r.functions["AuthorizerFunction"].env; env["JWKS_URL"] != "" || env["JWT_ISSUER"] != "chronicle-local" {
		t.Errorf("authorizer environment %v", env)
	}
	if env := r.functions["RelayFunction"].env; !strings.Contains(env["ROUTES"], "*="+r.QueueURL("ProjectionsQueue")) {
		t.Errorf("relay environment %v", env)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestQueueDeletesOnlySuccesses: a batch's messages are deleted but those
// reported failed, which come back after the visibility timeout.
func TestQueueDeletesOnlySuccesses(t *testing.T) {
	r := testRunner()
	r.sqs = awstest.SQS(t)
	ctx := t.Context()
	out, err := r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.TableName("partial")),
		Attributes: map[string]string{"VisibilityTimeout": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = r.sqs.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	q := queueInfo{name: "partial", url: aws.ToString(out.QueueUrl), arn: "arn:aws:sqs:us-east-1:123456789012:partial"}
	for _, body := range []string{"ok-1", "fail", "ok-2"} {
		if _, err := r.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	fn := &function{id: "Fn", timeout: 5 * time.Second, handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, m := range ev.Records {
			if m.Body == "fail" {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			}
			if m.EventSourceARN != q.arn || m.Attributes["ApproximateReceiveCount"] == "" {
				t.Errorf("message %+v", m)
			}
		}
		return resp, nil
	}}
	ev := template.QueueEvent{BatchSize: 10, FunctionResponseTypes: []string{template.ReportBatchItemFailures}}
	m := queueMapping{function: "Fn", event: ev}
	var msgs []sqstypes.Message
	for len(msgs) < 3 {
		got := r.receive(ctx, new(sync.Mutex), q, ev, 1)
		if len(got) == 0 {
			t.Fatal("nothing received")
		}
		msgs = append(msgs, got...)
	}
	if failed := r.handleMessages(ctx, m, q, fn, msgs); !failed {
		t.Error("handleMessages reported no failure")
	}
	var again []string
	deadline := time.Now().Add(10 * time.Second)
	for len(again) == 0 && time.Now().Before(deadline) {
		for _, msg := range r.receive(ctx, new(sync.Mutex), q, ev, 1) {
			again = append(again, aws.ToString(msg.Body))
		}
	}
	if !slices.Equal(again, []string{"fail"}) {
		t.Errorf("after the visibility timeout the queue holds %v, want only the failed message", again)
	}
}
