package runner

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronicle-go/chronicle/infra/tracing"
)

// maxPayload is API Gateway's limit on a request body.
const maxPayload = 10 << 20

// gateway is the REST API: an http.Handler that does what API Gateway does
// with a Lambda proxy integration and a Lambda TOKEN authorizer.
type gateway struct {
	r       *Runner
	routes  []route
	replies map[string]gatewayReply
	stage   string
	apiID   string
	limit   *throttle

	mu    sync.Mutex
	cache map[string]authorization // by authorizer function and token
}

func newGateway(r *Runner) (*gateway, error) {
	g := &gateway{r: r, routes: r.plan.routes, replies: r.plan.gatewayReplies, stage: r.plan.stage,
		apiID: apiID(r.cfg.StackName), cache: map[string]authorization{}, limit: newThrottle(r.plan.throttle, time.Now)}
	for _, rt := range g.routes {
		if _, ok := r.functions[rt.function]; !ok {
			return nil, fmt.Errorf("route %s: function %s is not built", rt.key(), rt.function)
		}
	}
	for typ, gr := range g.replies {
		if _, err := gr.status(0); err != nil {
			return nil, fmt.Errorf("GatewayResponses %s: %w", typ, err)
		}
	}
	return g, nil
}

// match finds the route of a request: the resource whose template matches
// the path, literal segments preferred over parameters, and on it the
// method (or ANY). found says whether the path matched some resource.
func (g *gateway) match(method string, segs []string) (rt route, params map[string]string, ok bool) {
	best := -1
	var bestRoutes []route
	for _, r := range g.routes {
		p, score, matched := matchSegments(r.segments, segs)
		if !matched || score < best {
			continue
		}
		if score > best {
			best, bestRoutes, params = score, nil, p
		}
		if r.pathEqual(bestRoutes) {
			bestRoutes = append(bestRoutes, r)
		}
	}
	for _, r := range bestRoutes {
		if r.method == method {
			return r, params, true
		}
	}
	for _, r := range bestRoutes {
		if r.method == "ANY" {
			return r, params, true
		}
	}
	return route{}, nil, false
}

// pathEqual reports whether r has the same path as the routes kept so far.
func (r route) pathEqual(kept []route) bool {
	return len(kept) == 0 || kept[0].path == r.path
}

// matchSegments matches a path against a template: {name} takes one
// segment, a final {name+} the rest. The score ranks literal segments
// first, from the left, as API Gateway prefers them.
func matchSegments(tmpl, segs []string) (map[string]string, int, bool) {
	params := map[string]string{}
	score := 0
	for i, t := range tmpl {
		if name, ok := strings.CutPrefix(t, "{"); ok && strings.HasSuffix(name, "+}") && i == len(tmpl)-1 {
			if i >= len(segs) {
				return nil, 0, false
			}
			params[strings.TrimSuffix(name, "+}")] = strings.Join(segs[i:], "/")
			return params, score, true
		}
		if i >= len(segs) {
			return nil, 0, false
		}
		if name, ok := strings.CutPrefix(t, "{"); ok && strings.HasSuffix(name, "}") {
			if segs[i] == "" {
				return nil, 0, false
			}
			params[strings.TrimSuffix(name, "}")] = segs[i]
			score = score*2 + 0
			continue
		}
		if seg, err := url.PathUnescape(segs[i]); err != nil || seg != t {
			return nil, 0, false
		}
		score = score*2 + 1
	}
	if len(tmpl) != len(segs) {
		return nil, 0, false
	}
	return params, score, true
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	requestID := uuid.NewString()
	if strings.HasPrefix(req.URL.Path, tracesPath) {
		g.serveTrace(w, req, requestID)
		return
	}
	rawPath := req.URL.EscapedPath()
	segs := splitPath(rawPath)
	rt, params, ok := g.match(req.Method, segs)
	if !ok {
		g.respond(w, req, requestID, replyMissingToken, "Missing Authentication Token")
		return
	}
	// API Gateway throttles before it authorizes or reads the body.
	if !g.limit.allow(rt.key()) {
		g.respond(w, req, requestID, replyThrottled, "Too Many Requests")
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxPayload+1))
	if err != nil {
		g.respond(w, req, requestID, replyBadRequest, "Could not read the request body")
		return
	}
	if len(body) > maxPayload {
		g.respond(w, req, requestID, replyTooLarge, "Request Too Long")
		return
	}
	if len(params) == 0 {
		params = nil
	}

	// A client that hangs up does not stop an invocation in Lambda: only
	// the function's timeout does.
	ctx := context.WithoutCancel(req.Context())
	ctx, span := tracing.Start(ctx, "API Gateway "+rt.key(), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(tracing.Function.String("api-gateway"), apiRequestID.String(requestID)))
	defer func() {
		tracing.Annotate(span, w.Header().Get("X-Request-Id"))
		span.End()
	}()
	var authContext map[string]any
	if rt.authorizer != nil {
		a, typ, msg := g.authorize(ctx, req, rt, requestID)
		if typ != "" {
			g.respond(w, req, requestID, typ, msg)
			return
		}
		authContext = a
	}

	ev := g.event(req, rt, rawPath, params, body, requestID, authContext, start)
	fn := g.r.functions[rt.function]
	var resp events.APIGatewayProxyResponse
	invStart := time.Now()
	awsRequestID, err := g.r.invoke(ctx, fn, ev, &resp)
	inv := Invocation{Function: fn.id, Trigger: triggerAPI, Source: rt.key(), Outcome: outcomeOf(err),
		Duration: time.Since(invStart), Request: ev}
	if err == nil && resp.StatusCode == 0 {
		inv.Outcome, err = OutcomeInvalid, errors.New("malformed Lambda proxy response: no statusCode")
	}
	var b []byte
	if err == nil && resp.IsBase64Encoded {
		if b, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			inv.Outcome, err = OutcomeInvalid, fmt.Errorf("malformed Lambda proxy response: body: %w", err)
		}
	} else {
		b = []byte(resp.Body)
	}
	switch {
	case inv.Outcome == OutcomeTimeout:
		inv.Status = g.respond(w, req, requestID, replyIntegrationTimeout, "Endpoint request timed out")
	case err != nil:
		inv.Status = g.respond(w, req, requestID, replyIntegrationFailure, "Internal server error")
	default:
		inv.Status = resp.StatusCode
		g.writeProxy(w, requestID, resp, b)
	}
	g.r.report(ctx, inv, awsRequestID, err)
}

// writeProxy writes a Lambda proxy response. Where a header is in both
// maps, multiValueHeaders wins, as in API Gateway.
func (g *gateway) writeProxy(w http.ResponseWriter, requestID string, resp events.APIGatewayProxyResponse, body []byte) {
	h := w.Header()
	for k, v := range resp.Headers {
		if _, multi := resp.MultiValueHeaders[k]; !multi {
			h.Set(k, v)
		}
	}
	for k, vs := range resp.MultiValueHeaders {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// event builds the REST proxy event of a request, as API Gateway does:
// path and path parameters as sent (percent-encoded), query parameters and
// headers single-valued (the last value) and multi-valued.
func (g *gateway) event(req *http.Request, rt route, rawPath string, params map[string]string, body []byte,
	requestID string, authContext map[string]any, start time.Time) events.APIGatewayProxyRequest {
	headers := map[string]string{}
	multiHeaders := map[string][]string{}
	for k, vs := range req.Header {
		headers[k] = vs[len(vs)-1]
		multiHeaders[k] = slices.Clone(vs)
	}
	host := req.Host
	headers["Host"], multiHeaders["Host"] = host, []string{host}
	ip := clientIP(req)
	forwarded := map[string]string{"X-Forwarded-For": ip, "X-Forwarded-Proto": "http", "X-Forwarded-Port": portOf(host)}
	for k, v := range forwarded {
		headers[k], multiHeaders[k] = v, []string{v}
	}

	var query map[string]string
	var multiQuery map[string][]string
	if q := req.URL.Query(); len(q) > 0 {
		query, multiQuery = map[string]string{}, map[string][]string{}
		for k, vs := range q {
			query[k] = vs[len(vs)-1]
			multiQuery[k] = vs
		}
	}
	return events.APIGatewayProxyRequest{
		Resource:                        rt.path,
		Path:                            rawPath,
		HTTPMethod:                      req.Method,
		Headers:                         headers,
		MultiValueHeaders:               multiHeaders,
		QueryStringParameters:           query,
		MultiValueQueryStringParameters: multiQuery,
		PathParameters:                  params,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:         accountID,
			ResourceID:        resourceID(rt.path),
			Stage:             g.stage,
			DomainName:        host,
			DomainPrefix:      strings.Split(host, ".")[0],
			RequestID:         requestID,
			ExtendedRequestID: requestID,
			Protocol:          req.Proto,
			Identity:          events.APIGatewayRequestIdentity{SourceIP: ip, UserAgent: req.UserAgent()},
			ResourcePath:      rt.path,
			Path:              "/" + g.stage + rawPath,
			Authorizer:        authContext,
			HTTPMethod:        req.Method,
			RequestTime:       start.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			RequestTimeEpoch:  start.UnixMilli(),
			APIID:             g.apiID,
		},
		Body: string(body),
	}
}

func clientIP(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

func portOf(host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil {
		return port
	}
	return "80"
}

// resourceID stands for API Gateway's id of a resource: stable per path.
func resourceID(path string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(path)).String()[:6]
}

// authorization is what a TOKEN authorizer answered for a token.
type authorization struct {
	principalID string
	statements  []policyStatement
	context     map[string]any // values as the integration sees them
	expires     time.Time
}

// authorize runs the route's authorizer (or takes its cached answer) and
// returns the request context's authorizer map, or the gateway response
// type and message to answer instead.
func (g *gateway) authorize(ctx context.Context, req *http.Request, rt route, requestID string) (map[string]any, string, string) {
	a := rt.authorizer
	token := req.Header.Get(a.Header)
	if token == "" { // the identity source is missing: the authorizer is not called
		return nil, replyUnauthorized, "Unauthorized"
	}
	methodARN := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/%s/%s", g.r.region, accountID, g.apiID, g.stage,
		req.Method, strings.TrimPrefix(req.URL.EscapedPath(), "/"))
	key := a.Function + "\x00" + token

	g.mu.Lock()
	auth, cached := g.cache[key]
	if cached && time.Now().After(auth.expires) {
		delete(g.cache, key)
		cached = false
	}
	g.mu.Unlock()

	if !cached {
		fn := g.r.functions[a.Function]
		in := events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: token, MethodArn: methodARN}
		var out authorizerResponse
		start := time.Now()
		awsRequestID, err := g.r.invoke(ctx, fn, in, &out)
		inv := Invocation{Function: fn.id, Trigger: triggerAuthorizer, Source: rt.key(), Outcome: outcomeOf(err), Duration: time.Since(start)}
		latency := time.Since(start).Milliseconds()
		var ie *invocationError
		switch {
		case errors.As(err, &ie) && ie.outcome == OutcomeError && ie.err.Error() == "Unauthorized":
			// The one error text API Gateway maps to 401; the function did its job.
			inv.Outcome = OutcomeOK
			g.r.report(ctx, inv, awsRequestID, nil)
			return nil, replyUnauthorized, "Unauthorized"
		case err != nil:
			g.r.report(ctx, inv, awsRequestID, err)
			return nil, replyAuthorizerFailure, ""
		}
		auth, err = out.authorization(latency)
		if err != nil {
			inv.Outcome = OutcomeInvalid
			g.r.report(ctx, inv, awsRequestID, err)
			return nil, replyAuthorizerConfiguration, ""
		}
		g.r.report(ctx, inv, awsRequestID, nil)
		if a.ReauthorizeEvery > 0 {
			auth.expires = time.Now().Add(time.Duration(a.ReauthorizeEvery) * time.Second)
			g.mu.Lock()
			g.cache[key] = auth
			g.mu.Unlock()
		}
	}
	if !allowed(auth.statements, methodARN) {
		return nil, replyAccessDenied, "User is not authorized to access this resource"
	}
	out := maps.Clone(auth.context)
	out["principalId"] = auth.principalID
	return out, "", ""
}

// authorizerResponse is a TOKEN authorizer's answer, read leniently: Action
// and Resource may be a string or a list.
type authorizerResponse struct {
	PrincipalID    string `json:"principalId"`
	PolicyDocument struct {
		Statement []policyStatement `json:"Statement"`
	} `json:"policyDocument"`
	Context map[string]any `json:"context"`
}

type policyStatement struct {
	Effect   string      `json:"Effect"`
	Action   stringOrSet `json:"Action"`
	Resource stringOrSet `json:"Resource"`
}

type stringOrSet []string

func (s *stringOrSet) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*s = list
	return nil
}

// authorization checks the answer as API Gateway does: a principal, a
// policy, and a context of strings, numbers and booleans only (which the
// integration receives as strings).
func (a authorizerResponse) authorization(latencyMS int64) (authorization, error) {
	if a.PrincipalID == "" {
		return authorization{}, errors.New("authorizer answer has no principalId")
	}
	if len(a.PolicyDocument.Statement) == 0 {
		return authorization{}, errors.New("authorizer answer has no policy statement")
	}
	ctx := map[string]any{"integrationLatency": latencyMS}
	for k, v := range a.Context {
		switch v := v.(type) {
		case string:
			ctx[k] = v
		case float64:
			ctx[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			ctx[k] = strconv.FormatBool(v)
		default:
			return authorization{}, fmt.Errorf("authorizer context %q is a %T: only strings, numbers and booleans are allowed", k, v)
		}
	}
	return authorization{principalID: a.PrincipalID, statements: a.PolicyDocument.Statement, context: ctx}, nil
}

// allowed evaluates a policy for execute-api:Invoke on arn: an explicit
// Deny wins, then an Allow is needed.
func allowed(sts []policyStatement, arn string) bool {
	allow := false
	for _, s := range sts {
		if !slices.ContainsFunc(s.Action, func(a string) bool { return wildcard(a, "execute-api:Invoke") }) ||
			!slices.ContainsFunc(s.Resource, func(r string) bool { return wildcard(r, arn) }) {
			continue
		}
		switch s.Effect {
		case "Deny":
			return false
		case "Allow":
			allow = true
		}
	}
	return allow
}

// wildcard matches s against an IAM pattern: * any run, ? any one character.
func wildcard(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildcard(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildcard(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && wildcard(pattern[1:], s[1:])
	}
}
