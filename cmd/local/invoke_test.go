package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/cmd/local/internal/rie"
	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

// The repository's template and fixtures, from this package.
const (
	repoTemplate = "../../template.yaml"
	repoTestdata = "../../testdata"
)

// syncBuffer collects the emulators' output, written from their goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixtureUserID is the {id} of the API fixtures; adaID, adaEmail the
// user of the stream and queue fixtures.
const (
	fixtureUserID = "0190a5f0-7c3e-7d2a-9b1e-3f4a5b6c7d8e"
	adaID         = "0195a3c2-7a10-7c3e-9d2b-5f1e8a4b6c01"
	adaEmail      = "ada@example.com"
)

// TestEveryFixtureUnderTheEmulator invokes every fixture of testdata/ on
// its function's bootstrap under the Runtime Interface Emulator, as
// invoke does, against the emulators (a stack of its own), in an order
// that makes each meaningful: the commands on the user the create made,
// the projector before the read-model queries. Each answer is checked for
// what the fixture is about, not only for the absence of an error; a
// fixture without a check here fails the test.
func TestEveryFixtureUnderTheEmulator(t *testing.T) {
	invokeEveryFixture(t, rie.Host)
}

// TestShippedBootstrapsUnderQEMU is the same on the artifacts that ship:
// the linux/arm64 bootstraps, built as make build builds them, each run
// under qemu-aarch64-static behind the host's emulator. Without qemu it
// fails: make test installs it (Debian's qemu-user-static).
func TestShippedBootstrapsUnderQEMU(t *testing.T) {
	if _, err := exec.LookPath("qemu-aarch64-static"); err != nil && rie.Host != rie.Shipped {
		t.Fatalf("qemu-aarch64-static is needed to run the shipped linux/arm64 bootstraps (apt-get install -y qemu-user-static; make test installs it): %v", err)
	}
	invokeEveryFixture(t, rie.Shipped)
}

func invokeEveryFixture(t *testing.T, platform rie.Platform) {
	cfg := awstest.Config(t)
	t.Parallel()
	ctx := t.Context()
	start := time.Now()
	l, err := rie.NewLauncher(ctx, "../..", platform, lambdafn.Names(), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	var logs syncBuffer
	l.Output, l.PoolSize = &logs, 1
	stack := "invoke-" + uuid.NewString()[:8]
	r, err := runner.New(runner.Config{Template: repoTemplate, Parameters: localParameters, StackName: stack, AWS: cfg, Getenv: os.Getenv, RIE: l})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := r.Destroy(dctx); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("the functions' output:\n%s", logs.String())
		}
	})
	adminToken, err := minter(os.Getenv).Mint("alice", []string{"admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	checked := map[string]bool{}
	// invoke sends the fixture, edited, to fn.
	invoke := func(t *testing.T, fn, fixture string, edit func(string) string) (json.RawMessage, error) {
		t.Helper()
		checked[fixture] = true
		b, err := os.ReadFile(filepath.Join(repoTestdata, fixture))
		if err != nil {
			t.Fatal(err)
		}
		ev := strings.ReplaceAll(string(b), fixtureToken, adminToken)
		if edit != nil {
			ev = edit(ev)
		}
		return r.Invoke(ctx, fn, json.RawMessage(ev))
	}
	var userID string
	onUser := func(s string) string { return strings.ReplaceAll(s, fixtureUserID, userID) }
	// api invokes an API fixture and checks the answer's status.
	api := func(t *testing.T, fn, fixture string, edit func(string) string, status int) map[string]any {
		t.Helper()
		out, err := invoke(t, fn, fixture, edit)
		if err != nil {
			t.Fatalf("%s: %v", fixture, err)
		}
		var resp events.APIGatewayProxyResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("%s: answer %s: %v", fixture, out, err)
		}
		if resp.StatusCode != status {
			t.Fatalf("%s: status %d, want %d: %s", fixture, resp.StatusCode, status, resp.Body)
		}
		var body map[string]any
		if resp.Body != "" {
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
				t.Fatalf("%s: body %q: %v", fixture, resp.Body, err)
			}
		}
		return body
	}
	// batch invokes an event source fixture and checks that no record failed.
	batch := func(t *testing.T, fn, fixture string) {
		t.Helper()
		out, err := invoke(t, fn, fixture, nil)
		if err != nil {
			t.Fatalf("%s: %v", fixture, err)
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("%s: answer %s (%v): want no failed item", fixture, out, err)
		}
	}

	t.Run("authorizer", func(t *testing.T) {
		out, err := invoke(t, "AuthorizerFunction", "authorizer/token-request.json", nil)
		if err != nil {
			t.Fatal(err)
		}
		var resp events.APIGatewayCustomAuthorizerResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.PrincipalID != "alice" || len(resp.PolicyDocument.Statement) != 1 || resp.PolicyDocument.Statement[0].Effect != "Allow" {
			t.Errorf("answer %s: want alice allowed", out)
		}
		// The fixture's placeholder is no token: Lambda's error, as API Gateway wants for a 401.
		_, err = invoke(t, "AuthorizerFunction", "authorizer/token-request.json", func(s string) string {
			return strings.ReplaceAll(s, adminToken, fixtureToken)
		})
		if fe, ok := errors.AsType[*rie.FunctionError](err); !ok || fe.Message != "Unauthorized" {
			t.Errorf("the placeholder token: %v, want the function error Unauthorized", err)
		}
	})
	t.Run("commands", func(t *testing.T) {
		created := api(t, "CommandsFunction", "commands/create-user.json", nil, 201)
		userID, _ = created["id"].(string)
		if _, err := uuid.Parse(userID); err != nil || created["version"] != 1.0 {
			t.Fatalf("create answered %v", created)
		}
		for i, f := range []string{"rename-user", "change-email", "suspend-user", "reactivate-user"} {
			got := api(t, "CommandsFunction", "commands/"+f+".json", onUser, 200)
			if got["id"] != userID || got["version"] != float64(i+2) {
				t.Errorf("%s answered %v, want %s at v%d", f, got, userID, i+2)
			}
		}
	})
	t.Run("queries", func(t *testing.T) {
		if userID == "" {
			t.Skip("no user: the commands failed")
		}
		state := api(t, "QueriesFunction", "queries/user-state.json", onUser, 200)
		if st, _ := state["state"].(map[string]any); state["version"] != 5.0 || st["name"] != "Alice Renamed" || st["email"] != "alice.new@example.com" || st["status"] != "active" {
			t.Errorf("state %v", state)
		}
		hist := api(t, "QueriesFunction", "queries/user-history.json", onUser, 200)
		if evs, _ := hist["events"].([]any); len(evs) != 5 {
			t.Errorf("history has %d events, want 5: %v", len(evs), hist)
		}
		cons := api(t, "QueriesFunction", "queries/user-consistency.json", onUser, 200)
		if cons["eventStoreVersion"] != 5.0 {
			t.Errorf("consistency %v", cons)
		}
		api(t, "QueriesFunction", "queries/healthz.json", nil, 200)
		ops := api(t, "QueriesFunction", "queries/ops-projections.json", nil, 200)
		if _, ok := ops["projections"].(map[string]any); !ok {
			t.Errorf("ops/projections %v", ops)
		}
		// The feed answers in its shape; its items come from the runner's
		// stream consumer, which does not run here.
		feed := api(t, "QueriesFunction", "queries/events.json", nil, 200)
		if _, ok := feed["events"].([]any); !ok {
			t.Errorf("GET /events: %v, want an events array", feed)
		}
		// No projector saw this user (no poller runs here): the answer
		// comes from the event store.
		got := api(t, "QueriesFunction", "queries/get-user.json", onUser, 200)
		if got["name"] != "Alice Renamed" || got["version"] != 5.0 {
			t.Errorf("get-user %v", got)
		}
	})
	t.Run("stream and queues", func(t *testing.T) {
		batch(t, "RelayFunction", "relay/stream-user-created.json")
		// The relay routed Ada's event to the projections queue.
		q := sqs.NewFromConfig(cfg)
		got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.QueueURL("ProjectionsQueue")), WaitTimeSeconds: 1})
		if err != nil || len(got.Messages) != 1 || !strings.Contains(aws.ToString(got.Messages[0].Body), adaID) {
			t.Errorf("projections queue after the relay: %v, %v", got, err)
		}

		batch(t, "ProjectorFunction", "projector/sqs-user-created.json")
		// Read by an admin: Ada is not alice's.
		ada := api(t, "QueriesFunction", "queries/get-user.json", func(s string) string {
			return asAdmin(strings.ReplaceAll(s, fixtureUserID, adaID))
		}, 200)
		if ada["name"] != "Ada Lovelace" || ada["email"] != adaEmail {
			t.Errorf("Ada after the projector: %v", ada)
		}
		found := api(t, "QueriesFunction", "queries/find-user-by-email.json", func(s string) string {
			return asAdmin(strings.ReplaceAll(s, "alice@example.com", adaEmail))
		}, 200)
		if !strings.Contains(mustJSON(t, found), adaID) {
			t.Errorf("find by %s: %v", adaEmail, found)
		}
		// Ada, projected and active, is listed.
		list := api(t, "QueriesFunction", "queries/list-users.json", nil, 200)
		if !strings.Contains(mustJSON(t, list), adaID) {
			t.Errorf("GET /users?status=active has not Ada: %v", list)
		}
		// Ada's creation is in her actor's activity.
		act := api(t, "QueriesFunction", "queries/actor-activity.json", func(s string) string {
			var ev map[string]any
			if err := json.Unmarshal([]byte(asAdmin(s)), &ev); err != nil {
				t.Fatal(err)
			}
			ev["path"], ev["pathParameters"] = "/actors/auth0|ada/activity", map[string]any{"sub": "auth0|ada"}
			return mustJSON(t, ev)
		}, 200)
		if !strings.Contains(mustJSON(t, act), adaID) {
			t.Errorf("activity of auth0|ada: %v", act)
		}

		batch(t, "NotifierFunction", "notifier/sqs-user-created.json")
		if !slices.ContainsFunc(awstest.SentMails(t), func(m awstest.SentMail) bool { return slices.Contains(m.To, adaEmail) }) {
			t.Errorf("no welcome mail to %s in SES", adaEmail)
		}
	})
	t.Run("replay", func(t *testing.T) {
		// A rebuild of the user view: Ada's one event, in one slice.
		batch(t, "ReplayFunction", "replay/sqs-rebuild-user-view.json")
	})
	t.Run("delete", func(t *testing.T) {
		if userID == "" {
			t.Skip("no user: the commands failed")
		}
		got := api(t, "CommandsFunction", "commands/delete-user.json", onUser, 200)
		if got["version"] != 6.0 {
			t.Errorf("delete answered %v", got)
		}
	})

	// Every fixture was checked; the logs are Lambda's.
	files, err := filepath.Glob(filepath.Join(repoTestdata, "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(repoTestdata, f)
		if !checked[filepath.ToSlash(rel)] {
			t.Errorf("fixture %s is invoked by no check of this test", rel)
		}
	}
	out := logs.String()
	for _, want := range []string{"START RequestId: ", "END RequestId: ", "REPORT RequestId: ", "Init Duration: "} {
		if !strings.Contains(out, want) {
			t.Errorf("the emulators' output has no %q", want)
		}
	}
	inits := r.InitDurations()
	var report []string
	for _, id := range slices.Sorted(maps.Keys(inits)) {
		for _, d := range inits[id] {
			report = append(report, id+" "+d.Round(10*time.Microsecond).String())
		}
	}
	t.Logf("%s bootstraps built (or found up to date) in %s; all fixtures in %s; cold inits (Init Duration): %s",
		platform, built.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), strings.Join(report, ", "))
}

// asAdmin makes the authorizer context of an API fixture an admin's.
func asAdmin(event string) string {
	return strings.ReplaceAll(event, `"roles": "[]"`, `"roles": "[\"admin\"]"`)
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInvokeCommand runs the command as a user does: the answer on
// stdout, the logs with START, END and REPORT (and the cold init) on
// stderr, a function error as Lambda reports it with exit code 1.
func TestInvokeCommand(t *testing.T) {
	awstest.Config(t)
	t.Parallel()
	tok, err := minter(os.Getenv).Mint("bob", []string{"admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fixture, err := os.ReadFile(filepath.Join(repoTestdata, "authorizer", "token-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	stack := "invoke-cli-" + uuid.NewString()[:8]
	t.Cleanup(func() { destroyStack(t, stack) })
	run := func(event string) (code int, stdout, stderr string) {
		var out, errOut bytes.Buffer
		code = invokeCommand(t.Context(), []string{"AuthorizerFunction", "--event", "-", "--template", repoTemplate, "--stack-name", stack},
			os.Getenv, strings.NewReader(event), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, stdout, stderr := run(strings.ReplaceAll(string(fixture), fixtureToken, tok))
	var resp events.APIGatewayCustomAuthorizerResponse
	if code != 0 || json.Unmarshal([]byte(stdout), &resp) != nil || resp.PrincipalID != "bob" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"START RequestId: ", "END RequestId: ", "REPORT RequestId: ", "Init Duration: ", `"authorizer allowed"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr has no %q:\n%s", want, stderr)
		}
	}
	code, stdout, stderr = run(string(fixture))
	if code != 1 || strings.TrimSpace(stdout) != `{"errorType":"errorString","errorMessage":"Unauthorized"}` {
		t.Errorf("the placeholder token: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}

// destroyStack deletes the tables and queues an invoke created for stack.
func destroyStack(t *testing.T, stack string) {
	cfg := awstest.Config(t)
	r, err := runner.New(runner.Config{Template: repoTemplate, Parameters: localParameters, StackName: stack, AWS: cfg})
	if err != nil {
		t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
	defer cancel()
	if err := r.Destroy(ctx); err != nil {
		t.Error(err)
	}
}
