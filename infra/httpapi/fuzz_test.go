package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// emptyReadModel is a read model that has seen nothing: enough for the fuzz
// test, which runs in memory so that it is fast.
type emptyReadModel struct{}

func (emptyReadModel) UserView(context.Context, string) (user.View, bool, error) {
	return user.View{}, false, nil
}
func (emptyReadModel) UserIDByEmail(context.Context, string) (string, bool, error) {
	return "", false, nil
}
func (emptyReadModel) ActorActivity(_ context.Context, _ string, _ int, cursor string) ([]es.Record, string, error) {
	if cursor != "" {
		return nil, "", readmodel.ErrBadCursor
	}
	return nil, "", nil
}
func (emptyReadModel) AppliedVersions(context.Context, string) (map[string]int64, error) {
	return nil, nil
}
func (emptyReadModel) Checkpoints(context.Context) ([]readmodel.Checkpoint, error) { return nil, nil }

var _ httpapi.ReadModel = emptyReadModel{}

// No input makes a handler fail, panic or answer something other than a
// JSON document with an X-Request-Id; none is a 500 in memory.
func FuzzHandle(f *testing.F) {
	for _, s := range []struct {
		method, resource, id, body, contentType, roles, ifMatch, key, query string
		b64                                                                 bool
	}{
		{"POST", "/users", "", `{"name":"A","email":"a@example.com"}`, "application/json", "", "", "", "", false},
		{"POST", "/users", "", `{"name":"A","email":"a@example.com","sub":"x"}`, "application/json", "admin", "", "k", "", false},
		{"PUT", "/users/{id}/name", fixtureID, `{"name":"B"}`, "application/json; charset=utf-8", "admin", `"1"`, "", "", false},
		{"DELETE", "/users/{id}", fixtureID, ``, "", "admin", "", "", "", false},
		{"POST", "/users/{id}/suspend", fixtureID, `eyJyZWFzb24iOiJ4In0=`, "application/json", "admin", "", "", "", true},
		{"GET", "/users/{id}/history", fixtureID, ``, "", "", "", "", "limit=5&cursor=abc", false},
		{"GET", "/users/{id}/state", fixtureID, ``, "", "admin", "", "", "at=2025-01-01T00:00:00Z", false},
		{"GET", "/users", "", ``, "", "", "", "", "email=a@example.com", false},
		{"GET", "/actors/{sub}/activity", "", ``, "", "admin", "", "", "cursor=zzz", false},
		{"GET", "/ops/projections", "", ``, "", "admin", "", "", "", false},
		{"PATCH", "/users/{id}", "\x00", "{\"a\":\xff}", "text/plain", "admin", "W/\"1\"", "\n", "minVersion=-1", true},
	} {
		f.Add(s.method, s.resource, s.id, s.body, s.contentType, s.roles, s.ifMatch, s.key, s.query, s.b64)
	}
	store := memory.New()
	svc := es.NewService(user.Decider(), user.NewRegistry(), store, es.Options{SnapshotEvery: 2})
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	cmds := httpapi.NewCommands(svc, logger)
	qs, err := httpapi.NewQueries(httpapi.QueriesDeps{
		Users: svc, Events: store, ReadModel: emptyReadModel{}, Logger: logger,
		Health: func(context.Context) error { return nil },
	}, httpapi.WithClock(func() time.Time { return time.Unix(0, 0) }))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, resource, id, body, contentType, roles, ifMatch, key, query string, b64 bool) {
		req := events.APIGatewayProxyRequest{
			HTTPMethod: method, Resource: resource, Body: body, IsBase64Encoded: b64,
			PathParameters: map[string]string{"id": id, "sub": id},
			Headers:        map[string]string{"Content-Type": contentType, "If-Match": ifMatch, "Idempotency-Key": key, "X-Request-Id": key, "X-Min-Version": ifMatch},
			QueryStringParameters: map[string]string{
				"limit": query, "cursor": query, "fromVersion": query, "version": query, "at": query,
				"email": query, "minVersion": query, "consistent": query,
			},
			RequestContext: events.APIGatewayProxyRequestContext{
				Authorizer: map[string]interface{}{"sub": "fuzzer", "roles": roles},
			},
		}
		for _, h := range []handler{cmds, qs} {
			resp, err := h.Handle(t.Context(), req)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if resp.StatusCode < 200 || resp.StatusCode > 599 || resp.StatusCode == http.StatusInternalServerError {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			if resp.Headers["X-Request-Id"] == "" || !json.Valid([]byte(resp.Body)) {
				t.Fatalf("answer %d without a request id or JSON: %q", resp.StatusCode, resp.Body)
			}
		}
	})
}
