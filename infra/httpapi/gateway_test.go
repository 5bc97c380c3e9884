package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/api/apitest"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/template"
)

// The local JWT settings of the HTTP contract: what the authorizer verifies in tests.
const (
	jwtIssuer   = "chronicle-local"
	jwtAudience = "chronicle-api"
	jwtSecret   = "dev-secret"
)

// maxPayload is API Gateway's limit on a request body: 10 MB.
const maxPayload = 10 << 20

// gateway stands in for API Gateway in front of the handlers, as
// template.yaml configures it: its routes (literal segments and {params},
// path parameters passed as sent), the TOKEN authorizer (the real
// auth.Authorizer, with the local HS256 secret) on every route but the
// ones marked NONE, the answers API Gateway gives itself (GatewayResponses),
// and the JSON round trip of the proxy event and answer, which is what
// Lambda hands the function (invalid UTF-8 in a text body becomes U+FFFD).
// It models what the hostile-input table and the authorization matrix need,
// no more: no caching of authorizer answers, no throttling.
type gateway struct {
	routes     []gatewayRoute
	authorizer *auth.Authorizer
	replies    map[string]gatewayReply
	// decodeParams hands path parameters percent-decoded, else as sent
	// (what the local runner does).
	decodeParams bool
}

type gatewayRoute struct {
	method, resource string
	segments         []string
	authorized       bool // behind the TOKEN authorizer
	handler          handler
}

// gatewayReply is one of the template's GatewayResponses.
type gatewayReply struct {
	StatusCode         json.RawMessage `json:"StatusCode"`
	ResponseParameters struct {
		Headers map[string]string `json:"Headers"`
	} `json:"ResponseParameters"`
	ResponseTemplates map[string]string `json:"ResponseTemplates"`
}

// Gateway response types: API Gateway's own status and message for each.
var gatewayDefaults = map[string]struct {
	status  int
	message string
}{
	"MISSING_AUTHENTICATION_TOKEN": {http.StatusForbidden, "Missing Authentication Token"},
	"UNAUTHORIZED":                 {http.StatusUnauthorized, "Unauthorized"},
	"ACCESS_DENIED":                {http.StatusForbidden, "User is not authorized to access this resource"},
	"AUTHORIZER_FAILURE":           {http.StatusInternalServerError, ""},
	"REQUEST_TOO_LARGE":            {http.StatusRequestEntityTooLarge, "Request Too Long"},
	"INTEGRATION_FAILURE":          {http.StatusBadGateway, "Internal server error"},
}

func newGateway(tb testing.TB, s *memoryService) *gateway {
	tb.Helper()
	const path = "../../template.yaml"
	tpl, err := template.Load(path, template.WithParameters(map[string]string{
		"JwtIssuer": "https://idp.example.com/", "JwksUrl": "https://idp.example.com/jwks.json", "EmailSender": "a@example.com",
	}))
	if err != nil {
		tb.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		tb.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.Config{Issuer: jwtIssuer, Audience: jwtAudience, LocalSecret: []byte(jwtSecret)})
	if err != nil {
		tb.Fatal(err)
	}
	g := &gateway{authorizer: auth.NewAuthorizer(verifier, slog.New(slog.NewJSONHandler(io.Discard, nil)))}
	for _, f := range fns {
		var h handler
		switch f.Name {
		case "CommandsFunction":
			h = s.cmds
		case "QueriesFunction":
			h = s.qs
		default:
			continue
		}
		for _, e := range f.APIEvents {
			g.routes = append(g.routes, gatewayRoute{method: e.Method, resource: e.Path,
				segments: strings.Split(e.Path, "/"), authorized: e.Authorizer != "NONE", handler: h})
		}
	}
	if len(g.routes) == 0 {
		tb.Fatal("template.yaml declares no API route")
	}
	g.replies = gatewayReplies(tb, path)
	return g
}

// gatewayReplies reads the API's GatewayResponses from the template:
// goformation's typed view does not model them.
func gatewayReplies(tb testing.TB, path string) map[string]gatewayReply {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	doc, err := template.JSON(raw)
	if err != nil {
		tb.Fatal(err)
	}
	var t struct {
		Resources map[string]struct {
			Type       string `json:"Type"`
			Properties struct {
				GatewayResponses map[string]gatewayReply `json:"GatewayResponses"`
			} `json:"Properties"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(doc, &t); err != nil {
		tb.Fatal(err)
	}
	for _, r := range t.Resources {
		if r.Type == "AWS::Serverless::Api" {
			return r.Properties.GatewayResponses
		}
	}
	tb.Fatal("template.yaml has no AWS::Serverless::Api")
	return nil
}

// httpRequest is a request as a client sends it: the path may hold a query
// string and percent-encoding; headers are in order and may repeat.
type httpRequest struct {
	method, target string
	headers        [][2]string
	body           []byte
	// binary delivers the body base64-encoded (isBase64Encoded), as API
	// Gateway does for a binary media type; else it is text.
	binary bool
}

// httpAnswer is what the client gets.
type httpAnswer struct {
	status  int
	headers map[string]string
	body    string
	gateway string // the gateway response type, when API Gateway answered itself
	// builtin: API Gateway's own {"message": ...}, because the template's
	// GatewayResponses do not shape this type (no DEFAULT_4XX/DEFAULT_5XX).
	builtin bool
}

func (a httpAnswer) String() string {
	b := a.body
	if len(b) > 300 {
		b = b[:300] + "..."
	}
	if a.gateway != "" {
		return fmt.Sprintf("%d (gateway %s) %s", a.status, a.gateway, b)
	}
	return fmt.Sprintf("%d %s", a.status, b)
}

// do sends r through the gateway and checks the exchange against the
// OpenAPI document.
func (g *gateway) do(ctx context.Context, tb testing.TB, r httpRequest) httpAnswer {
	tb.Helper()
	a := g.send(ctx, tb, r)
	checkContract(tb, r, a)
	return a
}

func (g *gateway) send(ctx context.Context, tb testing.TB, r httpRequest) httpAnswer {
	tb.Helper()
	rawPath, rawQuery, _ := strings.Cut(r.target, "?")
	if len(r.body) > maxPayload {
		return g.reply("REQUEST_TOO_LARGE")
	}
	rt, params, ok := g.match(r.method, rawPath)
	if !ok {
		return g.reply("MISSING_AUTHENTICATION_TOKEN")
	}
	headers, multi := map[string]string{}, map[string][]string{}
	for _, h := range r.headers {
		k := http.CanonicalHeaderKey(h[0])
		headers[k] = h[1]
		multi[k] = append(multi[k], h[1])
	}
	requestID := uuid.NewString()
	var authContext map[string]any
	if rt.authorized {
		token := headers["Authorization"]
		if token == "" { // no identity source: the authorizer is not called
			return g.reply("UNAUTHORIZED")
		}
		arn := "arn:aws:execute-api:us-east-1:123456789012:apiid/dev/" + r.method + rawPath
		resp, err := g.authorizer.Handle(ctx, events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: token, MethodArn: arn})
		switch {
		case err != nil && err.Error() == "Unauthorized":
			return g.reply("UNAUTHORIZED")
		case err != nil:
			return g.reply("AUTHORIZER_FAILURE")
		}
		if !allows(resp.PolicyDocument, arn) {
			return g.reply("ACCESS_DENIED")
		}
		// The integration sees the context's values as strings.
		authContext = map[string]any{"principalId": resp.PrincipalID}
		for k, v := range resp.Context {
			authContext[k] = fmt.Sprint(v)
		}
	}
	var query map[string]string
	var multiQuery map[string][]string
	if vals, err := url.ParseQuery(rawQuery); err == nil && len(vals) > 0 {
		query, multiQuery = map[string]string{}, map[string][]string{}
		for k, vs := range vals {
			query[k], multiQuery[k] = vs[len(vs)-1], vs
		}
	}
	body := string(r.body)
	if r.binary {
		body = base64.StdEncoding.EncodeToString(r.body)
	}
	ev := events.APIGatewayProxyRequest{
		Resource: rt.resource, Path: rawPath, HTTPMethod: r.method,
		Headers: headers, MultiValueHeaders: multi,
		QueryStringParameters: query, MultiValueQueryStringParameters: multiQuery,
		PathParameters: params,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID: "123456789012", Stage: "dev", RequestID: requestID, ResourcePath: rt.resource,
			Path: "/dev" + rawPath, HTTPMethod: r.method, Authorizer: authContext, APIID: "apiid",
		},
		Body: body, IsBase64Encoded: r.binary,
	}
	// Lambda hands the function the event as JSON, and API Gateway reads
	// the answer as JSON.
	roundTrip(tb, &ev)
	resp, err := rt.handler.Handle(ctx, ev)
	if err != nil {
		return g.reply("INTEGRATION_FAILURE")
	}
	roundTrip(tb, &resp)
	return httpAnswer{status: resp.StatusCode, headers: resp.Headers, body: resp.Body}
}

// checkContract checks a client's request and its answer against the
// OpenAPI document. API Gateway's built-in bodies are left out: they answer
// a template changed by the test, without the GatewayResponses that shape
// them, not the document's API.
func checkContract(tb testing.TB, r httpRequest, a httpAnswer) {
	tb.Helper()
	if a.builtin {
		return
	}
	hr, err := http.NewRequest(r.method, "http://api.test"+r.target, nil)
	if err != nil { // a target no client can send: nothing to check
		return
	}
	for _, h := range r.headers {
		hr.Header.Add(h[0], h[1])
	}
	header := http.Header{}
	for k, v := range a.headers {
		header.Set(k, v)
	}
	apitest.Validate(tb, apitest.Exchange{Request: hr, RequestBody: r.body, Status: a.status, Header: header, Body: []byte(a.body)})
}

func roundTrip[T any](tb testing.TB, v *T) {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatal(err)
	}
	*v = out
}

// match finds the route as API Gateway does: the resource whose template
// fits the path best (literal segments, compared decoded, beat {params},
// which are taken as sent, from the left), then the method on it.
func (g *gateway) match(method, rawPath string) (gatewayRoute, map[string]string, bool) {
	segs := strings.Split(rawPath, "/")
	best := -1
	var resource string
	var params map[string]string
	for _, rt := range g.routes {
		if len(rt.segments) != len(segs) {
			continue
		}
		p, score := map[string]string{}, 0
		ok := true
		for i, t := range rt.segments {
			if name, isParam := strings.CutPrefix(t, "{"); isParam {
				if segs[i] == "" {
					ok = false
					break
				}
				v := segs[i]
				if d, err := url.PathUnescape(v); err == nil && g.decodeParams {
					v = d
				}
				p[strings.TrimSuffix(name, "}")] = v
				score *= 2
				continue
			}
			if seg, err := url.PathUnescape(segs[i]); err != nil || seg != t {
				ok = false
				break
			}
			score = score*2 + 1
		}
		if ok && score > best {
			best, resource, params = score, rt.resource, p
		}
	}
	if len(params) == 0 {
		params = nil
	}
	for _, rt := range g.routes {
		if rt.resource == resource && rt.method == method {
			return rt, params, true
		}
	}
	return gatewayRoute{}, nil, false
}

// allows reports whether an authorizer policy allows invoking arn.
func allows(doc events.APIGatewayCustomAuthorizerPolicy, arn string) bool {
	allowed := false
	for _, s := range doc.Statement {
		for _, res := range s.Resource {
			if !wildcardMatch(res, arn) {
				continue
			}
			if s.Effect == "Deny" {
				return false
			}
			allowed = allowed || s.Effect == "Allow"
		}
	}
	return allowed
}

// wildcardMatch matches s against a pattern where * is any run of characters.
func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return s == ""
}

// reply is API Gateway's own answer of type typ: the template's
// GatewayResponses entry, else its DEFAULT_4XX or DEFAULT_5XX, else API
// Gateway's built-in {"message": ...}.
func (g *gateway) reply(typ string) httpAnswer {
	def := gatewayDefaults[typ]
	status := def.status
	gr, ok := g.replies[typ]
	builtin := false
	if !ok {
		parent := "DEFAULT_4XX"
		if status >= 500 {
			parent = "DEFAULT_5XX"
		}
		gr, ok = g.replies[parent]
		gr.StatusCode = nil
		builtin = !ok
	}
	if len(gr.StatusCode) > 0 {
		var s string
		if json.Unmarshal(gr.StatusCode, &s) != nil {
			s = string(gr.StatusCode)
		}
		fmt.Sscan(s, &status)
	}
	h := map[string]string{"Content-Type": "application/json", "X-Amzn-Errortype": typ}
	for k, v := range gr.ResponseParameters.Headers {
		h[k] = strings.Trim(v, "'")
	}
	msg, _ := json.Marshal(def.message)
	body := `{"message":` + string(msg) + `}`
	if tmpl, ok := gr.ResponseTemplates["application/json"]; ok {
		body = strings.NewReplacer("$context.error.messageString", string(msg), "$context.error.message", def.message,
			"$context.error.responseType", typ).Replace(tmpl)
	}
	return httpAnswer{status: status, headers: h, body: body, gateway: typ, builtin: builtin}
}

// checkAnswer checks what every answer must be, whoever gives it: a JSON
// body; problem+json for an error (but a 410, which is an answer, and API
// Gateway's built-in answers: see httpAnswer.builtin); no header value with
// a line break (no response splitting); and from the function, an
// X-Request-Id that is safe to echo.
func checkAnswer(tb testing.TB, a httpAnswer) {
	tb.Helper()
	if !json.Valid([]byte(a.body)) {
		tb.Errorf("answer %v: body is not JSON", a)
	}
	ct := a.headers["Content-Type"]
	switch {
	case a.builtin:
		tb.Logf("answer %v: API Gateway's built-in body, not problem+json: template.yaml has no DEFAULT_4XX/DEFAULT_5XX", a)
	case a.status >= 400 && a.status != http.StatusGone:
		if ct != "application/problem+json" {
			tb.Errorf("answer %v: Content-Type %q, want application/problem+json", a, ct)
		}
		var p struct {
			Type  string `json:"type"`
			Title string `json:"title"`
		}
		if err := json.Unmarshal([]byte(a.body), &p); err != nil || p.Type == "" || p.Title == "" {
			tb.Errorf("answer %v: not a problem with a type and a title (%v)", a, err)
		}
	case ct != "application/json":
		tb.Errorf("answer %v: Content-Type %q, want application/json", a, ct)
	}
	for k, v := range a.headers {
		if strings.ContainsAny(k+v, "\r\n\x00") {
			tb.Errorf("answer %v: header %q: %q holds a line break", a, k, v)
		}
	}
	if a.gateway == "" {
		id := a.headers["X-Request-Id"]
		if id == "" || len(id) > 128 || !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			tb.Errorf("answer %v: X-Request-Id %q", a, id)
		}
	}
}

// token mints a local token for sub with roles, valid for an hour.
func token(tb testing.TB, sub string, roles ...string) string {
	tb.Helper()
	tok, err := auth.Mint([]byte(jwtSecret), jwtIssuer, jwtAudience, sub, roles, time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func bearer(tb testing.TB, sub string, roles ...string) [2]string {
	return [2]string{"Authorization", "Bearer " + token(tb, sub, roles...)}
}
