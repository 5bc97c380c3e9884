package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/api/apitest"
	"github.com/chronicle-go/chronicle/cmd/local/internal/localjwt"
	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
)

// Environment of a run against a deployment.
const (
	envBaseURL     = "CHRONICLE_E2E_BASE_URL"     // the API's base URL; unset: start the runner here
	envToken       = "CHRONICLE_E2E_TOKEN"        // an admin bearer token
	envSecret      = "CHRONICLE_E2E_JWT_SECRET"   // HS256 secret to mint tokens for any sub
	envKey         = "CHRONICLE_E2E_JWT_KEY"      // RSA key (PEM) to mint RS256 tokens, its kid derived
	envIssuer      = "CHRONICLE_E2E_JWT_ISSUER"   // default chronicle-local
	envAudience    = "CHRONICLE_E2E_JWT_AUDIENCE" // default chronicle-api
	envEventsTable = "CHRONICLE_E2E_EVENTS_TABLE" // to append a poisoned event directly
	envSESURL      = "CHRONICLE_E2E_SES_URL"      // moto's /moto-api/data.json or LocalStack's /_aws/ses
	envDLQTimeout  = "CHRONICLE_E2E_DLQ_TIMEOUT"  // how long a poisoned event may take to reach the DLQ
	envTemplate    = "CHRONICLE_E2E_TEMPLATE"     // locally: the template the suite's runner serves
)

// templatePath is the repository's template, from this package.
const templatePath = "../../../template.yaml"

// suite is what every test runs against.
type suite struct {
	base   string
	minter *localjwt.Minter // nil: only the admin token is available
	admin  string           // admin token
	// adminSub is the subject of the admin token: the actor of its writes.
	adminSub string
	aws      *aws.Config // nil: no direct access to the deployment's resources
	// local is the runner started in process, nil against a deployment.
	local       *runner.Runner
	eventsTable string
	sesURL      string
	dlqTimeout  time.Duration
	logDir      string
}

var s *suite

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	if os.Getenv(envBaseURL) != "" {
		s, err = remoteSuite(ctx)
	} else {
		var stop func()
		s, stop, err = localSuite(ctx)
		if stop != nil {
			defer stop()
		}
	}
	if errors.Is(err, errNoEmulators) {
		if os.Getenv("CHRONICLE_REQUIRE_EMULATORS") == "1" {
			fmt.Fprintln(os.Stderr, "e2e: CHRONICLE_REQUIRE_EMULATORS=1 but", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "e2e: skipped:", err)
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	reportInits()
	if denied := iamDenials.Messages(); len(denied) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: %d AWS calls not granted by their function's role in the template:\n%s\n",
			len(denied), strings.Join(denied, "\n"))
		code = 1
	}
	if (code != 0 || os.Getenv("CHRONICLE_E2E_KEEP_LOGS") != "") && s.logDir != "" {
		fmt.Fprintf(os.Stderr, "e2e: the runners' logs are in %s\n", s.logDir)
	} else if s.logDir != "" {
		os.RemoveAll(s.logDir)
	}
	return code
}

var errNoEmulators = errors.New("no emulator endpoints (AWS_ENDPOINT_URL[_DYNAMODB]) and no " + envBaseURL + ": run through make test")

// localSuite starts the runner on the repository's template, with a stack
// of its own, on a free port.
func localSuite(ctx context.Context) (*suite, func(), error) {
	if os.Getenv("AWS_ENDPOINT_URL") == "" && os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		return nil, nil, errNoEmulators
	}
	cfg, err := awstest.LoadConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	logDir, err := os.MkdirTemp("", "chronicle-e2e-*")
	if err != nil {
		return nil, nil, err
	}
	if err := setUpRIE(ctx, logDir); err != nil {
		return nil, nil, err
	}
	st := &suite{aws: &cfg, logDir: logDir, dlqTimeout: time.Minute}
	st.minter = &localjwt.Minter{Issuer: auth.LocalIssuer, Audience: auth.LocalAudience, Secret: []byte(auth.LocalSecret)}
	st.adminSub = "e2e-admin-" + uuid.NewString()[:8]
	if st.admin, err = st.minter.Mint(st.adminSub, []string{"admin"}, 2*time.Hour); err != nil {
		return nil, nil, err
	}
	lr, err := startRunner(ctx, cfg, logDir, runnerOptions{template: envOr(envTemplate, templatePath)})
	if err != nil {
		return st, nil, err
	}
	st.base, st.local = lr.url, lr.r
	st.eventsTable = lr.r.TableName("EventsTable")
	if ses := os.Getenv("AWS_ENDPOINT_URL_SES"); ses != "" {
		st.sesURL = strings.TrimSuffix(ses, "/") + "/moto-api/data.json"
	}
	return st, lr.stop, nil
}

// remoteSuite runs against the deployment at CHRONICLE_E2E_BASE_URL.
func remoteSuite(ctx context.Context) (*suite, error) {
	st := &suite{base: strings.TrimSuffix(os.Getenv(envBaseURL), "/"), eventsTable: os.Getenv(envEventsTable),
		sesURL: os.Getenv(envSESURL), dlqTimeout: 5 * time.Minute}
	if v := os.Getenv(envDLQTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envDLQTimeout, err)
		}
		st.dlqTimeout = d
	}
	m := localjwt.Minter{Issuer: envOr(envIssuer, auth.LocalIssuer), Audience: envOr(envAudience, auth.LocalAudience)}
	switch {
	case os.Getenv(envKey) != "":
		key, err := localjwt.LoadKey(os.Getenv(envKey))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envKey, err)
		}
		m.Key, m.KeyID = key, localjwt.KeyID(key)
		st.minter = &m
	case os.Getenv(envSecret) != "":
		m.Secret = []byte(os.Getenv(envSecret))
		st.minter = &m
	}
	st.admin = os.Getenv(envToken)
	switch {
	case st.admin != "":
		sub, err := subjectOf(st.admin)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envToken, err)
		}
		st.adminSub = sub
	case st.minter != nil:
		st.adminSub = "e2e-admin-" + uuid.NewString()[:8]
		tok, err := st.minter.Mint(st.adminSub, []string{"admin"}, 2*time.Hour)
		if err != nil {
			return nil, err
		}
		st.admin = tok
	default:
		return nil, fmt.Errorf("%s needs %s, or %s or %s to mint tokens", envBaseURL, envToken, envSecret, envKey)
	}
	if os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || os.Getenv("AWS_REGION") != "" {
		cfg, err := awstest.LoadConfig(ctx)
		if err != nil {
			return nil, err
		}
		st.aws = &cfg
	}
	return st, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// subjectOf reads the sub claim of a token without verifying it: the
// deployment verifies it.
func subjectOf(token string) (string, error) {
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		return "", err
	}
	if c.Subject == "" {
		return "", errors.New("token has no sub")
	}
	return c.Subject, nil
}

// iamDenials collects the calls of every runner's functions that their
// roles do not grant (the runners check each call: infra/iamcheck); the
// suite fails if there is any.
var iamDenials iamcheck.Denials

// iamSinks are where the runners' checked calls go: iamDenials, and the
// directory of $CHRONICLE_IAM_LOG that make test reads at the end.
func iamSinks() ([]iamcheck.Sink, error) {
	sinks, err := iamcheck.EnvSinks()
	if err != nil {
		return nil, err
	}
	return append(sinks, iamDenials.Sink), nil
}

// runnerOptions shape a runner started by a test.
type runnerOptions struct {
	template string
	params   map[string]string
	observe  func(runner.Invocation)
	// iam, when set, collects the calls of this runner's functions that
	// their roles do not grant (iamDenials collects them too).
	iam *iamcheck.Denials
	// beforeServe runs after provisioning and before the event source
	// mappings start.
	beforeServe func(*runner.Runner) error
	// tracing runs the functions in process (never under the RIE) with
	// the runner collecting their spans.
	tracing bool
}

// localRunner is a runner serving in process.
type localRunner struct {
	r    *runner.Runner
	url  string
	stop func()
}

// startRunner provisions a fresh stack (e2e-<random>) on the template and
// serves it on a free port; stop ends it and deletes the stack.
func startRunner(ctx context.Context, cfg aws.Config, logDir string, o runnerOptions) (*localRunner, error) {
	stack := "e2e-" + uuid.NewString()[:8]
	logFile, err := os.Create(filepath.Join(logDir, stack+".log"))
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	params := map[string]string{"JwtIssuer": auth.LocalIssuer, "EmailSender": "no-reply@example.com"}
	for k, v := range o.params {
		params[k] = v
	}
	iam, err := iamSinks()
	if err != nil {
		return nil, err
	}
	if o.iam != nil {
		iam = append(iam, o.iam.Sink)
	}
	launcher := rieLauncher
	if o.tracing {
		launcher = nil
	}
	r, err := runner.New(runner.Config{Template: o.template, Parameters: params, StackName: stack, AWS: cfg,
		Logger: logger, Observe: o.observe, IAM: iam, RIE: launcher, Tracing: o.tracing})
	if err != nil {
		return nil, err
	}
	if launcher != nil {
		rieRunners.Lock()
		rieRunners.all = append(rieRunners.all, r)
		rieRunners.Unlock()
	}
	if err := r.Provision(ctx); err != nil {
		return nil, err
	}
	if o.beforeServe != nil {
		if err := o.beforeServe(r); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	serveCtx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- r.Serve(serveCtx, ln) }()
	lr := &localRunner{r: r, url: "http://" + ln.Addr().String()}
	lr.stop = func() {
		cancel()
		if err := <-served; err != nil {
			fmt.Fprintln(os.Stderr, "e2e: runner:", err)
		}
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer dcancel()
		if err := r.Destroy(dctx); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: destroy stack:", err)
		}
		logFile.Close()
	}
	return lr, nil
}

// startTestRunner starts a runner for one test, stopped when it ends.
func startTestRunner(t *testing.T, o runnerOptions) *localRunner {
	t.Helper()
	if s.local == nil {
		t.Skip("needs the runner in process: it changes the template")
	}
	lr, err := startRunner(t.Context(), *s.aws, s.logDir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lr.stop)
	return lr
}

// ---------------------------------------------------------------- HTTP

// client talks to one deployment.
type client struct{ base string }

var httpClient = &http.Client{Timeout: 30 * time.Second}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// req is one request: method, path, bearer token, body and headers.
type req struct {
	method, path, token string
	body                any // nil, a string (sent as is) or a value encoded as JSON
	header              map[string]string
}

// do sends r and checks the exchange against the OpenAPI document.
func (c client) do(t testing.TB, r req) reply {
	t.Helper()
	var body io.Reader
	var sent []byte
	switch b := r.body.(type) {
	case nil:
	case string:
		sent = []byte(b)
	case []byte:
		sent = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		sent = j
	}
	if r.body != nil {
		body = bytes.NewReader(sent)
	}
	hr, err := http.NewRequestWithContext(t.Context(), r.method, c.base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	resp, err := httpClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", r.method, r.path, err)
	}
	apitest.Validate(t, apitest.Exchange{Request: hr, RequestBody: sent, Status: resp.StatusCode, Header: resp.Header, Body: b})
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (s *suite) client() client { return client{base: s.base} }

// do sends r to the suite's deployment.
func do(t testing.TB, r req) reply {
	t.Helper()
	return s.client().do(t, r)
}

// want fails the test unless the answer has the status.
func (r reply) want(t testing.TB, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// wantProblem checks a problem+json answer of the status.
func (r reply) wantProblem(t testing.TB, status int) problem {
	t.Helper()
	r.want(t, status)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem %s: %v", r.body, err)
	}
	if p.Status != status || p.Title == "" {
		t.Errorf("problem %+v: want status %d and a title", p, status)
	}
	return p
}

type problem struct {
	Type           string       `json:"type"`
	Title          string       `json:"title"`
	Status         int          `json:"status"`
	Detail         string       `json:"detail"`
	Errors         []fieldError `json:"errors"`
	CurrentVersion *int64       `json:"currentVersion"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p problem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// decode decodes the answer's JSON body into v.
func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// ---------------------------------------------------------------- identities

// identity is a principal with its token.
type identity struct {
	sub, token string
}

// newIdentity mints a token for a new subject with roles, or skips the test
// when the suite cannot mint tokens.
func newIdentity(t testing.TB, roles ...string) identity {
	t.Helper()
	if s.minter == nil {
		t.Skipf("needs tokens for new subjects: set %s or %s", envSecret, envKey)
	}
	sub := "e2e-" + uuid.NewString()
	tok, err := s.minter.Mint(sub, roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return identity{sub: sub, token: tok}
}

func admin() identity { return identity{sub: s.adminSub, token: s.admin} }

// ---------------------------------------------------------------- users

// userAnswer is a GET /users/{id} answer (and the 410's).
type userAnswer struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Sub       string    `json:"sub"`
	Status    string    `json:"status"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	DeletedAt time.Time `json:"deletedAt"`
	DeletedBy string    `json:"deletedBy"`
	Reason    string    `json:"reason"`
}

type written struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// uniqueEmail is an address no other test uses.
func uniqueEmail(tag string) string {
	return fmt.Sprintf("%s-%s@example.com", tag, uuid.NewString()[:13])
}

// createUser creates a user as who (linked to who's sub unless admin) and
// returns its id.
func createUser(t testing.TB, who identity, name, email string) written {
	t.Helper()
	var w written
	do(t, req{method: "POST", path: "/users", token: who.token, body: map[string]string{"name": name, "email": email}}).
		want(t, http.StatusCreated).decode(t, &w)
	return w
}

// eventually polls cond every interval until it holds or the deadline
// passes; never a bare sleep.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
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
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// projected waits until GET /users/{id} answers from the projection at
// version v or later.
func projected(t testing.TB, who identity, id string, v int64, status int) userAnswer {
	t.Helper()
	var u userAnswer
	eventually(t, 20*time.Second, fmt.Sprintf("the read model shows %s at v%d", id, v), func() (bool, string) {
		r := do(t, req{method: "GET", path: "/users/" + id, token: who.token})
		if r.status != status || r.header.Get("X-Source") != "projection" {
			return false, fmt.Sprintf("%d %s %s", r.status, r.header.Get("X-Source"), r.body)
		}
		u = userAnswer{}
		r.decode(t, &u)
		return u.Version >= v, string(r.body)
	})
	return u
}

// b64 is a base64url segment, to forge tokens.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
