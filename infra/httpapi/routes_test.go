package httpapi

import (
	"io"
	"log/slog"
	"testing"
)

// Every route of the API has a handler on its side, and only there.
func TestEveryRouteHasAHandler(t *testing.T) {
	cmds := NewCommands(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	qs := &Queries{}
	qs.handlers = qs.routes()
	sides := map[side]map[string]handlerFunc{commandSide: cmds.handlers, querySide: qs.handlers}
	n := 0
	for _, r := range apiRoutes {
		for s, hs := range sides {
			_, ok := hs[r.key()]
			if ok != (s == r.side) {
				t.Errorf("%s: handler on side %d: %v", r.key(), s, ok)
			}
		}
		n++
	}
	if got := len(cmds.handlers) + len(qs.handlers); got != n {
		t.Errorf("%d handlers for %d routes", got, n)
	}
}
