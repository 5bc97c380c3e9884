package template_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/infra/template"
)

// The rules make lint enforces on template.yaml (make template-check runs
// this package's tests, which need no emulator). Each rule is a function
// returning its violations, so that TestRulesCatchViolations can show it
// on a template that breaks it (testdata/violations.yaml).

// iamViolations: every statement of every role allows named actions (no
// "*" or "?" in an action, no NotAction) on named resources (no "*" in a
// resource once resolved, but for the actions that support no resource
// level permission, no NotResource); and no IAM policy lives outside a
// role, where the other rules would not see it.
func iamViolations(t *testing.T, tpl *template.Template) []string {
	t.Helper()
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	sts, err := tpl.Statements()
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) == 0 {
		add("no IAM statements")
	}
	for _, s := range sts {
		where := fmt.Sprintf("%s/%s statement %q", s.Role, s.Policy, s.Sid)
		if s.Effect != "Allow" {
			add("%s: Effect %q", where, s.Effect)
		}
		if len(s.NotActions) > 0 || len(s.NotResources) > 0 {
			add("%s: NotAction %v / NotResource %v grant all but what they name", where, s.NotActions, s.NotResources)
		}
		if len(s.Actions) == 0 || len(s.Resources) == 0 {
			add("%s: no action or no resource", where)
		}
		for _, a := range s.Actions {
			if strings.ContainsAny(a, "*?") {
				add("%s: wildcard action %q", where, a)
			}
		}
		for _, r := range s.Resources {
			resolved, err := tpl.Resolve(r, values{})
			if err != nil {
				add("%s: resource %q: %v", where, r, err)
				continue
			}
			if !strings.ContainsAny(resolved, "*?") {
				continue
			}
			for _, a := range s.Actions {
				if resolved != "*" || !wildcardResourceActions[a] {
					add("%s: %s on unscoped resource %q", where, a, resolved)
				}
			}
		}
	}
	for kind, ids := range map[string][]string{
		"AWS::IAM::Policy":        keys(tpl.GetAllIAMPolicyResources()),
		"AWS::IAM::ManagedPolicy": keys(tpl.GetAllIAMManagedPolicyResources()),
		"AWS::IAM::User":          keys(tpl.GetAllIAMUserResources()),
		"AWS::IAM::Group":         keys(tpl.GetAllIAMGroupResources()),
	} {
		for _, id := range ids {
			add("%s %s: policies belong inline in the function's role", kind, id)
		}
	}
	slices.Sort(out)
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// queueViolations: every queue has a dead-letter queue of its own kind in
// the template (RedrivePolicy), unless it is one: the target of another
// queue's RedrivePolicy or a stream mapping's on-failure destination. A
// dead-letter queue has none itself and keeps messages at least as long as
// the queues it serves.
func queueViolations(t *testing.T, tpl *template.Template) []string {
	t.Helper()
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	qs, err := tpl.Queues()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]template.Queue{}
	dead := map[string][]string{} // dead-letter queue → the queues it serves
	for _, q := range qs {
		byName[q.Name] = q
		if q.DeadLetterQueue != "" {
			dead[q.DeadLetterQueue] = append(dead[q.DeadLetterQueue], q.Name)
		}
	}
	for _, f := range fns {
		for _, e := range f.StreamEvents {
			if e.OnFailure != "" {
				dead[e.OnFailure] = append(dead[e.OnFailure], f.Name+"."+e.Name)
			}
		}
	}
	if len(qs) == 0 {
		add("no queues")
	}
	for _, q := range qs {
		if served, isDLQ := dead[q.Name]; isDLQ {
			if q.DeadLetterQueue != "" {
				add("queue %s is the dead-letter queue of %v and has one itself (%s)", q.Name, served, q.DeadLetterQueue)
			}
			for _, s := range served {
				if src, ok := byName[s]; ok && q.MessageRetentionPeriod < src.MessageRetentionPeriod {
					add("dead-letter queue %s keeps messages %ds, less than %s's %ds", q.Name, q.MessageRetentionPeriod, s, src.MessageRetentionPeriod)
				}
			}
			continue
		}
		dlq, ok := byName[q.DeadLetterQueue]
		switch {
		case q.DeadLetterQueue == "":
			add("queue %s has no dead-letter queue (RedrivePolicy)", q.Name)
		case !ok:
			add("queue %s: dead-letter target %q is not a queue of the template", q.Name, q.DeadLetterQueue)
		case dlq.FIFO != q.FIFO:
			add("queue %s (FIFO %v) has dead-letter queue %s (FIFO %v)", q.Name, q.FIFO, dlq.Name, dlq.FIFO)
		case q.MaxReceiveCount < 1:
			add("queue %s: maxReceiveCount %d", q.Name, q.MaxReceiveCount)
		}
	}
	slices.Sort(out)
	return out
}

// tableViolations: every table has point-in-time recovery and deletion
// protection set by the EnablePointInTimeRecovery and
// EnableDeletionProtection parameters (on when they are on, off when off),
// and the parameters exist, allow "true" and "false", and default to on.
func tableViolations(t *testing.T, path string, base map[string]string) []string {
	t.Helper()
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	params := parameters(t, path)
	for _, name := range []string{"EnablePointInTimeRecovery", "EnableDeletionProtection"} {
		p, ok := params[name]
		switch {
		case !ok:
			add("parameter %s missing", name)
			continue
		case fmt.Sprint(p.Default) != "true":
			add("parameter %s defaults to %v, want true", name, p.Default)
		}
		allowed := make([]string, len(p.AllowedValues))
		for i, v := range p.AllowedValues {
			allowed[i] = fmt.Sprint(v)
		}
		slices.Sort(allowed)
		if !slices.Equal(allowed, []string{"false", "true"}) {
			add("parameter %s allows %v, want false and true", name, p.AllowedValues)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, on := range []*bool{nil, new(true), new(false)} { // nil: the defaults
		p := map[string]string{}
		for k, v := range base {
			p[k] = v
		}
		want := true
		if on != nil {
			want = *on
			p["EnablePointInTimeRecovery"], p["EnableDeletionProtection"] = fmt.Sprint(want), fmt.Sprint(want)
		}
		tpl, err := template.Load(path, template.WithParameters(p))
		if err != nil {
			t.Fatal(err)
		}
		tables, err := tpl.Tables()
		if err != nil {
			t.Fatal(err)
		}
		if len(tables) == 0 {
			add("no tables")
		}
		for _, tb := range tables {
			if tb.PointInTimeRecovery != want {
				add("table %s: point-in-time recovery %v with the parameter %v", tb.Name, tb.PointInTimeRecovery, want)
			}
			if tb.DeletionProtection != want {
				add("table %s: deletion protection %v with the parameter %v", tb.Name, tb.DeletionProtection, want)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type parameter struct {
	Default       any   `json:"Default"`
	AllowedValues []any `json:"AllowedValues"`
}

func parameters(t *testing.T, path string) map[string]parameter {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := template.JSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Parameters map[string]parameter `json:"Parameters"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	return d.Parameters
}

// recoveryBound is how soon the read side must have recovered from a
// consumer that died with messages in flight (views converge
// within 30 s of a consumer crash). Those messages come back after their
// queue's visibility timeout, and FIFO holds the rest of their group
// behind them; pollSlack is how long Lambda's long-polling pollers take to
// receive a message visible again, and the batch may take up to the
// consumer's timeout.
const (
	recoveryBound = 30 // seconds
	pollSlack     = 1
)

// minVisibilityFactor: AWS advises 6; template.yaml explains why 4 (a
// batch delivered twice is harmless, and 6 x 5 s would break the bound).
const minVisibilityFactor = 4

// longJobs are queues whose consumers run long by design, outside the
// read side's recovery bound: a rebuild slice runs up to 15 minutes.
var longJobs = map[string]bool{"ReplayQueue": true}

// recoveryViolations: every SQS event source's queue has a visibility
// timeout of at least minVisibilityFactor x its consumer's timeout (room
// for throttled invocations before a batch is delivered twice), and, but
// for longJobs, visibility + timeout + pollSlack within recoveryBound.
func recoveryViolations(t *testing.T, tpl *template.Template) []string {
	t.Helper()
	var out []string
	qs, err := tpl.Queues()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]template.Queue{}
	for _, q := range qs {
		byName[q.Name] = q
	}
	for _, f := range fns {
		for _, e := range f.QueueEvents {
			q, ok := byName[e.Queue]
			if !ok {
				continue // queueViolations' and TestQueues' to report
			}
			if q.VisibilityTimeout < minVisibilityFactor*f.Timeout {
				out = append(out, fmt.Sprintf("queue %s: visibility timeout %ds < %d x %s's timeout %ds",
					q.Name, q.VisibilityTimeout, minVisibilityFactor, f.Name, f.Timeout))
			}
			if worst := q.VisibilityTimeout + f.Timeout + pollSlack; !longJobs[q.Name] && worst > recoveryBound {
				out = append(out, fmt.Sprintf("queue %s: after a crash of %s its messages come back in %ds and take up to %ds: %ds > the %ds recovery bound",
					q.Name, f.Name, q.VisibilityTimeout, f.Timeout, worst, recoveryBound))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestCrashRecoveryBound: recoveryViolations on template.yaml. The crash
// test (cmd/local/crash) measures the same bound on the local runner.
func TestCrashRecoveryBound(t *testing.T) {
	for _, v := range recoveryViolations(t, load(t, required)) {
		t.Error(v)
	}
}

// TestEveryQueueHasDeadLetterQueue: queueViolations on template.yaml.
func TestEveryQueueHasDeadLetterQueue(t *testing.T) {
	for _, v := range queueViolations(t, load(t, required)) {
		t.Error(v)
	}
}

// TestTableProtection: tableViolations on template.yaml.
func TestTableProtection(t *testing.T) {
	for _, v := range tableViolations(t, templatePath, required) {
		t.Error(v)
	}
}

// TestGatewayResponses: the answers API Gateway gives itself that the
// template shapes are problem+json (the HTTP contract), with a type and a title.
func TestGatewayResponses(t *testing.T) {
	raw, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := template.JSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Resources map[string]struct {
			Type       string `json:"Type"`
			Properties struct {
				GatewayResponses map[string]struct {
					ResponseParameters struct {
						Headers map[string]string `json:"Headers"`
					} `json:"ResponseParameters"`
					ResponseTemplates map[string]string `json:"ResponseTemplates"`
				} `json:"GatewayResponses"`
			} `json:"Properties"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	for id, r := range d.Resources {
		if r.Type != template.TypeAPI {
			continue
		}
		for _, typ := range []string{"UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} {
			if _, ok := r.Properties.GatewayResponses[typ]; !ok {
				t.Errorf("%s: no %s gateway response: API Gateway would answer {\"message\": ...}", id, typ)
			}
		}
		for typ, gr := range r.Properties.GatewayResponses {
			if ct := gr.ResponseParameters.Headers["Content-Type"]; ct != "'application/problem+json'" {
				t.Errorf("%s %s: Content-Type %s, want 'application/problem+json'", id, typ, ct)
			}
			body := strings.NewReplacer("$context.error.messageString", `"message"`, "$context.error.message", "message",
				"$context.error.responseType", typ, "$context.requestId", "id").Replace(gr.ResponseTemplates["application/json"])
			var p struct{ Type, Title string }
			if err := json.Unmarshal([]byte(body), &p); err != nil || p.Type == "" || p.Title == "" {
				t.Errorf("%s %s: template %q is not a problem with a type and a title (%v)", id, typ, body, err)
			}
		}
		for _, typ := range []string{"DEFAULT_4XX", "DEFAULT_5XX"} {
			if _, ok := r.Properties.GatewayResponses[typ]; !ok {
				t.Logf("%s: no %s: API Gateway's other answers (413 over 10 MB, 500 from the authorizer, 502, 504) are {\"message\": ...}, not problem+json", id, typ)
			}
		}
	}
}

// TestRulesCatchViolations: each rule finds what testdata/violations.yaml
// breaks, so that a green make lint means something.
func TestRulesCatchViolations(t *testing.T) {
	const path = "testdata/violations.yaml"
	tpl, err := template.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"iam": {
			`AWS::IAM::Policy LoosePolicy: policies belong inline in the function's role`,
			`FnRole/fn statement "NotAction": NotAction [s3:*] / NotResource [] grant all but what they name`,
			`FnRole/fn statement "NotAction": no action or no resource`,
			`FnRole/fn statement "StarAction": wildcard action "dynamodb:*"`,
			`FnRole/fn statement "Unscoped": dynamodb:GetItem on unscoped resource "arn:aws:dynamodb:us-east-1:123456789012:table/*"`,
			`FnRole/fn statement "WildcardResource": sqs:SendMessage on unscoped resource "*"`,
			`FnRole/fn statement "QuestionMark": wildcard action "sqs:?endMessage"`,
		},
		"queue": {
			`queue OrphanQueue has no dead-letter queue (RedrivePolicy)`,
			`queue WorkQueue (FIFO true) has dead-letter queue PlainDLQ (FIFO false)`,
		},
		"table": {
			`table BareTable: deletion protection false with the parameter true`,
			`table BareTable: point-in-time recovery false with the parameter true`,
		},
		"alarm": {
			`alarm StrayAlarm notifies [] (OK: []), not AlarmTopicArn`,
			`dead-letter queue PlainDLQ has no alarm on ApproximateNumberOfMessagesVisible`,
			`function Fn: no alarm on its Throttles`,
			`no alarm on the API's 5XXError`,
			`projection user-view has no ProjectionLag alarm in namespace Chronicle/stack`,
			`table BareTable: no alarm on its read and write throttle events`,
			`table GoodTable: no alarm on its read and write throttle events`,
		},
		"recovery": {
			`queue PlainDLQ: after a crash of Fn its messages come back in 30s and take up to 30s: 61s > the 30s recovery bound`,
			`queue PlainDLQ: visibility timeout 30s < 4 x Fn's timeout 30s`,
			`queue WorkQueue: after a crash of Fn its messages come back in 180s and take up to 30s: 211s > the 30s recovery bound`,
		},
	}
	got := map[string][]string{
		"iam":      iamViolations(t, tpl),
		"queue":    queueViolations(t, tpl),
		"table":    tableViolations(t, path, nil),
		"recovery": recoveryViolations(t, tpl),
		"alarm":    alarmViolations(t, tpl, []string{"user-view"}),
	}
	for rule, w := range want {
		slices.Sort(w)
		if !slices.Equal(got[rule], w) {
			t.Errorf("%s rule found:\n  %s\nwant:\n  %s", rule, strings.Join(got[rule], "\n  "), strings.Join(w, "\n  "))
		}
	}
}
