package pii_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/httpapi"
	"github.com/chronicle-go/chronicle/infra/pii"
)

// container is one commands function container: its own key cache, state
// cache and handler, over the shared tables, as the commands Lambda builds
// them (lambdafn.Commands).
type container struct {
	name  string
	keys  *pii.Keys
	store *dynamo.Store
	svc   *es.Service[user.State, user.Command]
	h     *httpapi.Commands
}

func (f *fixture) container(t *testing.T, name string) *container {
	t.Helper()
	keys, err := pii.NewKeys(kms.NewFromConfig(awstest.Config(t)), f.ddb, pii.Config{KMSKeyID: keyID(t, f), Table: tableOf(t, f)})
	must(t, err)
	reg := user.NewRegistry()
	c := pii.NewCipher(keys, reg, pii.ForgetOn(reg.Erases)) // as lambdafn's
	store := dynamo.New(f.ddb, f.tables, dynamo.WithCipher(c), dynamo.WithAppendWindow(dynamo.AppendWindow))
	svc := es.NewService(user.Decider(), reg, store, es.Options{SnapshotEvery: 5, CacheSize: 64})
	h := httpapi.NewCommands(svc, slog.New(slog.NewTextHandler(io.Discard, nil)), httpapi.WithKeys(keys))
	return &container{name: name, keys: keys, store: store, svc: svc, h: h}
}

// answer is what a command got: its status, and the version or problem.
type answer struct {
	status  int
	id      string
	version int64
	typ     string // the problem type, for an error
	detail  string
}

func (a answer) String() string {
	if a.status < 300 {
		return fmt.Sprintf("%d v%d", a.status, a.version)
	}
	return fmt.Sprintf("%d %s %q", a.status, a.typ, a.detail)
}

// forgottenRefusal: the answer of any command on a forgotten user.
func (a answer) forgottenRefusal() bool {
	return a.status == http.StatusConflict && strings.Contains(a.detail, "forgotten")
}

// do sends a command to c as an admin.
func (c *container) do(t *testing.T, method, resource, id string, body any) answer {
	t.Helper()
	path := strings.Replace(resource, "{id}", id, 1)
	b, err := json.Marshal(body)
	must(t, err)
	req := events.APIGatewayProxyRequest{
		Resource: resource, Path: path, HTTPMethod: method,
		Headers: map[string]string{"Content-Type": "application/json"},
		Body:    string(b),
		RequestContext: events.APIGatewayProxyRequestContext{
			ResourcePath: resource, HTTPMethod: method, Path: path,
			Authorizer: auth.Principal{Sub: "race-admin", Roles: []string{auth.RoleAdmin}}.AuthorizerContext(),
		},
	}
	if id != "" {
		req.PathParameters = map[string]string{"id": id}
	}
	resp, err := c.h.Handle(t.Context(), req)
	if err != nil {
		t.Errorf("%s %s on %s: %v", method, path, c.name, err)
		return answer{status: 599}
	}
	var out struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
		Type    string `json:"type"`
		Detail  string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		t.Errorf("%s %s on %s: %d %q: %v", method, path, c.name, resp.StatusCode, resp.Body, err)
	}
	return answer{status: resp.StatusCode, id: out.ID, version: out.Version, typ: out.Type, detail: out.Detail}
}

// sent is one command of the race and what it got.
type sent struct {
	op              string // rename, email, delete
	value           string // the name or address it set
	container       string
	start, end      time.Time
	ans             answer
	afterForgetDone bool // sent after the forget had answered
}

// wantType is the event type an accepted op appended.
var wantType = map[string]string{"rename": "user.renamed.v1", "email": "user.email_changed.v1", "delete": "user.deleted.v1"}

// TestForgetRacesCommands races renames, email changes and deletes, sent
// by several goroutines to two containers (each with its own key and state
// caches, both warm on the user), against a forget of the same user, round
// after round. The acceptance: every command either happened before the
// forget or was refused. Afterwards the history is a valid sequence ending
// in the one forgotten event, every accepted command is in it before the
// forget and nothing else is, every command sent after the forget answered
// is refused as forgotten, the key is a tombstone and no personal field
// reads (in a cold container), every address the user held is free, and a
// forget sent again answers 409 and changes nothing.
func TestForgetRacesCommands(t *testing.T) {
	f := newFixture(t, 0)
	cs := []*container{f.container(t, "a"), f.container(t, "b")}
	const (
		rounds       = 4
		perContainer = 2 // goroutines sending commands to each container
		perWorker    = 8 // commands each sends, at most
	)
	for round := range rounds {
		t.Logf("round %d", round)
		raceRound(t, f, cs, round, perContainer, perWorker)
		if t.Failed() {
			return
		}
	}
}

func raceRound(t *testing.T, f *fixture, cs []*container, round, perContainer, perWorker int) {
	ctx := t.Context()
	tag := fmt.Sprintf("r%d-%d", round, time.Now().UnixNano())
	email0 := tag + "@race.example"
	created := cs[round%2].do(t, http.MethodPost, "/users", "", map[string]string{"name": "Racer " + tag, "email": email0})
	if created.status != http.StatusCreated {
		t.Fatalf("create: %v", created)
	}
	id := created.id
	// Both containers warm: the user's key and state cached in each.
	for i, c := range cs {
		if a := c.do(t, http.MethodPut, "/users/{id}/name", id, map[string]string{"name": fmt.Sprintf("Warm %s %d", tag, i)}); a.status != http.StatusOK {
			t.Fatalf("warm %s: %v", c.name, a)
		}
	}
	_, warmVersion := lastEvent(t, cs[0], id)

	var (
		mu         sync.Mutex
		log        []sent
		forgetDone time.Time // zero until the forget answered
		wg         sync.WaitGroup
	)
	record := func(s sent) {
		mu.Lock()
		defer mu.Unlock()
		s.afterForgetDone = !forgetDone.IsZero() && s.start.After(forgetDone)
		log = append(log, s)
	}
	// The forget: after a random head start of the commands, from either
	// container; a version conflict that outlasted the retries is sent again.
	forgetFrom := cs[rand.IntN(2)]
	var forget answer
	wg.Go(func() {
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		for {
			forget = forgetFrom.do(t, http.MethodPost, "/users/{id}/forget", id, map[string]string{"reason": "race " + tag})
			if forget.status != http.StatusConflict || strings.Contains(forget.detail, "forgotten") {
				break
			}
			t.Logf("forget answered %v; sent again", forget)
		}
		mu.Lock()
		forgetDone = time.Now()
		mu.Unlock()
	})
	// One round in three, a delete races too.
	deleter := -1
	if round%3 == 1 {
		deleter = rand.IntN(perContainer * len(cs))
	}
	for w := range perContainer * len(cs) {
		c := cs[w%len(cs)]
		wg.Go(func() {
			refusedAfter := 0
			for i := range perWorker {
				s := sent{container: c.name, start: time.Now()}
				switch {
				case w == deleter && i == perWorker/3:
					s.op = "delete"
					s.ans = c.do(t, http.MethodDelete, "/users/{id}", id, map[string]string{"reason": "race"})
				case rand.IntN(3) == 0:
					s.op, s.value = "email", fmt.Sprintf("%s-w%d-%d@race.example", tag, w, i)
					s.ans = c.do(t, http.MethodPut, "/users/{id}/email", id, map[string]string{"email": s.value})
				default:
					s.op, s.value = "rename", fmt.Sprintf("Name %s w%d %d", tag, w, i)
					s.ans = c.do(t, http.MethodPut, "/users/{id}/name", id, map[string]string{"name": s.value})
				}
				s.end = time.Now()
				record(s)
				if s.ans.forgottenRefusal() {
					// A couple more after the first refusal: still refused.
					if refusedAfter++; refusedAfter > 2 {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if forget.status != http.StatusOK {
		t.Fatalf("round %d: the forget answered %v", round, forget)
	}

	// The history, read by a cold container (no cached key or state).
	cold := f.container(t, "cold")
	recs, err := cold.store.Load(ctx, id, 1, 0)
	must(t, err)
	for i, r := range recs {
		if r.Version != int64(i+1) {
			t.Fatalf("round %d: event %d has version %d", round, i, r.Version)
		}
	}
	last := recs[len(recs)-1]
	if last.Type != "user.forgotten.v1" || last.Version != forget.version {
		t.Fatalf("round %d: the history ends in %s v%d, the forget answered v%d", round, last.Type, last.Version, forget.version)
	}
	deletedAt := int64(0)
	for _, r := range recs[:len(recs)-1] {
		switch {
		case r.Type == "user.forgotten.v1":
			t.Errorf("round %d: a second forgotten event at v%d", round, r.Version)
		case r.Type == "user.deleted.v1" && deletedAt == 0:
			deletedAt = r.Version
		case r.Type == "user.deleted.v1":
			t.Errorf("round %d: a second deleted event at v%d", round, r.Version)
		case deletedAt != 0:
			t.Errorf("round %d: %s v%d appended after the deletion at v%d", round, r.Type, r.Version, deletedAt)
		}
	}
	if deletedAt == 0 {
		t.Errorf("round %d: the forgotten user was never deleted", round)
	}

	// Every accepted command is in the history before the forget, at the
	// version it answered, and every event of the race is an accepted command.
	// The forget's first event: its deletion, unless a delete of the race
	// was accepted before it.
	forgetFirst := forget.version - 1
	if deleteAccepted(log) {
		forgetFirst = forget.version
	}
	byVersion := map[int64]sent{}
	var accepted, refused, afterForget int
	emails := []string{email0}
	for _, s := range log {
		switch {
		case s.ans.status == http.StatusOK:
			accepted++
			if s.afterForgetDone {
				t.Errorf("round %d: %s on %s accepted (v%d) after the forget answered", round, s.op, s.container, s.ans.version)
			}
			if s.ans.version >= forgetFirst || s.ans.version <= warmVersion {
				t.Errorf("round %d: %s on %s accepted at v%d, the forget at v%d", round, s.op, s.container, s.ans.version, forget.version)
				continue
			}
			if prev, dup := byVersion[s.ans.version]; dup {
				t.Errorf("round %d: %s and %s both answered v%d", round, prev.op, s.op, s.ans.version)
			}
			byVersion[s.ans.version] = s
			if got := recs[s.ans.version-1].Type; got != wantType[s.op] {
				t.Errorf("round %d: %s accepted at v%d, the history has %s there", round, s.op, s.ans.version, got)
			}
			if s.op == "email" {
				emails = append(emails, s.value)
			}
		case s.ans.forgottenRefusal():
			refused++
		case s.afterForgetDone:
			t.Errorf("round %d: %s on %s sent after the forget answered: %v, want 409 forgotten", round, s.op, s.container, s.ans)
		case s.ans.status == http.StatusConflict && s.ans.typ != "":
			// Before the forget answered: a deleted user, or a version
			// conflict that outlasted the retries. Refused all the same.
			refused++
		default:
			t.Errorf("round %d: %s on %s answered %v", round, s.op, s.container, s.ans)
		}
		if s.afterForgetDone {
			afterForget++
		}
	}
	for _, r := range recs[warmVersion : len(recs)-1] {
		if _, ok := byVersion[r.Version]; !ok && r.Version != deletedAt {
			t.Errorf("round %d: %s v%d is in the history, no command was answered it", round, r.Type, r.Version)
		}
	}
	t.Logf("round %d: forget via %s at v%d; %d accepted, %d refused (%d sent after the forget answered)", round, forgetFrom.name, forget.version, accepted, refused, afterForget)

	// Nothing personal reads any more: the key item is a tombstone, every
	// personal field of the history is null in a cold container, and both
	// warm containers fold the forgotten state.
	if item := keyItem(t, f, id); item["wrapped"] != nil || item["forgottenAt"] == nil {
		t.Errorf("round %d: the key item after the forget is %v", round, dump(item))
	}
	if leaked := personal(t, cold, recs); len(leaked) > 0 {
		t.Errorf("round %d: a cold container reads %v after the forget", round, leaked)
	}
	for _, c := range append(cs, cold) {
		agg, err := c.svc.Load(ctx, id)
		must(t, err)
		if !agg.State.Forgotten || agg.State.Name != "" || agg.State.Email != "" || agg.Version != forget.version {
			t.Errorf("round %d: %s folds %+v at v%d", round, c.name, agg.State, agg.Version)
		}
		// A container that has read the forget reads nothing personal of
		// the user any more, though it held the user's key before the
		// forget (its cache would keep it for a minute).
		recs, err := c.store.Load(ctx, id, 1, 0)
		must(t, err)
		if leaked := personal(t, c, recs); len(leaked) > 0 {
			t.Errorf("round %d: %s still reads %v after it loaded the forget", round, c.name, leaked)
		}
	}
	// Every address the user held is free: another user takes each.
	for i, e := range emails {
		if a := cs[i%2].do(t, http.MethodPost, "/users", "", map[string]string{"name": "Next", "email": e}); a.status != http.StatusCreated {
			t.Errorf("round %d: %s after the forget: %v, want it free", round, e, a)
		}
	}
	// A forget sent again, to either container, after the key is gone:
	// 409 forgotten, nothing appended, the key still a tombstone.
	for _, c := range cs {
		if a := c.do(t, http.MethodPost, "/users/{id}/forget", id, map[string]string{"reason": "again"}); !a.forgottenRefusal() {
			t.Errorf("round %d: forget again on %s: %v, want 409 forgotten", round, c.name, a)
		}
	}
	if _, v := lastEvent(t, cold, id); v != forget.version {
		t.Errorf("round %d: the stream is at v%d after the forget sent again, want v%d", round, v, forget.version)
	}
}

// deleteAccepted reports whether a delete of the race was accepted.
func deleteAccepted(log []sent) bool {
	for _, s := range log {
		if s.op == "delete" && s.ans.status == http.StatusOK {
			return true
		}
	}
	return false
}

// lastEvent returns the type and version of id's last event, read by c.
func lastEvent(t *testing.T, c *container, id string) (string, int64) {
	t.Helper()
	recs, err := c.store.Load(t.Context(), id, 1, 0)
	must(t, err)
	if len(recs) == 0 {
		t.Fatalf("%s has no events", id)
	}
	r := recs[len(recs)-1]
	return r.Type, r.Version
}

// TestForgetCutShortCompletedByRetry: a forget whose events were appended
// but whose key was not destroyed (the container died between the two
// steps) is completed by the forget sent again: 409 forgotten, as for any
// forgotten user, and the key destroyed, so nothing personal reads.
func TestForgetCutShortCompletedByRetry(t *testing.T) {
	f := newFixture(t, 0)
	a, b := f.container(t, "a"), f.container(t, "b")
	email := fmt.Sprintf("cut-%d@race.example", time.Now().UnixNano())
	created := a.do(t, http.MethodPost, "/users", "", map[string]string{"name": "Cut Short", "email": email})
	if created.status != http.StatusCreated {
		t.Fatalf("create: %v", created)
	}
	// The first step only: the events appended, the key left alive.
	_, err := a.svc.Execute(t.Context(), created.id, user.Forget{Reason: "cut short"}, es.ExecOptions{Metadata: es.Metadata{Actor: "race-admin"}})
	must(t, err)
	if _, live := keyItem(t, f, created.id)["wrapped"]; !live {
		t.Fatal("the key is destroyed before the retry; the test sets up nothing")
	}
	for _, c := range []*container{b, a} {
		if ans := c.do(t, http.MethodPost, "/users/{id}/forget", created.id, map[string]string{"reason": "retry"}); !ans.forgottenRefusal() {
			t.Fatalf("the forget sent again to %s: %v, want 409 forgotten", c.name, ans)
		}
	}
	if item := keyItem(t, f, created.id); item["wrapped"] != nil || item["forgottenAt"] == nil {
		t.Fatalf("after the retried forget the key item is %v", dump(item))
	}
	cold := f.container(t, "cold")
	recs, err := cold.store.Load(t.Context(), created.id, 1, 0)
	must(t, err)
	if len(recs) != 3 {
		t.Fatalf("%d events after the retries, want 3 (created, deleted, forgotten)", len(recs))
	}
	if strings.Contains(string(recs[0].Data), "Cut Short") || strings.Contains(string(recs[0].Data), email) {
		t.Fatalf("after the retried forget the history reads %s", recs[0].Data)
	}
}

// personal lists the personal fields of recs that are not null.
func personal(t *testing.T, c *container, recs []es.Record) []string {
	t.Helper()
	var found []string
	for _, r := range recs {
		var data map[string]any
		must(t, json.Unmarshal(r.Data, &data))
		for _, field := range c.svc.Registry().PersonalFields(r.Type) {
			if v, ok := data[field]; ok && v != nil {
				found = append(found, fmt.Sprintf("%s v%d %s=%v", r.Type, r.Version, field, v))
			}
		}
	}
	return found
}

// keyItem is the keys-table item of id, as stored.
func keyItem(t *testing.T, f *fixture, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := f.ddb.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(tableOf(t, f)), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: id}}})
	must(t, err)
	return out.Item
}
