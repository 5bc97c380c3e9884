package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// The stories of the talk, end to end.

// TestWhoDeletedMyUser: a user is created, renamed, changes email, is
// suspended and deleted by different actors with reasons; the history names
// each actor and reason, the deleter's activity shows the deletion, and
// the state just before the deletion is the suspended user.
func TestWhoDeletedMyUser(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	support := newIdentity(t, "admin")
	u := createUser(t, owner, "Rupert", uniqueEmail("rupert"))
	got := projected(t, owner, u.ID, 1, http.StatusOK) // create -> the read model shows it
	if got.Name != "Rupert" || got.Sub != owner.sub {
		t.Fatalf("read model %+v", got)
	}

	// Each change reaches the read model.
	path := "/users/" + u.ID
	do(t, req{method: "PUT", path: path + "/name", token: owner.token, body: map[string]string{"name": "Rupert R."}}).want(t, http.StatusOK)
	if got := projected(t, owner, u.ID, 2, http.StatusOK); got.Name != "Rupert R." {
		t.Errorf("read model after the rename: %+v", got)
	}
	email := uniqueEmail("rupert.r")
	do(t, req{method: "PUT", path: path + "/email", token: owner.token, body: map[string]string{"email": email}}).want(t, http.StatusOK)
	if got := projected(t, owner, u.ID, 3, http.StatusOK); got.Email != email || got.Name != "Rupert R." {
		t.Errorf("read model after the email change: %+v", got)
	}
	do(t, req{method: "POST", path: path + "/suspend", token: s.admin, body: map[string]string{"reason": "fraud review"}}).want(t, http.StatusOK)
	if got := projected(t, owner, u.ID, 4, http.StatusOK); got.Status != "suspended" {
		t.Errorf("read model after the suspension: %+v", got)
	}
	var del written
	do(t, req{method: "DELETE", path: path, token: support.token, body: map[string]string{"reason": "ticket 4711: user asked"}}).
		want(t, http.StatusOK).decode(t, &del)

	// The history says who did what, and why.
	var h historyAnswer
	do(t, req{method: "GET", path: path + "/history", token: s.admin}).want(t, http.StatusOK).decode(t, &h)
	type step struct{ typ, actor, reason string }
	var steps []step
	for _, e := range h.Events {
		steps = append(steps, step{e.Type, e.Actor, e.Reason})
	}
	want := []step{
		{"user.created.v1", owner.sub, ""},
		{"user.renamed.v1", owner.sub, ""},
		{"user.email_changed.v1", owner.sub, ""},
		{"user.suspended.v1", s.adminSub, "fraud review"},
		{"user.deleted.v1", support.sub, "ticket 4711: user asked"},
	}
	if !slices.Equal(steps, want) {
		t.Errorf("history:\n got %v\nwant %v", steps, want)
	}
	// The owner, whose user it was, may read it too.
	do(t, req{method: "GET", path: path + "/history", token: owner.token}).want(t, http.StatusOK)

	// "Who deleted my user?" from the deleter's side: its activity.
	eventually(t, 20*time.Second, "the deleter's activity shows the deletion", func() (bool, string) {
		var a activityAnswer
		do(t, req{method: "GET", path: "/actors/" + support.sub + "/activity", token: s.admin}).want(t, http.StatusOK).decode(t, &a)
		for _, e := range a.Events {
			if e.AggregateID == u.ID && e.Type == "user.deleted.v1" && e.Reason == "ticket 4711: user asked" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", a.Events)
	})
	// And from the read model: the 410 names the deleter.
	gone := projected(t, admin(), u.ID, del.Version, http.StatusGone)
	if gone.DeletedBy != support.sub || gone.Reason != "ticket 4711: user asked" {
		t.Errorf("410 %+v", gone)
	}

	// The state just before the deletion: suspended, with its last email.
	deletedAt := h.Events[4].OccurredAt
	var st stateAnswer
	do(t, req{method: "GET", path: path + "/state?at=" + url.QueryEscape(deletedAt.Add(-time.Nanosecond).Format(time.RFC3339Nano)), token: s.admin}).
		want(t, http.StatusOK).decode(t, &st)
	if st.Version != 4 || st.State.Status != "suspended" || st.State.Name != "Rupert R." || !strings.HasPrefix(st.State.Email, "rupert.r-") {
		t.Errorf("state just before the delete: %+v", st)
	}
	do(t, req{method: "GET", path: path + "/state?at=" + url.QueryEscape(deletedAt.Format(time.RFC3339Nano)), token: s.admin}).
		want(t, http.StatusOK).decode(t, &st)
	if st.Version != 5 || st.State.Status != "deleted" {
		t.Errorf("state at the delete: %+v", st)
	}
}

// TestReadYourWrites: right after a write, minVersion answers the new
// version, from the projection when it has caught up, else from the event
// store, and X-Source says which.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	owner := newIdentity(t)
	u := createUser(t, owner, "Sybil", uniqueEmail("sybil"))
	sources := map[string]int{}
	for i := range 5 {
		var w written
		do(t, req{method: "PUT", path: "/users/" + u.ID + "/name", token: owner.token,
			body: map[string]string{"name": fmt.Sprint("Sybil ", i)}}).want(t, http.StatusOK).decode(t, &w)
		for _, r := range []req{
			{method: "GET", path: fmt.Sprintf("/users/%s?minVersion=%d", u.ID, w.Version), token: owner.token},
			{method: "GET", path: "/users/" + u.ID, token: owner.token, header: map[string]string{"X-Min-Version": fmt.Sprint(w.Version)}},
		} {
			var got userAnswer
			resp := do(t, r).want(t, http.StatusOK)
			resp.decode(t, &got)
			src := resp.header.Get("X-Source")
			sources[src]++
			if got.Version < w.Version || got.Name != fmt.Sprint("Sybil ", i) {
				t.Errorf("minVersion %d answered %+v (X-Source %s)", w.Version, got, src)
			}
			if src != "projection" && src != "event-store" {
				t.Errorf("X-Source %q", src)
			}
		}
	}
	t.Logf("answers right after a write, by X-Source: %v", sources)
	if got := projected(t, owner, u.ID, 6, http.StatusOK); got.Name != "Sybil 4" {
		t.Errorf("the read model, caught up: %+v", got)
	}
}

// TestWelcomeMailOnce: every created user gets exactly one welcome mail,
// read from the SES emulator's records once the notifications queue is
// drained. Not parallel: it waits for the queue to be idle.
func TestWelcomeMailOnce(t *testing.T) {
	if s.sesURL == "" {
		t.Skip("needs the SES emulator's records: set " + envSESURL)
	}
	var emails []string
	for i := range 5 {
		e := uniqueEmail(fmt.Sprint("welcome", i))
		emails = append(emails, e)
		createUser(t, admin(), fmt.Sprint("Welcome ", i), e)
	}
	eventually(t, 30*time.Second, "a welcome mail for each user", func() (bool, string) {
		counts := mailCounts(t)
		for _, e := range emails {
			if counts[e] == 0 {
				return false, "no mail yet to " + e
			}
		}
		return true, ""
	})
	eventually(t, 30*time.Second, "the notifications queue is drained", func() (bool, string) {
		var ops struct {
			Projections map[string]struct {
				QueueDepth *int64 `json:"queueDepth"`
				InFlight   *int64 `json:"inFlight"`
			} `json:"projections"`
		}
		r := do(t, req{method: "GET", path: "/ops/projections", token: s.admin}).want(t, http.StatusOK)
		r.decode(t, &ops)
		p := ops.Projections["welcome-mail"]
		return p.QueueDepth != nil && *p.QueueDepth == 0 && p.InFlight != nil && *p.InFlight == 0, string(r.body)
	})
	counts := mailCounts(t)
	for _, e := range emails {
		if counts[e] != 1 {
			t.Errorf("%s received %d welcome mails, want 1", e, counts[e])
		}
	}
}

// mailCounts counts the mails sent to each address, from moto's
// /moto-api/data.json ({"ses":{"Message":[...]}}) or LocalStack's /_aws/ses
// ({"messages":[...]}).
func mailCounts(t *testing.T) map[string]int {
	t.Helper()
	resp, err := httpClient.Get(s.sesURL)
	if err != nil {
		t.Fatalf("SES records: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SES struct {
			Message []struct {
				Destinations struct {
					ToAddresses []string `json:"ToAddresses"`
				} `json:"destinations"`
			} `json:"Message"`
		} `json:"ses"`
		Messages []struct {
			Destination struct {
				ToAddresses []string `json:"ToAddresses"`
			} `json:"Destination"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("SES records %.200s: %v", b, err)
	}
	counts := map[string]int{}
	for _, m := range doc.SES.Message {
		for _, to := range m.Destinations.ToAddresses {
			counts[strings.ToLower(to)]++
		}
	}
	for _, m := range doc.Messages {
		for _, to := range m.Destination.ToAddresses {
			counts[strings.ToLower(to)]++
		}
	}
	return counts
}

// TestPoisonedAggregate: an event no projection can apply (of a type the
// registry does not know), appended to the event store directly, fails in
// the projector on every delivery and ends in the projections DLQ after
// maxReceiveCount receives, while other users keep flowing; /ops/projections
// shows it. Locally it runs on a runner of its own whose template has a
// short visibility timeout and MaxReceiveCount 2, so that it takes seconds.
func TestPoisonedAggregate(t *testing.T) {
	t.Parallel()
	base, events := s.base, s.eventsTable
	timeout := s.dlqTimeout
	if s.local != nil {
		lr := startTestRunner(t, runnerOptions{
			template: editedTemplate(t, func(y string) string {
				return replaceOnce(t, y, "VisibilityTimeout: 20 # 4 x ProjectorFunction's 5 s: the crash-recovery bound above", "VisibilityTimeout: 2")
			}),
			params: map[string]string{"MaxReceiveCount": "2"},
		})
		base, events, timeout = lr.url, lr.r.TableName("EventsTable"), 45*time.Second
	}
	if events == "" || s.aws == nil {
		t.Skip("appends to the events table: set " + envEventsTable + " and the AWS endpoint")
	}
	c := client{base: base}

	poisoned := uuid.NewString()
	rec := es.Record{ID: uuid.Must(uuid.NewV7()).String(), AggregateID: poisoned, AggregateType: "user", Version: 1,
		Type: "user.poisoned.v1", SchemaVersion: 1, OccurredAt: time.Now().UTC(), Data: json.RawMessage(`{}`),
		Metadata: es.Metadata{Actor: "e2e-poisoner", Reason: "poison pill"}}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := dynamodb.NewFromConfig(*s.aws).PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(events), Item: dynamo.ItemFromRecord(rec)}); err != nil {
		t.Fatal(err)
	}

	// Others keep flowing while the poisoned message is retried.
	flowing := func(tag string) {
		var w written
		c.do(t, req{method: "POST", path: "/users", token: s.admin, body: map[string]string{"name": tag, "email": uniqueEmail(tag)}}).
			want(t, http.StatusCreated).decode(t, &w)
		eventually(t, 20*time.Second, tag+" is projected", func() (bool, string) {
			r := c.do(t, req{method: "GET", path: "/users/" + w.ID, token: s.admin})
			return r.status == http.StatusOK && r.header.Get("X-Source") == "projection", string(r.body)
		})
	}
	flowing("before-dlq")

	eventually(t, timeout, "the poisoned event is in the projections DLQ", func() (bool, string) {
		var ops struct {
			Projections map[string]struct {
				DeadLetterDepth *int64 `json:"deadLetterDepth"`
			} `json:"projections"`
		}
		r := c.do(t, req{method: "GET", path: "/ops/projections", token: s.admin}).want(t, http.StatusOK)
		r.decode(t, &ops)
		d := ops.Projections["user-view"].DeadLetterDepth
		return d != nil && *d >= 1, string(r.body)
	})
	flowing("after-dlq")

	// The poisoned aggregate has no view: the event store holds the event,
	// the projections never applied it.
	var cons struct {
		EventStoreVersion int64            `json:"eventStoreVersion"`
		Projections       map[string]int64 `json:"projections"`
	}
	r := c.do(t, req{method: "GET", path: "/users/" + poisoned + "/consistency", token: s.admin})
	if r.status == http.StatusOK {
		r.decode(t, &cons)
		if cons.Projections["user-view"] != 0 {
			t.Errorf("consistency of the poisoned user: %s", r.body)
		}
	}
}

// editedTemplate writes a copy of the repository's template, changed by
// edit, and returns its path.
func editedTemplate(t *testing.T, edit func(string) string) string {
	t.Helper()
	b, err := readTemplate()
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/template.yaml"
	if err := writeFile(path, edit(string(b))); err != nil {
		t.Fatal(err)
	}
	return path
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("template: %q appears %d times, want once", old, strings.Count(s, old))
	}
	return strings.Replace(s, old, new, 1)
}
