package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"
)

// notifierMapping is the notifier's event source mapping in template.yaml.
var notifierMapping = regexp.MustCompile(`(?m)^        Notifications:\n          Type: SQS\n(?:            .*\n|          Properties:\n)+`)

// forgetUser is one user of TestErasure.
type forgetUser struct {
	id                   string
	names, emails        []string // every name and address it ever had
	forget, deletedFirst bool
}

// TestErasure is the acceptance test of the right to be forgotten: 50 users
// created, renamed and given a new address; 10 of them forgotten (6 live,
// 4 deleted first), every welcome mail still queued (the runner's template
// has no notifier mapping). Then every item of every table of the stack and
// every message of every queue and dead-letter queue (moto's own dump, so
// that nothing is received) holds none of the forgotten users' names or
// addresses, as stored, lower-cased or base64; the 40 others read as they
// were; the forgotten read as an audit trail with null personal fields; a
// forgotten address can be registered again; and the welcome mail of a
// forgotten user, delivered late, is not sent while a live user's is.
func TestErasure(t *testing.T) {
	t.Parallel()
	if s.local == nil || s.sesURL == "" {
		t.Skip("needs the runner in process and moto's dump")
	}
	b, err := os.ReadFile(envOr(envTemplate, templatePath))
	if err != nil {
		t.Fatal(err)
	}
	tpl := notifierMapping.ReplaceAll(b, nil)
	if len(tpl) == len(b) {
		t.Fatal("the notifier's event source mapping is not where this test expects it in template.yaml")
	}
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, tpl, 0o600); err != nil {
		t.Fatal(err)
	}
	lr := startTestRunner(t, runnerOptions{template: path})
	c := client{base: lr.url}
	adm := s.admin

	tag := strings.ToLower(uuid.NewString()[:6])
	users := make([]*forgetUser, 50)
	for i := range users {
		u := &forgetUser{
			names:  []string{fmt.Sprintf("Erasmo%s%02d Vandersloot", tag, i), fmt.Sprintf("Erasmo%s%02d Renamed", tag, i)},
			emails: []string{fmt.Sprintf("Erasmo.%s%02d@Forget.Example", tag, i), fmt.Sprintf("erasmo.new.%s%02d@forget.example", tag, i)},
			forget: i%5 == 0, deletedFirst: i%5 == 0 && i < 20,
		}
		var w written
		c.do(t, req{method: "POST", path: "/users", token: adm, body: map[string]string{"name": u.names[0], "email": u.emails[0]}}).
			want(t, http.StatusCreated).decode(t, &w)
		u.id = w.ID
		c.do(t, req{method: "PUT", path: "/users/" + u.id + "/name", token: adm, body: map[string]string{"name": u.names[1]}}).want(t, http.StatusOK)
		c.do(t, req{method: "PUT", path: "/users/" + u.id + "/email", token: adm, body: map[string]string{"email": u.emails[1]}}).want(t, http.StatusOK)
		users[i] = u
	}
	for _, u := range users {
		if u.deletedFirst {
			c.do(t, req{method: "DELETE", path: "/users/" + u.id, token: adm, body: map[string]string{"reason": "left"}}).want(t, http.StatusOK)
		}
	}
	for _, u := range users {
		if u.forget {
			c.do(t, req{method: "POST", path: "/users/" + u.id + "/forget", token: adm, body: map[string]string{}}).
				wantProblem(t, http.StatusBadRequest) // the reason is required
			c.do(t, req{method: "POST", path: "/users/" + u.id + "/forget", token: adm, body: map[string]string{"reason": "GDPR art. 17"}}).
				want(t, http.StatusOK)
		}
	}

	// The read model catches up: the forgotten answer 410 with the forget.
	for _, u := range users {
		if !u.forget {
			continue
		}
		var gone struct {
			Status       string `json:"status"`
			Forgotten    bool   `json:"forgotten"`
			ForgottenBy  string `json:"forgottenBy"`
			ForgetReason string `json:"forgetReason"`
			Version      int64  `json:"version"`
		}
		eventually(t, 30*time.Second, "the forget of "+u.id+" projected", func() (bool, string) {
			r := c.do(t, req{method: "GET", path: "/users/" + u.id, token: adm})
			gone.Forgotten = false
			if r.status == http.StatusGone {
				r.decode(t, &gone)
			}
			return gone.Forgotten && r.header.Get("X-Source") == "projection", fmt.Sprintf("%d %s", r.status, r.body)
		})
		if gone.ForgottenBy != s.adminSub || gone.ForgetReason != "GDPR art. 17" {
			t.Errorf("410 of %s: %+v", u.id, gone)
		}
		c.do(t, req{method: "POST", path: "/users/" + u.id + "/forget", token: adm, body: map[string]string{"reason": "again"}}).
			wantProblem(t, http.StatusConflict)
		c.do(t, req{method: "PUT", path: "/users/" + u.id + "/name", token: adm, body: map[string]string{"name": "Back"}}).
			wantProblem(t, http.StatusConflict)
	}

	// The audit trail of a forgotten user: every event, personal fields null.
	f := users[0]
	var hist struct {
		Events []struct {
			Type  string         `json:"type"`
			Actor string         `json:"actor"`
			Data  map[string]any `json:"data"`
		} `json:"events"`
	}
	c.do(t, req{method: "GET", path: "/users/" + f.id + "/history", token: adm}).want(t, http.StatusOK).decode(t, &hist)
	if n := len(hist.Events); n != 5 { // created, renamed, email changed, deleted, forgotten
		t.Fatalf("history of a forgotten user: %d events", n)
	}
	for _, e := range hist.Events {
		for _, k := range []string{"name", "email", "previous"} {
			if v, ok := e.Data[k]; ok && v != nil {
				t.Errorf("history %s: %s = %v", e.Type, k, v)
			}
		}
		if e.Actor != s.adminSub {
			t.Errorf("history %s lost its actor: %q", e.Type, e.Actor)
		}
	}
	var st struct {
		State map[string]any `json:"state"`
	}
	c.do(t, req{method: "GET", path: "/users/" + f.id + "/state?version=2", token: adm}).want(t, http.StatusOK).decode(t, &st)
	if st.State["name"] != nil || st.State["email"] != nil {
		t.Errorf("past state of a forgotten user: %v", st.State)
	}

	// The 40 others read as they were.
	for _, u := range users {
		if u.forget {
			continue
		}
		var got userAnswer
		eventually(t, 30*time.Second, "user "+u.id+" projected at v3", func() (bool, string) {
			r := c.do(t, req{method: "GET", path: "/users/" + u.id, token: adm})
			got = userAnswer{}
			if r.status == http.StatusOK {
				r.decode(t, &got)
			}
			return got.Version >= 3 && r.header.Get("X-Source") == "projection", fmt.Sprintf("%d %s", r.status, r.body)
		})
		if got.Name != u.names[1] || got.Email != u.emails[1] {
			t.Errorf("user %s reads %q %q, want %q %q", u.id, got.Name, got.Email, u.names[1], u.emails[1])
		}
	}

	// Every item of every table, every message of every queue and DLQ.
	raw := dumpStack(t, lr)
	for _, u := range users {
		for _, secret := range append(append([]string{}, u.names...), u.emails...) {
			found := forms(raw, secret)
			switch {
			case u.forget && len(found) > 0:
				t.Errorf("forgotten user %s: %q found in the stack's data", u.id, found)
			case !u.forget && strings.Contains(secret, "Renamed") && !strings.Contains(raw, u.id):
				t.Errorf("live user %s: not in the dump at all (the dump is wrong)", u.id)
			}
		}
	}
	// The dump sees what it must: the live users' sealed events are there,
	// and none of their names in clear.
	if live := users[1]; strings.Contains(raw, live.names[0]) {
		t.Errorf("a live user's name is stored in clear: %q", live.names[0])
	}

	// A forgotten address can be registered again, at once.
	c.do(t, req{method: "POST", path: "/users", token: adm, body: map[string]string{"name": "Newcomer", "email": users[5].emails[1]}}).
		want(t, http.StatusCreated)

	// The welcome mails, delivered late: a live user's goes, a forgotten one's not.
	deliverWelcomeMails(t, lr, users[1], users[10])
	eventually(t, 20*time.Second, "the live user's welcome mail", func() (bool, string) {
		n := mailCounts(t)[strings.ToLower(users[1].emails[0])]
		return n == 1, fmt.Sprintf("%d mails", n)
	})
	if n := mailCounts(t)[strings.ToLower(users[10].emails[0])]; n != 0 {
		t.Errorf("a forgotten user's welcome mail was sent (%d)", n)
	}
}

// forms returns the forms of secret found in raw: as it is, lower-cased,
// base64 (standard and URL).
func forms(raw, secret string) []string {
	var found []string
	for _, f := range []string{secret, strings.ToLower(secret),
		base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret)),
		base64.StdEncoding.EncodeToString([]byte(strings.ToLower(secret)))} {
		if strings.Contains(raw, f) {
			found = append(found, f)
		}
	}
	return found
}

// dumpStack returns every item of every table of lr's stack, as DynamoDB
// returns them, and moto's dump of every SQS message (queues and DLQs),
// which reads them without receiving them.
func dumpStack(t *testing.T, lr *localRunner) string {
	t.Helper()
	var b strings.Builder
	ddb := dynamodb.NewFromConfig(*s.aws)
	for _, id := range []string{"EventsTable", "GuardsTable", "SnapshotsTable", "ReadModelTable", "KeysTable"} {
		name := lr.r.TableName(id)
		if name == "" {
			t.Fatalf("table %s is not in the stack", id)
		}
		p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(name)})
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, item := range out.Items {
				fmt.Fprintf(&b, "%v\n", item) // every value, binary ones included
				j, _ := json.Marshal(item)
				b.Write(j)
				b.WriteByte('\n')
			}
		}
	}
	resp, err := httpClient.Get(s.sesURL) // /moto-api/data.json
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SQS json.RawMessage `json:"sqs"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.SQS) < 10 {
		t.Fatalf("moto's SQS dump: %v (%d bytes)", err, len(doc.SQS))
	}
	b.Write(doc.SQS)
	return b.String()
}

// deliverWelcomeMails receives the queued user.created messages of users
// and hands them to the notifier, as its mapping would.
func deliverWelcomeMails(t *testing.T, lr *localRunner, users ...*forgetUser) {
	t.Helper()
	want := map[string]bool{}
	for _, u := range users {
		want[u.id] = true
	}
	client := sqs.NewFromConfig(*s.aws)
	url := lr.r.QueueURL("NotificationsQueue")
	var msgs []events.SQSMessage
	deadline := time.Now().Add(30 * time.Second)
	for len(msgs) < len(users) && time.Now().Before(deadline) {
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if group := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]; want[group] {
				msgs = append(msgs, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
					Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs", AWSRegion: "us-east-1"})
			}
		}
	}
	if len(msgs) != len(users) {
		t.Fatalf("%d queued welcome mails of %d users", len(msgs), len(users))
	}
	payload, err := json.Marshal(events.SQSEvent{Records: msgs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := lr.r.Invoke(ctx, "NotifierFunction", payload)
	if err != nil {
		t.Fatalf("notifier: %v", err)
	}
	if !strings.Contains(string(out), `"batchItemFailures":[]`) && strings.Contains(string(out), "itemIdentifier") {
		t.Fatalf("notifier failed messages: %s", out)
	}
}
