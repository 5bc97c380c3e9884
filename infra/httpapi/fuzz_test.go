package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/api/apitest"
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/auth"
)

// The fuzz targets run in memory (memoryService), so that they also run as
// plain tests on their seeds: those in f.Add and those in
// testdata/fuzz/<FuzzName>/ of this package (Go's corpus format; the
// repository's testdata/ holds the API Gateway fixtures). To fuzz:
//
//	go test -run '^$' -fuzz '^FuzzCommands$' -fuzztime 60s ./infra/httpapi/
//
// What every target checks on every answer: the handler returns no error
// and does not panic (a recovered panic would be a 500); no 5xx at all (in
// memory nothing is unavailable); a JSON body; application/problem+json
// with a type, a title and the same status for every error but a 410;
// application/json otherwise; an X-Request-Id of printable ASCII; no line
// break in any header. The whole-handler targets also check who got what:
// without a principal nothing but GET /healthz succeeds, and a principal
// without admin only ever reads or changes its own user.

// fuzzCommandRoutes are the command routes FuzzCommandBody sends bodies to.
var fuzzCommandRoutes = []struct {
	method, resource string
	admin            bool // as an admin (who may also set "sub" on a create)
}{
	{http.MethodPost, "/users", true},
	{http.MethodPost, "/users", false},
	{http.MethodPut, "/users/{id}/name", false},
	{http.MethodPut, "/users/{id}/email", false},
	{http.MethodPost, "/users/{id}/suspend", true},
	{http.MethodPost, "/users/{id}/reactivate", true},
	{http.MethodDelete, "/users/{id}", true},
}

// FuzzCommandBody sends arbitrary bodies to each command route, as its
// owner or an admin: decoding and validation of every command body. What
// a 2xx stored must be valid: each stored value is a fixed point of the
// domain's normalization.
func FuzzCommandBody(f *testing.F) {
	for i, b := range []string{
		`{"name":"Ada","email":"ada@example.com"}`,
		`{"name":"Ada","email":"ada@example.com","sub":"auth0|ada","reason":"signup"}`,
		`{"name":"  Ada Lovelace  "}`,
		`{"email":"ADA@Example.com"}`,
		`{"reason":"chargeback"}`,
		`{}`,
		``,
	} {
		f.Add(uint8(i), b, "application/json", false)
	}
	f.Add(uint8(2), base64.StdEncoding.EncodeToString([]byte(`{"name":"B64"}`)), "application/json; charset=utf-8", true)
	f.Add(uint8(3), `{"email":"a@b.c","email":"d@e.f"}`, "application/json", false)

	s := newMemoryService(f)
	ctx := context.Background()
	owner := "fuzz-owner"
	target := ""
	newTarget := func() {
		res, err := s.svc.Execute(ctx, uuid.Must(uuid.NewV7()).String(),
			user.Create{Name: "Target", Email: "target-" + uuid.NewString() + "@example.com", Sub: owner + "-" + uuid.NewString()},
			es.ExecOptions{Metadata: es.Metadata{Actor: "setup"}})
		if err != nil {
			f.Fatal(err)
		}
		target = res.ID
	}
	newTarget()

	f.Fuzz(func(t *testing.T, route uint8, body, contentType string, b64 bool) {
		rt := fuzzCommandRoutes[int(route)%len(fuzzCommandRoutes)]
		agg, err := s.svc.Load(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		p := auth.Principal{Sub: agg.State.Sub}
		if rt.admin {
			p = auth.Principal{Sub: "fuzz-admin", Roles: []string{auth.RoleAdmin}}
		}
		if rt.resource == "/users" && !rt.admin {
			p.Sub = "fuzz-creator-" + uuid.NewString() // a plain user creating its own user
		}
		req := events.APIGatewayProxyRequest{
			HTTPMethod: rt.method, Resource: rt.resource, Path: strings.ReplaceAll(rt.resource, "{id}", target),
			PathParameters: map[string]string{"id": target},
			Headers:        map[string]string{"Content-Type": contentType},
			Body:           body, IsBase64Encoded: b64,
			RequestContext: events.APIGatewayProxyRequestContext{Authorizer: p.AuthorizerContext()},
		}
		resp := fuzzCheck(t, s.cmds, req)
		if resp.StatusCode/100 != 2 {
			return
		}
		var w writeBody
		if err := json.Unmarshal([]byte(resp.Body), &w); err != nil || w.ID == "" || w.Version < 1 {
			t.Fatalf("answer %d %s: not {id, version}", resp.StatusCode, resp.Body)
		}
		checkStoredUser(t, s, w.ID)
		if rt.method == http.MethodDelete {
			newTarget()
		}
	})
}

// checkStoredUser checks that the state of user id holds only values that
// validation leaves as they are.
func checkStoredUser(t *testing.T, s *memoryService, id string) {
	t.Helper()
	agg, err := s.svc.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	st := agg.State
	for _, c := range []user.Command{user.Rename{Name: st.Name}, user.ChangeEmail{Email: st.Email}} {
		v, err := user.Validate(c)
		if err != nil || v != c {
			t.Fatalf("stored %+v: validation gives %+v, %v", c, v, err)
		}
	}
	if st.Sub != "" && (strings.ContainsAny(st.Sub, " #") || !utf8.ValidString(st.Sub)) {
		t.Fatalf("stored sub %q", st.Sub)
	}
}

// FuzzCommands hands the commands handler arbitrary REST proxy events.
func FuzzCommands(f *testing.F) {
	fuzzHandler(f, func(s *memoryService) handler { return s.cmds })
}

// FuzzQueries hands the queries handler arbitrary REST proxy events.
func FuzzQueries(f *testing.F) {
	fuzzHandler(f, func(s *memoryService) handler { return s.qs })
}

// fuzzEvent is the fuzzer's view of a REST proxy event: headers as
// "Name: value" lines (a name may repeat), the query as "k=v&k=v" taken as
// it is, and the authorizer context in one of five shapes (authz % 5):
// none, {sub, roles}, {principalId} only, values of the wrong types, and
// {sub, roles} plus what API Gateway adds.
type fuzzEvent struct {
	method, resource, path, id, headers, query, body string
	b64                                              bool
	sub, roles                                       string
	authz                                            uint8
}

func (e fuzzEvent) request() events.APIGatewayProxyRequest {
	req := events.APIGatewayProxyRequest{
		HTTPMethod: e.method, Resource: e.resource, Path: e.path, Body: e.body, IsBase64Encoded: e.b64,
		PathParameters: map[string]string{"id": e.id, "sub": e.id},
	}
	if e.headers != "" {
		req.Headers, req.MultiValueHeaders = map[string]string{}, map[string][]string{}
		for line := range strings.SplitSeq(e.headers, "\n") {
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			req.Headers[k] = v
			req.MultiValueHeaders[k] = append(req.MultiValueHeaders[k], v)
		}
	}
	if e.query != "" {
		req.QueryStringParameters, req.MultiValueQueryStringParameters = map[string]string{}, map[string][]string{}
		for kv := range strings.SplitSeq(e.query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			req.QueryStringParameters[k] = v
			req.MultiValueQueryStringParameters[k] = append(req.MultiValueQueryStringParameters[k], v)
		}
	}
	// roles are the words of e.roles, encoded as the authorizer encodes them.
	roles := auth.Principal{Roles: strings.Fields(e.roles)}.AuthorizerContext()["roles"]
	switch e.authz % 5 {
	case 1:
		req.RequestContext.Authorizer = map[string]any{"sub": e.sub, "roles": roles}
	case 2:
		req.RequestContext.Authorizer = map[string]any{"principalId": e.sub}
	case 3:
		req.RequestContext.Authorizer = map[string]any{"sub": 42, "roles": []any{e.roles}}
	case 4:
		req.RequestContext.Authorizer = map[string]any{"principalId": e.sub, "sub": e.sub, "roles": roles, "integrationLatency": 7}
	}
	return req
}

// principal is who the handler should see, if anyone.
func (e fuzzEvent) principal() (sub string, admin, ok bool) {
	if m := e.authz % 5; (m != 1 && m != 4) || e.sub == "" {
		return "", false, false
	}
	return e.sub, slices.Contains(strings.Fields(e.roles), "admin"), true
}

func fuzzHandler(f *testing.F, pick func(*memoryService) handler) {
	const id = "0190a5f0-7c3e-7d2a-9b1e-3f4a5b6c7d8e"
	ctJSON := "Content-Type: application/json"
	for _, e := range []fuzzEvent{
		{method: "POST", resource: "/users", path: "/users", headers: ctJSON, body: `{"name":"A","email":"a@example.com"}`, sub: "fuzzer", authz: 1},
		{method: "POST", resource: "/users", path: "/users", headers: ctJSON + "\nIdempotency-Key: k", body: `{"name":"A","email":"b@example.com","sub":"x"}`, sub: "root", roles: "admin", authz: 4},
		{method: "PUT", resource: "/users/{id}/name", path: "/users/" + id + "/name", id: id, headers: ctJSON + "\nIf-Match: \"1\"", body: `{"name":"B"}`, sub: "root", roles: "admin", authz: 1},
		{method: "PUT", resource: "/users/{id}/email", id: id, headers: ctJSON, body: `{"email":"C@example.com"}`, sub: "fuzzer", authz: 1},
		{method: "DELETE", resource: "/users/{id}", path: "/users/" + id, id: id, sub: "root", roles: "admin", authz: 1},
		{method: "POST", resource: "/users/{id}/suspend", id: id, headers: ctJSON, body: "eyJyZWFzb24iOiJ4In0=", b64: true, sub: "root", roles: "admin", authz: 1},
		{method: "POST", resource: "/users/{id}/reactivate", id: id, sub: "root", roles: "admin", authz: 1},
		{method: "GET", resource: "/users/{id}", id: id, query: "minVersion=2&consistent=true", headers: "X-Min-Version: 1", sub: "fuzzer", authz: 1},
		{method: "GET", resource: "/users", query: "email=a@example.com", sub: "fuzzer", authz: 1},
		{method: "GET", resource: "/users", query: "status=active&limit=1&cursor=YWN0aXZlADE", sub: "root", roles: "admin", authz: 1},
		{method: "GET", resource: "/users", query: "status=suspended", sub: "fuzzer", authz: 1},
		{method: "GET", resource: "/users/{id}/history", id: id, query: "limit=5&fromVersion=1&cursor=abc", sub: "root", roles: "admin", authz: 1},
		{method: "GET", resource: "/users/{id}/state", id: id, query: "at=2025-01-01T00:00:00Z", sub: "root", roles: "admin", authz: 1},
		{method: "GET", resource: "/users/{id}/consistency", id: id, sub: "root", roles: "admin", authz: 1},
		{method: "GET", resource: "/actors/{sub}/activity", id: "fuzzer", query: "limit=1&cursor=zzz", sub: "fuzzer", authz: 1},
		{method: "GET", resource: "/ops/projections", sub: "root", roles: "admin read", authz: 1},
		{method: "GET", resource: "/healthz"},
		{method: "GET", path: "/users/" + id + "/history/", sub: "fuzzer", authz: 1},
		{method: "PATCH", resource: "/users/{id}", id: "\x00", headers: "Content-Type: text/plain\nX-Request-Id: a\r\nb", body: "{\"a\":\xff}", b64: true, sub: "fuzzer", authz: 3},
	} {
		f.Add(e.method, e.resource, e.path, e.id, e.headers, e.query, e.body, e.b64, e.sub, e.roles, e.authz)
	}
	s := newMemoryService(f)
	seedUsers(f, s, id)
	h := pick(s)
	f.Fuzz(func(t *testing.T, method, resource, path, id, headers, query, body string, b64 bool, sub, roles string, authz uint8) {
		e := fuzzEvent{method: method, resource: resource, path: path, id: id, headers: headers, query: query, body: body,
			b64: b64, sub: sub, roles: roles, authz: authz}
		before := streamLen(t, s, id)
		resp := fuzzCheck(t, h, e.request())
		if resp.StatusCode/100 == 2 {
			checkAllowed(t, s, e, resp, before)
		}
	})
}

// seedUsers gives the handlers something to find: user id, linked to sub
// "fuzzer", with a few events, and a deleted user linked to "ghost".
func seedUsers(f *testing.F, s *memoryService, id string) {
	ctx := context.Background()
	dead := uuid.Must(uuid.NewV7()).String()
	for _, c := range []struct {
		id  string
		cmd user.Command
	}{
		{id, user.Create{Name: "Fuzz", Email: "fuzz@example.com", Sub: "fuzzer"}},
		{id, user.Rename{Name: "Fuzz Two"}},
		{id, user.Suspend{Reason: "seed"}},
		{id, user.Reactivate{Reason: "seed"}},
		{dead, user.Create{Name: "Ghost", Email: "ghost@example.com", Sub: "ghost"}},
		{dead, user.Delete{Reason: "seed"}},
	} {
		if _, err := s.svc.Execute(ctx, c.id, c.cmd, es.ExecOptions{Metadata: es.Metadata{Actor: "fuzzer"}}); err != nil {
			f.Fatal(err)
		}
	}
}

// fuzzCheck calls h and checks what every answer must be.
func fuzzCheck(t *testing.T, h handler, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	apitest.ValidateProxy(t, req, resp)
	if resp.StatusCode < 200 || resp.StatusCode >= 500 {
		t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
	}
	checkAnswer(t, httpAnswer{status: resp.StatusCode, headers: resp.Headers, body: resp.Body})
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusGone {
		var p problemBody
		if err := json.Unmarshal([]byte(resp.Body), &p); err != nil || p.Status != resp.StatusCode {
			t.Fatalf("problem %s: status %d in the body, %d on the answer (%v)", resp.Body, p.Status, resp.StatusCode, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return resp
}

// checkAllowed checks that a 2xx went to someone allowed to get it.
func checkAllowed(t *testing.T, s *memoryService, e fuzzEvent, resp events.APIGatewayProxyResponse, before map[string]int) {
	t.Helper()
	sub, admin, ok := e.principal()
	var ans map[string]json.RawMessage
	_ = json.Unmarshal([]byte(resp.Body), &ans)
	_, health := ans["status"]
	if !ok {
		if len(ans) != 1 || !health {
			t.Fatalf("no principal, yet %d: %s", resp.StatusCode, resp.Body)
		}
		return
	}
	if admin {
		return
	}
	str := func(k string) string {
		var v string
		_ = json.Unmarshal(ans[k], &v)
		return v
	}
	ownerOf := func(id string) string {
		agg, err := s.svc.LoadAt(context.Background(), id, 1)
		if err != nil && !errors.Is(err, user.ErrNotFound) {
			t.Fatal(err)
		}
		return agg.State.Sub
	}
	switch {
	case ans["projections"] != nil, ans["eventStoreVersion"] != nil:
		t.Fatalf("%q, not an admin, read the operations routes: %s", sub, resp.Body)
	case ans["users"] != nil:
		t.Fatalf("%q, not an admin, listed the users: %s", sub, resp.Body)
	case ans["events"] != nil && ans["sub"] != nil: // activity
		if str("sub") != sub {
			t.Fatalf("%q read the activity of %q", sub, str("sub"))
		}
	case ans["events"] != nil, ans["state"] != nil, ans["version"] != nil: // history, state, view, command
		if id := str("id"); ownerOf(id) != sub {
			t.Fatalf("%q got %d on user %s of %q: %s", sub, resp.StatusCode, id, ownerOf(id), resp.Body)
		}
		if ans["name"] == nil && ans["state"] == nil && ans["events"] == nil {
			checkOwnCommand(t, s, sub, str("id"), before[str("id")])
		}
	case health:
	default:
		t.Fatalf("unexpected answer %d: %s", resp.StatusCode, resp.Body)
	}
}

// streamLen is the number of events of the user whose id is in the path
// parameter, by canonical id.
func streamLen(t *testing.T, s *memoryService, id string) map[string]int {
	u, err := uuid.Parse(id)
	if err != nil {
		return nil
	}
	recs, err := s.store.Load(context.Background(), u.String(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]int{u.String(): len(recs)}
}

// checkOwnCommand checks that the events a plain user's command wrote on
// its own user (those after the first before) are ones a plain user may
// cause, and that they name it as their actor. A no-op writes none.
func checkOwnCommand(t *testing.T, s *memoryService, sub, id string, before int) {
	t.Helper()
	recs, err := s.store.Load(context.Background(), id, int64(before)+1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		switch r.Type {
		case "user.created.v1", "user.renamed.v1", "user.email_changed.v1":
		default:
			t.Fatalf("%q, not an admin, caused %s on %s", sub, r.Type, id)
		}
		if r.Metadata.Actor != sub {
			t.Fatalf("event %s v%d of %s names actor %q, not the caller %q", r.Type, r.Version, id, r.Metadata.Actor, sub)
		}
	}
}
