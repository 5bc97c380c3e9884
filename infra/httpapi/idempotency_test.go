package httpapi_test

import (
	"net/http"
	"testing"
)

// TestIdempotencyScopesDoNotCollide: defect 6. A key is scoped to the
// caller's sub; two callers whose (sub, key) pairs once joined into the same
// record key ("a#b" + "#" + "c" and "a" + "#" + "b#c") each get their own
// answer, not the other's replay or a 422.
func TestIdempotencyScopesDoNotCollide(t *testing.T) {
	s := newMemoryService(t)
	pairs := []struct{ sub, key, name string }{
		{"a#b", "c", "First"},
		{"a", "b#c", "Second"},
		{"1:a", "b", "Third"},
		{"1", "a#b", "Fourth"},
	}
	ids := map[string]bool{}
	for _, p := range pairs {
		req := request(t, "commands/create-user.json", as(p.sub, "admin"), withHeader("Idempotency-Key", p.key),
			withBody(map[string]string{"name": p.name, "email": p.name + "@example.com"}))
		var w writeBody
		wantJSON(t, do(t, s.cmds, req), http.StatusCreated, &w)
		if ids[w.ID] {
			t.Errorf("sub %q, key %q: replayed another caller's user %s", p.sub, p.key, w.ID)
		}
		ids[w.ID] = true
	}
}
