package template_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/template"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

const (
	templatePath = "../../template.yaml"
	makefilePath = "../../Makefile"
)

// values fills in what a deployment would: names and ARNs derived from the
// logical ids, so that assertions can compare resolved strings.
type values struct{}

func (values) Ref(name string) (string, error) {
	switch {
	case name == "AWS::StackName":
		return "stack", nil
	case strings.HasPrefix(name, "AWS::"):
		return strings.ToLower(strings.TrimPrefix(name, "AWS::")), nil
	case strings.HasSuffix(name, "Queue"), strings.HasSuffix(name, "DLQ"):
		return "https://sqs/" + name, nil
	}
	return "name-of-" + name, nil
}

func (values) GetAtt(id, attr string) (string, error) {
	return "arn:" + id + "." + attr, nil
}

func load(t *testing.T, params map[string]string) *template.Template {
	t.Helper()
	tpl, err := template.Load(templatePath, template.WithParameters(params))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// required are the parameters without a default, as samconfig.toml passes them.
var required = map[string]string{
	"JwtIssuer":   "https://idp.example.com/",
	"JwksUrl":     "https://idp.example.com/.well-known/jwks.json",
	"EmailSender": "no-reply@mail.example.com",
}

func with(extra map[string]string) map[string]string {
	p := maps.Clone(required)
	maps.Copy(p, extra)
	return p
}

func functions(t *testing.T, tpl *template.Template) map[string]template.Function {
	t.Helper()
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]template.Function{}
	for _, f := range fns {
		out[f.Name] = f
	}
	return out
}

func queues(t *testing.T, tpl *template.Template) map[string]template.Queue {
	t.Helper()
	qs, err := tpl.Queues()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]template.Queue{}
	for _, q := range qs {
		out[q.Name] = q
	}
	return out
}

// TestRoutes: every route of the HTTP contract is served by the right function, on the
// one REST API, behind the JWT authorizer except GET /healthz and the
// console's page and assets; and the
// template has no route the contract does not list.
func TestRoutes(t *testing.T) {
	want := map[string]string{
		"POST /users":                 "CommandsFunction",
		"PUT /users/{id}/name":        "CommandsFunction",
		"PUT /users/{id}/email":       "CommandsFunction",
		"POST /users/{id}/suspend":    "CommandsFunction",
		"POST /users/{id}/reactivate": "CommandsFunction",
		"DELETE /users/{id}":          "CommandsFunction",
		"POST /users/{id}/forget":     "CommandsFunction",
		"GET /users/{id}":             "QueriesFunction",
		"GET /users":                  "QueriesFunction",
		"GET /users/{id}/history":     "QueriesFunction",
		"GET /users/{id}/state":       "QueriesFunction",
		"GET /actors/{sub}/activity":  "QueriesFunction",
		"GET /ops/projections":        "QueriesFunction",
		"GET /users/{id}/consistency": "QueriesFunction",
		"GET /healthz":                "QueriesFunction",
		"GET /events":                 "QueriesFunction",
		"POST /users/{id}/what-if":    "QueriesFunction",
		"GET /console":                "QueriesFunction", // the audit console: a page, no data
		"GET /console/{asset}":        "QueriesFunction",
		// Teams, on the same functions.
		"POST /teams":                         "CommandsFunction",
		"PUT /teams/{id}/name":                "CommandsFunction",
		"PUT /teams/{id}/members/{userId}":    "CommandsFunction",
		"DELETE /teams/{id}/members/{userId}": "CommandsFunction",
		"GET /teams/{id}":                     "QueriesFunction",
		"GET /teams/{id}/history":             "QueriesFunction",
		"GET /users/{id}/teams":               "QueriesFunction",
	}
	// Routes without the authorizer: they hold no data.
	public := map[string]bool{"GET /healthz": true, "GET /console": true, "GET /console/{asset}": true}
	tpl := load(t, required)

	apis, err := tpl.APIs()
	if err != nil {
		t.Fatal(err)
	}
	if len(apis) != 1 {
		t.Fatalf("APIs = %+v, want one REST API", apis)
	}
	api := apis[0]
	auth, ok := api.Authorizers[api.DefaultAuthorizer]
	if !ok || auth.Function != "AuthorizerFunction" || auth.PayloadType != "TOKEN" || auth.Header != "Authorization" {
		t.Errorf("default authorizer %q = %+v, want the TOKEN authorizer AuthorizerFunction on Authorization", api.DefaultAuthorizer, auth)
	}
	if api.StageName != "dev" {
		t.Errorf("stage = %q, want the Stage parameter's default dev", api.StageName)
	}

	got := map[string]string{}
	for _, f := range functions(t, tpl) {
		for _, e := range f.APIEvents {
			route := e.Method + " " + e.Path
			if prev, dup := got[route]; dup {
				t.Errorf("%s is served by both %s and %s", route, prev, f.Name)
			}
			got[route] = f.Name
			if e.API != api.Name {
				t.Errorf("%s (%s.%s) is on API %q, want %q", route, f.Name, e.Name, e.API, api.Name)
			}
			wantAuth := ""
			if public[route] {
				wantAuth = "NONE"
			}
			if e.Authorizer != wantAuth {
				t.Errorf("%s: authorizer %q, want %q", route, e.Authorizer, wantAuth)
			}
		}
	}
	for _, route := range slices.Sorted(maps.Keys(want)) {
		if got[route] != want[route] {
			t.Errorf("%s is served by %q, want %q", route, got[route], want[route])
		}
	}
	for _, route := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[route]; !ok {
			t.Errorf("%s (%s) is not a route of the HTTP contract", route, got[route])
		}
	}
}

// wildcardResourceActions are the only actions allowed on Resource "*": they
// support no resource-level permissions.
var wildcardResourceActions = map[string]bool{
	"dynamodb:ListStreams":     true, // Lambda's stream poller; lists stream ARNs only
	"xray:PutTraceSegments":    true, // when EnableTracing is true
	"xray:PutTelemetryRecords": true,
}

// TestLeastPrivilege: every function has its own role in the template, and
// no statement grants a wildcard action or, outside the exceptions above, a
// wildcard resource.
func TestLeastPrivilege(t *testing.T) {
	tpl := load(t, with(map[string]string{"EnableTracing": "true"})) // all statements present

	roles := map[string]string{}
	for _, f := range functions(t, tpl) {
		role := template.Target(f.Role)
		if role == "" {
			t.Errorf("%s: Role %q is not a role of the template: SAM would attach managed policies on \"*\"", f.Name, f.Role)
			continue
		}
		if other, shared := roles[role]; shared {
			t.Errorf("%s and %s share role %s", f.Name, other, role)
		}
		roles[role] = f.Name
		if f.Policies != nil {
			t.Errorf("%s: SAM Policies are ignored with an explicit Role; put them in %s", f.Name, role)
		}
	}
	for id, r := range tpl.GetAllIAMRoleResources() {
		if len(r.ManagedPolicyArns) > 0 {
			t.Errorf("role %s: managed policies %v: use inline statements", id, r.ManagedPolicyArns)
		}
		if _, ok := roles[id]; !ok {
			t.Errorf("role %s belongs to no function", id)
		}
	}

	for _, v := range iamViolations(t, tpl) {
		t.Error(v)
	}
}

// TestSES: the notifier may send only from EmailSender's identity, or its
// domain's, and only as EmailSender.
func TestSES(t *testing.T) {
	tpl := load(t, required)
	sts, err := tpl.Statements()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, s := range sts {
		if !slices.Contains(s.Actions, "ses:SendEmail") {
			continue
		}
		found = true
		var got []string
		for _, r := range s.Resources {
			v, err := tpl.Resolve(r, values{})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		want := []string{
			"arn:partition:ses:region:accountid:identity/no-reply@mail.example.com",
			"arn:partition:ses:region:accountid:identity/mail.example.com",
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: ses:SendEmail on %q, want %q", s.Role, got, want)
		}
		if fmt.Sprint(s.Condition) != "map[StringEquals:map[ses:FromAddress:no-reply@mail.example.com]]" {
			t.Errorf("%s: condition %v, want ses:FromAddress = EmailSender", s.Role, s.Condition)
		}
	}
	if !found {
		t.Error("no role may send mail")
	}
}

// TestQueues: every queue a function consumes has a dead-letter queue, of
// the same kind, after MaxReceiveCount deliveries, and a visibility timeout
// of at least minVisibilityFactor times its consumer's timeout.
func TestQueues(t *testing.T) {
	tpl := load(t, with(map[string]string{"MaxReceiveCount": "7"}))
	qs := queues(t, tpl)
	consumed := 0
	for _, f := range functions(t, tpl) {
		for _, e := range f.QueueEvents {
			consumed++
			q, ok := qs[e.Queue]
			if !ok {
				t.Errorf("%s.%s consumes %q, not a queue of the template", f.Name, e.Name, e.Queue)
				continue
			}
			dlq, ok := qs[q.DeadLetterQueue]
			switch {
			case q.DeadLetterQueue == "":
				t.Errorf("queue %s (consumed by %s) has no RedrivePolicy", q.Name, f.Name)
			case !ok:
				t.Errorf("queue %s: dead-letter target %q is not a queue of the template", q.Name, q.DeadLetterQueue)
			case dlq.FIFO != q.FIFO:
				t.Errorf("queue %s (FIFO %v) has DLQ %s (FIFO %v)", q.Name, q.FIFO, dlq.Name, dlq.FIFO)
			case dlq.MessageRetentionPeriod < q.MessageRetentionPeriod:
				t.Errorf("DLQ %s keeps messages %ds, less than %s's %ds", dlq.Name, dlq.MessageRetentionPeriod, q.Name, q.MessageRetentionPeriod)
			}
			if q.MaxReceiveCount != 7 {
				t.Errorf("queue %s: maxReceiveCount %d, want the MaxReceiveCount parameter (7)", q.Name, q.MaxReceiveCount)
			}
			if q.VisibilityTimeout < minVisibilityFactor*f.Timeout {
				t.Errorf("queue %s: visibility timeout %ds < %d x %s's timeout %ds", q.Name, q.VisibilityTimeout, minVisibilityFactor, f.Name, f.Timeout)
			}
			if q.FIFO && q.ContentBasedDeduplication {
				t.Errorf("queue %s: content-based deduplication; the relay sets the event id", q.Name)
			}
		}
	}
	if consumed == 0 {
		t.Error("no function consumes a queue")
	}
}

// TestEventSourceMappings: every mapping reports batch item failures; the
// stream mapping bisects failing batches and sends what it gives up on to a
// standard queue (Lambda's on-failure destinations cannot be FIFO).
func TestEventSourceMappings(t *testing.T) {
	tpl := load(t, required)
	qs := queues(t, tpl)
	tables, err := tpl.Tables()
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string]bool{}
	for _, tb := range tables {
		streams[tb.Name] = tb.StreamViewType != ""
	}
	mappings := 0
	for _, f := range functions(t, tpl) {
		for _, e := range f.QueueEvents {
			mappings++
			if !e.ReportsBatchItemFailures() {
				t.Errorf("%s.%s: FunctionResponseTypes %v lacks %s", f.Name, e.Name, e.FunctionResponseTypes, template.ReportBatchItemFailures)
			}
			if e.BatchSize < 1 || e.BatchSize > 10 {
				t.Errorf("%s.%s: batch size %d, want 1..10", f.Name, e.Name, e.BatchSize)
			}
		}
		for _, e := range f.StreamEvents {
			mappings++
			if !e.ReportsBatchItemFailures() {
				t.Errorf("%s.%s: FunctionResponseTypes %v lacks %s", f.Name, e.Name, e.FunctionResponseTypes, template.ReportBatchItemFailures)
			}
			if !streams[e.Table] {
				t.Errorf("%s.%s reads the stream of %q, not a table of the template with a stream", f.Name, e.Name, e.Table)
			}
			if !e.BisectBatchOnFunctionError {
				t.Errorf("%s.%s: BisectBatchOnFunctionError is off", f.Name, e.Name)
			}
			if e.MaximumRetryAttempts < 0 {
				t.Errorf("%s.%s: retries forever: a poison record would block its shard", f.Name, e.Name)
			}
			if q, ok := qs[e.OnFailure]; !ok || q.FIFO {
				t.Errorf("%s.%s: on-failure destination %q is not a standard queue of the template", f.Name, e.Name, e.OnFailure)
			}
		}
	}
	if mappings == 0 {
		t.Error("no event source mappings")
	}
}

// TestTables: the key schemas of the design, and PITR and deletion protection
// on every table, following their parameters.
func TestTables(t *testing.T) {
	type schema struct{ hash, rng, stream, ttl string }
	want := map[string]schema{
		"EventsTable":     {hash: "pk:S", rng: "sk:N", stream: "NEW_IMAGE"},
		"GuardsTable":     {hash: "pk:S", ttl: "expiresAt"},
		"SnapshotsTable":  {hash: "pk:S"},
		"ReadModelTable":  {hash: "pk:S", rng: "sk:S", ttl: "expiresAt"},
		"KeysTable":       {hash: "pk:S"},              // the users' wrapped data keys: no stream, no TTL
		"MembershipTable": {hash: "pk:S", rng: "sk:S"}, // the membership process manager's rows and deletion markers: kept for good
	}
	for _, on := range []bool{true, false} {
		flag := fmt.Sprint(on)
		tpl := load(t, with(map[string]string{"EnablePointInTimeRecovery": flag, "EnableDeletionProtection": flag}))
		tables, err := tpl.Tables()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]schema{}
		for _, tb := range tables {
			s := schema{hash: tb.HashKey.Name + ":" + tb.HashKey.Type, stream: tb.StreamViewType, ttl: tb.TTLAttribute}
			if tb.RangeKey != nil {
				s.rng = tb.RangeKey.Name + ":" + tb.RangeKey.Type
			}
			got[tb.Name] = s
			if tb.PointInTimeRecovery != on || tb.DeletionProtection != on {
				t.Errorf("parameters %s: table %s has PITR %v, deletion protection %v", flag, tb.Name, tb.PointInTimeRecovery, tb.DeletionProtection)
			}
			if !tb.SSE {
				t.Errorf("table %s: SSE off", tb.Name)
			}
			if bm := tb.Resource.BillingMode; bm == nil || *bm != "PAY_PER_REQUEST" {
				t.Errorf("table %s: billing mode %v, want PAY_PER_REQUEST", tb.Name, bm)
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("tables = %+v\nwant %+v", got, want)
		}
	}
}

// TestFunctions: the build contract every function shares, a Makefile target
// for sam build, and the environment each main reads.
func TestFunctions(t *testing.T) {
	tpl := load(t, required)
	makefile, err := os.ReadFile(makefilePath)
	if err != nil {
		t.Fatal(err)
	}
	fns := functions(t, tpl)
	for _, f := range fns {
		if f.Runtime != "provided.al2023" || f.Handler != "bootstrap" || !slices.Equal(f.Architectures, []string{"arm64"}) || f.CodeURI != "." {
			t.Errorf("%s: runtime %q handler %q architectures %v CodeUri %q", f.Name, f.Runtime, f.Handler, f.Architectures, f.CodeURI)
		}
		res, err := tpl.GetServerlessFunctionWithName(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if bm := res.AWSCloudFormationMetadata["BuildMethod"]; bm != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want makefile", f.Name, bm)
		}
		if !regexp.MustCompile(`(?m)^build-` + f.Name + `:`).Match(makefile) {
			t.Errorf("Makefile has no build-%s target for sam build", f.Name)
		}
		if len(f.OtherEvents) > 0 {
			t.Errorf("%s: events %v of types the local runner does not serve", f.Name, f.OtherEvents)
		}
	}

	// The environment contract of the mains (functions/*/main.go): the
	// variables each one needs, resolved as a deployment would.
	want := map[string]map[string]string{
		"AuthorizerFunction": {
			"JWT_ISSUER": "https://idp.example.com/", "JWT_AUDIENCE": "chronicle-api",
			"JWKS_URL": "https://idp.example.com/.well-known/jwks.json",
		},
		"CommandsFunction": {
			"EVENTS_TABLE": "name-of-EventsTable", "GUARDS_TABLE": "name-of-GuardsTable",
			"SNAPSHOTS_TABLE": "name-of-SnapshotsTable", "SNAPSHOT_INTERVAL": "100",
		},
		"QueriesFunction": {
			"EVENTS_TABLE": "name-of-EventsTable", "SNAPSHOTS_TABLE": "name-of-SnapshotsTable",
			"READMODEL_TABLE": "name-of-ReadModelTable", "SNAPSHOT_INTERVAL": "100",
			"PROJECTION_QUEUES": "user-view=https://sqs/ProjectionsQueue|https://sqs/ProjectionsDLQ;" +
				"actor-activity=https://sqs/ProjectionsQueue|https://sqs/ProjectionsDLQ;" +
				"team=https://sqs/ProjectionsQueue|https://sqs/ProjectionsDLQ;" +
				"user-teams=https://sqs/ProjectionsQueue|https://sqs/ProjectionsDLQ;" +
				"welcome-mail=https://sqs/NotificationsQueue|https://sqs/NotificationsDLQ;" +
				"membership=https://sqs/MembershipQueue|https://sqs/MembershipDLQ",
		},
		"RelayFunction": {
			"ROUTES": "user.created.v1=https://sqs/NotificationsQueue;*=https://sqs/ProjectionsQueue;" +
				"user.deleted.v1=https://sqs/MembershipQueue;user.forgotten.v1=https://sqs/MembershipQueue;" +
				"team.created=https://sqs/MembershipQueue;team.member_added=https://sqs/MembershipQueue;team.member_removed=https://sqs/MembershipQueue",
		},
		"ProjectorFunction": {"EVENTS_TABLE": "name-of-EventsTable", "READMODEL_TABLE": "name-of-ReadModelTable", "MAX_RECEIVE_COUNT": "10",
			"QUEUE_URL": "https://sqs/ProjectionsQueue"},
		"NotifierFunction": {"READMODEL_TABLE": "name-of-ReadModelTable", "EMAIL_SENDER": "no-reply@mail.example.com", "MAX_RECEIVE_COUNT": "10",
			"QUEUE_URL": "https://sqs/NotificationsQueue"},
		"ReplayFunction": {
			"EVENTS_TABLE": "name-of-EventsTable", "READMODEL_TABLE": "name-of-ReadModelTable",
			"REPLAY_QUEUE_URL": "https://sqs/ReplayQueue",
		},
		"MembershipFunction": {
			"EVENTS_TABLE": "name-of-EventsTable", "GUARDS_TABLE": "name-of-GuardsTable",
			"MEMBERSHIP_TABLE": "name-of-MembershipTable", "READMODEL_TABLE": "name-of-ReadModelTable",
			"SNAPSHOT_INTERVAL": "100", "MAX_RECEIVE_COUNT": "10", "QUEUE_URL": "https://sqs/MembershipQueue",
		},
	}
	if got := slices.Sorted(maps.Keys(fns)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		t.Errorf("functions = %v, want %v", got, slices.Sorted(maps.Keys(want)))
	}
	for name, vars := range want {
		f := fns[name]
		for k, v := range vars {
			raw, ok := f.Environment[k]
			if !ok {
				t.Errorf("%s: no %s", name, k)
				continue
			}
			got, err := tpl.Resolve(raw, values{})
			if err != nil {
				t.Errorf("%s: %s: %v", name, k, err)
			} else if got != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
	}
}

// TestParameters: overrides are checked against the template.
func TestParameters(t *testing.T) {
	if _, err := template.Load(templatePath, template.WithParameters(map[string]string{"Stage": "staging"})); err == nil {
		t.Error("Stage=staging accepted; AllowedValues are dev, prod")
	}
	if _, err := template.Load(templatePath, template.WithParameters(map[string]string{"NoSuchParameter": "x"})); err == nil {
		t.Error("an undeclared parameter accepted")
	}
	tpl := load(t, nil)
	f, err := tpl.Function("AuthorizerFunction")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Resolve(f.Environment["JWKS_URL"], values{}); !errors.Is(err, template.ErrNoValue) {
		t.Errorf("JWKS_URL without a JwksUrl value: err = %v, want ErrNoValue", err)
	}
}

// TestFixtureRoutes: the API Gateway events in testdata/<fn>/, which the
// handler tests replay, name a route (resource and method) that the template
// gives to that function: the handlers route on req.Resource.
func TestFixtureRoutes(t *testing.T) {
	tpl := load(t, required)
	fns := functions(t, tpl)
	for dir, fn := range map[string]string{"commands": "CommandsFunction", "queries": "QueriesFunction"} {
		files, err := filepath.Glob(filepath.Join("..", "..", "testdata", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("no fixtures in testdata/%s", dir)
		}
		routes := map[string]bool{}
		for _, e := range fns[fn].APIEvents {
			routes[e.Method+" "+e.Path] = true
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				Resource   string `json:"resource"`
				HTTPMethod string `json:"httpMethod"`
			}
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if route := ev.HTTPMethod + " " + ev.Resource; !routes[route] {
				t.Errorf("%s: %s is not a route of %s", file, route, fn)
			}
		}
	}
}

// TestTablesExpireWhatTheCodeExpires: a table whose items the code writes
// with an expiry attribute has DynamoDB's TTL on that attribute, or they
// are never deleted (the read model's failure records were not).
func TestTablesExpireWhatTheCodeExpires(t *testing.T) {
	want := map[string]string{
		"GuardsTable":    dynamo.TTLAttribute,    // idempotency records
		"ReadModelTable": readmodel.TTLAttribute, // failure records of dead-lettered messages
	}
	tables, err := load(t, with(nil)).Tables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if attr, ok := want[tb.Name]; ok && tb.TTLAttribute != attr {
			t.Errorf("table %s: TTL on %q, want on %q: its items carry %s", tb.Name, tb.TTLAttribute, attr, attr)
		}
	}
}

// TestUserListIndex: ReadModelTable declares the index the user list
// queries (userviews.UsersIndex) as userviews.CreateTable makes it for the
// tests: the list's keys, both strings, keys only; and the queries function
// may query that index, and only that one, there.
func TestUserListIndex(t *testing.T) {
	tpl := load(t, required)
	tables, err := tpl.Tables()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, tb := range tables {
		if tb.Name != "ReadModelTable" {
			continue
		}
		types := map[string]string{}
		for _, a := range tb.Resource.AttributeDefinitions {
			types[a.AttributeName] = a.AttributeType
		}
		for _, g := range tb.Resource.GlobalSecondaryIndexes {
			if g.IndexName != userviews.UsersIndex {
				t.Errorf("ReadModelTable: index %s is not one the code queries", g.IndexName)
				continue
			}
			found = true
			var keys []string
			for _, k := range g.KeySchema {
				keys = append(keys, k.KeyType+" "+k.AttributeName+":"+types[k.AttributeName])
			}
			want := []string{"HASH " + userviews.AttrListPK + ":S", "RANGE " + userviews.AttrListSK + ":S"}
			if !slices.Equal(keys, want) {
				t.Errorf("index %s keys %v, want %v", g.IndexName, keys, want)
			}
			if g.Projection == nil || g.Projection.ProjectionType == nil || *g.Projection.ProjectionType != "KEYS_ONLY" {
				t.Errorf("index %s projection %+v, want KEYS_ONLY (renames must not write the index)", g.IndexName, g.Projection)
			}
		}
	}
	if !found {
		t.Fatalf("ReadModelTable has no index %s", userviews.UsersIndex)
	}
	sts, err := tpl.Statements()
	if err != nil {
		t.Fatal(err)
	}
	granted := false
	for _, st := range sts {
		if st.Role != "QueriesRole" || !slices.Contains(st.Actions, "dynamodb:Query") {
			continue
		}
		for _, r := range st.Resources {
			v, err := tpl.Resolve(r, values{})
			if err != nil {
				t.Fatal(err)
			}
			if v == "arn:ReadModelTable.Arn/index/"+userviews.UsersIndex {
				granted = true
			}
		}
	}
	if !granted {
		t.Errorf("QueriesFunction may not query %s", userviews.UsersIndex)
	}
}
