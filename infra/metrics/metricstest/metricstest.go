// Package metricstest reads what a metrics.Recorder wrote, for tests: a
// writer safe for the concurrent handlers that share one recorder, and its
// EMF lines decoded.
package metricstest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// Buffer is an io.Writer for metrics.New, safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Lines are the EMF lines written so far, each decoded as a JSON object
// (its metric values and dimensions are top-level members). A line that is
// not JSON fails the test.
func (b *Buffer) Lines(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	text := strings.TrimSpace(b.buf.String())
	b.mu.Unlock()
	if text == "" {
		return nil
	}
	var out []map[string]any
	for _, l := range strings.Split(text, "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("EMF line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}
