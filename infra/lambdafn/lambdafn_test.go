package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/logging"

	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/notifier"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

// TestNamesAreTheFunctions: Handler knows every directory under functions/,
// and nothing else, so that the runner can serve every function.
func TestNamesAreTheFunctions(t *testing.T) {
	entries, err := os.ReadDir("../../functions")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if !slices.Equal(dirs, Names()) {
		t.Errorf("functions/ has %v, Names() = %v", dirs, Names())
	}
}

// TestHandlerBuildsEveryFunction: with a complete environment every
// function builds, without I/O; without one each names what is missing.
func TestHandlerBuildsEveryFunction(t *testing.T) {
	full := env(map[string]string{
		"EVENTS_TABLE": "e", "GUARDS_TABLE": "g", "SNAPSHOTS_TABLE": "s", "READMODEL_TABLE": "r",
		"ROUTES": "*=https://q/p", "EMAIL_SENDER": "no-reply@example.com", "REPLAY_QUEUE_URL": "https://q/r.fifo",
		"MEMBERSHIP_TABLE": "m",
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := aws.Config{Region: "us-east-1"}
	for _, name := range Names() {
		h, err := Handler(name, cfg, full, logger)
		if err != nil || h == nil || reflect.TypeOf(h).Kind() != reflect.Func {
			t.Errorf("Handler(%s) = %T, %v", name, h, err)
		}
		if name == "authorizer" {
			continue // every variable has a default
		}
		if _, err := Handler(name, cfg, env(nil), logger); err == nil || !strings.Contains(err.Error(), "missing environment variable") {
			t.Errorf("Handler(%s) with no environment: err = %v", name, err)
		}
	}
	if _, err := Handler("nope", cfg, full, logger); err == nil {
		t.Error("Handler(nope) succeeded")
	}
}

func TestAuthConfig(t *testing.T) {
	cases := []struct {
		name       string
		env        map[string]string
		wantIss    string
		wantAud    string
		wantSecret string
		wantJWKS   string
		wantErr    bool
	}{
		{name: "defaults", wantIss: "chronicle-local", wantAud: "chronicle-api", wantSecret: "dev-secret"},
		{name: "overrides", env: map[string]string{"JWT_ISSUER": "i", "JWT_AUDIENCE": "a", "LOCAL_JWT_SECRET": "s"},
			wantIss: "i", wantAud: "a", wantSecret: "s"},
		{name: "JWKS disables the local secret", env: map[string]string{"JWKS_URL": "https://idp.example/.well-known/jwks.json", "LOCAL_JWT_SECRET": "s"},
			wantIss: "chronicle-local", wantAud: "chronicle-api", wantJWKS: "https://idp.example/.well-known/jwks.json"},
		{name: "bad JWKS URL", env: map[string]string{"JWKS_URL": "idp.example/jwks"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := authConfig(env(tc.env))
			_, err := auth.NewVerifier(cfg)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("NewVerifier(%+v) succeeded", cfg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Issuer != tc.wantIss || cfg.Audience != tc.wantAud || string(cfg.LocalSecret) != tc.wantSecret || cfg.JWKSURL != tc.wantJWKS {
				t.Errorf("config = %+v", cfg)
			}
		})
	}
}

func TestCommandSettings(t *testing.T) {
	tables := map[string]string{"EVENTS_TABLE": "e", "GUARDS_TABLE": "g", "SNAPSHOTS_TABLE": "s"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range tables {
			m[k] = v
		}
		return m
	}
	all := dynamo.Tables{Events: "e", Guards: "g", Snapshots: "s"}
	cases := []struct {
		name    string
		env     map[string]string
		want    commandSettings
		wantErr string
	}{
		{name: "defaults", env: tables, want: commandSettings{tables: all, snapshotEvery: 100, cacheSize: 4096}},
		{name: "interval", env: with("SNAPSHOT_INTERVAL", "25"), want: commandSettings{tables: all, snapshotEvery: 25, cacheSize: 4096}},
		{name: "no snapshots", env: with("SNAPSHOT_INTERVAL", "0"), want: commandSettings{tables: all, cacheSize: 4096}},
		{name: "cache size", env: with("STATE_CACHE_SIZE", "10"), want: commandSettings{tables: all, snapshotEvery: 100, cacheSize: 10}},
		{name: "no cache", env: with("STATE_CACHE_SIZE", "0"), want: commandSettings{tables: all, snapshotEvery: 100}},
		{name: "bad cache size", env: with("STATE_CACHE_SIZE", "big"), wantErr: "STATE_CACHE_SIZE"},
		{name: "bad interval", env: with("SNAPSHOT_INTERVAL", "often"), wantErr: "SNAPSHOT_INTERVAL"},
		{name: "negative interval", env: with("SNAPSHOT_INTERVAL", "-1"), wantErr: "SNAPSHOT_INTERVAL"},
		{name: "missing tables", env: map[string]string{"EVENTS_TABLE": "e"}, wantErr: "GUARDS_TABLE, SNAPSHOTS_TABLE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadCommandSettings(env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("settings = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestQuerySettings(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{"EVENTS_TABLE": "e", "GUARDS_TABLE": "g", "SNAPSHOTS_TABLE": "s", "READMODEL_TABLE": "r"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name    string
		env     map[string]string
		want    querySettings
		wantErr string
	}{
		{
			name: "template's environment",
			env: base(map[string]string{"SNAPSHOT_INTERVAL": "25",
				"PROJECTION_QUEUES": "user-view=https://q/p|https://q/pd;actor-activity=https://q/p|https://q/pd;welcome-mail=https://q/n|https://q/nd"}),
			want: querySettings{
				tables:        dynamo.Tables{Events: "e", Guards: "g", Snapshots: "s"},
				snapshotEvery: 25,
				readModel:     "r",
				projections: []httpapi.Projection{
					{Name: "user-view", QueueURL: "https://q/p", DLQURL: "https://q/pd"},
					{Name: "actor-activity", QueueURL: "https://q/p", DLQURL: "https://q/pd"},
					{Name: "welcome-mail", QueueURL: "https://q/n", DLQURL: "https://q/nd"},
				},
			},
		},
		{
			name: "no queues, no DLQ, spaces",
			env:  base(map[string]string{"PROJECTION_QUEUES": " user-view = https://q/p ; ", "SNAPSHOT_INTERVAL": "0"}),
			want: querySettings{
				tables: dynamo.Tables{Events: "e", Guards: "g", Snapshots: "s"}, readModel: "r",
				projections: []httpapi.Projection{{Name: "user-view", QueueURL: "https://q/p"}},
			},
		},
		{name: "default interval", env: base(nil), want: querySettings{
			tables: dynamo.Tables{Events: "e", Guards: "g", Snapshots: "s"}, snapshotEvery: 100, readModel: "r",
		}},
		{name: "missing", env: map[string]string{"EVENTS_TABLE": "e"}, wantErr: "GUARDS_TABLE, SNAPSHOTS_TABLE, READMODEL_TABLE"},
		{name: "malformed", env: base(map[string]string{"PROJECTION_QUEUES": "https://q/p"}), wantErr: "PROJECTION_QUEUES"},
		{name: "bad interval", env: base(map[string]string{"SNAPSHOT_INTERVAL": "often"}), wantErr: "SNAPSHOT_INTERVAL"},
		{name: "no queue URL", env: base(map[string]string{"PROJECTION_QUEUES": "user-view=|https://q/pd"}), wantErr: "PROJECTION_QUEUES"},
		{name: "twice", env: base(map[string]string{"PROJECTION_QUEUES": "a=https://q/1;a=https://q/2"}), wantErr: "twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadQuerySettings(env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("settings = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	// As template.yaml writes it.
	routes, err := loadRoutes(env(map[string]string{"ROUTES": "user.created.v1=https://q/n;*=https://q/p"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := routes.Queues("user.created.v1"); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"https://q/n", "https://q/p"}) {
		t.Errorf("user.created.v1 goes to %v", got)
	}
	if got := routes.Queues("user.renamed.v1"); !slices.Equal(got, []string{"https://q/p"}) {
		t.Errorf("user.renamed.v1 goes to %v", got)
	}
	for _, bad := range []string{"", " ; "} {
		if _, err := loadRoutes(env(map[string]string{"ROUTES": bad})); err == nil || !strings.Contains(err.Error(), "ROUTES") {
			t.Errorf("ROUTES=%q: err = %v, want one naming ROUTES", bad, err)
		}
	}
}

func TestProjectorSettings(t *testing.T) {
	got, err := loadProjectorSettings(env(map[string]string{"EVENTS_TABLE": "e", "READMODEL_TABLE": "r", "QUEUE_URL": "https://sqs/p"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (projectorSettings{eventsTable: "e", readModelTable: "r", queueURL: "https://sqs/p"}); got != want {
		t.Errorf("settings = %+v, want %+v", got, want)
	}
	if _, err := loadProjectorSettings(env(nil)); err == nil || !strings.Contains(err.Error(), "EVENTS_TABLE, READMODEL_TABLE") {
		t.Errorf("empty environment: err = %v, want one naming both variables", err)
	}
}

func TestNotifierSettings(t *testing.T) {
	got, err := loadNotifierSettings(env(map[string]string{"READMODEL_TABLE": "r", "EMAIL_SENDER": "no-reply@example.com", "QUEUE_URL": "https://sqs/n"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (notifierSettings{readModelTable: "r", mail: notifier.Config{From: "no-reply@example.com"}, queueURL: "https://sqs/n"}); got != want {
		t.Errorf("settings = %+v, want %+v", got, want)
	}
	if _, err := loadNotifierSettings(env(nil)); err == nil || !strings.Contains(err.Error(), "READMODEL_TABLE, EMAIL_SENDER") {
		t.Errorf("empty environment: err = %v, want one naming both variables", err)
	}
}

// TestSDKLogger: the SDK's own log lines come out as the function's JSON
// logs, at the SDK's level.
func TestSDKLogger(t *testing.T) {
	var buf bytes.Buffer
	cfg := withSDKLogger(aws.Config{}, slog.New(slog.NewJSONHandler(&buf, nil)))
	cfg.Logger.Logf(logging.Warn, "failed to close HTTP response body: %s", "checksum")
	cfg.Logger.Logf(logging.Debug, "request %d", 7)
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("not a JSON line: %s", l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 ||
		lines[0]["level"] != "WARN" || lines[0]["msg"] != "failed to close HTTP response body: checksum" || lines[0]["source"] != "aws-sdk" ||
		lines[1]["level"] != "INFO" || lines[1]["msg"] != "request 7" {
		t.Errorf("logged %v", lines)
	}
}

// TestStartErrors: a main whose AWS configuration or handler cannot be
// built stops before serving, saying which.
func TestStartErrors(t *testing.T) {
	ctx := t.Context()
	noLoad := func(context.Context) (aws.Config, error) { return aws.Config{}, errors.New("aws config: no region") }
	built := false
	err := start(ctx, noLoad, func(aws.Config, Getenv, *slog.Logger) (any, error) { built = true; return nil, nil })
	if err == nil || err.Error() != "aws config: no region" || built {
		t.Errorf("load failure: %v (built %v)", err, built)
	}
	err = start(ctx, nil, func(aws.Config, Getenv, *slog.Logger) (any, error) { return nil, errors.New("EVENTS_TABLE is not set") })
	if err == nil || err.Error() != "config: EVENTS_TABLE is not set" {
		t.Errorf("build failure: %v", err)
	}
}

func TestMembershipSettings(t *testing.T) {
	got, err := loadMembershipSettings(env(map[string]string{"EVENTS_TABLE": "e", "GUARDS_TABLE": "g", "MEMBERSHIP_TABLE": "m",
		"READMODEL_TABLE": "r", "MAX_RECEIVE_COUNT": "7", "QUEUE_URL": "https://sqs/m"}))
	if err != nil {
		t.Fatal(err)
	}
	want := membershipSettings{tables: dynamo.Tables{Events: "e", Guards: "g"}, membershipTable: "m", readModelTable: "r",
		snapshotEvery: defaultSnapshotInterval, maxReceiveCount: 7, queueURL: "https://sqs/m"}
	if got != want {
		t.Errorf("settings = %+v, want %+v", got, want)
	}
	if _, err := loadMembershipSettings(env(nil)); err == nil || !strings.Contains(err.Error(), "EVENTS_TABLE, GUARDS_TABLE, MEMBERSHIP_TABLE, READMODEL_TABLE") {
		t.Errorf("empty environment: err = %v, want one naming the four variables", err)
	}
}
