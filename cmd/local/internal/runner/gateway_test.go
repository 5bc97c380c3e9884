package runner

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/infra/template"
)

const templatePath = "../../../../template.yaml"

var discard = slog.New(slog.DiscardHandler)

// testRunner is a runner with hand-made functions and no AWS.
func testRunner(fns ...*function) *Runner {
	r := &Runner{cfg: Config{StackName: "test"}, log: discard, fnLog: discard, region: "us-east-1", functions: map[string]*function{}}
	for _, f := range fns {
		if f.timeout == 0 {
			f.timeout = 5 * time.Second
		}
		r.functions[f.id] = f
	}
	return r
}

func testGateway(t *testing.T, r *Runner, routes ...route) *gateway {
	t.Helper()
	replies, err := readGatewayReplies(templatePath, "Api")
	if err != nil {
		t.Fatal(err)
	}
	for i := range routes {
		routes[i].segments = splitPath(routes[i].path)
	}
	r.plan = &plan{routes: routes, stage: "dev", gatewayReplies: replies}
	g, err := newGateway(r)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func serve(g *gateway, method, target string, header map[string]string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, req)
	return w
}

// TestAuthorizerAsAPIGateway: the TOKEN authorizer's answers become what
// API Gateway answers, with the template's GatewayResponses.
func TestAuthorizerAsAPIGateway(t *testing.T) {
	var authorized atomic.Int32
	authorizer := &function{id: "Auth", handler: func(_ context.Context, in events.APIGatewayCustomAuthorizerRequest) (map[string]any, error) {
		authorized.Add(1)
		allow := map[string]any{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:us-east-1:123456789012:test/dev/*/*"}
		deny := map[string]any{"Effect": "Deny", "Action": []string{"execute-api:*"}, "Resource": []string{in.MethodArn}}
		policy := func(sts ...map[string]any) map[string]any {
			return map[string]any{"Version": "2012-10-17", "Statement": sts}
		}
		switch in.AuthorizationToken {
		case "allow", "cached":
			return map[string]any{"principalId": "alice", "policyDocument": policy(allow),
				"context": map[string]any{"sub": "alice", "n": 42, "ok": true}}, nil
		case "deny":
			return map[string]any{"principalId": "alice", "policyDocument": policy(allow, deny)}, nil
		case "elsewhere":
			return map[string]any{"principalId": "alice", "policyDocument": policy(map[string]any{"Effect": "Allow",
				"Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:us-east-1:123456789012:test/dev/POST/*"})}, nil
		case "nested":
			return map[string]any{"principalId": "alice", "policyDocument": policy(allow), "context": map[string]any{"x": map[string]any{}}}, nil
		case "boom":
			return nil, errors.New("jwks unreachable")
		}
		return nil, errors.New("Unauthorized")
	}}
	var seen events.APIGatewayProxyRequest
	fn := &function{id: "Fn", handler: func(_ context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		seen = req
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "{}"}, nil
	}}
	g := testGateway(t, testRunner(authorizer, fn), route{method: "GET", path: "/things/{id}", function: "Fn",
		authorizer: &template.Authorizer{Function: "Auth", PayloadType: "TOKEN", Header: "Authorization", ReauthorizeEvery: 300}})

	cases := []struct {
		token  string
		status int
		title  string // of the template's problem, "" for API Gateway's default body
		body   string
	}{
		{"", 401, "Unauthorized", ""},
		{"nobody", 401, "Unauthorized", ""},
		{"deny", 403, "Forbidden", ""},
		{"elsewhere", 403, "Forbidden", ""},
		{"boom", 500, "Internal Server Error", ""},
		{"nested", 500, "Internal Server Error", ""},
		{"allow", 200, "", "{}"},
	}
	for _, tc := range cases {
		h := map[string]string{}
		if tc.token != "" {
			h["Authorization"] = tc.token
		}
		w := serve(g, "GET", "/things/1", h, "")
		if w.Code != tc.status {
			t.Errorf("token %q: status %d, want %d: %s", tc.token, w.Code, tc.status, w.Body)
			continue
		}
		if tc.title != "" {
			var p struct{ Title string }
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Title != tc.title || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("token %q: %s %s", tc.token, w.Header().Get("Content-Type"), w.Body)
			}
		} else if w.Body.String() != tc.body {
			t.Errorf("token %q: body %s, want %s", tc.token, w.Body, tc.body)
		}
	}
	if n := authorized.Load(); n != int32(len(cases)-1) {
		t.Errorf("authorizer ran %d times, want %d (not without a token)", n, len(cases)-1)
	}
	want := map[string]any{"principalId": "alice", "sub": "alice", "n": "42", "ok": "true"}
	for k, v := range want {
		if seen.RequestContext.Authorizer[k] != v {
			t.Errorf("authorizer context %v, want %v among it", seen.RequestContext.Authorizer, want)
		}
	}

	// A policy is cached per token for ReauthorizeEvery.
	before := authorized.Load()
	for range 3 {
		if w := serve(g, "GET", "/things/2", map[string]string{"Authorization": "cached"}, ""); w.Code != 200 {
			t.Fatalf("cached: %d", w.Code)
		}
	}
	if n := authorized.Load() - before; n != 1 {
		t.Errorf("authorizer ran %d times for one token, want 1", n)
	}
}

// TestProxyEventAndResponse: the event is what API Gateway builds, and the
// function's answer is written as API Gateway writes it.
func TestProxyEventAndResponse(t *testing.T) {
	var seen events.APIGatewayProxyRequest
	fn := &function{id: "Fn", handler: func(_ context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		seen = req
		return events.APIGatewayProxyResponse{
			StatusCode:        201,
			Headers:           map[string]string{"X-One": "1", "X-Both": "single", "Content-Type": "application/octet-stream"},
			MultiValueHeaders: map[string][]string{"X-Both": {"a", "b"}, "Set-Cookie": {"a=1", "b=2"}},
			Body:              base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}),
			IsBase64Encoded:   true,
		}, nil
	}}
	g := testGateway(t, testRunner(fn),
		route{method: "POST", path: "/things/{id}/parts/{part}", function: "Fn"},
		route{method: "ANY", path: "/things/me/parts/{part}", function: "Fn"})

	w := serve(g, "POST", "/things/a%2Fb/parts/x?q=1&q=2&r=3", map[string]string{"X-Multi": "v1", "Content-Type": "application/json"}, `{"k":1}`)
	if w.Code != 201 || w.Body.String() != string([]byte{0, 1, 2, 255}) {
		t.Errorf("answer %d %q", w.Code, w.Body)
	}
	if got := w.Header().Values("X-Both"); strings.Join(got, ",") != "a,b" {
		t.Errorf("X-Both %v: multiValueHeaders wins", got)
	}
	if w.Header().Get("X-One") != "1" || len(w.Header().Values("Set-Cookie")) != 2 || w.Header().Get("X-Amzn-Requestid") == "" {
		t.Errorf("headers %v", w.Header())
	}
	checks := map[string][2]any{
		"resource":        {seen.Resource, "/things/{id}/parts/{part}"},
		"path":            {seen.Path, "/things/a%2Fb/parts/x"},
		"id (encoded)":    {seen.PathParameters["id"], "a%2Fb"},
		"part":            {seen.PathParameters["part"], "x"},
		"q (last)":        {seen.QueryStringParameters["q"], "2"},
		"q (all)":         {strings.Join(seen.MultiValueQueryStringParameters["q"], ","), "1,2"},
		"header":          {seen.Headers["X-Multi"], "v1"},
		"body":            {seen.Body, `{"k":1}`},
		"stage":           {seen.RequestContext.Stage, "dev"},
		"resource path":   {seen.RequestContext.ResourcePath, "/things/{id}/parts/{part}"},
		"context path":    {seen.RequestContext.Path, "/dev/things/a%2Fb/parts/x"},
		"method":          {seen.RequestContext.HTTPMethod, "POST"},
		"request id":      {seen.RequestContext.RequestID != "", true},
		"no authorizer":   {seen.RequestContext.Authorizer == nil, true},
		"is base64":       {seen.IsBase64Encoded, false},
		"request id echo": {w.Header().Get("X-Amzn-Requestid"), seen.RequestContext.RequestID},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}

	// A literal segment wins over a parameter; ANY takes every method.
	serve(g, "DELETE", "/things/me/parts/y", nil, "")
	if seen.Resource != "/things/me/parts/{part}" || seen.HTTPMethod != "DELETE" {
		t.Errorf("literal route: %s %s", seen.HTTPMethod, seen.Resource)
	}
	// No resource, or no such method on it: the template's 404.
	for _, target := range []string{"/nope", "/things/1/parts", "/things/1/parts/x/y"} {
		if w := serve(g, "POST", target, nil, ""); w.Code != 404 {
			t.Errorf("POST %s: %d", target, w.Code)
		}
	}
	if w := serve(g, "GET", "/things/1/parts/x", nil, ""); w.Code != 404 {
		t.Errorf("GET on a POST route: %d", w.Code)
	}
}

// TestIntegrationFailures: what API Gateway answers when the function
// fails, panics, runs out of time or answers nonsense.
func TestIntegrationFailures(t *testing.T) {
	fns := []*function{
		{id: "Err", handler: func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, errors.New("boom")
		}},
		{id: "Panic", handler: func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			panic("bug")
		}},
		{id: "Slow", timeout: 50 * time.Millisecond, handler: func(ctx context.Context, _ events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			<-ctx.Done()
			time.Sleep(100 * time.Millisecond) // ignores its deadline, as a stuck function would
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		}},
		{id: "NoStatus", handler: func(context.Context, events.APIGatewayProxyRequest) (map[string]string, error) {
			return map[string]string{"body": "hi"}, nil
		}},
	}
	var routes []route
	for _, f := range fns {
		routes = append(routes, route{method: "GET", path: "/" + strings.ToLower(f.id), function: f.id})
	}
	var outcomes []string
	r := testRunner(fns...)
	r.cfg.Observe = func(inv Invocation) { outcomes = append(outcomes, inv.Outcome) }
	g := testGateway(t, r, routes...)
	want := map[string]struct {
		status int
		body   string
	}{
		"/err":      {502, `{"type":"about:blank","title":"Bad Gateway","status":502,"detail":"the function failed"}`},
		"/panic":    {502, `{"type":"about:blank","title":"Bad Gateway","status":502,"detail":"the function failed"}`},
		"/slow":     {504, `{"type":"about:blank","title":"Gateway Timeout","status":504,"detail":"the function did not answer in time"}`},
		"/nostatus": {502, `{"type":"about:blank","title":"Bad Gateway","status":502,"detail":"the function failed"}`},
	}
	for path, w := range want {
		got := serve(g, "GET", path, nil, "")
		if got.Code != w.status || got.Body.String() != w.body || got.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %s, want %d application/problem+json %s", path, got.Code, got.Header().Get("Content-Type"), got.Body, w.status, w.body)
		}
	}
	if len(outcomes) != 4 {
		t.Errorf("outcomes %v", outcomes)
	}
}

// TestPolicyEvaluation: explicit Deny wins; wildcards as IAM has them.
func TestPolicyEvaluation(t *testing.T) {
	arn := "arn:aws:execute-api:us-east-1:123456789012:api/dev/GET/users/1"
	st := func(effect, action, resource string) policyStatement {
		return policyStatement{Effect: effect, Action: stringOrSet{action}, Resource: stringOrSet{resource}}
	}
	cases := []struct {
		sts  []policyStatement
		want bool
	}{
		{[]policyStatement{st("Allow", "execute-api:Invoke", "arn:aws:execute-api:us-east-1:123456789012:api/dev/*/*")}, true},
		{[]policyStatement{st("Allow", "execute-api:*", "arn:aws:execute-api:*:*:api/dev/GET/users/?")}, true},
		{[]policyStatement{st("Allow", "execute-api:Invoke", "*"), st("Deny", "*", "*/GET/*")}, false},
		{[]policyStatement{st("Allow", "execute-api:Invoke", "arn:aws:execute-api:us-east-1:123456789012:api/dev/POST/*")}, false},
		{[]policyStatement{st("Allow", "s3:GetObject", "*")}, false},
		{nil, false},
	}
	for i, tc := range cases {
		if got := allowed(tc.sts, arn); got != tc.want {
			t.Errorf("case %d: allowed = %v, want %v", i, got, tc.want)
		}
	}
}

var _ http.Handler = (*gateway)(nil)
