// Package backoff is how Chronicle waits before trying again: Sleep, a wait
// that ends early when its context does, and Policy, how long each wait is.
//
// The kernel, the stores, the projector and the local runner all retry
// (version conflicts, busy transactions, throttled batches, failed
// deliveries); they differ in how long they wait, not in how. So each
// states its waits as a Policy, with its own figures, and waits with Sleep.
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Sleep waits d, or until ctx is done, whichever comes first. It returns
// ctx.Err() when ctx ended first (at once when ctx is already done), nil
// when d passed. A d of zero or less does not wait.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Mode is how a Policy grows its waits and draws them at random.
type Mode uint8

const (
	// Decorrelated jitter: each wait is uniform between Base and three
	// times the previous wait, at most Cap. Writers that keep colliding
	// spread out without a shared schedule, and a wait depends on the last
	// one, not on a count. The zero Mode.
	Decorrelated Mode = iota
	// FullJitter: the wait before retry n is uniform below a ceiling of
	// Base·2^(n-1), at most Cap.
	FullJitter
	// Exponential: the wait before retry n is Base·2^(n-1), at most Cap,
	// with no randomness: for a single waiter, which has no one to spread
	// out from (a stream shard's retries, a queue poller's idle polls).
	Exponential
)

// Policy says how long to wait before each retry. The zero Cap means no
// cap. Min is added to every wait, so that a jittered wait is never zero
// (a retry sent at once tends to meet the same contention).
type Policy struct {
	Base time.Duration
	Cap  time.Duration
	Min  time.Duration
	Mode Mode
}

// Delay draws the wait before retry n (1 for the first) after a wait of
// prev. Decorrelated reads only prev (0 before the first retry); the other
// modes read only n (below 1 counts as 1).
func (p Policy) Delay(n int, prev time.Duration) time.Duration {
	return Draw(p.Window(n, prev))
}

// Window is the range Delay draws from: [lo, hi), or exactly lo when hi is
// not above lo. A caller that shapes the range further (the kernel narrows
// it as its retry budget runs out) draws with Draw itself.
func (p Policy) Window(n int, prev time.Duration) (lo, hi time.Duration) {
	switch p.Mode {
	case Decorrelated:
		lo = p.Base
		hi = max(3*prev, lo+1)
		if p.Cap > 0 {
			hi = min(hi, p.Cap)
		}
	case FullJitter:
		lo, hi = 0, p.ceiling(n)
	default:
		lo = p.ceiling(n)
		hi = lo
	}
	return p.Min + lo, p.Min + hi
}

// ceiling is Base·2^(n-1), at most Cap, and never past the largest
// Duration: a count that grows without end (a throttled batch retried
// until its context ends) must not wrap around to a negative wait.
func (p Policy) ceiling(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d > 0 && d <= math.MaxInt64/2 && (p.Cap <= 0 || d < p.Cap); i++ {
		d *= 2
	}
	if p.Cap > 0 {
		d = min(d, p.Cap)
	}
	return d
}

// Draw returns a duration uniform in [lo, hi), or lo when hi is not above lo.
func Draw(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo)
}
