package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/api/apitest"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// functionTimeout is the queries function's Timeout in template.yaml: the
// Lambda runtime cancels the handler's context then, and API Gateway
// answers 504.
const functionTimeout = 10 * time.Second

// silentEndpoint is a TCP endpoint that accepts connections and never
// answers, as a service that hangs does. It returns its base URL.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) }) // read the request, never reply
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// silentSQS is an SQS client whose endpoint never answers, and the
// projections as template.yaml configures them, on queues of that endpoint.
func silentSQS(t *testing.T) func(*httpapi.QueriesDeps) {
	base := silentEndpoint(t)
	client := sqs.NewFromConfig(awstest.Config(t), func(o *sqs.Options) { o.BaseEndpoint = aws.String(base) })
	q := func(name string) string { return base + "/000000000000/" + name }
	return func(d *httpapi.QueriesDeps) {
		d.Queues = client
		d.Projections = []httpapi.Projection{
			{Name: userviews.ProjectionUserView, QueueURL: q("projections.fifo"), DLQURL: q("projections-dlq.fifo")},
			{Name: userviews.ProjectionActorActivity, QueueURL: q("projections.fifo"), DLQURL: q("projections-dlq.fifo")},
			{Name: "welcome-mail", QueueURL: q("notifications.fifo"), DLQURL: q("notifications-dlq.fifo")},
		}
	}
}

// TestOpsProjectionsWhenSQSDoesNotAnswer: GET /ops/projections gives each
// call its own deadline, and answers what it knows (the checkpoints) well
// within the function's timeout, marking the queue figures it could not read
// as unavailable instead of hanging until API Gateway answers 504.
func TestOpsProjectionsWhenSQSDoesNotAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSQS(t))
	id, _ := e.createUser(t, newSub("quinn"))
	e.project(t, id)

	ctx, cancel := context.WithTimeout(t.Context(), functionTimeout)
	defer cancel()
	start := time.Now()
	req := request(t, "queries/ops-projections.json")
	resp, err := e.qs.Handle(ctx, req)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	apitest.ValidateProxy(t, req, resp)
	if limit := httpapi.DependencyTimeout + 2*time.Second; took > limit {
		t.Errorf("answered after %s, want within %s (each call's deadline is %s)", took, limit, httpapi.DependencyTimeout)
	}
	var body struct {
		Projections map[string]map[string]json.RawMessage `json:"projections"`
		Errors      []string                              `json:"errors"`
	}
	wantJSON(t, resp, http.StatusOK, &body)
	for _, name := range []string{userviews.ProjectionUserView, userviews.ProjectionActorActivity, "welcome-mail"} {
		p, ok := body.Projections[name]
		if !ok {
			t.Errorf("%s missing: %s", name, resp.Body)
			continue
		}
		for _, f := range []string{"queueDepth", "inFlight", "deadLetterDepth"} {
			if v, ok := p[f]; !ok || string(v) != "null" {
				t.Errorf("%s.%s = %s, want null (unknown): %s", name, f, v, resp.Body)
			}
		}
		var unavailable []string
		_ = json.Unmarshal(p["unavailable"], &unavailable)
		if !slices.Equal(unavailable, []string{"queueDepth", "inFlight", "deadLetterDepth"}) {
			t.Errorf("%s.unavailable = %v: %s", name, unavailable, resp.Body)
		}
	}
	// What is known is still answered.
	if p := body.Projections[userviews.ProjectionUserView]; string(p["processed"]) != "1" || string(p["lastEventAt"]) == "null" {
		t.Errorf("user-view's checkpoint missing: %s", resp.Body)
	}
	if len(body.Errors) == 0 {
		t.Errorf("no errors say what is unknown: %s", resp.Body)
	}
	if n := len(e.logs.lines("ERROR")); n != 4 {
		t.Errorf("%d error lines, want one per queue that did not answer (4)", n)
	}
}

// TestHealthzWhenSQSDoesNotAnswer: /healthz stays cheap and answers within
// its deadline; the stores answer, so the service is up (200), but it says
// that it is degraded: the projection queues do not answer, so views fall
// behind.
func TestHealthzWhenSQSDoesNotAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, silentSQS(t))
	ctx, cancel := context.WithTimeout(t.Context(), functionTimeout)
	defer cancel()
	start := time.Now()
	req := request(t, "queries/healthz.json")
	resp, err := e.qs.Handle(ctx, req)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	apitest.ValidateProxy(t, req, resp)
	if limit := httpapi.DependencyTimeout + 2*time.Second; took > limit {
		t.Errorf("answered after %s, want within %s", took, limit)
	}
	var body map[string]string
	wantJSON(t, resp, http.StatusOK, &body)
	if body["status"] != "degraded" || body["detail"] == "" {
		t.Errorf("body %v, want status degraded and a detail", body)
	}
}
