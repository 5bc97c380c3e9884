package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/cmd/local/internal/localjwt"
	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// templatePath is the repository's template, from this package.
const templatePath = "../../../template.yaml"

// service is the template served by a runner in this process, on a stack
// of its own, with an admin token.
type service struct {
	r     *runner.Runner
	base  string
	token string
	views *userviews.Store
	sqs   *sqs.Client
	// lastAsync is when the last stream or queue invocation ended (unix ns).
	lastAsync atomic.Int64
}

// startService provisions a new stack from template (template.yaml, or
// writeOnly's copy of it) and serves it on a free port until the benchmark
// ends; the stack is deleted then.
func startService(b *testing.B, template string) *service {
	b.Helper()
	cfg := awstest.Config(b)
	s := &service{sqs: sqs.NewFromConfig(cfg)}
	s.lastAsync.Store(time.Now().UnixNano())
	r, err := runner.New(runner.Config{
		Template:       template,
		Parameters:     map[string]string{"JwtIssuer": auth.LocalIssuer, "EmailSender": "no-reply@example.com"},
		StackName:      "bench-" + uuid.NewString()[:8],
		AWS:            cfg,
		Logger:         slog.New(slog.DiscardHandler),
		FunctionLogger: functionLogger(),
		Observe: func(inv runner.Invocation) {
			if inv.Trigger == "sqs" || inv.Trigger == "dynamodb" {
				s.lastAsync.Store(time.Now().UnixNano())
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Provision(b.Context()); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(b.Context()))
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			b.Errorf("runner: %v", err)
		}
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer dcancel()
		if err := r.Destroy(dctx); err != nil {
			b.Errorf("destroy stack: %v", err)
		}
	})
	m := localjwt.Minter{Issuer: auth.LocalIssuer, Audience: auth.LocalAudience, Secret: []byte(auth.LocalSecret)}
	token, err := m.Mint("bench-admin", []string{"admin"}, 2*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	s.r, s.base, s.token = r, "http://"+ln.Addr().String(), token
	s.views = userviews.New(readmodel.New(dynamodb.NewFromConfig(cfg), r.TableName("ReadModelTable")))
	return s
}

// functionLogger keeps what the functions log at WARN and above, on
// stderr: the group's log in make bench, where a failed request (a 500, a
// batch that keeps failing) must be explained; the per-invocation INFO
// lines would drown it and cost the measurement.
func functionLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// writeOnly writes a copy of template.yaml without the relay's event
// source mapping and without the events table's stream, and returns its
// path: the API as deployed, with the read side idle. DynamoDB Local writes
// a table with a stream about twice as slowly as one without, where AWS
// does not, and ever more slowly as stream records pile up: with nothing
// reading the stream, the throughput figure leaves it out.
func writeOnly(b *testing.B) string {
	b.Helper()
	data, err := os.ReadFile(templatePath)
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	// drop removes the block of the line equal to key: the line and those
	// below it, indented deeper; with drop parent, its parent key too if
	// the block was its only child.
	drop := func(key string, parent string) {
		i := slices.Index(lines, key)
		if i < 1 || (parent != "" && lines[i-1] != parent) {
			b.Fatalf("%s: no %q here: update writeOnly", templatePath, strings.TrimSpace(key))
		}
		j := i + 1
		for j < len(lines) && (strings.TrimSpace(lines[j]) == "" || indent(lines[j]) > indent(key)) {
			j++
		}
		for j > i+1 && strings.TrimSpace(lines[j-1]) == "" {
			j--
		}
		if parent != "" && (j == len(lines) || indent(lines[j]) <= indent(parent)) {
			i--
		}
		lines = slices.Delete(lines, i, j)
	}
	drop("        EventsStream:", "      Events:")
	drop("      StreamSpecification:", "")
	path := filepath.Join(b.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// quiesce waits until the read side is idle: no stream or queue invocation
// for a second and the queues empty. A phase measured while the pipeline
// still works off the previous one would share the machine with it.
func (s *service) quiesce(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		idle := time.Since(time.Unix(0, s.lastAsync.Load())) > time.Second
		if idle && s.queuesEmpty(b) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the read side is still busy after 3 minutes: last asynchronous invocation %v ago; %s",
				time.Since(time.Unix(0, s.lastAsync.Load())).Round(time.Millisecond), s.depths(b))
		}
		sleep(b.Context(), 100*time.Millisecond)
	}
}

// depths describes the read side's queues, their DLQs and the relay's
// OnFailure queue (a stream batch that failed past its retries): visible and
// in-flight messages (a message in flight for longer than the visibility
// timeout points at the emulator, not at the code).
func (s *service) depths(b *testing.B) string {
	var parts []string
	for _, id := range []string{"ProjectionsQueue", "ProjectionsDLQ", "NotificationsQueue", "NotificationsDLQ", "RelayDLQ"} {
		url := s.r.QueueURL(id)
		if url == "" {
			continue
		}
		visible, inFlight, err := relaytest.Depth(b.Context(), s.sqs, &relaytest.Queue{URL: url})
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %d visible, %d in flight", id, visible, inFlight))
	}
	return strings.Join(parts, "; ")
}

func (s *service) queuesEmpty(b *testing.B) bool {
	for _, id := range []string{"ProjectionsQueue", "NotificationsQueue"} {
		visible, inFlight, err := relaytest.Depth(b.Context(), s.sqs, &relaytest.Queue{URL: s.r.QueueURL(id)})
		if err != nil {
			b.Fatal(err)
		}
		if visible+inFlight > 0 {
			return false
		}
	}
	return true
}

// createUsers creates n users through the API, eight at a time, and returns
// their ids.
func (s *service) createUsers(b *testing.B, n int) []string {
	b.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var failed atomic.Value
	for i := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res := send(b.Context(), s.base, s.token, create(i))
			if res.err != nil {
				failed.Store(res.err)
				return
			}
			ids[i] = res.id
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	return ids
}

// ---------------------------------------------------------------- HTTP

// httpClient keeps a connection per concurrent client alive, for the
// service and its floor alike.
var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute},
}

// request is one command sent over HTTP.
type request struct {
	method, path string
	body         any
	want         int // the status of success
}

func create(i int) request {
	return request{method: http.MethodPost, path: "/users", want: http.StatusCreated, body: map[string]string{
		"name": "Bench " + strconv.Itoa(i), "email": "bench-" + uuid.NewString() + "@example.com",
	}}
}

func rename(id, name string) request {
	return request{method: http.MethodPut, path: "/users/" + id + "/name", want: http.StatusOK,
		body: map[string]string{"name": name}}
}

// result is the answer to a request: the written id and version, and how
// long the round trip took.
type result struct {
	id      string
	version int64
	took    time.Duration
	err     error
}

func send(ctx context.Context, base, token string, r request) result {
	body, err := json.Marshal(r.body)
	if err != nil {
		return result{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, bytes.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return result{err: err}
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return result{err: err}
	}
	if resp.StatusCode != r.want {
		return result{err: fmt.Errorf("%s %s: %d %s", r.method, r.path, resp.StatusCode, answer)}
	}
	var w struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	}
	if err := json.Unmarshal(answer, &w); err != nil {
		return result{err: fmt.Errorf("%s %s: %w: %s", r.method, r.path, err, answer)}
	}
	return result{id: w.ID, version: w.Version, took: took}
}

// ---------------------------------------------------------------- tables

// newTable creates a table keyed by pk (S), and sk (N) when sorted, with a
// NEW_IMAGE stream when streamed; it is deleted when the benchmark ends.
func newTable(b *testing.B, client *dynamodb.Client, prefix string, sorted, streamed bool) string {
	b.Helper()
	name := awstest.TableName(prefix)
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	}
	if sorted {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeN})
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange})
	}
	if streamed {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage}
	}
	if _, err := client.CreateTable(b.Context(), in); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		var missing *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &missing) {
			b.Errorf("delete table %s: %v", name, err)
		}
	})
	return name
}

// ---------------------------------------------------------------- figures

// percentile is the nearest-rank percentile p (0 < p <= 1) of d.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// durationSetting and intSetting read a setting from the environment, for
// a longer run by hand.
func durationSetting(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

func intSetting(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
