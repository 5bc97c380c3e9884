package membership_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/membership"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/relay/relaytest"
)

// The fault-injection suite of the process manager, in the style of the
// projector's (infra/projector's TestFaults): users join teams through
// the command services on the real DynamoDB event store; the relay reads
// the real stream and routes the manager's event types to a FIFO queue
// in moto; the manager consumes it, its removals go back through the
// stream to the queue; and every stage is under faults: the relay's sends
// fail and its deliveries are repeated and crash, the queue's deliveries
// are duplicated, reordered within and across batches, their
// acknowledgements lost, the manager dies half-way through batches, its
// DynamoDB calls fail, throttle and lose their answers, and one write in
// ten of every consumer applies and loses its reply below the SDK's
// retries. Users are deleted (some forgotten) while all that runs, and some
// of them join a team at the moment they are deleted, as a command that
// read the user active just before.
//
// Afterwards, folded from the event store: no deleted user is a member of
// any team, every other membership is as it was, each membership of a
// deleted user ended with exactly one MemberRemoved carrying the
// deletion's actor, reason, correlation and causation, and the
// dead-letter queue holds the poisoned messages and nothing else.
//
// It runs at the acceptance size: 200 users in 50 teams, 40 of
// them deleted (under -race on two cores: about 30 s alone, 80 s beside a
// load of 12). CHRONICLE_MEMBERSHIP_FAULT_USERS scales it (teams: a
// quarter of the users, deleted: a fifth, a quarter of those joining a team
// as they are deleted). CHRONICLE_MEMBERSHIP_FAULTS_FULL=1 also sends the
// joins made before the deletions through the relay and the queue, rather
// than to the manager directly (about 45 s alone).
const (
	defaultFaultUsers = 200
	// The queue's visibility timeout in seconds, and the receives before
	// SQS dead-letters a message: a good message fails now and then under
	// the faults, a poisoned one every time.
	faultVisibility  = 1
	faultMaxReceives = 8
	// faultBudget bounds the whole scenario.
	faultBudget = 4 * time.Minute
	// faultQueueLimit is how many messages the relay lets the queue hold
	// before it waits (moto's receives slow down with the queue's depth).
	faultQueueLimit = 40
)

func faultSize(t *testing.T) (users, teams, deleted int) {
	users = defaultFaultUsers
	if v := os.Getenv("CHRONICLE_MEMBERSHIP_FAULT_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 20 {
			t.Fatalf("CHRONICLE_MEMBERSHIP_FAULT_USERS=%q: want a number of users, at least 20", v)
		}
		users = n
	}
	return users, users / 4, users / 5
}

// faultWorld is what the scenario planned and what happened.
type faultWorld struct {
	users    []string
	teams    []string
	planned  map[string]map[string]team.Role // team -> user -> role, as set up
	deleted  map[string]bool
	forgot   map[string]bool
	racing   map[string]string // deleted user -> the team it joined as it was deleted
	deletion map[string][]es.Record
}

func TestFaults(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeoutCause(t.Context(), faultBudget, errors.New("the fault scenario ran out of time"))
	defer cancel()
	const seed = 16
	start := time.Now()
	in := faults.New(seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	logs := faults.NewRingLog(300)
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	defer func() {
		if t.Failed() {
			t.Logf("seed %d; faults %s; last log lines:\n%s", seed, in, logs)
		}
	}()

	// The world's tables and the commands' services (no faults on the
	// command path: the projector's suite covers it).
	store, tables := readmodeltest.EventStore(t)
	readModel := readmodeltest.Table(t)
	ddb := awstest.DynamoDB(t)
	mtable := awstest.TableName("membership")
	if err := membership.CreateTable(ctx, ddb, mtable); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = membership.DeleteTable(ctx, ddb, mtable)
	})
	t.Logf("tables ready after %v", time.Since(start).Round(time.Millisecond))
	users := user.NewService(store, es.Options{MaxAttempts: 20, CacheSize: 1024})
	teams := team.NewService(store, es.Options{MaxAttempts: 20})
	w, joins := setUpFaultWorld(t, ctx, rng, users, store)
	setupDone := time.Since(start)

	client := awstest.SQS(t)
	q := relaytest.FIFOQueue(t, client, relaytest.QueueOptions{VisibilityTimeout: faultVisibility, MaxReceiveCount: faultMaxReceives})
	bad := sendPoisons(t, client, q)

	// The consumers' clients: writes lose their replies, one in ten; the
	// functions' clients are under the IAM check.
	writerCfg := faults.WithLostReplies(awstest.Config(t), in, 0.1)
	serial := faults.NewSerialSQS(sqs.NewFromConfig(writerCfg))
	names := map[string]string{
		"EventsTable": tables.Events, "GuardsTable": tables.Guards, "MembershipTable": mtable,
		"ReadModelTable": readModel, "MembershipQueue": awstest.QueueName(q.URL),
	}
	routes := relay.Routes{}
	for _, typ := range membership.EventTypes() {
		routes[typ] = []string{q.URL}
	}
	relayIAM := awstest.UnderIAM[*sqs.Options](t, "RelayFunction", names)
	r := relay.New(faults.WithOptions(faults.NewSQS(serial, in, faults.SQSFaults{Error: 0.02, Lost: 0.02, Entry: 0.01}), relayIAM),
		routes, logger, time.Now)
	fnClient := dynamodb.NewFromConfig(writerCfg, awstest.UnderIAM[*dynamodb.Options](t, "MembershipFunction", names))
	faulty := faults.NewDynamoDB(fnClient, in, faults.DynamoDBFaults{Error: 0.01, Throttle: 0.015, Lost: 0.01})
	fnStore := dynamo.New(faulty, dynamo.Tables{Events: tables.Events, Guards: tables.Guards}, dynamo.WithAppendWindow(dynamo.AppendWindow))
	manager := membership.New(membership.NewTable(faulty, mtable), team.NewService(fnStore, es.Options{}), logger, time.Now,
		membership.WithMaxReceiveCount(faultMaxReceives), membership.WithFailureLog(deadletter.New(fnClient, readModel)))

	// The joins so far: through the relay and the queue with the rest
	// (CHRONICLE_MEMBERSHIP_FAULTS_FULL=1), or, to keep make test short,
	// handed to the manager directly, under its DynamoDB faults only.
	streams := relaytest.Streams(t)
	relayed := 0
	if os.Getenv("CHRONICLE_MEMBERSHIP_FAULTS_FULL") != "1" {
		ev, err := relaytest.StreamEvent(ctx, ddb, streams, tables.Events)
		if err != nil {
			t.Fatal(err)
		}
		relayed = len(ev.Records)
		// Interleaved (every team's first event, then every team's
		// second, ...), so that a batch holds ten teams, handled at once.
		slices.SortStableFunc(joins, func(a, b es.Record) int { return int(a.Version - b.Version) })
		// Four pollers, each on a quarter of the teams.
		shares := make([][]events.SQSMessage, 4)
		for _, msg := range messages(t, joins...) {
			k := int(msg.Attributes["MessageGroupId"][len(msg.Attributes["MessageGroupId"])-1]) % len(shares)
			shares[k] = append(shares[k], msg)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(shares))
		for k, share := range shares {
			wg.Go(func() { errs[k] = handleDirectly(ctx, manager, share) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("the joins: %v (faults %s)", err, in)
		}
	}
	joined := time.Since(start)

	// The deletions, while the pipeline runs.
	deletionsDone := make(chan struct{})
	var deleteErr error
	go func() {
		defer close(deletionsDone)
		deleteErr = deleteUsers(ctx, w, users, teams)
		t.Logf("deletions done after %v", time.Since(start).Round(time.Millisecond))
	}()

	poisoned := map[string]bool{}
	for _, p := range bad {
		poisoned[p.body] = true
	}
	pl := &pipeline{in: in, relay: r, streams: streams, ddb: ddb, table: tables.Events, serial: serial, q: q}
	pl.relayed.Store(int64(relayed))
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- pl.relayStream(relayCtx) }()
	qStats, qErr := faults.DriveQueue(ctx, in, serial, manager.Handle, faults.QueueOptions{
		URL: q.URL, ARN: q.ARN, Visibility: faultVisibility,
		Pollers: 3, Shuffle: 0.3, Duplicate: 0.05, Delay: 0.03, LoseAck: 0.03, Crash: 0.05,
		MayTamper: func(msg events.SQSMessage) bool { return !poisoned[msg.Body] },
		// Quiescent: every deletion made, the poisons dead-lettered, and
		// every event of the stream relayed. DriveQueue asks only with the
		// queue empty and no handler running, so no removal is still to
		// be appended.
		Done: func(ctx context.Context) (bool, error) {
			select {
			case <-deletionsDone:
			default:
				return false, nil
			}
			if n, err := depth(ctx, serial, q.DLQ); err != nil || n < len(bad) {
				return false, err
			}
			return pl.caughtUp(ctx)
		},
	})
	stopRelay()
	relayErr := <-relayDone
	if qErr != nil || relayErr != nil {
		visible, inFlight, _ := relaytest.Depth(t.Context(), client, q)
		t.Fatalf("membership queue: %v; relay: %v; cause %v (queue: %d visible, %d in flight; relay %+v; manager %+v)",
			qErr, relayErr, context.Cause(ctx), visible, inFlight, pl.stats, withoutReceives(qStats))
	}
	relayStats := pl.stats
	if deleteErr != nil {
		t.Fatalf("deletions: %v", deleteErr)
	}
	elapsed := time.Since(start)

	checkFaultWorld(t, w, store)

	// Nothing left on the queue; the dead-letter queue holds the poisons.
	if visible, inFlight, err := relaytest.Depth(t.Context(), client, q); err != nil || visible+inFlight > 0 {
		t.Errorf("after the drive the queue holds %d visible and %d in-flight messages (%v)", visible, inFlight, err)
	}
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

	counts := in.Counts()
	for _, kind := range []string{"dynamodb.error", "dynamodb.throttle", "dynamodb.lost",
		"lostreply.DynamoDB.TransactWriteItems", "lostreply.DynamoDB.UpdateItem"} {
		if counts[kind] == 0 {
			t.Errorf("no %s fault was injected", kind)
		}
	}
	if in.Total("queue.") == 0 {
		t.Error("no fault was injected into the queue's deliveries")
	}
	t.Logf("%d users in %d teams, %d deleted (%d forgotten, %d joining a team as they were deleted); "+
		"set up in %v, joins handled by %v, %v in all",
		len(w.users), len(w.teams), len(w.deleted), len(w.forgot), len(w.racing), setupDone.Round(time.Millisecond),
		joined.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	t.Logf("faults: %s", in)
	t.Logf("relay: %+v; manager: %+v", relayStats, withoutReceives(qStats))
}

// setUpFaultWorld creates the users (through the User service) and the
// teams: every user in one to four teams, each team with one owner (some
// with two). A team's history is written in one append, as the Team
// service would have written it command by command: the world is the
// manager's input, not what is tested. It returns the teams' events.
func setUpFaultWorld(t *testing.T, ctx context.Context, rng *rand.Rand, users *user.Service, store *dynamo.Store) (*faultWorld, []es.Record) {
	t.Helper()
	nUsers, nTeams, nDeleted := faultSize(t)
	w := &faultWorld{planned: map[string]map[string]team.Role{}, deleted: map[string]bool{}, forgot: map[string]bool{},
		racing: map[string]string{}, deletion: map[string][]es.Record{}}
	for range nUsers {
		w.users = append(w.users, newID())
	}
	for range nTeams {
		w.teams = append(w.teams, newID())
	}
	// Each team's first member is its owner; user i < nTeams owns team i.
	members := make([][]string, nTeams)
	for i, u := range w.users {
		k := 1 + rng.IntN(4)
		picked := map[int]bool{}
		if i < nTeams {
			picked[i] = true
		}
		for len(picked) < k {
			picked[rng.IntN(nTeams)] = true
		}
		for _, ti := range slices.Sorted(maps.Keys(picked)) {
			members[ti] = append(members[ti], u)
		}
	}
	for ti, id := range w.teams {
		w.planned[id] = map[string]team.Role{}
		for j, u := range members[ti] {
			role := team.RoleMember
			if j == 0 || (j == 1 && ti%3 == 0) {
				role = team.RoleOwner
			}
			w.planned[id][u] = role
		}
	}
	registry := team.NewRegistry()
	var (
		mu    sync.Mutex
		joins []es.Record
	)
	err := parallel(ctx, w.teams, func(ctx context.Context, id string) error {
		ms := members[slices.Index(w.teams, id)]
		evs := []es.Event{team.Created{Name: "Team " + id[:8], Owner: ms[0]}}
		for _, u := range ms[1:] {
			evs = append(evs, team.MemberAdded{UserID: u, Role: w.planned[id][u]})
		}
		recs := make([]es.Record, len(evs))
		now := time.Now().UTC()
		for i, e := range evs {
			typ, schema, data, err := registry.Encode(e)
			if err != nil {
				return err
			}
			recs[i] = es.Record{ID: newID(), AggregateID: id, AggregateType: team.AggregateType, Version: int64(i + 1),
				Type: typ, SchemaVersion: schema, OccurredAt: now, Data: data, Metadata: es.Metadata{Actor: "sub-" + ms[0]}}
		}
		if err := store.Append(ctx, es.AppendRequest{AggregateID: id, Records: recs}); err != nil {
			return err
		}
		mu.Lock()
		joins = append(joins, recs...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The deleted: the owners of the first teams among them (the last
	// owner of some), the others at random; some forgotten; some join one
	// more team at the moment they are deleted.
	perm := rng.Perm(nUsers)
	for _, i := range append([]int{0, 1, 2, 3}, perm...) {
		if len(w.deleted) == nDeleted {
			break
		}
		u := w.users[i]
		if w.deleted[u] {
			continue
		}
		w.deleted[u] = true
		if len(w.deleted)%4 == 0 {
			w.forgot[u] = true
		}
		if len(w.racing) < max(nDeleted/4, 1) && len(w.deleted)%3 == 1 {
			for _, ti := range rng.Perm(nTeams) {
				if _, in := w.planned[w.teams[ti]][u]; !in {
					w.racing[u] = w.teams[ti]
					break
				}
			}
		}
	}
	// Only the users to delete need a stream of their own: a team takes
	// a user's id as its commands' caller hands it over.
	err = parallel(ctx, slices.Sorted(maps.Keys(w.deleted)), func(ctx context.Context, u string) error {
		_, err := users.Execute(ctx, u, user.Create{Name: "User " + u[:8], Email: u + "@example.com", Sub: "sub-" + u},
			es.ExecOptions{Metadata: es.Metadata{Actor: "sub-" + u}, Absent: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, joins
}

// handleDirectly hands msgs to the manager ten at a time, as a queue
// would, each failed message again until it is handled (in its group's
// order: a failure fails the rest of its group).
func handleDirectly(ctx context.Context, m *membership.Manager, msgs []events.SQSMessage) error {
	pending := msgs
	for round := 0; len(pending) > 0; round++ {
		if round > 100*len(msgs) {
			return fmt.Errorf("%d messages still failing", len(pending))
		}
		n := min(10, len(pending))
		resp, err := m.Handle(ctx, events.SQSEvent{Records: pending[:n]})
		if err != nil {
			return err
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var again []events.SQSMessage
		for _, msg := range pending[:n] {
			if failed[msg.MessageId] {
				again = append(again, msg)
			}
		}
		pending = append(again, pending[n:]...)
	}
	return nil
}

// deleteUsers deletes (or forgets) every user w plans deleted, a few at a
// time; a racing user's join is sent at the same moment, as a command that
// read the user active.
func deleteUsers(ctx context.Context, w *faultWorld, users *user.Service, teams *team.Service) error {
	var mu sync.Mutex
	doomed := slices.Sorted(maps.Keys(w.deleted))
	return parallel(ctx, doomed, func(ctx context.Context, u string) error {
		var cmd user.Command = user.Delete{Reason: deleter.Reason}
		if w.forgot[u] {
			cmd = user.Forget{Reason: deleter.Reason}
		}
		md := deleter
		md.CorrelationID = "corr-" + u
		var wg sync.WaitGroup
		var joinErr error
		if id, ok := w.racing[u]; ok {
			wg.Go(func() {
				_, joinErr = teams.Execute(ctx, id, team.SetMember{UserID: u, Role: team.RoleMember, UserActive: true},
					es.ExecOptions{Metadata: es.Metadata{Actor: "sub-racer"}})
			})
		}
		res, err := users.Execute(ctx, u, cmd, es.ExecOptions{Metadata: md})
		wg.Wait()
		if err != nil {
			return fmt.Errorf("delete %s: %w", u, err)
		}
		if joinErr != nil {
			return fmt.Errorf("racing join of %s: %w", u, joinErr)
		}
		mu.Lock()
		w.deletion[u] = res.Records
		mu.Unlock()
		// Spread the deletions over the pipeline's run.
		return pause(ctx, 50*time.Millisecond)
	}, 4)
}

// parallel runs fn on each item, at most n (default 16) at once, and
// returns the errors joined.
func parallel(ctx context.Context, items []string, fn func(context.Context, string) error, n ...int) error {
	limit := 16
	if len(n) > 0 {
		limit = n[0]
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		slots = make(chan struct{}, limit)
	)
	for _, it := range items {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(ctx, it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pipeline is the relay's side of the scenario: it follows the events
// table's stream and relays what it has not relayed yet, under the
// stream's faults (redelivered and crashed batches) and the sends' (the
// relay's SQS client).
type pipeline struct {
	in      *faults.Injector
	relay   *relay.Relay
	streams *dynamodbstreams.Client
	ddb     *dynamodb.Client
	table   string
	serial  *faults.SerialSQS
	q       *relaytest.Queue

	relayed atomic.Int64 // stream records relayed, from the stream's start
	stats   faults.StreamStats
}

// relayStream relays the stream's new records until ctx ends.
func (p *pipeline) relayStream(ctx context.Context) error {
	for {
		ev, err := relaytest.StreamEvent(ctx, p.ddb, p.streams, p.table)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		fresh := ev.Records[p.relayed.Load():]
		if len(fresh) == 0 {
			if pause(ctx, 100*time.Millisecond) != nil {
				return nil
			}
			continue
		}
		st, err := faults.DriveStream(ctx, p.in, fresh, p.relay.Handle, faults.StreamOptions{
			BatchSize: 25, Redeliver: 0.05, Crash: 0.05,
			Before: func(ctx context.Context) error { return holdBack(ctx, p.serial, p.q) },
		})
		p.stats = addStream(p.stats, st)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		p.relayed.Add(int64(len(fresh)))
	}
}

// caughtUp reports whether every record of the stream is relayed.
func (p *pipeline) caughtUp(ctx context.Context) (bool, error) {
	ev, err := relaytest.StreamEvent(ctx, p.ddb, p.streams, p.table)
	if err != nil {
		return false, err
	}
	return int64(len(ev.Records)) == p.relayed.Load(), nil
}

// checkFaultWorld folds every team from the event store and compares it
// with the plan.
func checkFaultWorld(t *testing.T, w *faultWorld, store *dynamo.Store) {
	t.Helper()
	ctx := t.Context()
	registry := team.NewRegistry()
	causes := map[string]bool{}
	for _, recs := range w.deletion {
		for _, r := range recs {
			causes[r.ID] = true
		}
	}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	removedOf := map[string]int{} // "team user" -> MemberRemoved events
	for _, id := range w.teams {
		recs, err := store.Load(ctx, id, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := registry.DecodeAll(recs); err != nil {
			t.Fatal(err)
		}
		var s team.State
		for _, r := range recs {
			s = team.Evolve(s, r)
			e, ok := r.Event.(team.MemberRemoved)
			if !ok {
				continue
			}
			removedOf[id+" "+e.UserID]++
			md := r.Metadata
			if !e.UserDeleted || !w.deleted[e.UserID] || md.Actor != deleter.Actor || md.Reason != deleter.Reason ||
				md.CorrelationID != "corr-"+e.UserID || !causes[md.CausationID] ||
				!slices.ContainsFunc(w.deletion[e.UserID], func(d es.Record) bool { return d.ID == md.CausationID }) {
				report("team %s v%d: removal %+v with metadata %+v is not one of the deletion of %s", id, r.Version, e, md, e.UserID)
			}
		}
		for u, m := range s.Members {
			if w.deleted[u] {
				report("team %s: deleted user %s is still a member (%s)", id, u, m.Role)
			} else if want, ok := w.planned[id][u]; !ok || want != m.Role {
				report("team %s: member %s as %s, planned %q", id, u, m.Role, want)
			}
		}
		for u, role := range w.planned[id] {
			if _, member := s.Members[u]; !member && !w.deleted[u] {
				report("team %s lost member %s (%s), who was not deleted", id, u, role)
			}
		}
	}
	memberships := 0
	for id, members := range w.planned {
		for u := range members {
			if w.deleted[u] {
				memberships++
				if n := removedOf[id+" "+u]; n != 1 {
					report("team %s: %d MemberRemoved of deleted user %s, want exactly 1", id, n, u)
				}
			}
		}
	}
	for u, id := range w.racing {
		memberships++
		if n := removedOf[id+" "+u]; n != 1 {
			report("team %s: %d MemberRemoved of %s, who joined it as it was deleted, want exactly 1", id, n, u)
		}
	}
	total := 0
	for _, n := range removedOf {
		total += n
	}
	if total != memberships {
		report("%d MemberRemoved in all, want %d: one per membership of a deleted user", total, memberships)
	}
	if bad > 20 {
		t.Errorf("... %d problems in all", bad)
	}
	t.Logf("%d memberships of deleted users removed, once each", memberships)
}

// poison is a message the manager can never handle.
type poison struct {
	name, group, body string
}

// sendPoisons puts the poisoned messages on q first: a body that is not
// JSON, a join whose data does not decode, a deletion that is not an
// event (no version).
func sendPoisons(t *testing.T, client *sqs.Client, q *relaytest.Queue) []poison {
	t.Helper()
	rec := es.Record{ID: newID(), AggregateID: newID(), AggregateType: team.AggregateType, Version: 2,
		Type: team.MemberAdded{}.EventType(), SchemaVersion: 1, OccurredAt: time.Now().UTC(), Data: json.RawMessage(`{"userId":7}`)}
	body, err := relay.EncodeMessage(rec)
	if err != nil {
		t.Fatal(err)
	}
	bad := []poison{
		{name: "not JSON", group: "poison-" + newID(), body: "{this is not an event"},
		{name: "undecodable join", group: rec.AggregateID, body: body},
		{name: "deletion without a version", group: "poison-" + newID(),
			body: `{"eventId":"` + newID() + `","aggregateId":"` + newID() + `","type":"user.deleted.v1","data":{}}`},
	}
	for _, p := range bad {
		if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{
			QueueUrl: aws.String(q.URL), MessageBody: aws.String(p.body),
			MessageGroupId: aws.String(p.group), MessageDeduplicationId: aws.String(newID()),
		}); err != nil {
			t.Fatal(err)
		}
	}
	return bad
}

// holdBack waits while q holds faultQueueLimit messages or more.
func holdBack(ctx context.Context, client faults.QueueClient, q *relaytest.Queue) error {
	for {
		n, err := depth(ctx, client, q)
		if err != nil || n < faultQueueLimit {
			return err
		}
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// depth is the number of messages on q, visible or in flight.
func depth(ctx context.Context, client faults.QueueClient, q *relaytest.Queue) (int, error) {
	visible, inFlight, err := relaytest.Depth(ctx, client, q)
	return visible + inFlight, err
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func addStream(a, b faults.StreamStats) faults.StreamStats {
	return faults.StreamStats{Relayed: a.Relayed + b.Relayed, Invocations: a.Invocations + b.Invocations,
		Retries: a.Retries + b.Retries, Crashes: a.Crashes + b.Crashes, Redeliveries: a.Redeliveries + b.Redeliveries}
}

func addQueue(a, b faults.QueueStats) faults.QueueStats {
	return faults.QueueStats{Batches: a.Batches + b.Batches, Received: a.Received + b.Received, Failed: a.Failed + b.Failed,
		Crashes: a.Crashes + b.Crashes, Copies: a.Copies + b.Copies, Delayed: a.Delayed + b.Delayed, LostAcks: a.LostAcks + b.LostAcks,
		DeleteErrors: a.DeleteErrors + b.DeleteErrors, EmptyPolls: a.EmptyPolls + b.EmptyPolls}
}

func withoutReceives(st faults.QueueStats) faults.QueueStats {
	st.Receives, st.FirstReceived = nil, nil
	return st
}
