package membership_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/membership"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// env is one test's world: the event store (users and teams), the
// services that write it, and a manager over a membership table of its
// own, whose DynamoDB calls are under the IAM check as MembershipFunction.
type env struct {
	store   *dynamo.Store
	tables  dynamo.Tables
	users   *user.Service
	teams   *team.Service
	table   *membership.Table
	manager *membership.Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, tables := readmodeltest.EventStore(t)
	client := awstest.DynamoDB(t)
	name := awstest.TableName("membership")
	if err := membership.CreateTable(t.Context(), client, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := membership.DeleteTable(ctx, client, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	readModel := readmodeltest.Table(t)
	check := iamcheck.ForTest(t, awstest.Config(t).Region, "MembershipFunction", map[string]string{
		"EventsTable": tables.Events, "GuardsTable": tables.Guards, "MembershipTable": name, "ReadModelTable": readModel,
	})
	fnClient := dynamodb.NewFromConfig(awstest.Config(t), func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, check) })
	fnStore := dynamo.New(fnClient, dynamo.Tables{Events: tables.Events, Guards: tables.Guards}, dynamo.WithAppendWindow(dynamo.AppendWindow))
	table := membership.NewTable(fnClient, name)
	return &env{
		store: store, tables: tables,
		users: user.NewService(store, es.Options{}),
		teams: team.NewService(store, es.Options{}),
		table: table,
		manager: membership.New(table, team.NewService(fnStore, es.Options{}), testLogger(t), time.Now,
			membership.WithMaxReceiveCount(5)),
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// deleter is the actor, reason and correlation of the deletions.
var deleter = es.Metadata{Actor: "admin-7", Reason: "asked to be deleted"}

// newUser creates an active user.
func (e *env) newUser(t *testing.T) string {
	t.Helper()
	id := newID()
	if _, err := e.users.Execute(t.Context(), id, user.Create{Name: "U " + id[:8], Email: id + "@example.com", Sub: "sub-" + id},
		es.ExecOptions{Metadata: es.Metadata{Actor: "sub-" + id}}); err != nil {
		t.Fatal(err)
	}
	return id
}

// newTeam creates a team owned by owner with members, and returns its id.
func (e *env) newTeam(t *testing.T, owner string, members ...string) string {
	t.Helper()
	id := newID()
	e.exec(t, id, team.Create{Name: "Team " + id[:8], Owner: owner, OwnerActive: true})
	for _, m := range members {
		e.exec(t, id, team.SetMember{UserID: m, Role: team.RoleMember, UserActive: true})
	}
	return id
}

func (e *env) exec(t *testing.T, teamID string, cmd team.Command) {
	t.Helper()
	if _, err := e.teams.Execute(t.Context(), teamID, cmd, es.ExecOptions{Metadata: es.Metadata{Actor: "sub-owner"}}); err != nil {
		t.Fatalf("%T on %s: %v", cmd, teamID, err)
	}
}

// deleteUser deletes id (forget: forgets it, which deletes it first) with
// the deleter's metadata and a correlation id of its own, and returns
// the events it appended.
func (e *env) deleteUser(t *testing.T, id string, forget bool) []es.Record {
	t.Helper()
	md := deleter
	md.CorrelationID = "corr-" + id
	var cmd user.Command = user.Delete{Reason: deleter.Reason}
	if forget {
		cmd = user.Forget{Reason: deleter.Reason}
	}
	res, err := e.users.Execute(t.Context(), id, cmd, es.ExecOptions{Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	return res.Records
}

// records loads aggregate id's events from version from on.
func (e *env) records(t *testing.T, id string, from int64) []es.Record {
	t.Helper()
	recs, err := e.store.Load(t.Context(), id, from, 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// messages are recs as the relay puts them on the membership queue.
func messages(t *testing.T, recs ...es.Record) []events.SQSMessage {
	t.Helper()
	var out []events.SQSMessage
	for _, r := range recs {
		if !slices.Contains(membership.EventTypes(), r.Type) {
			continue // not routed to the manager
		}
		body, err := relay.EncodeMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, events.SQSMessage{MessageId: newID(), Body: body,
			Attributes: map[string]string{"MessageGroupId": r.AggregateID, "ApproximateReceiveCount": "1"}})
	}
	return out
}

// deliver hands msgs to the manager in one batch and wants none failed.
func (e *env) deliver(t *testing.T, msgs ...events.SQSMessage) {
	t.Helper()
	resp, err := e.manager.Handle(t.Context(), events.SQSEvent{Records: msgs})
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("handle: %d of %d messages failed, %v", len(resp.BatchItemFailures), len(msgs), err)
	}
}

// team folds a team from the event store and returns its state and its
// decoded history.
func (e *env) team(t *testing.T, id string) (team.State, []es.Record) {
	t.Helper()
	recs := e.records(t, id, 1)
	if err := team.NewRegistry().DecodeAll(recs); err != nil {
		t.Fatal(err)
	}
	var s team.State
	for _, r := range recs {
		s = team.Evolve(s, r)
	}
	return s, recs
}

// removals are the MemberRemoved events of user in team's history.
func removals(history []es.Record, user string) []es.Record {
	var out []es.Record
	for _, r := range history {
		if e, ok := r.Event.(team.MemberRemoved); ok && e.UserID == user {
			out = append(out, r)
		}
	}
	return out
}

// checkRemoved: user is in none of teams, and each team's history holds
// exactly one MemberRemoved of it, marked as a deletion, carrying the
// deletion's actor, reason, correlation id and, as causation, one of
// causes (the deletion's events).
func (e *env) checkRemoved(t *testing.T, user string, teams []string, causes ...es.Record) {
	t.Helper()
	for _, id := range teams {
		s, history := e.team(t, id)
		if _, member := s.RoleOf(user); member {
			t.Errorf("team %s: deleted user %s is still a member", id, user)
		}
		rs := removals(history, user)
		if len(rs) != 1 {
			t.Errorf("team %s: %d MemberRemoved of %s, want 1", id, len(rs), user)
			continue
		}
		r := rs[0]
		ev := r.Event.(team.MemberRemoved)
		if !ev.UserDeleted || ev.Reason != deleter.Reason {
			t.Errorf("team %s: %+v, want userDeleted and the deletion's reason", id, ev)
		}
		md := r.Metadata
		if md.Actor != deleter.Actor || md.Reason != deleter.Reason || md.CorrelationID != "corr-"+user ||
			!slices.ContainsFunc(causes, func(c es.Record) bool { return c.ID == md.CausationID }) {
			t.Errorf("team %s: removal metadata %+v, want the deleter's actor, reason and correlation, caused by the deletion", id, md)
		}
	}
}

// TestManager runs the handler's scenarios on one world (tables made
// once; each scenario has users and teams of its own).
func TestManager(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, run := range map[string]func(*testing.T, *env){
		"DeletionLeavesEveryTeam":       testDeletionLeavesEveryTeam,
		"ForgetLeavesEveryTeam":         testForgetLeavesEveryTeam,
		"JoinRacesDeletion":             testJoinRacesDeletion,
		"JoinAfterRemoval":              testJoinAfterRemoval,
		"RedeliveryAndDuplicates":       testRedeliveryAndDuplicates,
		"LeftTeamIsNotLoaded":           testLeftTeamIsNotLoaded,
		"PoisonFailsAlone":              testPoisonFailsAlone,
		"GroupFailsFromItsFirstFailure": testGroupFailsFromItsFirstFailure,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run(t, e)
		})
	}
}

// testDeletionLeavesEveryTeam: a user in three teams (the last owner of
// one) is deleted; it leaves all three, the others stay, and each team's
// history names the deleter, the reason and the deletion.
func testDeletionLeavesEveryTeam(t *testing.T, e *env) {
	u, other, third := e.newUser(t), e.newUser(t), e.newUser(t)
	owned := e.newTeam(t, u, other)  // u is its last owner
	member := e.newTeam(t, other, u) // u a member
	both := e.newTeam(t, third, u, other)
	teams := []string{owned, member, both}
	for _, id := range teams {
		e.deliver(t, messages(t, e.records(t, id, 1)...)...)
	}
	deletion := e.deleteUser(t, u, false)
	e.deliver(t, messages(t, deletion...)...)
	e.checkRemoved(t, u, teams, deletion...)

	s, _ := e.team(t, owned)
	if s.Owners() != 0 || len(s.Members) != 1 {
		t.Errorf("team whose last owner was deleted: %+v, want its one member left and no owner", s.Members)
	}
	for id, want := range map[string][]string{owned: {other}, member: {other}, both: {other, third}} {
		s, _ := e.team(t, id)
		for _, w := range want {
			if _, ok := s.RoleOf(w); !ok || len(s.Members) != len(want) {
				t.Errorf("team %s: members %+v, want %v: it lost a member it should keep", id, s.Members, want)
			}
		}
	}
}

// testForgetLeavesEveryTeam: forgetting a live user appends its deletion
// and its forgetting; it leaves its teams once, caused by either.
func testForgetLeavesEveryTeam(t *testing.T, e *env) {
	u, owner := e.newUser(t), e.newUser(t)
	teams := []string{e.newTeam(t, owner, u), e.newTeam(t, u)}
	for _, id := range teams {
		e.deliver(t, messages(t, e.records(t, id, 1)...)...)
	}
	recs := e.deleteUser(t, u, true)
	if len(recs) != 2 {
		t.Fatalf("forget appended %d events, want the deletion and the forgetting", len(recs))
	}
	msgs := messages(t, recs...)
	e.deliver(t, msgs...)
	e.deliver(t, msgs[1]) // the forgetting alone, again
	e.checkRemoved(t, u, teams, recs...)
}

// testJoinRacesDeletion: a join that raced its user's deletion (the
// joining command read the user active just before it was deleted) is
// undone whichever the manager handles first, and when it handles both at
// once.
func testJoinRacesDeletion(t *testing.T, e *env) {
	owner := e.newUser(t)
	orders := []string{"join first", "deletion first", "at once"}
	for _, order := range orders {
		t.Run(order, func(t *testing.T) {
			for range 3 {
				u := e.newUser(t)
				id := e.newTeam(t, owner)
				e.deliver(t, messages(t, e.records(t, id, 1)...)...)
				e.exec(t, id, team.SetMember{UserID: u, Role: team.RoleMember, UserActive: true})
				join := messages(t, e.records(t, id, 2)...)
				deletion := e.deleteUser(t, u, false)
				del := messages(t, deletion...)
				switch order {
				case "join first":
					e.deliver(t, join...)
					e.deliver(t, del...)
				case "deletion first":
					e.deliver(t, del...)
					e.deliver(t, join...)
				default:
					var wg sync.WaitGroup
					wg.Go(func() { e.deliver(t, join...) })
					wg.Go(func() { e.deliver(t, del...) })
					wg.Wait()
				}
				e.checkRemoved(t, u, []string{id}, deletion...)
				if s, _ := e.team(t, id); len(s.Members) != 1 {
					t.Errorf("team %s: %+v, want its owner alone", id, s.Members)
				}
			}
		})
	}
}

// testJoinAfterRemoval: a second join that raced the deletion, appended
// after the manager had already removed the user, is another membership:
// it is removed too (an idempotency key of the deletion and the team alone
// would answer it with the first removal and leave the user in).
func testJoinAfterRemoval(t *testing.T, e *env) {
	u, owner := e.newUser(t), e.newUser(t)
	id := e.newTeam(t, owner, u)
	e.deliver(t, messages(t, e.records(t, id, 1)...)...)
	deletion := e.deleteUser(t, u, false)
	e.deliver(t, messages(t, deletion...)...)
	s, history := e.team(t, id)
	if _, member := s.RoleOf(u); member {
		t.Fatal("not removed")
	}
	// The stale join, and the removal's own event, delivered now.
	e.exec(t, id, team.SetMember{UserID: u, Role: team.RoleMember, UserActive: true})
	e.deliver(t, messages(t, e.records(t, id, int64(len(history)))...)...)
	s, history = e.team(t, id)
	if _, member := s.RoleOf(u); member {
		for _, r := range history {
			t.Logf("v%d %s %+v %+v", r.Version, r.Type, r.Event, r.Metadata)
		}
		rows, err := e.table.Teams(t.Context(), u)
		t.Logf("rows %+v %v", rows, err)
		t.Fatalf("the second join stayed: %+v", s.Members)
	}
	if rs := removals(history, u); len(rs) != 2 {
		t.Errorf("%d removals, want one per membership (2)", len(rs))
	}
}

// testRedeliveryAndDuplicates: every message delivered several times, in
// batches shuffled and repeated, duplicates in the same batch, the
// deletion before and after the joins: one MemberRemoved per team.
func testRedeliveryAndDuplicates(t *testing.T, e *env) {
	u, owner := e.newUser(t), e.newUser(t)
	var teams []string
	var all []events.SQSMessage
	for i := range 3 {
		var id string
		if i == 0 {
			id = e.newTeam(t, u, owner)
		} else {
			id = e.newTeam(t, owner, u)
		}
		teams = append(teams, id)
		all = append(all, messages(t, e.records(t, id, 1)...)...)
	}
	deletion := e.deleteUser(t, u, false)
	del := messages(t, deletion...)
	e.deliver(t, del...) // before any join was handled
	e.deliver(t, append(slices.Clone(all), all...)...)
	e.deliver(t, del[0], del[0])
	for range 3 {
		batch := append(slices.Clone(all), del...)
		for i := range batch { // reversed: later versions first
			j := len(batch) - 1 - i
			if i < j {
				batch[i], batch[j] = batch[j], batch[i]
			}
		}
		for chunk := range slices.Chunk(batch, 10) {
			e.deliver(t, chunk...)
		}
	}
	// The removals' own events come back through the queue too.
	for _, id := range teams {
		e.deliver(t, messages(t, e.records(t, id, 1)...)...)
	}
	e.deliver(t, del...)
	e.checkRemoved(t, u, teams, deletion...)
	for _, id := range teams {
		if s, _ := e.team(t, id); len(s.Members) != 1 {
			t.Errorf("team %s: %+v, want the other member alone", id, s.Members)
		}
	}
}

// testLeftTeamIsNotLoaded: a team the user left before its deletion is
// not written to; the teams it is in are.
func testLeftTeamIsNotLoaded(t *testing.T, e *env) {
	u, owner := e.newUser(t), e.newUser(t)
	left := e.newTeam(t, owner, u)
	e.exec(t, left, team.RemoveMember{UserID: u, Reason: "moved on"})
	in := e.newTeam(t, owner, u)
	for _, id := range []string{left, in} {
		e.deliver(t, messages(t, e.records(t, id, 1)...)...)
	}
	rows, err := e.table.Teams(t.Context(), u)
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %+v, %v", rows, err)
	}
	before := len(e.records(t, left, 1))
	deletion := e.deleteUser(t, u, false)
	e.deliver(t, messages(t, deletion...)...)
	if after := len(e.records(t, left, 1)); after != before {
		t.Errorf("the team left before the deletion got %d new events", after-before)
	}
	e.checkRemoved(t, u, []string{in}, deletion...)
}

// testPoisonFailsAlone: a message that is not an event, and one whose
// event does not decode, are failed; the other groups of the batch are
// handled, and an event type the manager does not handle is acknowledged.
func testPoisonFailsAlone(t *testing.T, e *env) {
	u, owner := e.newUser(t), e.newUser(t)
	id := e.newTeam(t, owner, u)
	good := messages(t, e.records(t, id, 1)...)
	bad := es.Record{ID: newID(), AggregateID: newID(), AggregateType: team.AggregateType, Version: 1,
		Type: team.MemberAdded{}.EventType(), SchemaVersion: 1, OccurredAt: time.Now().UTC(), Data: []byte(`{"userId":42}`)}
	body, err := relay.EncodeMessage(bad)
	if err != nil {
		t.Fatal(err)
	}
	undecodable := events.SQSMessage{MessageId: "undecodable", Body: body, Attributes: map[string]string{"MessageGroupId": bad.AggregateID}}
	notJSON := events.SQSMessage{MessageId: "not-json", Body: "{nope", Attributes: map[string]string{"MessageGroupId": "g-" + newID()}}
	other := bad
	other.ID, other.AggregateID, other.Type, other.Data = newID(), newID(), "team.renamed", []byte(`{"name":"x"}`)
	body, _ = relay.EncodeMessage(other)
	unhandled := events.SQSMessage{MessageId: "unhandled", Body: body, Attributes: map[string]string{"MessageGroupId": other.AggregateID}}
	batch := append([]events.SQSMessage{notJSON, undecodable, unhandled}, good...)
	resp, err := e.manager.Handle(t.Context(), events.SQSEvent{Records: batch})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	slices.Sort(failed)
	if !slices.Equal(failed, []string{"not-json", "undecodable"}) {
		t.Errorf("failed %v, want the two poisons", failed)
	}
	rows, err := e.table.Teams(t.Context(), u)
	if err != nil || len(rows) != 1 || !rows[0].Member {
		t.Errorf("the good group was not handled: rows %+v, %v", rows, err)
	}
}

// testGroupFailsFromItsFirstFailure: when a message fails, the later
// messages of its group are failed with it (FIFO order is kept); the
// earlier ones are not.
func testGroupFailsFromItsFirstFailure(t *testing.T, e *env) {
	u, owner := e.newUser(t), e.newUser(t)
	id := e.newTeam(t, owner, u)
	msgs := messages(t, e.records(t, id, 1)...)
	poison := events.SQSMessage{MessageId: "poison", Body: "{", Attributes: map[string]string{"MessageGroupId": id}}
	batch := []events.SQSMessage{msgs[0], poison, msgs[1]}
	resp, err := e.manager.Handle(t.Context(), events.SQSEvent{Records: batch})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(resp.BatchItemFailures)
	if want := fmt.Sprint([]events.SQSBatchItemFailure{{ItemIdentifier: "poison"}, {ItemIdentifier: msgs[1].MessageId}}); got != want {
		t.Errorf("failures %s, want %s", got, want)
	}
}
