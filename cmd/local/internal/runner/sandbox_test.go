package runner

import (
	"testing"
	"time"
)

// TestSandboxReused: an invocation runs in a sandbox that then waits for
// the next one, as a warm Lambda environment does; a sandbox whose
// invocation panicked ends, as Lambda discards a crashed environment.
func TestSandboxReused(t *testing.T) {
	fn := &function{idle: make(chan func() bool)}
	first := make(chan struct{})
	fn.run(func() bool { close(first); return true })
	<-first

	// The sandbox waits now: the next invocation is handed to it.
	second := make(chan struct{})
	select {
	case fn.idle <- func() bool { close(second); return false }:
	case <-time.After(10 * time.Second):
		t.Fatal("no sandbox waits for an invocation after the first ended")
	}
	<-second

	// That one "panicked": no sandbox waits any more.
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case fn.idle <- func() bool { return false }:
			t.Fatal("a sandbox still waits after its invocation panicked")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
