// Package tracetree is a trace as a tree of spans, the JSON the local
// runner serves at GET /_local/traces/{id} and the text chronicle trace
// prints, whether the spans come from the runner or from X-Ray.
package tracetree

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Span is one span and the spans under it.
type Span struct {
	TraceID  string `json:"traceId"`
	SpanID   string `json:"spanId"`
	ParentID string `json:"parentId,omitempty"`
	Name     string `json:"name"`
	Kind     string `json:"kind,omitempty"`
	// Service is the function (or "api-gateway") that wrote the span.
	Service    string            `json:"service,omitempty"`
	Start      time.Time         `json:"start"`
	DurationMS float64           `json:"durationMs"`
	Error      string            `json:"error,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Links are the spans, of other traces, this one serves: "trace/span".
	Links    []string `json:"links,omitempty"`
	Children []*Span  `json:"children,omitempty"`
}

// Trace is what GET /_local/traces/{id} answers: the spans of one trace
// as trees (one root when every span arrived), and the request id it was
// found by.
type Trace struct {
	TraceID   string  `json:"traceId"`
	RequestID string  `json:"requestId,omitempty"`
	Roots     []*Span `json:"roots"`
	// Spans is how many spans the trees hold.
	Spans int `json:"spans"`
}

// Build links flat spans (Children empty) into trees: a span whose parent
// is not among them is a root. Children and roots are in start order.
func Build(spans []*Span) []*Span {
	byID := make(map[string]*Span, len(spans))
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	var roots []*Span
	for _, s := range spans {
		if p, ok := byID[s.ParentID]; ok && s.ParentID != "" && p != s {
			p.Children = append(p.Children, s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b *Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
	}
	for _, s := range spans {
		slices.SortFunc(s.Children, byStart)
	}
	slices.SortFunc(roots, byStart)
	return roots
}

// Walk calls f on every span of roots, depth first, with its depth.
func Walk(roots []*Span, f func(s *Span, depth int)) {
	var walk func(s *Span, d int)
	walk = func(s *Span, d int) {
		f(s, d)
		for _, c := range s.Children {
			walk(c, d+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
}

// Print writes t as an indented tree: each span's offset from the trace's
// start, its duration, name and service, and what failed.
func Print(w io.Writer, t Trace) {
	fmt.Fprintf(w, "trace %s", t.TraceID)
	if t.RequestID != "" {
		fmt.Fprintf(w, " (request %s)", t.RequestID)
	}
	fmt.Fprintf(w, ": %d spans\n", t.Spans)
	var t0 time.Time
	Walk(t.Roots, func(s *Span, _ int) {
		if t0.IsZero() || s.Start.Before(t0) {
			t0 = s.Start
		}
	})
	Walk(t.Roots, func(s *Span, depth int) {
		line := fmt.Sprintf("%+9.1fms %9.1fms  %s%s", float64(s.Start.Sub(t0).Microseconds())/1000, s.DurationMS,
			strings.Repeat("  ", depth), s.Name)
		if s.Service != "" {
			line += "  [" + s.Service + "]"
		}
		if len(s.Links) > 0 {
			line += fmt.Sprintf("  (links %d)", len(s.Links))
		}
		if s.Error != "" {
			line += "  ERROR: " + s.Error
		}
		fmt.Fprintln(w, line)
	})
}
