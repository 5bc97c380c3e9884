package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/auth"
)

// triggers are the events generate-event makes, each from a fixture of
// testdata/ (which infra's tests decode with the aws-lambda-go types):
// what its function expects, with fresh ids, so that each can be invoked
// again and again.
var triggers = map[string]struct{ fixture, function, about string }{
	"api":        {"commands/create-user.json", "CommandsFunction", "API Gateway REST proxy: POST /users, a new email each time"},
	"authorizer": {"authorizer/token-request.json", "AuthorizerFunction", "TOKEN authorizer request, with a token minted for --sub and --roles"},
	"dynamodb":   {"relay/stream-user-created.json", "RelayFunction", "DynamoDB stream batch: one user.created.v1 event (NEW_IMAGE)"},
	"sqs":        {"projector/sqs-user-created.json", "ProjectorFunction", "SQS FIFO batch: one user.created.v1 event (NotifierFunction takes it too)"},
}

// fixtureToken is the placeholder of the bearer token in the fixtures.
const fixtureToken = "REPLACED-BY-TEST"

var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func generateEvent(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := newFlagSet("generate-event", stderr)
	dir := fs.String("testdata", "testdata", "the fixtures' directory")
	sub := fs.String("sub", "alice", "the caller: the token's sub (authorizer), the authorizer context's (api)")
	roles := fs.String("roles", "", `the caller's roles, comma separated ("admin")`)
	id := fs.String("id", "", "the user id to put in the event's path (fixtures with {id}); default: the fixture's")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: local generate-event <trigger|fixture> [flags]\n\nPrints an event ready for: go run ./cmd/local invoke <LogicalId> --event -\n\ntriggers:")
		for _, name := range slices.Sorted(maps.Keys(triggers)) {
			t := triggers[name]
			fmt.Fprintf(stderr, "  %-11s %-19s %s\n", name, t.function, t.about)
		}
		fmt.Fprintln(stderr, "\nor any fixture of testdata/ (e.g. commands/rename-user.json), listed with: local generate-event --list\n\nflags:")
		fs.PrintDefaults()
	}
	list := fs.Bool("list", false, "list the fixtures of testdata/ with the function each is for")
	// The trigger may come before the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if code, done := parseSub(fs, args); done {
		return code
	}
	if *list {
		files, err := filepath.Glob(filepath.Join(*dir, "*", "*.json"))
		if err != nil || len(files) == 0 {
			fmt.Fprintf(stderr, "generate-event: no fixtures under %s (run from the repository)\n", *dir)
			return 1
		}
		for _, f := range files {
			rel, _ := filepath.Rel(*dir, f)
			fmt.Fprintf(stdout, "%-40s %s\n", rel, fixtureFunction(rel))
		}
		return 0
	}
	if name == "" {
		fs.Usage()
		return 2
	}
	fixture := name
	if t, ok := triggers[name]; ok {
		fixture = t.fixture
	}
	raw, err := os.ReadFile(filepath.Join(*dir, fixture))
	if err != nil {
		fmt.Fprintf(stderr, "generate-event: %q is neither a trigger (%s) nor a fixture of %s: %v\n",
			name, strings.Join(slices.Sorted(maps.Keys(triggers)), ", "), *dir, err)
		return 2
	}
	tok, err := minter(getenv).Mint(*sub, splitRoles(*roles), time.Hour)
	if err != nil {
		fmt.Fprintln(stderr, "generate-event:", err)
		return 1
	}
	out, err := freshEvent(raw, fixture, tok, *sub, splitRoles(*roles), *id)
	if err != nil {
		fmt.Fprintln(stderr, "generate-event:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(out))
	return 0
}

func splitRoles(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// fixtureFunction is the logical id of the function whose fixtures are
// in testdata/<dir>.
func fixtureFunction(rel string) string {
	d, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	if d == "" {
		return ""
	}
	return strings.ToUpper(d[:1]) + d[1:] + "Function"
}

// freshEvent is the fixture with a real token, the caller's principal in
// an API event's authorizer context, every id but the path's user id
// fresh (the same fixture id the same fresh id: the records stay
// coherent), and a new email in a create, so that it can be sent again.
func freshEvent(raw []byte, fixture, token, sub string, roles []string, userID string) ([]byte, error) {
	const pathUserID = "0190a5f0-7c3e-7d2a-9b1e-3f4a5b6c7d8e" // the {id} of the API fixtures
	fresh := map[string]string{pathUserID: pathUserID}
	if userID != "" {
		if _, err := uuid.Parse(userID); err != nil {
			return nil, fmt.Errorf("--id %q: %w", userID, err)
		}
		fresh[pathUserID] = userID
	}
	s := uuidPattern.ReplaceAllStringFunc(string(raw), func(old string) string {
		if v, ok := fresh[old]; ok {
			return v
		}
		fresh[old] = uuid.Must(uuid.NewV7()).String()
		return fresh[old]
	})
	s = strings.ReplaceAll(s, fixtureToken, token)
	var ev map[string]any
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		return nil, fmt.Errorf("fixture %s: %w", fixture, err)
	}
	if rc, ok := ev["requestContext"].(map[string]any); ok {
		if _, has := rc["authorizer"]; has {
			ctx := map[string]any{}
			for k, v := range (auth.Principal{Sub: sub, Roles: roles}).AuthorizerContext() {
				ctx[k] = v
			}
			ctx["principalId"] = sub
			rc["authorizer"] = ctx
		}
		rc["requestId"] = uuid.NewString()
		rc["requestTimeEpoch"] = time.Now().UnixMilli()
	}
	if body, ok := ev["body"].(string); ok && ev["httpMethod"] == "POST" && ev["resource"] == "/users" {
		var b map[string]any
		if json.Unmarshal([]byte(body), &b) == nil {
			if email, ok := b["email"].(string); ok {
				local, domain, _ := strings.Cut(email, "@")
				b["email"] = local + "+" + uuid.NewString()[:8] + "@" + domain
				nb, _ := json.Marshal(b)
				ev["body"] = string(nb)
			}
		}
	}
	return json.MarshalIndent(ev, "", "  ")
}
