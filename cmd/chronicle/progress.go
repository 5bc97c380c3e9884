package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chronicle-go/chronicle/infra/rebuild"
)

// progressBar draws a rebuild's progress: a bar redrawn in place with rate
// and ETA on a terminal, or a plain line every few seconds otherwise.
type progressBar struct {
	w        io.Writer
	terminal bool
	every    time.Duration // plain lines: at most one per every
	now      func() time.Time
	last     time.Time
	phase    string
	drawn    bool
}

func newProgressBar(w io.Writer, terminal bool) *progressBar {
	return &progressBar{w: w, terminal: terminal, every: 2 * time.Second, now: time.Now}
}

// update is a rebuild.Options.Progress.
func (b *progressBar) update(p rebuild.Progress) {
	now := b.now()
	phaseChanged := p.Phase != b.phase
	b.phase = p.Phase
	switch p.Phase {
	case rebuild.PhaseSettling:
		b.line(fmt.Sprintf("%s: generation %d allocated; waiting %s until every projector writes it too",
			p.Projection, p.Generation, p.Wait.Round(time.Second)))
		return
	case rebuild.PhaseSwitching:
		b.line(b.status(p))
		return
	case rebuild.PhaseDone, rebuild.PhasePaused:
		return // the caller prints the outcome
	}
	if b.terminal {
		if now.Sub(b.last) < 100*time.Millisecond && !phaseChanged {
			return
		}
		b.last = now
		fmt.Fprintf(b.w, "\r\033[K%s", b.status(p))
		b.drawn = true
		return
	}
	if !phaseChanged && now.Sub(b.last) < b.every {
		return
	}
	b.last = now
	fmt.Fprintln(b.w, b.status(p))
}

// line prints a line of its own, after the bar if one is drawn.
func (b *progressBar) line(s string) {
	if b.terminal && b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
	fmt.Fprintln(b.w, s)
}

// finish ends the bar's line.
func (b *progressBar) finish() {
	if b.terminal && b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

const barWidth = 28

func (b *progressBar) status(p rebuild.Progress) string {
	var sb strings.Builder
	rate := 0.0
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.RunEvents) / s
	}
	known := p.Total > 0 && p.Events <= p.Total
	if b.terminal {
		frac := 0.0
		if known {
			frac = float64(p.Events) / float64(p.Total)
		}
		full := int(frac * barWidth)
		sb.WriteString("[" + strings.Repeat("#", full) + strings.Repeat("-", barWidth-full) + "] ")
	}
	fmt.Fprintf(&sb, "%s gen %d: %s", p.Projection, p.Generation, count(p.Events))
	if known {
		fmt.Fprintf(&sb, "/%s events %3.0f%%", count(p.Total), 100*float64(p.Events)/float64(p.Total))
	} else {
		sb.WriteString(" events")
	}
	fmt.Fprintf(&sb, "  %s events/s", count(int64(rate)))
	if known && rate > 0 {
		eta := time.Duration(float64(p.Total-p.Events) / rate * float64(time.Second))
		fmt.Fprintf(&sb, "  ETA %s", eta.Round(time.Second))
	}
	fmt.Fprintf(&sb, "  (%d segments, %s)", p.Segments, p.Phase)
	return sb.String()
}

// count writes n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
