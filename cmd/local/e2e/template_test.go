package e2e

import (
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// The runner's behaviour comes from template.yaml: editing a route's path
// or a queue's batch size there, and nothing else, changes what it does.

func readTemplate() ([]byte, error) { return os.ReadFile(templatePath) }

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// invocations records what a runner invoked.
type invocations struct {
	mu  sync.Mutex
	all []runner.Invocation
}

func (i *invocations) observe(inv runner.Invocation) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.all = append(i.all, inv)
}

func (i *invocations) of(function, trigger string) []runner.Invocation {
	i.mu.Lock()
	defer i.mu.Unlock()
	var out []runner.Invocation
	for _, inv := range i.all {
		if inv.Function == function && inv.Trigger == trigger {
			out = append(out, inv)
		}
	}
	return out
}

// TestRoutePathComesFromTheTemplate moves the history route to another
// path in a copy of the template: the old path is no route any more
// (API Gateway's own 404, no function invoked), the new one reaches the
// queries function with the new resource and its path parameter.
func TestRoutePathComesFromTheTemplate(t *testing.T) {
	t.Parallel()
	var seen invocations
	lr := startTestRunner(t, runnerOptions{
		template: editedTemplate(t, func(y string) string {
			return replaceOnce(t, y, `Path: "/users/{id}/history"`, `Path: "/users/{id}/timeline"`)
		}),
		observe: seen.observe,
	})
	c := client{base: lr.url}
	id := uuid.NewString()

	p := c.do(t, req{method: "GET", path: "/users/" + id + "/history", token: s.admin}).wantProblem(t, http.StatusNotFound)
	if p.Type != "about:blank" {
		t.Errorf("old path: %+v, want the gateway's own 404", p)
	}
	if got := seen.of("QueriesFunction", "api"); len(got) != 0 {
		t.Errorf("old path invoked %+v", got)
	}

	c.do(t, req{method: "GET", path: "/users/" + id + "/timeline", token: s.admin})
	got := seen.of("QueriesFunction", "api")
	if len(got) != 1 || got[0].Source != "GET /users/{id}/timeline" {
		t.Fatalf("new path invoked %+v", got)
	}
	ev := got[0].Request.(events.APIGatewayProxyRequest)
	if ev.Resource != "/users/{id}/timeline" || ev.PathParameters["id"] != id || ev.RequestContext.ResourcePath != "/users/{id}/timeline" ||
		ev.RequestContext.Authorizer["sub"] != s.adminSub || ev.RequestContext.Stage != "dev" {
		t.Errorf("event %+v", ev)
	}
}

// TestBatchSizeComesFromTheTemplate: ten events of one user wait in the
// projections queue before the runner polls it; with the template's
// BatchSize 10 the projector gets them in one batch, with BatchSize 3 (a
// copy of the template) in batches of at most three.
func TestBatchSizeComesFromTheTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		batch int
		edit  func(string) string
	}{
		{10, func(y string) string { return y }},
		{3, func(y string) string {
			return replaceOnce(t, y, "Queue: !GetAtt ProjectionsQueue.Arn\n            BatchSize: 10",
				"Queue: !GetAtt ProjectionsQueue.Arn\n            BatchSize: 3")
		}},
	} {
		t.Run("BatchSize "+strconv.Itoa(tc.batch), func(t *testing.T) {
			t.Parallel()
			var seen invocations
			id := uuid.NewString()
			lr := startTestRunner(t, runnerOptions{
				template: editedTemplate(t, tc.edit),
				observe:  seen.observe,
				beforeServe: func(r *runner.Runner) error {
					return enqueueEvents(t, r.QueueURL("ProjectionsQueue"), id, 10)
				},
			})
			var sizes []int
			eventually(t, 20*time.Second, "the projector has had the ten events", func() (bool, string) {
				sizes = nil
				total := 0
				for _, inv := range seen.of("ProjectorFunction", "sqs") {
					sizes = append(sizes, inv.Records)
					total += inv.Records
				}
				return total >= 10, strconv.Itoa(total)
			})
			var u userAnswer
			client{base: lr.url}.do(t, req{method: "GET", path: "/users/" + id, token: s.admin}).want(t, http.StatusOK).decode(t, &u)
			if u.Version != 10 || u.Name != "Batch 10" {
				t.Errorf("read model %+v, want v10", u)
			}
			if slices.Max(sizes) != tc.batch {
				t.Errorf("projector batches %v, want the largest %d", sizes, tc.batch)
			}
			t.Logf("BatchSize %d: projector batches %v", tc.batch, sizes)
		})
	}
}

// enqueueEvents puts n events of one new user (created, then renamed) in a
// FIFO queue as the relay would send them.
func enqueueEvents(t *testing.T, queueURL, id string, n int) error {
	reg := user.NewRegistry()
	client := sqs.NewFromConfig(*s.aws)
	var entries []sqstypes.SendMessageBatchRequestEntry
	for v := 1; v <= n; v++ {
		var ev es.Event = user.Renamed{Name: "Batch " + strconv.Itoa(v)}
		if v == 1 {
			ev = user.Created{Name: "Batch", Email: uniqueEmail("batch")}
		}
		typ, schema, data, err := reg.Encode(ev)
		if err != nil {
			return err
		}
		rec := es.Record{ID: uuid.Must(uuid.NewV7()).String(), AggregateID: id, AggregateType: "user", Version: int64(v),
			Type: typ, SchemaVersion: schema, OccurredAt: time.Now().UTC(), Data: data, Metadata: es.Metadata{Actor: "e2e"}}
		body, err := relay.EncodeMessage(rec)
		if err != nil {
			return err
		}
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(v)), MessageBody: aws.String(body),
			MessageGroupId: aws.String(id), MessageDeduplicationId: aws.String(rec.ID)})
	}
	for chunk := range slices.Chunk(entries, 10) {
		if _, err := client.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: chunk}); err != nil {
			return err
		}
	}
	return nil
}
