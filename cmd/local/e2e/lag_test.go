package e2e

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Projection lag: from a write accepted (its 2xx answer received) to GET
// /users/{id} answering that version from the projection (X-Source:
// projection). Measured only on demand, as it takes minutes:
//
//	CHRONICLE_E2E_LAG_COMMANDS=1000 go run ./cmd/emulators -- \
//	    go test -v -count=1 -run TestProjectionLag ./cmd/local/e2e
//
// CHRONICLE_E2E_LAG_RATE sets the commands per second (default 10),
// CHRONICLE_E2E_LAG_POLL how often each write's read model is polled
// (default 25ms: the resolution), CHRONICLE_E2E_LAG_P99 a p99 to enforce.
// Locally it runs on a runner of its own, on CHRONICLE_E2E_LAG_TEMPLATE if
// set (to compare a template's settings), else on template.yaml.
func TestProjectionLag(t *testing.T) {
	n := envInt(t, "CHRONICLE_E2E_LAG_COMMANDS", 0)
	if n == 0 {
		t.Skip("set CHRONICLE_E2E_LAG_COMMANDS=1000 to measure the projection lag")
	}
	rate := envInt(t, "CHRONICLE_E2E_LAG_RATE", 10)
	poll := envDuration(t, "CHRONICLE_E2E_LAG_POLL", 25*time.Millisecond)
	c := s.client()
	if s.local != nil {
		tpl := templatePath
		if v := os.Getenv("CHRONICLE_E2E_LAG_TEMPLATE"); v != "" {
			tpl = v
		}
		c = client{base: startTestRunner(t, runnerOptions{template: tpl}).url}
		t.Logf("template %s", tpl)
	}
	const steps = 4 // per user: create, then three renames
	users := (n + steps - 1) / steps

	type sample struct {
		lag  time.Duration
		step int
	}
	var (
		mu      sync.Mutex
		samples []sample
		wg      sync.WaitGroup
	)
	// Users in groups of rate: each step of a group takes a second, so a
	// user's next command comes a second after its previous one.
	type command struct{ user, step int }
	var plan []command
	for g := 0; g < users; g += rate {
		for step := range steps {
			for u := g; u < min(g+rate, users); u++ {
				plan = append(plan, command{u, step})
			}
		}
	}
	plan = plan[:n]
	// Each command goes out on its tick, in a goroutine of its own, so
	// that a slow answer does not slow the rate; a user's command waits
	// for the user's previous one (a second earlier) to be answered.
	ids := make([]string, users)
	prev := make([]chan struct{}, users)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	start := time.Now()
	for _, cmd := range plan {
		<-tick.C
		wait, done := prev[cmd.user], make(chan struct{})
		prev[cmd.user] = done
		wg.Go(func() {
			defer close(done)
			if wait != nil {
				<-wait
			}
			var r reply
			if cmd.step == 0 {
				r = c.do(t, req{method: "POST", path: "/users", token: s.admin,
					body: map[string]string{"name": "Lag " + strconv.Itoa(cmd.user), "email": uniqueEmail("lag")}})
			} else {
				r = c.do(t, req{method: "PUT", path: "/users/" + ids[cmd.user] + "/name", token: s.admin,
					body: map[string]string{"name": fmt.Sprintf("Lag %d.%d", cmd.user, cmd.step)}})
			}
			accepted := time.Now()
			if r.status != http.StatusCreated && r.status != http.StatusOK {
				t.Errorf("command %+v: %d %s", cmd, r.status, r.body)
				return
			}
			var w written
			r.decode(t, &w)
			ids[cmd.user] = w.ID
			lag := waitProjected(t, c, w.ID, w.Version, poll, accepted)
			mu.Lock()
			samples = append(samples, sample{lag, cmd.step})
			mu.Unlock()
		})
	}
	sent := time.Since(start)
	wg.Wait()
	if len(samples) == 0 {
		t.Fatal("no sample")
	}

	lags := make([]time.Duration, len(samples))
	for i, sm := range samples {
		lags[i] = sm.lag
	}
	slices.Sort(lags)
	q := func(p float64) time.Duration { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
	msg := fmt.Sprintf("%s: projection lag over %d commands at %d/s (sent in %s, polled every %s): p50 %s, p90 %s, p99 %s, max %s", c.base,
		len(lags), rate, sent.Round(time.Second), poll, q(0.50).Round(time.Millisecond), q(0.90).Round(time.Millisecond),
		q(0.99).Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))
	t.Log(msg)
	fmt.Fprintln(os.Stderr, msg)
	if limit := envDuration(t, "CHRONICLE_E2E_LAG_P99", 0); limit > 0 && q(0.99) > limit {
		t.Errorf("p99 %s is over %s", q(0.99), limit)
	}
}

// waitProjected polls GET /users/{id} until the projection answers version
// v or later, and returns how long after accepted that was.
func waitProjected(t *testing.T, c client, id string, v int64, poll time.Duration, accepted time.Time) time.Duration {
	deadline := accepted.Add(time.Minute)
	for time.Now().Before(deadline) {
		r := c.do(t, req{method: "GET", path: "/users/" + id, token: s.admin})
		seen := time.Now()
		if r.status == http.StatusOK && r.header.Get("X-Source") == "projection" {
			var u userAnswer
			r.decode(t, &u)
			if u.Version >= v {
				return seen.Sub(accepted)
			}
		}
		select { // the poll interval is the measurement's resolution
		case <-t.Context().Done():
			return time.Minute
		case <-time.After(poll):
		}
	}
	t.Errorf("%s v%d not projected within a minute", id, v)
	return time.Minute
}

func envInt(t *testing.T, k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", k, v)
	}
	return n
}

func envDuration(t *testing.T, k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", k, v, err)
	}
	return d
}
