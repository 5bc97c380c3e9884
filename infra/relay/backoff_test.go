package relay_test

import (
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/infra/relay"
)

// TestBackoffDelay: 1 s, then doubling with each receive, capped below the
// consumer queues' 20 s visibility timeout.
func TestBackoffDelay(t *testing.T) {
	for receives, want := range map[int]time.Duration{
		0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second,
		5: 16 * time.Second, 6: 16 * time.Second, 1000: 16 * time.Second,
	} {
		if got := relay.BackoffDelay(receives); got != want {
			t.Errorf("BackoffDelay(%d) = %s, want %s", receives, got, want)
		}
	}
	if relay.BackoffMax >= 20*time.Second {
		t.Errorf("BackoffMax %s: not below the queues' visibility timeout", relay.BackoffMax)
	}
}
