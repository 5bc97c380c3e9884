package crash

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/cmd/local/internal/localjwt"
	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/pii"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// Environment of the child process (the test binary run as the runner).
const (
	envChild    = "CHRONICLE_CRASH_CHILD" // set: serve the runner, run no test
	envStack    = "CHRONICLE_CRASH_STACK"
	envTemplate = "CHRONICLE_CRASH_TEMPLATE" // also the parent's: the template to test (default: the repository's)
	envState    = "CHRONICLE_CRASH_STATE"    // the runner's state directory, shared by the two runs
)

// templatePath is the repository's template, from this package.
const templatePath = "../../../template.yaml"

// The load and the bound.
const (
	users   = 60 // >= 50; fewer keep the load within the bound on 2 loaded cores
	renames = 1  // per user, after its creation: the load must not outlast the bound on a loaded machine
	clients = 8
	// convergeWithin is the promise under test: the
	// views equal the folds within this long of the restart of a consumer
	// that was killed with messages in flight
	// (template.yaml: visibility 20 s + 1 s polling + timeout 5 s after the
	// kill). With the queues' visibility timeout at 180 s, it cannot hold.
	convergeWithin = 30 * time.Second
	// settleWithin bounds the rest (the welcome mails, the DLQs): the same
	// mechanism, plus the emulators' slowness on a loaded machine (moto's
	// SES under -race takes hundreds of milliseconds a mail).
	settleWithin = 45 * time.Second
	// killAfter is how many commands complete before the kill is armed.
	killAfter = users * (1 + renames) * 2 / 5
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child serves the template on a free port until it is killed (or told to
// stop), and prints its URL on stdout once it serves.
func child() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := awstest.LoadConfig(ctx)
	if err != nil {
		logger.Error("aws config", "error", err)
		return 1
	}
	// Under make test, the runner's functions' calls are checked against
	// their roles, as in every runner the tests start (infra/iamcheck).
	var iam []iamcheck.Sink
	if dir := os.Getenv(iamcheck.LogDirEnv); dir != "" {
		sink, err := iamcheck.FileSink(dir)
		if err != nil {
			logger.Error("iam log", "error", err)
			return 1
		}
		iam = []iamcheck.Sink{sink}
	}
	r, err := runner.New(runner.Config{Template: os.Getenv(envTemplate), Parameters: parameters, StackName: os.Getenv(envStack),
		AWS: cfg, Getenv: os.Getenv, Logger: logger, StateDir: os.Getenv(envState), IAM: iam})
	if err != nil {
		logger.Error("runner", "error", err)
		return 1
	}
	if err := r.Provision(ctx); err != nil {
		logger.Error("provision", "error", err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		logger.Error("listen", "error", err)
		return 1
	}
	fmt.Printf("http://%s\n", ln.Addr())
	if err := r.Serve(ctx, ln); err != nil {
		logger.Error("serve", "error", err)
		return 1
	}
	return 0
}

// parameters of the stack. NotifierMaxConcurrency is raised from the
// template's 2, which keeps the notifier under SES's send rate: moto's SES
// has none, and what this test bounds is the recovery of the backlog a
// crash leaves, which two pollers on a loaded machine drain in about the
// whole 30 s.
var parameters = map[string]string{"JwtIssuer": auth.LocalIssuer, "EmailSender": "no-reply@example.com",
	"NotifierMaxConcurrency": "5"}

// TestConsumerCrash kills the process running the consumers (the local
// runner) with SIGKILL while a load runs and a batch of the projections
// queue is in flight, starts it again on the same stack and emulators,
// finishes the load, and waits for every view to equal the fold of its
// events, exactly one welcome mail per user and empty DLQs. It reports how
// long that took after the restart and after the kill, and fails when the
// views take longer than convergeWithin, or the rest settleWithin.
func TestConsumerCrash(t *testing.T) {
	cfg := awstest.Config(t)
	tpl := templatePath
	if v := os.Getenv(envTemplate); v != "" {
		tpl = v
	}
	stack := "crash-" + uuid.NewString()[:8]
	logDir, err := os.MkdirTemp("", "chronicle-crash-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CHRONICLE_E2E_KEEP_LOGS") != "" {
			t.Logf("the runners' logs are in %s", logDir)
			return
		}
		os.RemoveAll(logDir)
	})

	// The parent provisions the stack (the children reuse it) and deletes
	// it at the end; it serves nothing.
	res, err := runner.New(runner.Config{Template: tpl, Parameters: parameters, StackName: stack, AWS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if err := res.Destroy(ctx); err != nil {
			t.Logf("destroy stack %s: %v", stack, err)
		}
	})
	sqsc := sqs.NewFromConfig(cfg)
	projections, notifications := res.QueueURL("ProjectionsQueue"), res.QueueURL("NotificationsQueue")

	first := startChild(t, stack, tpl, filepath.Join(logDir, "runner-1.log"))
	ld := newLoad(t, first.url)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); ld.run(t.Context()) }()

	// Arm the kill once part of the load is done, then kill as soon as the
	// projections queue has messages in flight: received by the runner and
	// not yet deleted.
	waitUntil(t, 60*time.Second, "part of the load done", func() (bool, string) {
		n := ld.done.Load()
		return n >= killAfter, fmt.Sprintf("%d commands done", n)
	})
	var killedAt time.Time
	waitUntil(t, 20*time.Second, "a projections batch in flight", func() (bool, string) {
		n := inFlight(t, sqsc, projections)
		if n == 0 {
			return false, "none in flight"
		}
		first.kill(t)
		killedAt = time.Now()
		return true, ""
	})
	stranded := inFlight(t, sqsc, projections)
	t.Logf("killed the runner after %d commands; %d projections messages in flight at the kill", ld.done.Load(), stranded)

	second := startChild(t, stack, tpl, filepath.Join(logDir, "runner-2.log"))
	restartedAt := time.Now()
	ld.base.Store(&second.url)
	t.Logf("restarted in %s", restartedAt.Sub(killedAt).Round(time.Millisecond))
	select {
	case <-loadDone:
	case <-time.After(convergeWithin):
		t.Fatalf("the load did not finish within %s of the restart (%d commands done)", convergeWithin, ld.done.Load())
	}
	if err := ld.err(); err != nil {
		t.Fatal(err)
	}

	ddb := dynamodb.NewFromConfig(cfg)
	// The events hold the personal fields sealed: the checks open them with
	// the users' keys, as the functions do.
	keys, err := pii.NewKeys(kms.NewFromConfig(cfg), ddb, pii.Config{KMSKeyID: res.KeyID("PersonalDataKey"), Table: res.TableName("KeysTable")})
	if err != nil {
		t.Fatal(err)
	}
	cipher := pii.NewCipher(keys, user.NewRegistry())
	store := dynamo.New(ddb, dynamo.Tables{Events: res.TableName("EventsTable")}, dynamo.WithCipher(cipher))
	rm := readmodel.New(ddb, res.TableName("ReadModelTable"), readmodel.WithGenerationTTL(0))
	rb := rebuild.New(ddb, res.TableName("EventsTable"), store, rm, user.NewRegistry(), userviews.Projections(), nil)
	rb.OpenWith(cipher.Open)
	dlqs := map[string]string{}
	for _, id := range []string{"ProjectionsDLQ", "NotificationsDLQ", "RelayDLQ"} {
		dlqs[id] = res.QueueURL(id)
	}
	mails := notifier.NewMails(ddb, rm.Table())
	op := operator{mails: mails, events: store, resolver: notifier.Resolver{Mails: mails, Events: store, Queue: sqsc,
		QueueURL: notifications, Now: time.Now}}
	// Each condition is checked until it holds, cheapest first; once all
	// hold they are checked once more together. The load is over, so a
	// view equal to its fold stays so.
	var viewsAt, mailsAt, lastLog time.Time
	var last string
	for {
		op.settle(t)
		var left []string
		// The full checks are slow on a loaded machine (an audit of every
		// user, moto's whole state); each waits until its queue is empty,
		// which it needs anyway.
		if viewsAt.IsZero() {
			if n := depth(t, sqsc, projections); n > 0 {
				left = append(left, fmt.Sprintf("projections queue holds %d", n))
			} else if ok, state := viewsDone(t, rb); ok {
				viewsAt = time.Now()
			} else {
				left = append(left, state)
			}
		}
		if mailsAt.IsZero() {
			if n := depth(t, sqsc, notifications); n > 0 {
				left = append(left, fmt.Sprintf("notifications queue holds %d", n))
			} else if ok, state := mailsDone(t, ld.emails); ok {
				mailsAt = time.Now()
			} else {
				left = append(left, state)
			}
		}
		if len(left) == 0 {
			ok1, s1 := viewsDone(t, rb)
			ok2, s2 := mailsDone(t, ld.emails)
			ok3, s3 := dlqsEmpty(t, sqsc, dlqs)
			if !ok1 || !ok2 || !ok3 {
				t.Fatalf("converged, then not: %s %s %s", s1, s2, s3)
			}
			t.Logf("converged after the restart (after the kill): views %s (%s), welcome mails %s (%s); DLQs empty; "+
				"%d users, %d commands; %d welcome mails in doubt, settled as an operator would: %d sent, %d resent",
				viewsAt.Sub(restartedAt).Round(100*time.Millisecond), viewsAt.Sub(killedAt).Round(100*time.Millisecond),
				mailsAt.Sub(restartedAt).Round(100*time.Millisecond), mailsAt.Sub(killedAt).Round(100*time.Millisecond),
				users, ld.done.Load(), op.sent+op.resent, op.sent, op.resent)
			if viewsAt.Sub(restartedAt) > convergeWithin {
				t.Errorf("views converged %s after the restart, over the %s bound", viewsAt.Sub(restartedAt).Round(100*time.Millisecond), convergeWithin)
			}
			break
		}
		state := strings.Join(left, "; ")
		if state != last && time.Since(lastLog) > 2*time.Second {
			t.Logf("%5.1fs after the restart: %s", time.Since(restartedAt).Seconds(), state)
			last, lastLog = state, time.Now()
		}
		switch {
		case viewsAt.IsZero() && time.Since(restartedAt) > convergeWithin:
			t.Fatalf("views not converged %s after the restart (%s after the kill): %s", convergeWithin,
				time.Since(killedAt).Round(100*time.Millisecond), state)
		case time.Since(restartedAt) > settleWithin:
			t.Fatalf("not settled %s after the restart (%s after the kill): %s", settleWithin,
				time.Since(killedAt).Round(100*time.Millisecond), state)
		}
		sleep(t, 250*time.Millisecond)
	}
	second.stop(t)
}

// viewsDone reports whether every user's view equals the fold of its events.
func viewsDone(t *testing.T, rb *rebuild.Rebuilder) (bool, string) {
	t.Helper()
	rep, err := rb.Audit(t.Context(), rebuild.AuditOptions{Segments: 2})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	if rep.Aggregates == users && len(rep.Differences) == 0 {
		return true, ""
	}
	kinds := map[string]int{}
	for _, d := range rep.Differences {
		kinds[d.Kind]++
	}
	return false, fmt.Sprintf("%d users in the event store, %d view differences %v", rep.Aggregates, len(rep.Differences), kinds)
}

// mailsDone reports whether every user has exactly one welcome mail; more
// than one fails the test.
func mailsDone(t *testing.T, emails []string) (bool, string) {
	t.Helper()
	counts := mailCounts(t)
	missing := 0
	for _, e := range emails {
		switch n := counts[e]; {
		case n == 0:
			missing++
		case n > 1:
			t.Fatalf("%s received %d welcome mails", e, n)
		}
	}
	return missing == 0, fmt.Sprintf("%d users without a welcome mail", missing)
}

// dlqsEmpty reports whether every DLQ is empty.
func dlqsEmpty(t *testing.T, sqsc *sqs.Client, dlqs map[string]string) (bool, string) {
	t.Helper()
	var left []string
	for id, url := range dlqs {
		if n := depth(t, sqsc, url); n > 0 {
			left = append(left, fmt.Sprintf("%s holds %d", id, n))
		}
	}
	return len(left) == 0, strings.Join(left, "; ")
}

// operator settles the welcome mails the notifier held in doubt (a crash
// between the claim and the mark), as the README tells an operator to:
// with the evidence of what SES accepted (here moto's record of sent
// mails), chronicle mail resolve --sent or --resend.
type operator struct {
	mails        *notifier.Mails
	events       *dynamo.Store
	resolver     notifier.Resolver
	sent, resent int
}

func (o *operator) settle(t *testing.T) {
	t.Helper()
	doubts, err := o.mails.MailsInDoubt(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(doubts) == 0 {
		return
	}
	counts := mailCounts(t)
	registry := user.NewRegistry()
	for _, d := range doubts {
		recs, err := o.events.Load(t.Context(), d.AggregateID, 1, 1)
		if err != nil || len(recs) != 1 {
			t.Fatalf("events of %s: %v", d.AggregateID, err)
		}
		e, err := registry.Decode(recs[0])
		created, ok := e.(user.Created)
		if err != nil || !ok {
			t.Fatalf("first event of %s: %T %v", d.AggregateID, e, err)
		}
		if counts[strings.ToLower(created.Email)] > 0 {
			if err := o.resolver.MarkSent(t.Context(), d.EventID, "moto's record of sent mail"); err != nil {
				t.Fatal(err)
			}
			o.sent++
		} else {
			if err := o.resolver.Resend(t.Context(), d.EventID); err != nil {
				t.Fatal(err)
			}
			o.resent++
		}
		t.Logf("welcome mail of %s was in doubt (%s): settled as sent: %v", d.AggregateID, d.DoubtReason, counts[strings.ToLower(created.Email)] > 0)
	}
}

// ---------------------------------------------------------------- the child

type childProc struct {
	cmd    *exec.Cmd
	url    string
	exited chan error
}

// startChild runs this test binary as the runner on stack and waits until
// it serves.
func startChild(t *testing.T, stack, tpl, logPath string) *childProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	absTpl, err := filepath.Abs(tpl)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envStack+"="+stack, envTemplate+"="+absTpl,
		envState+"="+filepath.Join(filepath.Dir(logPath), "state"))
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childProc{cmd: cmd, exited: make(chan error, 1)}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "http://") {
				select {
				case urls <- line:
				default:
				}
			}
		}
		c.exited <- cmd.Wait()
		logFile.Close()
	}()
	t.Cleanup(func() { c.stop(t) })
	select {
	case c.url = <-urls:
		return c
	case err := <-c.exited:
		c.exited <- err
		t.Fatalf("the runner exited before serving: %v (log %s)", err, logPath)
	case <-time.After(60 * time.Second):
		t.Fatalf("the runner did not serve within a minute (log %s)", logPath)
	}
	return nil
}

// kill ends the child with SIGKILL: nothing it had received is finished.
func (c *childProc) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill the runner: %v", err)
	}
	err := <-c.exited
	c.exited <- err
}

// stop ends the child gracefully, if it still runs.
func (c *childProc) stop(t *testing.T) {
	select {
	case err := <-c.exited:
		c.exited <- err
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		c.exited <- err
	case <-time.After(40 * time.Second):
		_ = c.cmd.Process.Kill()
		t.Errorf("the runner did not stop within 40 s of SIGTERM")
	}
}

// ---------------------------------------------------------------- the load

// load creates users and renames them over HTTP, each command with an
// Idempotency-Key: a command whose answer the kill lost is sent again, to
// whichever runner serves by then, and answers as the first did.
type load struct {
	base   atomic.Pointer[string]
	token  string
	emails []string
	done   atomic.Int64

	mu    sync.Mutex
	first error
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func newLoad(t *testing.T, base string) *load {
	t.Helper()
	m := localjwt.Minter{Issuer: auth.LocalIssuer, Audience: auth.LocalAudience, Secret: []byte(auth.LocalSecret)}
	tok, err := m.Mint("crash-admin-"+uuid.NewString()[:8], []string{"admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	run := uuid.NewString()[:8]
	l := &load{token: tok}
	l.base.Store(&base)
	for i := range users {
		l.emails = append(l.emails, fmt.Sprintf("crash-%s-%03d@example.com", run, i))
	}
	return l
}

// run has clients workers each live its share of the users: create, then
// renames, one command at a time per user.
func (l *load) run(ctx context.Context) {
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for i := w; i < users; i += clients {
				var id struct {
					ID string `json:"id"`
				}
				if !l.command(ctx, http.MethodPost, "/users", map[string]string{"name": fmt.Sprint("User ", i), "email": l.emails[i]}, &id) {
					return
				}
				for n := range renames {
					if !l.command(ctx, http.MethodPut, "/users/"+id.ID+"/name", map[string]string{"name": fmt.Sprintf("User %d.%d", i, n+1)}, nil) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// command sends one command until it gets a 2xx answer, across the kill;
// it reports false when it gave up (the error is kept).
func (l *load) command(ctx context.Context, method, path string, body any, out any) bool {
	key := uuid.NewString()
	payload, _ := json.Marshal(body)
	giveUp := time.Now().Add(2 * time.Minute)
	for {
		status, answer, err := l.send(ctx, method, path, key, payload)
		switch {
		case err == nil && status/100 == 2:
			l.done.Add(1)
			if out != nil {
				if err := json.Unmarshal(answer, out); err != nil {
					l.fail(fmt.Errorf("%s %s: answer %s: %w", method, path, answer, err))
					return false
				}
			}
			return true
		case err == nil && status < 500 && status != http.StatusTooManyRequests:
			l.fail(fmt.Errorf("%s %s: %d %s", method, path, status, answer))
			return false
		case ctx.Err() != nil || time.Now().After(giveUp):
			l.fail(fmt.Errorf("%s %s: gave up: %d %v", method, path, status, err))
			return false
		}
		// The runner is down (killed, or not yet restarted), or answered 5xx.
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (l *load) send(ctx context.Context, method, path, key string, payload []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, *l.base.Load()+path, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (l *load) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == nil {
		l.first = err
	}
}

func (l *load) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// ---------------------------------------------------------------- queues, mails

// inFlight is the number of messages of the queue received and not yet
// deleted (nor visible again).
func inFlight(t *testing.T, c *sqs.Client, url string) int {
	t.Helper()
	return attribute(t, c, url, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
}

// depth is the number of messages in the queue, visible or in flight.
func depth(t *testing.T, c *sqs.Client, url string) int {
	t.Helper()
	return attribute(t, c, url, sqstypes.QueueAttributeNameApproximateNumberOfMessages) + inFlight(t, c, url)
}

func attribute(t *testing.T, c *sqs.Client, url string, name sqstypes.QueueAttributeName) int {
	t.Helper()
	out, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{name}})
	if err != nil {
		t.Fatalf("queue attributes of %s: %v", url, err)
	}
	n, err := strconv.Atoi(out.Attributes[string(name)])
	if err != nil {
		t.Fatalf("%s of %s: %q", name, url, out.Attributes[string(name)])
	}
	return n
}

// mailCounts counts the mails moto's SES holds for each address.
func mailCounts(t *testing.T) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, m := range awstest.SentMails(t) {
		for _, to := range m.To {
			counts[strings.ToLower(to)]++
		}
	}
	return counts
}

// ---------------------------------------------------------------- waiting

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s: last seen: %s", timeout, what, state)
		}
		sleep(t, 5*time.Millisecond)
	}
}

func sleep(t *testing.T, d time.Duration) {
	select {
	case <-t.Context().Done():
	case <-time.After(d):
	}
}
