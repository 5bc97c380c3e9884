package httpapi_test

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/httpapi"
)

// TestCommandsOnAStaleCache: two commands containers, each with its state
// cache, on one user; the one the owner uses is left behind by the other's
// writes. Its answers are those of a container that read first: a valid
// If-Match passes, a stale one is 412 naming the current version, a
// stranger is 403 (before the precondition), and nothing is lost.
func TestCommandsOnAStaleCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := httpapi.NewCommands(user.NewService(e.store,
		es.Options{SnapshotEvery: snapshotEvery, MaxAttempts: 8, CacheSize: 256}), slog.New(slog.DiscardHandler))
	sub := newSub("stale")
	id, _ := e.createUser(t, sub)
	rename := func(name string) opt { return withBody(map[string]string{"name": name}) }
	e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id), rename("A2"))) // e.cmds caches v2
	e.run(t, other, 200, request(t, "commands/rename-user.json", asAdmin(), withID(id), rename("B3")))

	// Valid If-Match on e.cmds, whose cache says v2.
	w := e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id), withHeader("If-Match", `"3"`), rename("A4")))
	if w.Version != 4 {
		t.Fatalf("If-Match 3 on a stream at v3, cache at v2: version %d, want 4", w.Version)
	}
	e.run(t, other, 200, request(t, "commands/rename-user.json", asAdmin(), withID(id), rename("B5")))

	// Stale If-Match, equal to the stale cache's version: 412 naming v5.
	p := wantProblem(t, do(t, e.cmds, request(t, "commands/rename-user.json", as(sub), withID(id), withHeader("If-Match", `"4"`), rename("A6"))),
		http.StatusPreconditionFailed)
	if p.CurrentVersion == nil || *p.CurrentVersion != 5 {
		t.Errorf("stale If-Match: current version %v, want 5", p.CurrentVersion)
	}
	// A stranger, with or without If-Match, is 403, warm or not.
	for _, c := range []*httpapi.Commands{e.cmds, other} {
		wantProblem(t, do(t, c, request(t, "commands/rename-user.json", as(newSub("mallory")), withID(id), withHeader("If-Match", `"4"`))), http.StatusForbidden)
		wantProblem(t, do(t, c, request(t, "commands/rename-user.json", as(newSub("mallory")), withID(id))), http.StatusForbidden)
	}
	// No update lost: the owner's next rename on the stale container is v6.
	if w := e.run(t, e.cmds, 200, request(t, "commands/rename-user.json", as(sub), withID(id), rename("A6"))); w.Version != 6 {
		t.Errorf("rename on the stale container: version %d, want 6", w.Version)
	}
	if v := e.version(t, id); v != 6 {
		t.Errorf("stream at v%d, want 6", v)
	}
}
