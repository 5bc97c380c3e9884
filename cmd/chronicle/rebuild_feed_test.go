package main

import (
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/rebuild/rebuildtest"
)

// TestRebuildFromFeed: chronicle rebuild --from-feed fills the new
// generations from the durable feed (its checkpoint per generation is left
// at the last event read), and the rebuilt read model equals the fold of
// every user's events.
func TestRebuildFromFeed(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	if _, err := rebuildtest.Seed(ctx, s.ddb, s.name+"-events", 10, 4, 2); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := s.chronicle(t, "rebuild", "all", "--from-feed", "--settle", "0")
	if code != 0 || !strings.Contains(out, "user-view: generation 2 active (was 1): 40 events") ||
		!strings.Contains(out, "actor-activity: generation 2 active") {
		t.Fatalf("rebuild --from-feed: %d\n%s\n%s", code, out, errOut)
	}
	// The feed, not the scan, filled them: each build's checkpoint is there.
	cps := feed.NewCheckpoints(s.ddb, s.name+"-readmodel")
	for _, name := range []string{"rebuild-user-view-g2", "rebuild-actor-activity-g2"} {
		if _, ok, err := cps.Load(ctx, name); err != nil || !ok {
			t.Errorf("feed checkpoint %s: found %v, %v", name, ok, err)
		}
	}
	if out, _, code = s.chronicle(t, "audit", "--recheck", "0"); code != 0 || !strings.Contains(out, "audited 10 aggregates (40 events)") {
		t.Fatalf("audit of a read model rebuilt from the feed: %d %s", code, out)
	}
	if _, _, code = s.chronicle(t, "rebuild", "user-view", "--from-feed", "--remote"); code != 2 {
		t.Errorf("rebuild --from-feed --remote: exit %d, want 2 (usage)", code)
	}
}
