package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/infra/rebuild"
)

// TestProgressBar: a bar with percentage, rate and ETA redrawn in place on
// a terminal; plain lines, at most one every few seconds, otherwise.
func TestProgressBar(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := rebuild.Progress{Projection: "user-view", Generation: 3, Phase: rebuild.PhaseScanning, Segments: 4,
		Events: 25_000, RunEvents: 20_000, Total: 100_000, Elapsed: 10 * time.Second}

	var term bytes.Buffer
	bar := newProgressBar(&term, true)
	bar.now = func() time.Time { return now }
	bar.update(p)
	bar.finish()
	got := term.String()
	for _, want := range []string{"\r\033[K[#######---------------------] ", "25,000/100,000 events  25%", "2,000 events/s", "ETA 38s", "(4 segments, scanning)"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar %q lacks %q", got, want)
		}
	}

	var plain bytes.Buffer
	lines := newProgressBar(&plain, false)
	lines.now = func() time.Time { return now }
	lines.update(rebuild.Progress{Projection: "user-view", Generation: 3, Phase: rebuild.PhaseSettling, Wait: 9 * time.Second})
	lines.update(p)
	lines.update(p) // too soon: no line
	now = now.Add(3 * time.Second)
	p.Events = 50_000
	lines.update(p)
	out := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(out) != 3 || !strings.Contains(out[0], "waiting 9s") || strings.Contains(plain.String(), "\r") ||
		!strings.Contains(out[2], "50,000/100,000 events  50%") {
		t.Errorf("plain lines:\n%s", plain.String())
	}
	if count(1234567) != "1,234,567" || count(12) != "12" {
		t.Error(count(1234567), count(12))
	}
}
