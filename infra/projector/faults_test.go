package projector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// The reliability suite. 100 users live 10 commands each through the
// command service on the real DynamoDB event store (1,000 events); each
// scenario relays the real stream to a FIFO queue in moto and projects it
// into a read-model table of its own, with faults injected on the way, and
// poisoned messages added to the queue. Then every user's view must be the
// fold of its events, every event must be in the actor activity exactly
// once, and the dead-letter queue must hold the poisoned messages and
// nothing else. The world is written, and the last scenario run, with the
// replies of writes lost after they applied (faults.LostReplies), and that
// scenario runs the notifier too: one welcome mail per user.
const (
	faultUsers    = 100
	faultCommands = 10 // per user; each makes one event
	// The queue's visibility timeout, in seconds: how soon an
	// unacknowledged message is delivered again.
	faultVisibility = 1
	// Receives before SQS dead-letters a message. A good message fails now
	// and then under the faults; the poisoned ones fail every time.
	faultMaxReceives = 10
	// faultStall fails a scenario that makes no progress (no record
	// relayed, no message acknowledged) for this long. A scenario takes
	// 25 to 35 s alone under -race on two cores, and several times that
	// beside the rest of make test, so the bound is on progress, not on
	// the total; the test binary's -timeout bounds the total.
	faultStall = 90 * time.Second
)

// faultScenario is a set of faults for one run.
type faultScenario struct {
	name   string
	ddb    faults.DynamoDBFaults // projector's event store and read model
	sqs    faults.SQSFaults      // relay's sends
	stream faults.StreamOptions  // relay's deliveries
	queue  faults.QueueOptions   // projector's deliveries
	// lost is the probability that a write of the relay, the projector,
	// the notifier or the queue drivers (DynamoDB and SQS) applies and its
	// reply is lost, below the SDK's retries (faults.LostReplies).
	lost float64
	// notify runs the notifier too, on a queue of its own: one welcome
	// mail per user through moto's SES.
	notify bool
}

var faultScenarios = []faultScenario{
	{
		// The projector's DynamoDB calls fail: server errors, throttling
		// (all four shapes), and answers lost after a write was applied.
		name:  "dynamodb errors and throttling",
		ddb:   faults.DynamoDBFaults{Error: 0.01, Throttle: 0.02, Lost: 0.01},
		queue: faults.QueueOptions{Pollers: 2},
	},
	{
		// The relay's sends fail as a whole (before and after sending) and
		// entry by entry; the stream delivers batches twice and the relay
		// dies half-way through some.
		name:   "sqs send failures and relay crashes",
		sqs:    faults.SQSFaults{Error: 0.03, Lost: 0.03, Entry: 0.01},
		stream: faults.StreamOptions{Redeliver: 0.1, Crash: 0.1},
		queue:  faults.QueueOptions{Pollers: 2},
	},
	{
		// Deliveries duplicated, reordered within and across batches,
		// acknowledgements lost, and the projector dying half-way through
		// batches without acknowledging anything; two pollers race on the
		// same aggregates.
		name:  "duplicates, reordering and projector crashes",
		queue: faults.QueueOptions{Pollers: 2, Shuffle: 0.5, Duplicate: 0.1, Delay: 0.05, LoseAck: 0.05, Crash: 0.1},
	},
	{
		// All of the above, and: every write of every consumer reaches
		// DynamoDB or SQS, applies, and loses its reply, one in ten, so the
		// SDK sends it again (the relay's sends, the projector's and the
		// notifier's conditional writes, the drivers' deletes); the
		// notifier sends each user's welcome mail through moto's SES. (The
		// command path is under the same fault while the world is written:
		// newFaultWorld.)
		name:   "everything at once",
		lost:   0.1,
		notify: true,
		ddb:    faults.DynamoDBFaults{Error: 0.005, Throttle: 0.01, Lost: 0.005},
		sqs:    faults.SQSFaults{Error: 0.02, Lost: 0.02, Entry: 0.005},
		stream: faults.StreamOptions{Redeliver: 0.05, Crash: 0.05},
		queue:  faults.QueueOptions{Pollers: 3, Shuffle: 0.3, Duplicate: 0.05, Delay: 0.03, LoseAck: 0.03, Crash: 0.05},
	},
}

func TestFaults(t *testing.T) {
	t.Parallel()
	w := newFaultWorld(t)
	for i, sc := range faultScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runFaultScenario(t, w, sc, uint64(i+1))
		})
	}
}

// faultWorld is the event store the scenarios share, read-only once written.
type faultWorld struct {
	store  *dynamo.Store
	tables dynamo.Tables
	users  []faultUser
	stream []events.DynamoDBEventRecord // the events table's stream, in order
	events map[string]es.Record         // by event id
}

type faultUser struct {
	id, sub string
	deleted bool
}

// faultAdmin is the actor of the admin commands.
const faultAdmin = "admin-faults"

// faultWorldLost is the probability that the reply to a write of the
// command path is lost after the write applied (faults.LostReplies), while
// the world is written.
const faultWorldLost = 0.1

// newFaultWorld writes the users' histories, phase by phase (every user's
// first command, then every user's second, ...), and reads the stream.
//
// The commands run through the command service on a DynamoDB client whose
// writes lose their replies (faultWorldLost), so the SDK sends appends
// again after they applied. Half the users send idempotency keys and repeat
// each request once, as a client that lost the answer would; a third send
// If-Match. Every answer must be the one a single successful call gives:
// the next version, its one event, and for a repeat the first answer.
func newFaultWorld(t *testing.T) *faultWorld {
	t.Helper()
	ctx := t.Context()
	start := time.Now()
	_, tables := readmodeltest.EventStore(t)
	in := faults.New(0)
	cfg := faults.WithLostReplies(awstest.Config(t), in, faultWorldLost)
	store := dynamo.New(dynamodb.NewFromConfig(cfg), tables)
	w := &faultWorld{store: store, tables: tables, events: map[string]es.Record{}}
	// The command service's client is the commands function's, under the
	// IAM check; the test's own loads go through store.
	commands := dynamo.New(dynamodb.NewFromConfig(cfg, awstest.UnderIAM[*dynamodb.Options](t, "CommandsFunction", map[string]string{
		"EventsTable": tables.Events, "GuardsTable": tables.Guards, "SnapshotsTable": tables.Snapshots,
	})), tables)
	for i := range faultUsers {
		id := newID()
		w.users = append(w.users, faultUser{id: id, sub: "sub-" + id, deleted: i%4 == 0})
	}
	svc := usertest.Service(commands)
	answers := make([][]es.Record, len(w.users)) // each user's events, as the answers told them
	for phase := range faultCommands {
		var wg sync.WaitGroup
		errs := make([]error, len(w.users))
		sem := make(chan struct{}, 24)
		for i, u := range w.users {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				cmd, actor := w.command(i, phase)
				x := es.ExecOptions{Metadata: es.Metadata{
					Actor: actor, Reason: fmt.Sprint("phase ", phase), CorrelationID: uuid.NewString(),
				}}
				if i%2 == 0 {
					x.Idempotency = &es.IdempotencyKey{Key: fmt.Sprintf("%s-%d", u.id, phase), RequestHash: fmt.Sprint(phase)}
				}
				if i%3 == 0 {
					x.ExpectedVersion = aws.Int64(int64(phase))
				}
				res, err := svc.Execute(ctx, u.id, cmd, x)
				if err != nil {
					errs[i] = err
					return
				}
				if res.Version != int64(phase+1) || len(res.Records) != 1 || res.Replayed {
					errs[i] = fmt.Errorf("answered v%d with %d events (replayed %v), want v%d and its event",
						res.Version, len(res.Records), res.Replayed, phase+1)
					return
				}
				answers[i] = append(answers[i], res.Records[0])
				if x.Idempotency == nil {
					return
				}
				// The client repeats the request: the same answer, nothing written.
				again, err := svc.Execute(ctx, u.id, cmd, x)
				if err != nil || again.Version != res.Version || !again.Replayed || len(again.Records) != 0 {
					errs[i] = fmt.Errorf("repeat answered v%d (replayed %v, %d events), %v; first answer v%d",
						again.Version, again.Replayed, len(again.Records), err, res.Version)
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("phase %d, user %d: %v (faults so far: %s)", phase, i, err, in)
			}
		}
	}
	for i, u := range w.users {
		recs, err := store.Load(ctx, u.id, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range recs {
			if j >= len(answers[i]) || answers[i][j].ID != r.ID {
				t.Fatalf("user %s: event v%d %s is not the one its command was answered with", u.id, r.Version, r.ID)
			}
		}
	}
	counts := in.Counts()
	for _, op := range []string{"PutItem", "TransactWriteItems"} {
		if counts["lostreply.DynamoDB."+op] == 0 {
			t.Errorf("the command path lost no reply to %s", op)
		}
	}
	t.Logf("command path faults: %s", in)
	for _, u := range w.users {
		recs, err := store.Load(ctx, u.id, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != faultCommands {
			t.Fatalf("user %s has %d events, want %d", u.id, len(recs), faultCommands)
		}
		for _, r := range recs {
			w.events[r.ID] = r
		}
	}
	// The stream shows every event: poll until it does.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ev, err := relaytest.StreamEvent(ctx, awstest.DynamoDB(t), relaytest.Streams(t), tables.Events)
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Records) >= len(w.events) {
			w.stream = ev.Records
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream shows %d records of %d events", len(ev.Records), len(w.events))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("wrote %d users × %d commands = %d events through the command service in %v",
		len(w.users), faultCommands, len(w.events), time.Since(start).Round(time.Millisecond))
	return w
}

// command is user i's command of phase p, and its actor. Addresses move
// between users: at phase 2 user i gives up a-<i>, which user i+1 takes at
// phase 5 and frees at phase 9, so that the email lookups of different
// aggregates race when deliveries are reordered.
func (w *faultWorld) command(i, p int) (user.Command, string) {
	u := w.users[i]
	prev := w.users[(i+len(w.users)-1)%len(w.users)]
	switch p {
	case 0:
		return user.Create{Name: fmt.Sprint("User ", i), Email: "a-" + u.id + "@example.com", Sub: u.sub}, u.sub
	case 1:
		return user.Rename{Name: fmt.Sprint("User ", i, " renamed")}, u.sub
	case 2:
		return user.ChangeEmail{Email: "b-" + u.id + "@example.com"}, u.sub
	case 3:
		return user.Suspend{Reason: "chargeback"}, faultAdmin
	case 4:
		return user.Reactivate{Reason: "resolved"}, faultAdmin
	case 5:
		return user.ChangeEmail{Email: "a-" + prev.id + "@example.com"}, u.sub
	case 6:
		return user.Rename{Name: fmt.Sprint("User ", i, " again")}, u.sub
	case 7:
		return user.Suspend{Reason: "fraud check"}, faultAdmin
	case 8:
		return user.Reactivate{Reason: "cleared"}, faultAdmin
	default:
		if u.deleted {
			return user.Delete{Reason: "asked to"}, faultAdmin
		}
		return user.ChangeEmail{Email: "c-" + u.id + "@example.com"}, u.sub
	}
}

// poison is a message the projector can never apply.
type poison struct {
	name, group, body string
	id                string // SQS message id, once sent
}

// poisons are the messages meant for the dead-letter queue: a body that is
// not JSON, an event of an unknown type, an event whose data does not
// decode, and an event whose earlier versions are not in the event store.
func poisons(t *testing.T) []poison {
	t.Helper()
	rec := func(typ string, version int64, data string) (string, string) {
		r := es.Record{
			ID: newID(), AggregateID: newID(), AggregateType: "user", Version: version, Type: typ,
			SchemaVersion: 1, OccurredAt: time.Now().UTC(), Data: json.RawMessage(data),
			Metadata: es.Metadata{Actor: "poisoner"},
		}
		body, err := relay.EncodeMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		return r.AggregateID, body
	}
	var out []poison
	out = append(out, poison{name: "not JSON", group: "poison-" + newID(), body: "{this is not an event"})
	g, b := rec("user.exploded.v1", 1, `{}`)
	out = append(out, poison{name: "unknown type", group: g, body: b})
	g, b = rec("user.renamed.v1", 1, `{"name":42}`)
	out = append(out, poison{name: "undecodable data", group: g, body: b})
	g, b = rec("user.renamed.v1", 3, `{"name":"Nobody"}`)
	out = append(out, poison{name: "gap the event store cannot heal", group: g, body: b})
	return out
}

func runFaultScenario(t *testing.T, w *faultWorld, sc faultScenario, seed uint64) {
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	start := time.Now()
	in := faults.New(seed)
	logs := faults.NewRingLog(200)
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	defer func() {
		if t.Failed() {
			t.Logf("seed %d; last log lines of the relay and the projector:\n%s", seed, logs)
		}
	}()

	ddb := awstest.DynamoDB(t)
	table := awstest.TableName("readmodel")
	if err := userviews.CreateTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := readmodel.DeleteTable(ctx, ddb, table); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	client := awstest.SQS(t)
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{VisibilityTimeout: faultVisibility, MaxReceiveCount: faultMaxReceives})

	// The poisoned messages go first, among the first the projector sees.
	bad := poisons(t)
	poisoned := map[string]bool{}
	for i, p := range bad {
		poisoned[p.body] = true
		out, err := client.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl: aws.String(q.URL), MessageBody: aws.String(p.body),
			MessageGroupId: aws.String(p.group), MessageDeduplicationId: aws.String(newID()),
		})
		if err != nil {
			t.Fatal(err)
		}
		bad[i].id = aws.ToString(out.MessageId)
	}

	// The relay, sending through the faulty SQS client, runs beside the
	// projector, as Lambda runs them.
	// One SQS call at a time: see faults.SerialSQS.
	// The consumers' clients: writes lose their replies with sc.lost.
	writerCfg := awstest.Config(t)
	if sc.lost > 0 {
		writerCfg = faults.WithLostReplies(writerCfg, in, sc.lost)
	}
	serial := faults.NewSerialSQS(sqs.NewFromConfig(writerCfg))
	routes := relay.Routes{relay.Wildcard: {q.URL}}
	var mail *mailQueue
	if sc.notify {
		mail = newMailQueue(t, client)
		routes[user.Created{}.EventType()] = []string{mail.q.URL}
	}
	// The functions' own clients are under the IAM check, each as its
	// function in template.yaml, on this scenario's tables and queues; the
	// drivers' (which stand in for Lambda) and the checks' are not.
	names := map[string]string{"EventsTable": w.tables.Events, "ReadModelTable": table, "ProjectionsQueue": awstest.QueueName(q.URL)}
	if mail != nil {
		names["NotificationsQueue"], names["EmailSender"] = awstest.QueueName(mail.q.URL), mail.from
	}
	relayIAM := awstest.UnderIAM[*sqs.Options](t, "RelayFunction", names)
	r := relay.New(faults.WithOptions(faults.NewSQS(serial, in, sc.sqs), relayIAM), routes, logger, time.Now)
	streamOpts := sc.stream
	if streamOpts.BatchSize == 0 {
		streamOpts.BatchSize = 25
	}
	streamOpts.Before = func(ctx context.Context) error { return holdBack(ctx, serial, q) }
	var progress atomic.Int64
	go watchProgress(ctx, cancel, &progress, faultStall)
	relayDone := make(chan struct{})
	var (
		relayStats faults.StreamStats
		relayErr   error
	)
	go func() {
		defer close(relayDone)
		relayStats, relayErr = faults.DriveStream(ctx, in, w.stream, countRelayed(r.Handle, &progress), streamOpts)
		if relayErr != nil {
			cancel(relayErr)
		}
	}()

	faulty := faults.NewDynamoDB(dynamodb.NewFromConfig(writerCfg, awstest.UnderIAM[*dynamodb.Options](t, "ProjectorFunction", names)), in, sc.ddb)
	proj := projector.New(dynamo.New(faulty, dynamo.Tables{Events: w.tables.Events}), user.NewRegistry(),
		readmodel.New(faulty, table), userviews.Projections(), logger, time.Now, projector.WithMaxReceiveCount(faultMaxReceives))

	opts := sc.queue
	opts.URL, opts.ARN, opts.Visibility = q.URL, q.ARN, faultVisibility
	opts.MayTamper = func(m events.SQSMessage) bool { return !poisoned[m.Body] }
	opts.Done = func(ctx context.Context) (bool, error) {
		select {
		case <-relayDone:
		default:
			return false, nil
		}
		n, err := depth(ctx, serial, q.DLQ)
		return n >= len(bad), err
	}
	mailDone := make(chan struct{})
	var (
		mailStats faults.QueueStats
		mailErr   error
	)
	if mail != nil {
		go func() {
			defer close(mailDone)
			// The notifier's ledger gets the lost replies (writerCfg), not
			// the client-level faults: an error after a claim applied holds
			// the mail for the claim's lease, which is the notifier's crash
			// policy's business (and longer than this test).
			ledger := dynamodb.NewFromConfig(writerCfg, awstest.UnderIAM[*dynamodb.Options](t, "NotifierFunction", names))
			mailStats, mailErr = mail.drive(ctx, in, serial, notifier.NewMails(ledger, table), deadletter.New(ledger, table), awstest.UnderIAM[*sesv2.Options](t, "NotifierFunction", names), logger, &progress, relayDone)
		}()
	} else {
		close(mailDone)
	}
	qStats, qErr := faults.DriveQueue(ctx, in, serial, countAcked(proj.Handle, &progress), opts)
	<-relayDone
	<-mailDone
	if mailErr != nil {
		t.Fatalf("notifier queue: %v, cause %v (stats %+v)", mailErr, context.Cause(ctx), withoutReceives(mailStats))
	}
	if relayErr != nil {
		visible, inFlight, _ := relaytest.Depth(t.Context(), client, q)
		t.Fatalf("relay: %v, cause %v (relay %+v; projector %+v, %v; queue: %d visible, %d in flight)",
			relayErr, context.Cause(ctx), relayStats, withoutReceives(qStats), qErr, visible, inFlight)
	}
	if qErr != nil {
		visible, inFlight, _ := relaytest.Depth(t.Context(), client, q)
		dead, _, _ := relaytest.Depth(t.Context(), client, q.DLQ)
		var firsts []string
		for _, p := range bad {
			firsts = append(firsts, fmt.Sprintf("%s: %d receives, first after %v", p.name, qStats.Receives[p.id], qStats.FirstReceived[p.id]))
		}
		t.Fatalf("projector queue: %v, cause %v (stats %+v; relay %+v; queue: %d visible, %d in flight, %d dead; poisons: %s)",
			qErr, context.Cause(ctx), withoutReceives(qStats), relayStats, visible, inFlight, dead, strings.Join(firsts, "; "))
	}
	elapsed := time.Since(start)

	// Nothing is left behind on the queue.
	if visible, inFlight, err := relaytest.Depth(t.Context(), client, q); err != nil || visible+inFlight > 0 {
		t.Errorf("after the drive the queue holds %d visible and %d in-flight messages (%v)", visible, inFlight, err)
	}

	// Only the poisoned messages are dead-lettered, each once.
	dead, err := relaytest.Bodies(t.Context(), client, q.DLQ, 30)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range bad {
		want = append(want, p.body)
	}
	slices.Sort(want)
	if !slices.Equal(dead, want) {
		t.Errorf("dead-letter queue holds %d messages:\n%s\nwant the %d poisoned ones", len(dead), strings.Join(dead, "\n"), len(want))
	}
	for _, p := range bad {
		if n := qStats.Receives[p.id]; n != faultMaxReceives {
			t.Errorf("poison %q received %d times, want %d", p.name, n, faultMaxReceives)
		}
	}

	checkFaultReadModel(t, w, userviews.New(readmodel.New(ddb, table)), bad)
	if mail != nil {
		mail.check(t, w, notifier.NewMails(ddb, table))
		t.Logf("notifier: %+v", withoutReceives(mailStats))
	}

	t.Logf("%d events, %d poisoned messages, %v; faults: %s", len(w.events), len(bad), elapsed.Round(time.Millisecond), in)
	t.Logf("relay: %+v; projector: %+v", relayStats, withoutReceives(qStats))
	for _, p := range bad {
		t.Logf("poison %q: first received after %v", p.name, qStats.FirstReceived[p.id].Round(time.Millisecond))
	}
	if sc.lost > 0 {
		for _, op := range []string{"DynamoDB.TransactWriteItems", "DynamoDB.UpdateItem", "SQS.SendMessageBatch", "SQS.DeleteMessageBatch"} {
			if in.Counts()["lostreply."+op] == 0 {
				t.Errorf("no reply to %s was lost", op)
			}
		}
	}
	if in.Total("") == 0 {
		t.Errorf("no fault was injected")
	}
}

// watchProgress cancels ctx when progress has not moved for stall.
func watchProgress(ctx context.Context, cancel context.CancelCauseFunc, progress *atomic.Int64, stall time.Duration) {
	tick := time.NewTicker(stall / 10)
	defer tick.Stop()
	last, since := progress.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n := progress.Load(); n != last {
			last, since = n, time.Now()
			continue
		}
		if time.Since(since) >= stall {
			cancel(fmt.Errorf("no progress for %v: %d records relayed and messages acknowledged so far", stall, last))
			return
		}
	}
}

// countRelayed counts the stream records the relay handled.
func countRelayed(h faults.StreamHandler, progress *atomic.Int64) faults.StreamHandler {
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		resp, err := h(ctx, ev)
		if err == nil {
			progress.Add(int64(len(ev.Records) - len(resp.BatchItemFailures)))
		}
		return resp, err
	}
}

// countAcked counts the messages the projector acknowledged.
func countAcked(h faults.SQSHandler, progress *atomic.Int64) faults.SQSHandler {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := h(ctx, ev)
		if err == nil {
			progress.Add(int64(len(ev.Records) - len(resp.BatchItemFailures)))
		}
		return resp, err
	}
}

// faultQueueLimit is how many messages the relay lets the queue hold
// before it waits: each receive from moto costs time in proportion to the
// messages the queue holds (and to the messages received), so a queue of a
// thousand makes each receive take a second.
const faultQueueLimit = 40

// holdBack waits while q holds faultQueueLimit messages or more.
func holdBack(ctx context.Context, client faults.QueueClient, q *relaytest.Queue) error {
	for {
		n, err := depth(ctx, client, q)
		if err != nil || n < faultQueueLimit {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// depth is the number of messages on q, visible or in flight.
func depth(ctx context.Context, client faults.QueueClient, q *relaytest.Queue) (int, error) {
	visible, inFlight, err := relaytest.Depth(ctx, client, q)
	return visible + inFlight, err
}

func withoutReceives(st faults.QueueStats) faults.QueueStats {
	st.Receives, st.FirstReceived = nil, nil
	return st
}

// checkFaultReadModel compares the read model with the event store: each
// user's view is the fold of its events, both projections applied its last
// version, live users hold their address in the lookup and no one holds a
// given-up one, each event is in its actor's activity exactly once, and
// the poisoned aggregates left nothing.
func checkFaultReadModel(t *testing.T, w *faultWorld, views *userviews.Store, bad []poison) {
	t.Helper()
	ctx := t.Context()
	registry := user.NewRegistry()
	mismatches := 0
	for _, u := range w.users {
		recs, err := w.store.Load(ctx, u.id, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := registry.DecodeAll(recs); err != nil {
			t.Fatal(err)
		}
		var want user.View
		for _, r := range recs {
			want = user.ApplyView(want, r)
		}
		got, ok, err := views.UserView(ctx, u.id)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || !reflect.DeepEqual(want, got) {
			if mismatches++; mismatches <= 5 {
				t.Errorf("view of %s:\ngot  %+v (found %v)\nwant %+v", u.id, got, ok, want)
			}
		}
		applied, err := views.AppliedVersions(ctx, u.id)
		if err != nil {
			t.Fatal(err)
		}
		wantApplied := map[string]int64{userviews.ProjectionUserView: want.Version, userviews.ProjectionActorActivity: want.Version}
		if !maps.Equal(applied, wantApplied) {
			t.Errorf("applied versions of %s: %v, want %v", u.id, applied, wantApplied)
		}
		holder, held, err := views.UserIDByEmail(ctx, want.Email)
		if err != nil {
			t.Fatal(err)
		}
		if live := !u.deleted; held != live || (live && holder != u.id) {
			t.Errorf("lookup of %s (user %s, deleted %v): held %v by %q", want.Email, u.id, u.deleted, held, holder)
		}
		for _, given := range []string{"a-" + u.id + "@example.com", "b-" + u.id + "@example.com"} {
			if holder, held, err := views.UserIDByEmail(ctx, given); err != nil || held {
				t.Errorf("given-up address %s still held by %q (%v)", given, holder, err)
			}
		}
	}
	if mismatches > 5 {
		t.Errorf("... %d views differ in all", mismatches)
	}

	// Every event is in its actor's activity, once.
	actors := map[string]bool{faultAdmin: true}
	for _, u := range w.users {
		actors[u.sub] = true
	}
	seen := map[string]int{}
	rows := 0
	for actor := range actors {
		cursor := ""
		for {
			recs, next, err := views.ActorActivity(ctx, actor, userviews.MaxLimit, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				seen[r.ID]++
				rows++
				if want, ok := w.events[r.ID]; !ok || want.Metadata.Actor != actor || want.Version != r.Version {
					t.Errorf("activity of %s holds event %s v%d, not one of its events", actor, r.ID, r.Version)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	if rows != len(w.events) {
		t.Errorf("activity rows: %d, want %d (one per event)", rows, len(w.events))
	}
	missing := 0
	for id := range w.events {
		if seen[id] != 1 {
			if missing++; missing <= 5 {
				t.Errorf("event %s is in the activity %d times", id, seen[id])
			}
		}
	}

	// The poisoned aggregates left no view and no applied version.
	for _, p := range bad {
		if _, ok, _ := views.UserView(ctx, p.group); ok {
			t.Errorf("poison %q left a view", p.name)
		}
		if applied, _ := views.AppliedVersions(ctx, p.group); len(applied) > 0 {
			t.Errorf("poison %q left applied versions %v", p.name, applied)
		}
	}
	if acts, _, _ := views.ActorActivity(ctx, "poisoner", 10, ""); len(acts) > 0 {
		t.Errorf("poisons left %d activity rows", len(acts))
	}
}
