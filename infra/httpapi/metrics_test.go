package httpapi_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/metrics/metricstest"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// TestCommandMetrics: with WithMetrics, every command writes one EMF line
// with its latency, its version-conflict retries and whether it failed;
// requests refused before the command runs write none.
func TestCommandMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var emf metricstest.Buffer
	cmds := httpapi.NewCommands(e.svc, slog.New(slog.DiscardHandler), httpapi.WithMetrics(metrics.New(&emf, "", "commands")))
	sub := newSub("metrics")
	resp := do(t, cmds, request(t, "commands/create-user.json", as(sub),
		withBody(map[string]string{"name": "Ada", "email": strings.ToLower(sub) + "@example.com"})))
	var w writeBody
	wantJSON(t, resp, 201, &w)
	do(t, cmds, request(t, "commands/rename-user.json", withID(w.ID), as(sub), withBody(map[string]string{"name": "Ada L."})))
	do(t, cmds, request(t, "commands/rename-user.json", withID(w.ID), as(sub), withBody(map[string]string{"name": ""}))) // 400: no command ran

	got := emf.Lines(t)
	if len(got) != 2 || got[0]["Command"] != "create" || got[1]["Command"] != "rename" {
		t.Fatalf("lines %v", got)
	}
	for _, m := range got {
		if m["Function"] != "commands" || m["CommandLatency"].(float64) <= 0 || m["VersionConflictRetries"] != 0.0 || m["CommandErrors"] != 0.0 {
			t.Errorf("line %v", m)
		}
	}
}

// TestOpsProjectionsGenerations: GET /ops/projections says which generation
// of each projection readers use, and which one a rebuild is filling.
func TestOpsProjectionsGenerations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.rm.BeginBuild(t.Context(), userviews.ProjectionUserView, time.Now()); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Projections map[string]struct {
			Generation           *int64 `json:"generation"`
			RebuildingGeneration *int64 `json:"rebuildingGeneration"`
		} `json:"projections"`
	}
	wantJSON(t, do(t, e.qs, request(t, "queries/ops-projections.json")), 200, &body)
	uv, aa := body.Projections[userviews.ProjectionUserView], body.Projections[userviews.ProjectionActorActivity]
	if uv.Generation == nil || *uv.Generation != 1 || uv.RebuildingGeneration == nil || *uv.RebuildingGeneration != 2 {
		t.Errorf("user-view: %+v", uv)
	}
	if aa.Generation == nil || *aa.Generation != 1 || aa.RebuildingGeneration != nil {
		t.Errorf("actor-activity: %+v", aa)
	}
}

// TestOpsProjectionsReportsEveryRunProjection: GET /ops/projections
// reports the checkpoint and generation of every projection the projector
// runs (WithCheckpointed), the Team service's beside the User service's.
func TestOpsProjectionsReportsEveryRunProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	names := []string{userviews.ProjectionUserView, userviews.ProjectionActorActivity, "team"}
	qs, err := httpapi.NewQueries(httpapi.QueriesDeps{Users: e.svc, Events: e.store, ReadModel: e.rm, Logger: slog.New(slog.DiscardHandler),
		Health: func(context.Context) error { return nil }},
		httpapi.WithCheckpointed(names))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute).UTC()
	if err := e.rm.AdvanceCheckpoint(t.Context(), readmodel.Checkpoint{Projection: "team", LastEventID: "e3", LastEventAt: at, Processed: 3, ProcessedAt: at}); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Projections map[string]struct {
			Processed  *int64 `json:"processed"`
			Generation *int64 `json:"generation"`
		} `json:"projections"`
	}
	wantJSON(t, do(t, qs, request(t, "queries/ops-projections.json")), 200, &body)
	tm := body.Projections["team"]
	if tm.Processed == nil || *tm.Processed != 3 || tm.Generation == nil || *tm.Generation != 1 {
		t.Errorf("team: processed %v, generation %v; want 3 and 1", tm.Processed, tm.Generation)
	}
	if uv := body.Projections[userviews.ProjectionUserView]; uv.Processed == nil || *uv.Processed != 0 {
		t.Errorf("user-view: processed %v, want 0", uv.Processed)
	}
}
