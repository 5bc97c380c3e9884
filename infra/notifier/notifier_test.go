package notifier_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/relay"
)

var registry = user.NewRegistry()

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// env is a notifier over a fresh ledger table and moto's SES, sending from
// an address of its own.
type env struct {
	ses    *sesv2.Client
	ledger *notifier.Mails
	rm     *readmodel.Store // the table the ledger is in
	from   string
	clock  *clock
	n      *notifier.Notifier
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newClock(t time.Time) *clock    { c := &clock{}; c.set(t); return c }
func (e env) verify(t *testing.T)    { verify(t, e.ses, e.from) }
func verify(t *testing.T, c *sesv2.Client, addr string) {
	t.Helper()
	if _, err := c.CreateEmailIdentity(t.Context(), &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(addr)}); err != nil {
		t.Fatalf("create email identity: %v", err)
	}
}

const lease = time.Minute

func newEnv(t *testing.T, verified bool) env {
	t.Helper()
	e := env{
		ses:   sesv2.NewFromConfig(awstest.Config(t)),
		rm:    readmodeltest.Store(t),
		from:  "hello-" + uuid.NewString() + "@chronicle.example.com",
		clock: newClock(time.Now()),
	}
	e.ledger = notifier.NewMails(e.rm.Client(), e.rm.Table())
	if verified {
		e.verify(t)
	}
	n, err := notifier.New(e.ses, e.ledger, registry, notifier.Config{From: "Chronicle <" + e.from + ">", Lease: lease},
		slog.New(slog.NewJSONHandler(testWriter{t}, nil)), e.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	e.n = n
	return e
}

// sentMail is a mail as moto's SES backend records it.
type sentMail struct {
	ID           string              `json:"id"`
	Source       string              `json:"source"`
	Subject      string              `json:"subject"`
	Body         string              `json:"body"`
	Destinations map[string][]string `json:"destinations"`
}

// mailsTo lists the mails moto's SES holds for address, from its state at
// GET /moto-api/data.json, where moto 5.2 lists them as
// {"ses": {"Message": [{"id", "source", "subject", "body", "destinations": {"ToAddresses": [...]}}]}}.
func mailsTo(t *testing.T, address string) []sentMail {
	t.Helper()
	endpoint := os.Getenv("AWS_ENDPOINT_URL_SESV2")
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL_SES")
	}
	if endpoint == "" {
		t.Skip("no moto endpoint for SES: sent mail cannot be read back")
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, strings.TrimRight(endpoint, "/")+"/moto-api/data.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto data.json: %s", resp.Status)
	}
	var data struct {
		SES struct {
			Message []sentMail `json:"Message"`
		} `json:"ses"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&data); err != nil {
		t.Fatalf("moto data.json: %v", err)
	}
	var out []sentMail
	for _, m := range data.SES.Message {
		if slices.Contains(m.Destinations["ToAddresses"], address) {
			out = append(out, m)
		}
	}
	return out
}

func created(t *testing.T, name, email string) es.Record {
	t.Helper()
	return record(t, uuid.NewString(), 1, user.Created{Name: name, Email: email})
}

func record(t *testing.T, id string, version int64, e es.Event) es.Record {
	t.Helper()
	typ, schema, data, err := registry.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return es.Record{ID: uuid.NewString(), AggregateID: id, AggregateType: "user", Version: version,
		Type: typ, SchemaVersion: schema, OccurredAt: time.Now().UTC(), Data: data}
}

func message(t *testing.T, rec es.Record) events.SQSMessage {
	t.Helper()
	body, err := relay.EncodeMessage(rec)
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{MessageId: uuid.NewString(), Body: body,
		Attributes: map[string]string{"MessageGroupId": rec.AggregateID, "MessageDeduplicationId": rec.ID}}
}

func handle(t *testing.T, n *notifier.Notifier, msgs ...events.SQSMessage) []string {
	t.Helper()
	resp, err := n.Handle(t.Context(), events.SQSEvent{Records: msgs})
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

func TestFixture(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	raw, err := os.ReadFile("../../testdata/notifier/sqs-user-created.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	// The fixture's address is this test's alone; earlier runs against the
	// same moto may have left mail to it.
	before := len(mailsTo(t, "ada@example.com"))
	for range 2 { // delivered twice
		if failed := handle(t, e.n, ev.Records...); len(failed) != 0 {
			t.Fatalf("failures %v", failed)
		}
	}
	mails := mailsTo(t, "ada@example.com")
	if len(mails) != before+1 {
		t.Fatalf("%d new mails to ada@example.com, want 1", len(mails)-before)
	}
	m, ok, err := e.ledger.Mail(t.Context(), "0195a3c2-7a11-7f00-8a6e-2c4d9b1e3f02")
	if err != nil || !ok || m.State != notifier.MailSent || m.Attempts != 1 {
		t.Fatalf("ledger: %+v, %v, %v", m, ok, err)
	}
	last := mails[len(mails)-1]
	if last.ID != m.MessageID || last.Source != "Chronicle <"+e.from+">" || last.Subject != "Welcome to Chronicle" ||
		!strings.Contains(last.Body, "Hello Ada Lovelace") {
		t.Errorf("mail %+v, recorded as %q", last, m.MessageID)
	}
}

// (d) Every creation delivered twice, in the same batch, in another batch
// and in two invocations at once: one mail per user. Other events are
// acknowledged without mail.
func TestOneMailPerCreatedUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	var recs []es.Record
	for i := range 3 {
		recs = append(recs, created(t, fmt.Sprint("User ", i), fmt.Sprintf("u%d-%s@example.com", i, uuid.NewString())))
	}
	renamed := record(t, recs[0].AggregateID, 2, user.Renamed{Name: "Other"})

	// First batch: user 0 twice, and a rename of it.
	if failed := handle(t, e.n, message(t, recs[0]), message(t, recs[0]), message(t, renamed)); len(failed) != 0 {
		t.Fatalf("failures %v", failed)
	}
	// Then everything again, in two invocations at once. One of them may
	// find the other's claim live: it reports the message, which the queue
	// redelivers (here: at once).
	batch := []events.SQSMessage{message(t, recs[0]), message(t, recs[1]), message(t, recs[2]), message(t, renamed)}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		retry []events.SQSMessage
	)
	for range 2 {
		wg.Go(func() {
			failed := handle(t, e.n, batch...)
			mu.Lock()
			defer mu.Unlock()
			for _, m := range batch {
				if slices.Contains(failed, m.MessageId) {
					retry = append(retry, m)
				}
			}
		})
	}
	wg.Wait()
	if len(retry) > 0 {
		if failed := handle(t, e.n, retry...); len(failed) != 0 {
			t.Fatalf("redelivery failures %v", failed)
		}
	}

	for _, r := range recs {
		var c user.Created
		_ = json.Unmarshal(r.Data, &c)
		if got := mailsTo(t, c.Email); len(got) != 1 {
			t.Errorf("%d mails to %s, want 1", len(got), c.Email)
		}
		if m, ok, err := e.ledger.Mail(t.Context(), r.ID); err != nil || !ok || m.State != notifier.MailSent {
			t.Errorf("ledger of %s: %+v, %v, %v", r.ID, m, ok, err)
		}
	}
	if _, ok, _ := e.ledger.Mail(t.Context(), renamed.ID); ok {
		t.Error("a rename left a mail record")
	}
}

// SES refuses the mail (the sender is not verified yet): the message is
// reported failed and its claim released, so the retry sends at once.
func TestRefusedSendIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	to := "refused-" + uuid.NewString() + "@example.com"
	rec := created(t, "Refused", to)
	msg := message(t, rec)
	later := message(t, record(t, rec.AggregateID, 2, user.Renamed{Name: "Later"}))
	other := message(t, created(t, "Other", "other-"+uuid.NewString()+"@example.com"))

	failed := handle(t, e.n, msg, other, later)
	if want := []string{msg.MessageId, other.MessageId, later.MessageId}; !slices.Equal(failed, want) {
		t.Fatalf("failures %v, want %v (the other user fails too: same unverified sender)", failed, want)
	}
	m, ok, err := e.ledger.Mail(t.Context(), rec.ID)
	if err != nil || !ok || m.State != notifier.MailRetry {
		t.Fatalf("after a refused send: %+v, %v, %v; want a released claim", m, ok, err)
	}

	e.verify(t)
	if failed := handle(t, e.n, msg, later); len(failed) != 0 {
		t.Fatalf("retry failures %v", failed)
	}
	if got := mailsTo(t, to); len(got) != 1 {
		t.Errorf("%d mails, want 1", len(got))
	}
	if m, _, _ := e.ledger.Mail(t.Context(), rec.ID); m.State != notifier.MailSent || m.Attempts != 2 {
		t.Errorf("ledger %+v: want sent after 2 claims", m)
	}
}

func TestBadMessageIsReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	bad := events.SQSMessage{MessageId: "m1", Body: "not json"}
	ok := message(t, created(t, "Fine", "fine-"+uuid.NewString()+"@example.com"))
	if failed := handle(t, e.n, bad, ok); !slices.Equal(failed, []string{"m1"}) {
		t.Errorf("failures %v, want [m1]", failed)
	}
}

func TestNewNeedsASender(t *testing.T) {
	t.Parallel()
	if _, err := notifier.New(nil, nil, registry, notifier.Config{}, slog.Default(), time.Now); err == nil {
		t.Error("New without a sender address succeeded")
	}
}
