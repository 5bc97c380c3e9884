package es_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
)

// TestRetryBudget: without a cap on attempts, a command keeps trying until
// its retry budget is spent, then reports the conflict; a context deadline
// closer than the budget cuts it short.
func TestRetryBudget(t *testing.T) {
	ctx := context.Background()
	store := &racingStore{Store: memory.New(), n: 1 << 30}
	svc := es.NewService(noteDecider(), registry(), store, es.Options{RetryBudget: 200 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	start := time.Now()
	res, err := svc.Execute(ctx, "n1", "hello", es.ExecOptions{})
	took := time.Since(start)
	if !errors.Is(err, es.ErrConflict) || res.Attempts < 5 || took > 400*time.Millisecond {
		t.Fatalf("got %d attempts in %s, %v; want ErrConflict after the 200ms budget", res.Attempts, took, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 600*time.Millisecond) // 100ms once the reserve is kept
	defer cancel()
	svc = es.NewService(noteDecider(), registry(), store, es.Options{RetryBudget: time.Minute, MaxBackoff: 20 * time.Millisecond})
	start = time.Now()
	if _, err := svc.Execute(dctx, "n2", "hello", es.ExecOptions{}); !errors.Is(err, es.ErrConflict) || time.Since(start) > 300*time.Millisecond {
		t.Fatalf("under a deadline: %v after %s; want ErrConflict within the deadline less its reserve", err, time.Since(start))
	}
}
