package httpapi_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
)

// Optimistic concurrency and idempotency through the API: If-Match, retried
// conflicts, replays and reused keys.
func TestConcurrencyAndIdempotency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// rename is the rename of user id by sub, with opts.
	rename := func(t *testing.T, sub, id, name string, opts ...opt) events.APIGatewayProxyResponse {
		opts = append([]opt{as(sub), withID(id), withBody(map[string]string{"name": name})}, opts...)
		return do(t, e.cmds, request(t, "commands/rename-user.json", opts...))
	}

	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"200 If-Match at the current version", func(t *testing.T) {
			sub := newSub("a")
			id, _ := e.createUser(t, sub)
			var w writeBody
			wantJSON(t, rename(t, sub, id, "A2", withHeader("If-Match", `"1"`)), http.StatusOK, &w)
			if w.Version != 2 {
				t.Errorf("version %d", w.Version)
			}
		}},
		{"412 If-Match behind: current version in the body, nothing written", func(t *testing.T) {
			sub := newSub("b")
			id, _ := e.createUser(t, sub)
			wantJSON(t, rename(t, sub, id, "B2"), 200, nil)
			resp := rename(t, sub, id, "B3", withHeader("If-Match", "1"))
			p := wantProblem(t, resp, http.StatusPreconditionFailed)
			if p.CurrentVersion == nil || *p.CurrentVersion != 2 || resp.Headers["ETag"] != `"2"` {
				t.Errorf("problem %+v, ETag %s", p, resp.Headers["ETag"])
			}
			if v := e.version(t, id); v != 2 {
				t.Errorf("version %d after a 412, want 2", v)
			}
		}},
		{"412 racing writers with the same If-Match: exactly one wins", func(t *testing.T) {
			sub := newSub("c")
			id, _ := e.createUser(t, sub)
			statuses := race(10, func(i int) int {
				return rename(t, sub, id, uuid.NewString(), withHeader("If-Match", `"1"`)).StatusCode
			})
			if statuses[200] != 1 || statuses[412] != 9 {
				t.Errorf("statuses %v: want one 200 and nine 412", statuses)
			}
		}},
		{"200 racing writers without If-Match are retried, none lost", func(t *testing.T) {
			sub := newSub("d")
			id, _ := e.createUser(t, sub)
			statuses := race(5, func(i int) int { return rename(t, sub, id, uuid.NewString()).StatusCode })
			if statuses[200] != 5 {
				t.Errorf("statuses %v: want five 200", statuses)
			}
			if v := e.version(t, id); v != 6 {
				t.Errorf("version %d, want 6", v)
			}
		}},
		{"201 replay of a create returns the first answer and writes nothing", func(t *testing.T) {
			sub := newSub("e")
			req := request(t, "commands/create-user.json", as(sub), withHeader("Idempotency-Key", "create-once"),
				withBody(map[string]string{"name": "E", "email": sub + "@example.com"}))
			first := do(t, e.cmds, req)
			wantJSON(t, first, http.StatusCreated, nil)
			again := do(t, e.cmds, req)
			if again.StatusCode != first.StatusCode || again.Body != first.Body ||
				again.Headers["Location"] != first.Headers["Location"] || again.Headers["ETag"] != first.Headers["ETag"] {
				t.Errorf("replay %d %s %v, first %d %s %v", again.StatusCode, again.Body, again.Headers, first.StatusCode, first.Body, first.Headers)
			}
		}},
		{"200 replay of a rename after later changes returns the first answer", func(t *testing.T) {
			sub := newSub("f")
			id, _ := e.createUser(t, sub)
			key := withHeader("Idempotency-Key", "rename-1")
			first := rename(t, sub, id, "F2", key)
			wantJSON(t, rename(t, sub, id, "F3"), 200, nil)
			again := rename(t, sub, id, "F2", key)
			if again.StatusCode != http.StatusOK || again.Body != first.Body || again.Headers["ETag"] != `"2"` {
				t.Errorf("replay %d %s, first %s", again.StatusCode, again.Body, first.Body)
			}
			if v := e.version(t, id); v != 3 {
				t.Errorf("version %d, want 3: the replay wrote", v)
			}
		}},
		{"200 replay of a no-op", func(t *testing.T) {
			sub := newSub("g")
			id, _ := e.createUser(t, sub)
			key := withHeader("Idempotency-Key", "noop")
			first := rename(t, sub, id, "User "+sub, key)
			again := rename(t, sub, id, "User "+sub, key)
			if first.StatusCode != 200 || again.StatusCode != 200 || again.Body != first.Body {
				t.Errorf("first %d %s, replay %d %s", first.StatusCode, first.Body, again.StatusCode, again.Body)
			}
		}},
		{"201 racing creates with one Idempotency-Key: one user", func(t *testing.T) {
			sub := newSub("h")
			req := request(t, "commands/create-user.json", as(sub), withHeader("Idempotency-Key", "race"),
				withBody(map[string]string{"name": "H", "email": sub + "@example.com"}))
			var mu sync.Mutex
			bodies := map[string]int{}
			statuses := race(8, func(int) int {
				resp := do(t, e.cmds, req)
				mu.Lock()
				bodies[resp.Body]++
				mu.Unlock()
				return resp.StatusCode
			})
			if statuses[201] != 8 || len(bodies) != 1 {
				t.Errorf("statuses %v, %d distinct bodies: want eight 201 with one body", statuses, len(bodies))
			}
		}},
		{"409 racing creates with one email: exactly one succeeds", func(t *testing.T) {
			email := newSub("race") + "@example.com"
			statuses := race(8, func(int) int {
				return do(t, e.cmds, request(t, "commands/create-user.json", as(newSub("i")),
					withBody(map[string]string{"name": "I", "email": email}))).StatusCode
			})
			if statuses[201] != 1 || statuses[409] != 7 {
				t.Errorf("statuses %v: want one 201 and seven 409", statuses)
			}
		}},
		{"422 same key, other body", func(t *testing.T) {
			sub := newSub("j")
			id, _ := e.createUser(t, sub)
			key := withHeader("Idempotency-Key", "k")
			wantJSON(t, rename(t, sub, id, "J2", key), 200, nil)
			wantProblem(t, rename(t, sub, id, "J3", key), http.StatusUnprocessableEntity)
			if v := e.version(t, id); v != 2 {
				t.Errorf("version %d, want 2", v)
			}
		}},
		{"422 same key, other user", func(t *testing.T) {
			sub := newSub("k")
			id, _ := e.createUser(t, sub)
			key := withHeader("Idempotency-Key", "k")
			wantJSON(t, rename(t, "admin-"+sub, id, "K2", key, as("admin-"+sub, "admin")), 200, nil)
			other, _ := e.createUser(t, newSub("k2"))
			wantProblem(t, rename(t, "admin-"+sub, other, "K2", key, as("admin-"+sub, "admin")), http.StatusUnprocessableEntity)
		}},
		{"keys are scoped by principal", func(t *testing.T) {
			key := withHeader("Idempotency-Key", "shared-key")
			for _, sub := range []string{newSub("l"), newSub("m")} {
				e.run(t, e.cmds, 201, request(t, "commands/create-user.json", as(sub), key,
					withBody(map[string]string{"name": "L", "email": sub + "@example.com"})))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// race runs f n times at once and counts the statuses it returns.
func race(n int, f func(i int) int) map[int]int {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		statuses = map[int]int{}
		start    = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			s := f(i)
			mu.Lock()
			statuses[s]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return statuses
}
