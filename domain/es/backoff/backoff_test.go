package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es/backoff"
)

const draws = 2000 // per case: enough to see a window's both ends

// TestDecorrelatedBounds: every wait is at least Base, below three times
// the previous one (or Base+1 at the start) and at most Cap; waits that
// follow long ones still reach down to Base.
func TestDecorrelatedBounds(t *testing.T) {
	p := backoff.Policy{Base: 5 * time.Millisecond, Cap: 100 * time.Millisecond}
	var prev time.Duration
	sawCap, sawLow := false, false
	for range draws {
		d := p.Delay(0, prev)
		hi := min(max(3*prev, p.Base+1), p.Cap)
		if d < p.Base || (d >= hi && d != p.Base) || d > p.Cap {
			t.Fatalf("Delay after %s = %s, want in [%s, %s)", prev, d, p.Base, hi)
		}
		sawCap = sawCap || d > p.Cap*9/10
		sawLow = sawLow || (prev > p.Cap/2 && d < 2*p.Base)
		prev = d
	}
	if !sawCap || !sawLow {
		t.Errorf("over %d draws: a wait near the cap %v, a short wait after a long one %v; want both", draws, sawCap, sawLow)
	}
	if d := p.Delay(0, 0); d != p.Base {
		t.Errorf("first Delay = %s, want Base %s (the window [Base, Base+1ns))", d, p.Base)
	}
}

// TestFullJitterBounds: the wait before retry n is in [Min, Min+ceiling),
// the ceiling doubling from Base up to Cap, and uses the whole window.
func TestFullJitterBounds(t *testing.T) {
	p := backoff.Policy{Base: 10 * time.Millisecond, Cap: 200 * time.Millisecond, Min: time.Millisecond, Mode: backoff.FullJitter}
	for n, ceiling := range map[int]time.Duration{
		-1: 10 * time.Millisecond, 0: 10 * time.Millisecond, 1: 10 * time.Millisecond,
		2: 20 * time.Millisecond, 5: 160 * time.Millisecond, 6: 200 * time.Millisecond, 1000: 200 * time.Millisecond,
	} {
		lo, hi := p.Window(n, 0)
		if lo != p.Min || hi != p.Min+ceiling {
			t.Errorf("Window(%d) = [%s, %s), want [%s, %s)", n, lo, hi, p.Min, p.Min+ceiling)
		}
		var least, most time.Duration = time.Hour, 0
		for range draws {
			d := p.Delay(n, 0)
			if d < lo || d >= hi {
				t.Fatalf("Delay(%d) = %s, want in [%s, %s)", n, d, lo, hi)
			}
			least, most = min(least, d), max(most, d)
		}
		if least > lo+ceiling/10 || most < hi-ceiling/10 {
			t.Errorf("Delay(%d) over %d draws spans [%s, %s]: want near both ends of [%s, %s)", n, draws, least, most, lo, hi)
		}
	}
}

// TestExponential: Base·2^(n-1) exactly, at most Cap; with no Cap, a
// count that grows without end never wraps around to a negative wait.
func TestExponential(t *testing.T) {
	p := backoff.Policy{Base: time.Second, Cap: 16 * time.Second, Mode: backoff.Exponential}
	want := []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 16 * time.Second}
	for n, w := range want {
		if got := p.Delay(n, 0); got != w {
			t.Errorf("Delay(%d) = %s, want %s", n, got, w)
		}
	}
	uncapped := backoff.Policy{Base: 5 * time.Millisecond, Mode: backoff.Exponential}
	prev := time.Duration(0)
	for n := 1; n < 200; n++ {
		d := uncapped.Delay(n, 0)
		if d < prev {
			t.Fatalf("uncapped Delay(%d) = %s, less than Delay(%d) = %s", n, d, n-1, prev)
		}
		prev = d
	}
	jittered := backoff.Policy{Base: 5 * time.Millisecond, Mode: backoff.FullJitter}
	for n := 1; n < 200; n++ {
		if d := jittered.Delay(n, 0); d < 0 {
			t.Fatalf("uncapped full jitter Delay(%d) = %s", n, d)
		}
	}
}

func TestDraw(t *testing.T) {
	if d := backoff.Draw(7, 7); d != 7 {
		t.Errorf("Draw(7, 7) = %d, want 7", d)
	}
	if d := backoff.Draw(7, 3); d != 7 {
		t.Errorf("Draw(7, 3) = %d, want 7", d)
	}
	for range draws {
		if d := backoff.Draw(3, 5); d < 3 || d >= 5 {
			t.Fatalf("Draw(3, 5) = %d, want 3 or 4", d)
		}
	}
}

// TestSleepCancelled: Sleep returns ctx.Err() as soon as ctx ends, long
// before d, and at once when ctx has ended already, even for d <= 0.
func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- backoff.Sleep(ctx, time.Hour) }()
	time.AfterFunc(10*time.Millisecond, cancel)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep cancelled after 10ms = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Sleep(1h) still waiting 5s after its context was cancelled")
	}
	for _, d := range []time.Duration{-time.Second, 0, time.Hour} {
		if err := backoff.Sleep(ctx, d); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep(done ctx, %s) = %v, want context.Canceled", d, err)
		}
	}
	dl, stop := context.WithTimeout(t.Context(), time.Millisecond)
	defer stop()
	if err := backoff.Sleep(dl, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sleep past its deadline = %v, want context.DeadlineExceeded", err)
	}
}

// TestSleepWaits: Sleep waits d and returns nil; d <= 0 returns at once.
func TestSleepWaits(t *testing.T) {
	start := time.Now()
	if err := backoff.Sleep(t.Context(), 20*time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v, want nil", err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("Sleep(20ms) returned after %s", took)
	}
	if err := backoff.Sleep(t.Context(), 0); err != nil {
		t.Errorf("Sleep(0) = %v, want nil", err)
	}
}
