package apigw

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

var testRoutes = []Route{
	{"POST /things", "W"},
	{"GET /things", "R"},
	{"GET /things/{id}", "R"},
	{"DELETE /things/{id}", "W"},
	{"GET /things/{id}/parts", "R"},
	{"PUT /things/{id}/parts/{part}", "W"},
	{"GET /page", "R"},
	{"GET /page/{asset}", "R"},
}

// TestRoutesAreServeMuxPatterns: the edge's match of a concrete path and
// http.ServeMux's agree on every route of a table: the patterns mean what
// they mean to Go.
func TestRoutesAreServeMuxPatterns(t *testing.T) {
	if err := CheckRoutes(testRoutes); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range testRoutes {
		mux.Handle(r.Pattern, http.NotFoundHandler())
	}
	for _, r := range testRoutes {
		path := strings.NewReplacer("{id}", "a1", "{part}", "p2", "{asset}", "app.js").Replace(r.Resource())
		_, pattern := mux.Handler(httptest.NewRequest(r.Method(), path, nil))
		got, params, err := match(&events.APIGatewayProxyRequest{HTTPMethod: r.Method(), Path: path}, testRoutes, r.Function)
		if err != nil || got != r || pattern != r.Pattern {
			t.Errorf("%s %s: edge %v (%v), ServeMux %q", r.Method(), path, got, err, pattern)
		}
		if PathOf(r.Resource(), params) != path {
			t.Errorf("%s: params %v do not give back %s", r.Pattern, params, path)
		}
	}
}

// TestMatchRefusals: a route of another function is a 404, a method the
// resource lacks a 405 with Allow, an unknown path a 404.
func TestMatchRefusals(t *testing.T) {
	for _, tc := range []struct {
		method, path, function string
		kind                   Kind
		allow                  string
	}{
		{"GET", "/things/1", "W", NoRoute, ""},
		{"PATCH", "/things/1", "R", MethodNotAllowed, "DELETE, GET"},
		{"GET", "/nope", "R", NoRoute, ""},
	} {
		_, _, err := match(&events.APIGatewayProxyRequest{HTTPMethod: tc.method, Path: tc.path}, testRoutes, tc.function)
		e, ok := err.(*Error)
		if !ok || e.Kind != tc.kind || strings.Join(e.Allow, ", ") != tc.allow {
			t.Errorf("%s %s on %s: %v, want %v %q", tc.method, tc.path, tc.function, err, tc.kind.slug, tc.allow)
		}
		if p := e.Problem(); p.Status != tc.kind.Status() || (tc.allow != "" && p.Headers["Allow"] != tc.allow) {
			t.Errorf("%s %s: problem %+v", tc.method, tc.path, p)
		}
	}
}

// TestCheckRoutes refuses what http.ServeMux refuses, and a pattern
// declared twice.
func TestCheckRoutes(t *testing.T) {
	for name, routes := range map[string][]Route{
		"twice":      {{"GET /a", "R"}, {"GET /a", "R"}},
		"conflict":   {{"GET /a/{x}/c", "R"}, {"GET /a/b/{y}", "R"}},
		"malformed":  {{"GET /a/{x", "R"}},
		"no method":  {{"/a", "R"}},
		"no handler": {{"GET /a", ""}},
	} {
		if err := CheckRoutes(routes); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
