package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/infra/tracing/tracetree"
)

// TestTraceOfACreate: after a create, the runner's trace of its request
// id holds in one tree the API call, the command and its DynamoDB append,
// the relay and its SQS send, the projector's read-model write and the
// notifier's SES send (docs/tracing.md).
func TestTraceOfACreate(t *testing.T) {
	lr := startTestRunner(t, runnerOptions{template: envOr(envTemplate, templatePath), tracing: true})
	c := client{base: lr.url}
	r := c.do(t, req{method: "POST", path: "/users", token: s.admin,
		body: map[string]string{"name": "Trace Me", "email": uniqueEmail("trace")}}).want(t, http.StatusCreated)
	rid := r.header.Get("X-Request-Id")
	if rid == "" {
		t.Fatal("no X-Request-Id on the create's answer")
	}
	var tr tracetree.Trace
	eventually(t, 20*time.Second, "the trace of "+rid+" reaches the read model and the mail", func() (bool, string) {
		var err error
		if tr, err = getTrace(lr.url, rid); err != nil {
			return false, err.Error()
		}
		missing := missingFromTrace(tr)
		return len(missing) == 0, fmt.Sprintf("%d roots, missing %s", len(tr.Roots), strings.Join(missing, "; "))
	})
	var b strings.Builder
	tracetree.Print(&b, tr)
	t.Logf("\n%s", b.String())
}

func getTrace(base, id string) (tracetree.Trace, error) {
	var tr tracetree.Trace
	resp, err := httpClient.Get(base + "/_local/traces/" + id)
	if err != nil {
		return tr, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return tr, fmt.Errorf("GET /_local/traces/%s: %d", id, resp.StatusCode)
	}
	return tr, json.NewDecoder(resp.Body).Decode(&tr)
}

// missingFromTrace lists what the trace of a create lacks.
func missingFromTrace(tr tracetree.Trace) []string {
	var missing []string
	if len(tr.Roots) != 1 || tr.Roots[0].Name != "API Gateway POST /users" {
		missing = append(missing, "one root, the API Gateway span")
	}
	writes := []string{"DynamoDB.TransactWriteItems", "DynamoDB.PutItem", "DynamoDB.UpdateItem", "DynamoDB.BatchWriteItem"}
	// want: a span named name, under a span named under (anywhere in the
	// tree), with a descendant named one of calls.
	want := func(what, under, name string, calls ...string) {
		found := false
		tracetree.Walk(tr.Roots, func(s *tracetree.Span, _ int) {
			if s.Name != under {
				return
			}
			tracetree.Walk(s.Children, func(n *tracetree.Span, _ int) {
				if n.Name == name && (len(calls) == 0 || hasDescendant(n, calls)) {
					found = true
				}
			})
		})
		if !found {
			missing = append(missing, what)
		}
	}
	want("the authorizer", "API Gateway POST /users", "AuthorizerFunction")
	want("the command's append", "CommandsFunction", "command create", writes...)
	want("the relay's SQS send", "command create", "relay user.created.v1", "SQS.SendMessageBatch")
	want("the projector's read-model write", "relay user.created.v1", "project", writes...)
	want("the notifier's SES send", "relay user.created.v1", "notify", "SESv2.SendEmail")
	return missing
}

func hasDescendant(s *tracetree.Span, names []string) bool {
	found := false
	tracetree.Walk(s.Children, func(n *tracetree.Span, _ int) {
		found = found || slices.Contains(names, n.Name)
	})
	return found
}
