package faults

import (
	"bytes"
	"sync"
)

// RingLog is a log writer that keeps only the last lines: a fault run logs
// thousands, and its failure report wants the end. It is safe for
// concurrent use.
type RingLog struct {
	mu    sync.Mutex
	max   int
	lines [][]byte
}

// NewRingLog keeps the last max lines.
func NewRingLog(max int) *RingLog { return &RingLog{max: max} }

// Write keeps p as one line (slog writes one line per call).
func (l *RingLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, bytes.Clone(p))
	if len(l.lines) > l.max {
		l.lines = l.lines[len(l.lines)-l.max:]
	}
	return len(p), nil
}

// String is the lines kept, oldest first.
func (l *RingLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(bytes.Join(l.lines, nil))
}
