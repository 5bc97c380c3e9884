package iamcheck_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/template"
)

const templatePath = "../../template.yaml"

// params stand for the parameters without a default.
var params = map[string]string{"JwtIssuer": "https://issuer.example", "JwksUrl": "https://issuer.example/jwks", "EmailSender": "no-reply@example.com"}

func load(t *testing.T, edit func(string) string) *template.Template {
	t.Helper()
	b, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	y := string(b)
	if edit != nil {
		y = edit(y)
	}
	tpl, err := template.Parse([]byte(y), template.WithParameters(params))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func stackOf(t *testing.T, tpl *template.Template) (*iamcheck.Stack, map[string]*iamcheck.Policy) {
	t.Helper()
	st, err := iamcheck.NewStack(tpl, "s", "us-east-1", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	p, err := iamcheck.Policies(tpl, st)
	if err != nil {
		t.Fatal(err)
	}
	return st, p
}

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "anything:at/all", true},
		{"arn:aws:dynamodb:us-east-1:1:table/t", "arn:aws:dynamodb:us-east-1:1:table/t", true},
		{"arn:aws:dynamodb:us-east-1:1:table/t", "arn:aws:dynamodb:us-east-1:1:table/t/index/i", false},
		{"arn:aws:dynamodb:us-east-1:1:table/t/index/*", "arn:aws:dynamodb:us-east-1:1:table/t/index/i", true},
		{"arn:aws:dynamodb:*:*:table/t*", "arn:aws:dynamodb:eu-west-1:2:table/tx", true},
		{"arn:aws:logs:r:1:log-group:g:*", "arn:aws:logs:r:1:log-group:g:log-stream:*", true},
		{"table/t?", "table/t1", true},
		{"table/t?", "table/t", false},
		{"table/t?", "table/t12", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"Table/T", "table/t", false}, // resources are case-sensitive
	}
	for _, c := range cases {
		if got := iamcheck.Match(c.pattern, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// TestLambdaCallsAreGranted: what Lambda does with each role (logs, the
// event source mappings, the relay's on-failure queue) is granted.
func TestLambdaCallsAreGranted(t *testing.T) {
	tpl := load(t, nil)
	st, policies := stackOf(t, tpl)
	checker := iamcheck.NewChecker(policies, st.Account)
	if err := checker.CheckLambda(tpl, st); err != nil {
		t.Error(err)
	}
	// Without ReceiveMessage on its queue, the projector's mapping fails.
	tpl = load(t, func(y string) string {
		return strings.Replace(y, "Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes]\n                Resource: !GetAtt ProjectionsQueue.Arn",
			"Action: [sqs:DeleteMessage, sqs:GetQueueAttributes]\n                Resource: !GetAtt ProjectionsQueue.Arn", 1)
	})
	st, policies = stackOf(t, tpl)
	err := iamcheck.NewChecker(policies, st.Account).CheckLambda(tpl, st)
	if err == nil || !strings.Contains(err.Error(), "ProjectorFunction: sqs:ReceiveMessage on arn:aws:sqs:us-east-1:123456789012:s-projections.fifo (by Lambda for it) not granted") {
		t.Errorf("without ReceiveMessage: %v", err)
	}
}

func TestCheck(t *testing.T) {
	tpl := load(t, nil)
	_, policies := stackOf(t, tpl)
	table := func(name string) string { return "arn:aws:dynamodb:us-east-1:123456789012:table/s-" + name }
	cases := []struct {
		call    iamcheck.Call
		granted bool
		message string
	}{
		{call: iamcheck.Call{Function: "CommandsFunction", Action: "dynamodb:PutItem", Resource: table("events")}, granted: true},
		{call: iamcheck.Call{Function: "CommandsFunction", Action: "DynamoDB:putitem", Resource: table("events")}, granted: true},
		{call: iamcheck.Call{Function: "CommandsFunction", Action: "dynamodb:PutItem", Resource: table("readmodel")},
			message: "CommandsFunction: dynamodb:PutItem on " + table("readmodel") + " not granted; add to CommandsRole:\n  - Effect: Allow\n    Action: [dynamodb:PutItem]\n    Resource: !GetAtt ReadModelTable.Arn"},
		{call: iamcheck.Call{Function: "QueriesFunction", Action: "dynamodb:Query", Resource: table("readmodel") + "/index/byEmail"},
			message: "Resource: !Sub \"${ReadModelTable.Arn}/index/*\""},
		{call: iamcheck.Call{Function: "RelayFunction", Action: "dynamodb:ListStreams", Resource: "*"}, granted: true},
		{call: iamcheck.Call{Function: "NotifierFunction", Action: "ses:SendEmail", Resource: "arn:aws:ses:us-east-1:123456789012:identity/no-reply@example.com",
			Context: map[string]string{"ses:FromAddress": "no-reply@example.com"}}, granted: true},
		{call: iamcheck.Call{Function: "NotifierFunction", Action: "ses:SendEmail", Resource: "arn:aws:ses:us-east-1:123456789012:identity/example.com",
			Context: map[string]string{"ses:FromAddress": "no-reply@example.com"}}, granted: true},
		// The condition: only as the sender's address.
		{call: iamcheck.Call{Function: "NotifierFunction", Action: "ses:SendEmail", Resource: "arn:aws:ses:us-east-1:123456789012:identity/example.com",
			Context: map[string]string{"ses:FromAddress": "ceo@example.com"}}, message: "not granted"},
		{call: iamcheck.Call{Function: "AuthorizerFunction", Action: "dynamodb:GetItem", Resource: table("guards")}, message: "add to AuthorizerRole"},
	}
	for _, c := range cases {
		p := policies[c.call.Function]
		grants, err := p.Check(c.call)
		if c.granted {
			if err != nil || len(grants) == 0 {
				t.Errorf("%+v: %v, want granted", c.call, err)
			}
			continue
		}
		var denied *iamcheck.DeniedError
		if !errors.As(err, &denied) || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%+v: grants %v, error %v; want one saying %q", c.call, grants, err, c.message)
		}
	}
}

// TestRecorder: the middleware turns each operation into the actions and
// resources IAM authorizes, before anything is sent.
func TestRecorder(t *testing.T) {
	tpl := load(t, nil)
	_, policies := stackOf(t, tpl)
	var got []iamcheck.Record
	checker := iamcheck.NewChecker(policies, "123456789012", func(r iamcheck.Record) { got = append(got, r) })
	cfg := aws.Config{Region: "us-east-1", APIOptions: []func(*middleware.Stack) error{checker.APIOptions("NotifierFunction"), stopBeforeSend}}
	ctx := context.Background()
	ddb := dynamodb.NewFromConfig(cfg)
	key := map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "k"}}
	_, _ = ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("s-guards"), Key: key})
	_, _ = ddb.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("s-readmodel"), IndexName: aws.String("byEmail")})
	_, _ = ddb.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
		{Put: &ddbtypes.Put{TableName: aws.String("s-events"), Item: key}},
		{ConditionCheck: &ddbtypes.ConditionCheck{TableName: aws.String("s-guards"), Key: key, ConditionExpression: aws.String("attribute_exists(pk)")}},
		{Put: &ddbtypes.Put{TableName: aws.String("s-events"), Item: key}},
	}})
	_, _ = sqs.NewFromConfig(cfg).DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{
		QueueUrl: aws.String("http://127.0.0.1:5000/123456789012/s-notifications.fifo"),
		Entries:  []sqstypes.DeleteMessageBatchRequestEntry{{Id: aws.String("1"), ReceiptHandle: aws.String("r")}}})
	_, _ = sesv2.NewFromConfig(cfg).SendEmail(ctx, &sesv2.SendEmailInput{FromEmailAddress: aws.String("Chronicle <no-reply@example.com>"),
		Content: &sestypes.EmailContent{}})

	var lines []string
	for _, r := range got {
		line := r.Function + " " + r.Action + " " + r.Resource
		if r.Denied != "" {
			line += " DENIED"
		}
		lines = append(lines, line)
	}
	want := []string{
		"NotifierFunction dynamodb:GetItem arn:aws:dynamodb:us-east-1:123456789012:table/s-guards DENIED",
		"NotifierFunction dynamodb:Query arn:aws:dynamodb:us-east-1:123456789012:table/s-readmodel/index/byEmail DENIED",
		"NotifierFunction dynamodb:ConditionCheckItem arn:aws:dynamodb:us-east-1:123456789012:table/s-guards DENIED",
		"NotifierFunction dynamodb:PutItem arn:aws:dynamodb:us-east-1:123456789012:table/s-events DENIED",
		"NotifierFunction sqs:DeleteMessage arn:aws:sqs:us-east-1:123456789012:s-notifications.fifo",
		"NotifierFunction ses:SendEmail arn:aws:ses:us-east-1:123456789012:identity/no-reply@example.com",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("recorded\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

var errStopped = errors.New("stopped before send")

// stopBeforeSend ends every operation before it is signed and sent.
func stopBeforeSend(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("stop", func(context.Context, middleware.FinalizeInput, middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, errStopped
	}), middleware.Before)
}

// TestSummarize: grants are counted per action and resource; Lambda's own
// calls count apart; a denial is reported.
func TestSummarize(t *testing.T) {
	tpl := load(t, nil)
	_, policies := stackOf(t, tpl)
	var recs []iamcheck.Record
	c := iamcheck.NewChecker(policies, "123456789012", func(r iamcheck.Record) { recs = append(recs, r) })
	c.Check(iamcheck.Call{Function: "CommandsFunction", Action: "dynamodb:Query", Resource: "arn:aws:dynamodb:us-east-1:123456789012:table/s-events"})
	c.Check(iamcheck.Call{Function: "CommandsFunction", Action: "dynamodb:Scan", Resource: "arn:aws:dynamodb:us-east-1:123456789012:table/s-events"})
	sum, err := iamcheck.Summarize(tpl, recs)
	if err != nil {
		t.Fatal(err)
	}
	has := func(gs []iamcheck.Grant, s string) bool {
		return slices.ContainsFunc(gs, func(g iamcheck.Grant) bool { return g.String() == s })
	}
	if !has(sum.ByCode, "CommandsRole statement EventStore: dynamodb:Query on !GetAtt EventsTable.Arn") {
		t.Errorf("used by code: %v", sum.ByCode)
	}
	if !has(sum.Unused, "CommandsRole statement EventStore: dynamodb:PutItem on !GetAtt EventsTable.Arn") {
		t.Errorf("unused: %v", sum.Unused)
	}
	if !has(sum.ByLambdaOnly, "RelayRole statement ListStreams: dynamodb:ListStreams on \"*\"") {
		t.Errorf("Lambda's: %v", sum.ByLambdaOnly)
	}
	if len(sum.Denied) != 1 || !strings.HasPrefix(sum.Denied[0], "CommandsFunction: dynamodb:Scan on") {
		t.Errorf("denied: %v", sum.Denied)
	}
}

// TestStackSetName: a package test's random names (tables, queues, the
// emulator's stream ARN) stand for the template's resources in the roles.
func TestStackSetName(t *testing.T) {
	tpl := load(t, nil)
	st, err := iamcheck.NewStack(tpl, "s", "us-east-1", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	stream := "arn:aws:dynamodb:ddblocal:000000000000:table/events-x/stream/2026-01-01T00:00:00.000"
	for id, name := range map[string]string{"EventsTable": "events-x", "ProjectionsQueue": "q-x.fifo", "EventsTable.StreamArn": stream} {
		if err := st.SetName(id, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetName("CommandsFunction", "f"); err == nil {
		t.Error("SetName named a function")
	}
	p, err := iamcheck.Policies(tpl, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []iamcheck.Call{
		{Function: "ProjectorFunction", Action: "dynamodb:Query", Resource: "arn:aws:dynamodb:us-east-1:123456789012:table/events-x"},
		{Function: "RelayFunction", Action: "sqs:SendMessage", Resource: "arn:aws:sqs:us-east-1:123456789012:q-x.fifo"},
		{Function: "RelayFunction", Action: "dynamodb:GetRecords", Resource: stream},
	} {
		if _, err := p[c.Function].Check(c); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if _, err := p["ProjectorFunction"].Check(iamcheck.Call{Function: "ProjectorFunction", Action: "dynamodb:Query",
		Resource: "arn:aws:dynamodb:us-east-1:123456789012:table/s-EventsTable"}); err == nil {
		t.Error("the made-up name is still granted")
	}
}
