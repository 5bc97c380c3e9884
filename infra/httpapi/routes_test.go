package httpapi

import (
	"io"
	"log/slog"
	"testing"

	"github.com/chronicle-go/chronicle/infra/apigw"
)

// Every route of the API has a handler on its side, and only there.
func TestEveryRouteHasAHandler(t *testing.T) {
	cmds := NewCommands(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	qs := &Queries{}
	qs.handlers = qs.routes()
	sides := map[string]map[string]apigw.Handler{commandsFunction: cmds.handlers, queriesFunction: qs.handlers}
	n := 0
	for _, r := range Routes {
		for s, hs := range sides {
			_, ok := hs[r.Pattern]
			if ok != (s == r.Function) {
				t.Errorf("%s: handler on side %s: %v", r.Pattern, s, ok)
			}
		}
		n++
	}
	if got := len(cmds.handlers) + len(qs.handlers); got != n {
		t.Errorf("%d handlers for %d routes", got, n)
	}
}
