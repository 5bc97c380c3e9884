package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/api/apitest"
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// The production dependencies satisfy the handlers' interfaces.
var (
	_ httpapi.UserLoader      = (*es.Service[user.State, user.Command])(nil)
	_ httpapi.EventLoader     = (*dynamo.Store)(nil)
	_ httpapi.ReadModel       = (*userviews.Store)(nil)
	_ httpapi.QueueAttributes = (*sqs.Client)(nil)
)

// fixtureID is the user id in the fixtures' paths; withID replaces it.
const fixtureID = "0190a5f0-7c3e-7d2a-9b1e-3f4a5b6c7d8e"

// fixture reads a REST API proxy event from testdata/ at the repository root.
func fixture(t testing.TB, name string) events.APIGatewayProxyRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return req
}

// opt adjusts a request built from a fixture.
type opt func(*events.APIGatewayProxyRequest)

func request(t testing.TB, name string, opts ...opt) events.APIGatewayProxyRequest {
	t.Helper()
	req := fixture(t, name)
	for _, o := range opts {
		o(&req)
	}
	return req
}

// withID puts id in the {id} path parameter and the paths.
func withID(id string) opt {
	return func(r *events.APIGatewayProxyRequest) {
		r.PathParameters = maps.Clone(r.PathParameters)
		r.PathParameters["id"] = id
		r.Path = strings.Replace(r.Path, fixtureID, id, 1)
		r.RequestContext.Path = strings.Replace(r.RequestContext.Path, fixtureID, id, 1)
	}
}

// withActor puts sub in the {sub} path parameter of the activity route.
func withActor(sub string) opt {
	return func(r *events.APIGatewayProxyRequest) {
		r.PathParameters = map[string]string{"sub": sub}
		r.Path = "/actors/" + sub + "/activity"
	}
}

// as makes the authorizer context that of sub with roles.
func as(sub string, roles ...string) opt {
	return func(r *events.APIGatewayProxyRequest) {
		r.RequestContext.Authorizer = auth.Principal{Sub: sub, Roles: roles}.AuthorizerContext()
		r.RequestContext.Authorizer["principalId"] = sub
		r.RequestContext.Authorizer["integrationLatency"] = 3
	}
}

func asAdmin() opt { return as("admin-"+uuid.NewString()[:8], "admin") }

// anonymous removes the principal, as if no authorizer ran.
func anonymous() opt {
	return func(r *events.APIGatewayProxyRequest) { r.RequestContext.Authorizer = nil }
}

// withBody sets the body: a string as it is, anything else as JSON.
func withBody(v any) opt {
	return func(r *events.APIGatewayProxyRequest) {
		if s, ok := v.(string); ok {
			r.Body = s
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		r.Body = string(b)
	}
}

// base64Body encodes the body as API Gateway does for binary media types.
func base64Body() opt {
	return func(r *events.APIGatewayProxyRequest) {
		r.Body = base64.StdEncoding.EncodeToString([]byte(r.Body))
		r.IsBase64Encoded = true
	}
}

// withHeader replaces every case variant of k in both header maps.
func withHeader(k string, vals ...string) opt {
	return func(r *events.APIGatewayProxyRequest) {
		r.Headers, r.MultiValueHeaders = maps.Clone(r.Headers), maps.Clone(r.MultiValueHeaders)
		if r.Headers == nil {
			r.Headers = map[string]string{}
		}
		if r.MultiValueHeaders == nil {
			r.MultiValueHeaders = map[string][]string{}
		}
		for h := range r.Headers {
			if strings.EqualFold(h, k) {
				delete(r.Headers, h)
			}
		}
		for h := range r.MultiValueHeaders {
			if strings.EqualFold(h, k) {
				delete(r.MultiValueHeaders, h)
			}
		}
		if len(vals) > 0 {
			r.Headers[k] = vals[len(vals)-1]
			r.MultiValueHeaders[k] = vals
		}
	}
}

func withoutHeader(k string) opt { return withHeader(k) }

// withQuery sets query parameter k in both maps.
func withQuery(k string, vals ...string) opt {
	return func(r *events.APIGatewayProxyRequest) {
		r.QueryStringParameters, r.MultiValueQueryStringParameters = maps.Clone(r.QueryStringParameters), maps.Clone(r.MultiValueQueryStringParameters)
		if r.QueryStringParameters == nil {
			r.QueryStringParameters = map[string]string{}
		}
		if r.MultiValueQueryStringParameters == nil {
			r.MultiValueQueryStringParameters = map[string][]string{}
		}
		r.QueryStringParameters[k] = vals[len(vals)-1]
		r.MultiValueQueryStringParameters[k] = vals
	}
}

func withoutQuery(k string) opt {
	return func(r *events.APIGatewayProxyRequest) {
		r.QueryStringParameters, r.MultiValueQueryStringParameters = maps.Clone(r.QueryStringParameters), maps.Clone(r.MultiValueQueryStringParameters)
		delete(r.QueryStringParameters, k)
		delete(r.MultiValueQueryStringParameters, k)
	}
}

// withRoute sends the request to another method and template.
func withRoute(method, resource, path string) opt {
	return func(r *events.APIGatewayProxyRequest) {
		r.HTTPMethod, r.Resource, r.Path = method, resource, path
		r.RequestContext.HTTPMethod, r.RequestContext.ResourcePath = method, resource
	}
}

// handler is Commands or Queries.
type handler interface {
	Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)
}

// do calls h and checks what every answer has: no error, an X-Request-Id
// and a JSON body of the right media type; and the exchange against the
// OpenAPI document.
func do(t testing.TB, h handler, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := h.Handle(t.Context(), req)
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	apitest.ValidateProxy(t, req, resp)
	if resp.Headers["X-Request-Id"] == "" {
		t.Errorf("answer %d has no X-Request-Id", resp.StatusCode)
	}
	ct := resp.Headers["Content-Type"]
	if ct != "application/json" && ct != "application/problem+json" {
		t.Errorf("answer %d has Content-Type %q", resp.StatusCode, ct)
	}
	if !json.Valid([]byte(resp.Body)) {
		t.Errorf("answer %d body is not JSON: %q", resp.StatusCode, resp.Body)
	}
	return resp
}

// problemBody is an RFC 9457 problem as the API answers it.
type problemBody struct {
	Type           string            `json:"type"`
	Title          string            `json:"title"`
	Status         int               `json:"status"`
	Detail         string            `json:"detail"`
	Errors         []user.FieldError `json:"errors"`
	CurrentVersion *int64            `json:"currentVersion"`
}

// wantProblem checks that resp is a problem with status and returns it.
func wantProblem(t testing.TB, resp events.APIGatewayProxyResponse, status int) problemBody {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, resp.Body)
	}
	if ct := resp.Headers["Content-Type"]; ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, resp.Body)
	}
	if p.Status != status || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("problem %+v: want status %d, a type, a title and a detail", p, status)
	}
	return p
}

// wantFields checks that p lists exactly fields (in any order).
func wantFields(t testing.TB, p problemBody, fields ...string) {
	t.Helper()
	var got []string
	for _, f := range p.Errors {
		got = append(got, f.Field)
		if f.Message == "" {
			t.Errorf("field %q has no message", f.Field)
		}
	}
	slices.Sort(got)
	fields = slices.Clone(fields)
	slices.Sort(fields)
	if !slices.Equal(got, fields) {
		t.Errorf("problem lists fields %v, want %v (%+v)", got, fields, p)
	}
}

// wantJSON checks resp's status and decodes its JSON body into v.
func wantJSON(t testing.TB, resp events.APIGatewayProxyResponse, status int, v any) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, resp.Body)
	}
	if ct := resp.Headers["Content-Type"]; ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(resp.Body), v); err != nil {
			t.Fatalf("body: %v: %s", err, resp.Body)
		}
	}
}

// writeBody is the answer of a command.
type writeBody struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// env is the service over fresh tables on the emulator: the event store,
// the read model, the projector between them, and both handlers.
type env struct {
	store  *dynamo.Store
	tables dynamo.Tables
	svc    *es.Service[user.State, user.Command]
	rm     *userviews.Store
	proj   *projector.Projector
	cmds   *httpapi.Commands
	qs     *httpapi.Queries
	logs   *syncBuffer
}

// snapshotEvery is small so that the tests load from snapshots too.
const snapshotEvery = 3

func newEnv(t *testing.T, deps ...func(*httpapi.QueriesDeps)) *env {
	t.Helper()
	store, tables := readmodeltest.EventStore(t)
	rm := userviews.New(readmodeltest.Store(t))
	e := &env{store: store, tables: tables, rm: rm, logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.svc = user.NewService(store, es.Options{SnapshotEvery: snapshotEvery, MaxAttempts: 8, CacheSize: 256})
	e.proj = projector.New(store, user.NewRegistry(), rm, userviews.Projections(), logger, time.Now)
	e.cmds = httpapi.NewCommands(e.svc, logger)
	d := httpapi.QueriesDeps{
		Users: e.svc, Events: store, ReadModel: rm, Logger: logger,
		Health: func(ctx context.Context) error {
			if _, err := store.Load(ctx, "healthz", 1, 1); err != nil {
				return err
			}
			_, _, err := rm.UserView(ctx, "healthz")
			return err
		},
	}
	for _, f := range deps {
		f(&d)
	}
	qs, err := httpapi.NewQueries(d)
	if err != nil {
		t.Fatal(err)
	}
	e.qs = qs
	return e
}

// project runs the real projector over every event of users ids, as the
// relay would deliver them (duplicates are skipped by the projector).
func (e *env) project(t testing.TB, ids ...string) {
	t.Helper()
	var ev events.SQSEvent
	for _, id := range ids {
		recs, err := e.store.Load(t.Context(), id, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			body, err := relay.EncodeMessage(r)
			if err != nil {
				t.Fatal(err)
			}
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: uuid.NewString(), Body: body,
				Attributes: map[string]string{"MessageGroupId": r.AggregateID, "MessageDeduplicationId": r.ID},
			})
		}
	}
	resp, err := e.proj.Handle(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("projector: %v, failures %v; logs:\n%s", err, resp.BatchItemFailures, e.logs)
	}
}

// newSub is an identity no other test uses.
func newSub(name string) string { return name + "-" + uuid.NewString()[:13] }

// createUser creates the user of identity sub through the API, as sub.
func (e *env) createUser(t testing.TB, sub string) (id, email string) {
	t.Helper()
	email = strings.ToLower(sub) + "@example.com"
	resp := do(t, e.cmds, request(t, "commands/create-user.json", as(sub),
		withBody(map[string]string{"name": "User " + sub, "email": email})))
	var w writeBody
	wantJSON(t, resp, 201, &w)
	return w.ID, email
}

// run sends a request and wants status, for arranging a test.
func (e *env) run(t testing.TB, h handler, status int, req events.APIGatewayProxyRequest) writeBody {
	t.Helper()
	resp := do(t, h, req)
	var w writeBody
	if resp.StatusCode != status {
		t.Fatalf("arrange: status %d, want %d: %s", resp.StatusCode, status, resp.Body)
	}
	_ = json.Unmarshal([]byte(resp.Body), &w)
	return w
}

// version is the user's version in the event store.
func (e *env) version(t testing.TB, id string) int64 {
	t.Helper()
	agg, err := e.svc.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return agg.Version
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines at level.
func (b *syncBuffer) lines(level string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["level"] == level {
			out = append(out, m)
		}
	}
	return out
}
