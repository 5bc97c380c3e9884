package runner

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/awstest"
)

// TestKeptTableWithNewQueuesReadsTheStreamAgain: with the emulators'
// -data-dir, DynamoDB Local keeps the tables across a restart but moto keeps
// no queue. The stream positions in the state directory say what the relay
// had handed to queues that are gone, so a runner that finds the tables kept
// and the queues new reads the stream again from its start; the consumers
// skip what they had applied. Without that, an event relayed to a lost queue
// would never reach its consumers.
func TestKeptTableWithNewQueuesReadsTheStreamAgain(t *testing.T) {
	cfg := awstest.Config(t)
	stack := "kept-" + uuid.NewString()[:8]
	stateDir := t.TempDir()
	var (
		mu      sync.Mutex
		relayed int // records the relay was invoked with
	)
	observe := func(inv Invocation) {
		if inv.Function == "RelayFunction" && inv.Outcome == OutcomeOK {
			mu.Lock()
			relayed += inv.Records
			mu.Unlock()
		}
	}
	relayedSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		return relayed
	}
	start := func(t *testing.T) (*Runner, string, func()) {
		t.Helper()
		r, err := New(Config{Template: templatePath, StackName: stack, Parameters: localParams, AWS: cfg,
			StateDir: stateDir, Logger: discard, Observe: observe})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Provision(t.Context()); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Serve(ctx, ln) }()
		return r, "http://" + ln.Addr().String(), func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	}

	first, base, stop := start(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if err := first.Destroy(ctx); err != nil {
			t.Error(err)
		}
	})
	token, err := auth.Mint([]byte(auth.LocalSecret), auth.LocalIssuer, auth.LocalAudience, "kept-admin", []string{"admin"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/users",
		strings.NewReader(`{"name":"Kept","email":"kept-`+stack+`@example.com"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	waitFor(t, 20*time.Second, "the relay hands the create on", func() bool { return relayedSoFar() >= 1 })
	// The checkpoint is written once the batch is handed on; give the
	// shard reader the moment it needs to record it.
	waitFor(t, 10*time.Second, "the stream position is kept", func() bool {
		cp, err := loadCheckpoints(stateDir, first.res.streamARNs["EventsTable"])
		return err == nil && len(cp.seq) > 0
	})
	stop()

	// What moto's restart does: every queue gone.
	if err := first.deleteQueues(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := relayedSoFar()
	second, _, stop2 := start(t)
	defer stop2()
	if !second.res.tablesFound["EventsTable"] || !second.res.queuesCreated {
		t.Fatalf("second start: tables found %v, queues created %v", second.res.tablesFound, second.res.queuesCreated)
	}
	waitFor(t, 20*time.Second, "the stream is read again into the new queues", func() bool { return relayedSoFar() > before })
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
