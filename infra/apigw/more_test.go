package apigw

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/domain/es"
)

// TestMoreAPIs: an edge serving a second API (Config.More) routes by both
// tables, tells 405 from 404 across them, and words each route's errors
// with the errors of the API that declares it.
func TestMoreAPIs(t *testing.T) {
	conflict := func(context.Context, *Call) (Reply, error) { return Reply{}, es.ErrConflict }
	e := New(Config{
		Function: "W",
		Routes:   []Route{{"POST /things", "W"}, {"GET /things/{id}", "R"}},
		Handlers: map[string]Handler{"POST /things": conflict},
		Errors:   Errors{Noun: "thing"},
		More: []API{{
			Routes:   []Route{{"POST /parts", "W"}, {"GET /parts/{id}", "R"}},
			Handlers: map[string]Handler{"POST /parts": conflict},
			Errors:   Errors{Noun: "part"},
		}},
		NewID:  func() string { return "req" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	for _, tc := range []struct {
		method, path string
		status       int
		detail       string
	}{
		{"POST", "/things", 409, "The thing kept changing"},
		{"POST", "/parts", 409, "The part kept changing"},
		{"PUT", "/parts", 405, "This resource allows POST."},
		{"GET", "/parts/1", 404, "This function does not serve GET /parts/{id}."},
		{"GET", "/nothing", 404, "There is no such resource."},
	} {
		resp, err := e.Serve(t.Context(), events.APIGatewayProxyRequest{HTTPMethod: tc.method, Path: tc.path})
		var p Problem
		if err != nil || json.Unmarshal([]byte(resp.Body), &p) != nil {
			t.Fatalf("%s %s: %v %q", tc.method, tc.path, err, resp.Body)
		}
		if resp.StatusCode != tc.status || !strings.HasPrefix(p.Detail, tc.detail) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, p.Detail, tc.status, tc.detail)
		}
	}
	if len(e.Routes()) != 4 {
		t.Errorf("routes %v", e.Routes())
	}
	defer func() {
		if recover() == nil {
			t.Error("a pattern declared by two APIs was accepted")
		}
	}()
	New(Config{Routes: []Route{{"POST /parts", "W"}}, More: []API{{Routes: []Route{{"POST /parts", "W"}}}}})
}
