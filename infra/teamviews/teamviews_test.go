package teamviews_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/teamviews"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

var t0 = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)

// bigTeam is a team size whose rename touches more rows (its members and
// its owner) than one transaction holds with the state item (99): the
// chunked writes. DynamoDB Local takes about a second per 100-item
// transaction, so it is no larger.
const bigTeam = 100

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// registry and projections are the read side's, as infra/lambdafn wires
// them: users' and teams' together.
func registry() *es.Registry {
	r := user.NewRegistry()
	team.Register(r)
	return r
}

func projections() []projection.Projection {
	return append(userviews.Projections(), teamviews.Projections()...)
}

// TestRandomTeamRunsMatchTheFold runs random team commands (and two
// users' lives, in the same event store) through the projector, every
// event delivered once or twice in random order and random batches, and
// checks that both team projections equal the fold of the events, that
// the audit and the completeness audit find nothing missing or different
// on either kind of stream, and that a rebuild from scratch of every
// projection equals the live one.
func TestRandomTeamRunsMatchTheFold(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store, tables := readmodeltest.EventStore(t)
	rm := readmodeltest.Store(t)
	reg := registry()
	proj := projector.New(store, reg, rm, projections(), slog.New(slog.DiscardHandler), time.Now)
	teams := team.NewService(store, es.Options{MaxAttempts: 8})
	users := usertest.Service(store)
	rnd := rand.New(rand.NewPCG(16, 2))
	meta := es.ExecOptions{Metadata: es.Metadata{Actor: "sub-admin", Reason: "test"}}

	var userIDs, teamIDs []string
	for i := range 8 {
		id := newID()
		userIDs = append(userIDs, id)
		if i < 2 { // users of the User service next to the teams
			if _, err := users.Execute(ctx, id, user.Create{Name: "Ada", Email: id + "@example.com", Sub: "sub-" + id}, meta); err != nil {
				t.Fatal(err)
			}
			if _, err := users.Execute(ctx, id, user.Rename{Name: "Ada L."}, meta); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 3 {
		id := newID()
		teamIDs = append(teamIDs, id)
		if _, err := teams.Execute(ctx, id, team.Create{Name: fmt.Sprintf("team %d", i), Owner: userIDs[rnd.IntN(len(userIDs))], OwnerActive: true}, meta); err != nil {
			t.Fatal(err)
		}
	}
	roles := []team.Role{team.RoleMember, team.RoleOwner}
	for i := range 40 {
		var cmd team.Command
		u := userIDs[rnd.IntN(len(userIDs))]
		switch rnd.IntN(6) {
		case 0:
			cmd = team.Rename{Name: fmt.Sprintf("renamed %d", i)}
		case 1, 2, 3:
			cmd = team.SetMember{UserID: u, Role: roles[rnd.IntN(2)], UserActive: true}
		case 4:
			cmd = team.RemoveMember{UserID: u, Reason: "left"}
		default:
			cmd = team.RemoveDeletedMember{UserID: u, Reason: "deleted"}
		}
		_, err := teams.Execute(ctx, teamIDs[rnd.IntN(len(teamIDs))], cmd, meta)
		if err != nil && !errors.Is(err, team.ErrLastOwner) && !errors.Is(err, team.ErrNotMember) {
			t.Fatalf("command %d %T: %v", i, cmd, err)
		}
	}

	// Every event once, some twice, in random order, in random batches;
	// what fails comes back in a later round.
	var msgs []events.SQSMessage
	for _, id := range append(slices.Clone(teamIDs), userIDs[:2]...) {
		recs, err := store.Load(ctx, id, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			msgs = append(msgs, message(t, r))
			if rnd.IntN(3) == 0 {
				msgs = append(msgs, message(t, r))
			}
		}
	}
	for round := 0; len(msgs) > 0; round++ {
		if round == 10 {
			t.Fatalf("%d messages still failing after %d rounds", len(msgs), round)
		}
		rnd.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
		var failed []events.SQSMessage
		for batch := range slices.Chunk(msgs, 1+rnd.IntN(10)) {
			resp, err := proj.Handle(ctx, events.SQSEvent{Records: batch})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range resp.BatchItemFailures {
				for _, m := range batch {
					if m.MessageId == f.ItemIdentifier {
						failed = append(failed, m)
					}
				}
			}
		}
		msgs = failed
	}

	check := func(label string) {
		t.Helper()
		want := map[string][]team.Membership{}
		for _, id := range teamIDs {
			recs := load(t, store, reg, id)
			checkView(t, rm, recs)
			s := foldState(recs)
			for u, m := range team.Memberships(id, s) {
				want[u] = append(want[u], m)
			}
		}
		for _, u := range userIDs {
			checkUserTeams(t, rm, u, want[u])
		}
		rb := rebuild.New(awstest.DynamoDB(t), tables.Events, store, rm, reg, projections(), nil)
		rep, err := rb.Audit(ctx, rebuild.AuditOptions{Segments: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Differences) > 0 || rep.Aggregates != int64(len(teamIDs)+2) {
			t.Errorf("%s: audit of %d aggregates: %+v; want %d aggregates, no difference", label, rep.Aggregates, rep.Differences, len(teamIDs)+2)
		}
		// Every event of the feed reached every projection of its kind.
		reader := dynamo.New(awstest.DynamoDB(t), tables, dynamo.WithFeedWindow(0))
		comp, err := feed.AuditCompleteness(ctx, reader, feed.Stores{Views: rm, Mails: notifier.NewMails(rm.Client(), rm.Table())}, projections(), dynamo.FeedCursor{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range comp.Missing {
			if m.Subscriber != "welcome-mail" { // no notifier runs here
				t.Errorf("%s: completeness: %+v", label, m)
			}
		}
		if comp.Aggregates != len(teamIDs)+2 {
			t.Errorf("%s: completeness audit of %d aggregates, want %d", label, comp.Aggregates, len(teamIDs)+2)
		}
	}
	check("live")

	rb := rebuild.New(awstest.DynamoDB(t), tables.Events, store, rm, reg, projections(), nil)
	for _, name := range projection.Names(projections()) { // the user projections skip the team streams, and the other way round
		res, err := rb.Run(ctx, name, rebuild.Options{Segments: 2, Settle: -1})
		if err != nil || !res.Done || res.Generation != 2 {
			t.Fatalf("rebuild %s: %+v, %v; want generation 2 done", name, res, err)
		}
	}
	check("rebuilt")
}

// TestTeamRows applies team runs straight through the projections: a team
// created with its members in one run, renamed, then most members leaving
// in one run. With 3 members every user-teams write is one transaction;
// with 12 members written 5 rows per transaction, and with bigTeam
// members at DynamoDB's own limit (100 items), they go in chunks. The
// rename reaches every member's row, a member who left has no row (nor a
// tombstone), and both projections agree with the fold (the audit reads
// every row; the readers are checked on a sample). Through lost replies
// (every write applied, its reply lost, the SDK sending it again) nothing
// changes. Under the projector's and the replay's roles (the IAM check),
// every call of the chunked path is granted.
func TestTeamRows(t *testing.T) {
	t.Parallel()
	table := readmodeltest.Table(t)
	in := faults.New(7)
	plain := readmodel.New(awstest.DynamoDB(t), table)
	lost := readmodel.New(dynamodb.NewFromConfig(faults.WithLostReplies(awstest.Config(t), in, 1)), table)
	// The chunked writes' ConditionCheckItem, under the roles of the two
	// functions that write the projections: the projector live, the
	// replay in a rebuild.
	as := func(function string) *readmodel.Store {
		return readmodel.New(dynamodb.NewFromConfig(awstest.Config(t),
			awstest.UnderIAM[*dynamodb.Options](t, function, map[string]string{"ReadModelTable": table})), table)
	}
	for _, c := range []struct {
		name      string
		rm        *readmodel.Store
		size      int
		userTeams projection.Projection
	}{
		{"one transaction", plain, 3, teamviews.UserTeams},
		{"chunks of 5", plain, 12, teamviews.UserTeamsChunked(5)},
		{"chunks of DynamoDB's limit", plain, bigTeam, teamviews.UserTeams},
		{"lost replies/one transaction", lost, 3, teamviews.UserTeams},
		{"lost replies/chunks of 5", lost, 12, teamviews.UserTeamsChunked(5)},
		{"projector's role/chunks of 5", as("ProjectorFunction"), 12, teamviews.UserTeamsChunked(5)},
		{"replay's role/chunks of 5", as("ReplayFunction"), 12, teamviews.UserTeamsChunked(5)},
	} {
		t.Run(c.name, func(t *testing.T) {
			scenario(t, c.rm, c.size, []projection.Projection{teamviews.View, c.userTeams})
		})
	}
	if in.Total("lostreply.") == 0 {
		t.Error("no reply was lost")
	}
	t.Logf("faults: %s", in)
}

func scenario(t *testing.T, rm *readmodel.Store, size int, prs []projection.Projection) {
	ctx := t.Context()
	id, owner := newID(), newID()
	members := make([]string, size)
	for i := range members {
		members[i] = newID()
	}
	everyone := append([]string{owner}, members...)
	var recs []es.Record
	add := func(e es.Event) es.Record {
		r := record(id, int64(len(recs)+1), e)
		recs = append(recs, r)
		return r
	}
	var run []es.Record
	run = append(run, add(team.Created{Name: "Platform", Owner: owner}))
	for _, m := range members {
		run = append(run, add(team.MemberAdded{UserID: m, Role: team.RoleMember}))
	}
	apply(t, rm, prs, run)
	checkAll(t, rm, prs, recs, everyone)

	apply(t, rm, prs, []es.Record{add(team.Renamed{Name: "Infra"})})
	checkAll(t, rm, prs, recs, everyone)
	for _, u := range sample(everyone) {
		got, err := teamviews.New(rm).UserTeams(ctx, u)
		if err != nil || len(got) != 1 || got[0].Name != "Infra" {
			t.Fatalf("teams of %s after the rename: %+v, %v", u, got, err)
		}
	}

	leave := members[:size-1-size/10] // most of them; the last one stays
	run = nil
	for _, m := range leave {
		run = append(run, add(team.MemberRemoved{UserID: m, Reason: "left"}))
	}
	run = append(run, add(team.MemberRoleChanged{UserID: members[size-1], Role: team.RoleOwner}))
	apply(t, rm, prs, run)
	checkAll(t, rm, prs, recs, everyone)
	for _, u := range sample(leave) {
		if n := rawRows(t, rm, u); n != 0 {
			t.Fatalf("user %s left: %d items in its partition, want none (no row, no tombstone)", u, n)
		}
	}

	// A repair (Put with force) of the whole stream changes nothing.
	for _, pr := range prs {
		if err := pr.Put(ctx, rm, recs, true); err != nil {
			t.Fatalf("repair %s: %v", pr.Name(), err)
		}
	}
	checkAll(t, rm, prs, recs, everyone)
}

// TestRowsAheadOfAnUnfinishedChunkedWrite: a chunked user-teams write
// that wrote its rows but not the state item (a crash, or a race lost to a
// shorter run) leaves rows at a later version than the state item. The
// shorter run written next leaves them (it would move them back) and
// completes; the following run brings every row to the fold.
// The shorter run is written in chunks, and in one transaction.
func TestRowsAheadOfAnUnfinishedChunkedWrite(t *testing.T) {
	t.Parallel()
	rm := readmodeltest.Store(t)
	t.Run("chunks", func(t *testing.T) { rowsAhead(t, rm, teamviews.UserTeamsChunked(5), teamviews.UserTeamsChunked(5)) })
	t.Run("one transaction", func(t *testing.T) { rowsAhead(t, rm, teamviews.UserTeamsChunked(5), teamviews.UserTeams) })
}

// rowsAhead leaves the rows of an unfinished write of chunked, then
// writes the shorter and the following run with ut.
func rowsAhead(t *testing.T, rm *readmodel.Store, chunked, ut projection.Projection) {
	ctx := t.Context()
	prs := []projection.Projection{teamviews.View, ut}
	id, owner := newID(), newID()
	members := make([]string, 12)
	for i := range members {
		members[i] = newID()
	}
	everyone := append([]string{owner}, members...)
	var recs []es.Record
	add := func(e es.Event) es.Record {
		r := record(id, int64(len(recs)+1), e)
		recs = append(recs, r)
		return r
	}
	add(team.Created{Name: "Platform", Owner: owner})
	for _, m := range members {
		add(team.MemberAdded{UserID: m, Role: team.RoleMember})
	}
	apply(t, rm, prs, recs)
	base := len(recs)
	rename := add(team.Renamed{Name: "Infra"})
	removal := add(team.MemberRemoved{UserID: members[0], Reason: "left"})

	// The longer run (rename, removal) writes everything; then the state
	// item is put back where it was and members[0]'s tombstone left, as a
	// crash before the last chunk leaves them.
	applyTo(t, rm, chunked, []es.Record{rename, removal})
	putRaw(t, rm, map[string]types.AttributeValue{
		"pk": readmodel.S("team#" + id), "sk": readmodel.S("applied#" + teamviews.ProjectionUserTeams),
		"state": readmodel.S(mustJSON(t, foldState(recs[:base]))), "version": readmodel.N(int64(base)),
		"eventId": readmodel.S(recs[base-1].ID),
	})
	putRaw(t, rm, map[string]types.AttributeValue{
		"pk": readmodel.S("userteams#" + members[0]), "sk": readmodel.S("team#" + id),
		"teamId": readmodel.S(id), "version": readmodel.N(removal.Version), "gone": &types.AttributeValueMemberBOOL{Value: true},
	})

	// The shorter run (the rename alone) finds every row ahead.
	applyTo(t, rm, ut, []es.Record{rename})
	if got, err := teamviews.New(rm).UserTeams(ctx, members[0]); err != nil || len(got) != 0 {
		t.Errorf("teams of the member who left (a tombstone ahead): %+v, %v; want none", got, err)
	}
	applyTo(t, rm, ut, []es.Record{removal})
	checkUserTeamsOf(t, rm, recs, everyone)
	if diffs, err := ut.Audit(ctx, rm, recs); err != nil || len(diffs) > 0 {
		t.Errorf("audit: %+v, %v", diffs, err)
	}
	if n := rawRows(t, rm, members[0]); n != 0 {
		t.Errorf("member who left: %d items, want none", n)
	}
}

// TestWriteSentAgain: a write sent again from the same read (a lost reply
// retried above the SDK, with a new request token) finds its own write
// and succeeds; another run from the same read is a conflict.
func TestWriteSentAgain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rm := readmodeltest.Store(t)
	for _, pr := range []projection.Projection{teamviews.View, teamviews.UserTeams, teamviews.UserTeamsChunked(2)} {
		id := newID()
		run := []es.Record{record(id, 1, team.Created{Name: "Platform", Owner: newID()})}
		for v := int64(2); v <= 5; v++ {
			run = append(run, record(id, v, team.MemberAdded{UserID: newID(), Role: team.RoleMember}))
		}
		state, applied, err := pr.Read(ctx, rm, id)
		if err != nil {
			t.Fatal(err)
		}
		for attempt := range 2 {
			if err := pr.Write(ctx, rm, state, applied, run); err != nil {
				t.Errorf("%s: attempt %d: %v", pr.Name(), attempt, err)
			}
		}
		if err := pr.Write(ctx, rm, state, applied, run[:3]); !errors.Is(err, readmodel.ErrConflict) {
			t.Errorf("%s: a shorter run from the same read: %v, want ErrConflict", pr.Name(), err)
		}
		if diffs, err := pr.Audit(ctx, rm, run); err != nil || len(diffs) > 0 {
			t.Errorf("%s: audit: %+v, %v", pr.Name(), diffs, err)
		}
	}
}

// apply hands run to the projections prs as the projector does: read,
// then write from what was read.
func apply(t *testing.T, rm *readmodel.Store, prs []projection.Projection, run []es.Record) {
	t.Helper()
	for _, pr := range prs {
		applyTo(t, rm, pr, run)
	}
}

func applyTo(t *testing.T, rm *readmodel.Store, pr projection.Projection, run []es.Record) {
	t.Helper()
	state, applied, err := pr.Read(t.Context(), rm, run[0].AggregateID)
	if err != nil {
		t.Fatal(err)
	}
	if applied != run[0].Version-1 {
		t.Fatalf("%s at v%d, run from v%d", pr.Name(), applied, run[0].Version)
	}
	if err := pr.Write(t.Context(), rm, state, applied, run); err != nil {
		t.Fatalf("%s v%d..v%d: %v", pr.Name(), run[0].Version, run[len(run)-1].Version, err)
	}
}

// checkAll checks the projections prs against the fold of recs (users are
// every user the stream names) and audits them.
func checkAll(t *testing.T, rm *readmodel.Store, prs []projection.Projection, recs []es.Record, users []string) {
	t.Helper()
	checkView(t, rm, recs)
	checkUserTeamsOf(t, rm, recs, users)
	for _, pr := range prs {
		diffs, err := pr.Audit(t.Context(), rm, recs)
		if err != nil || len(diffs) > 0 {
			t.Fatalf("audit %s: %+v, %v", pr.Name(), diffs, err)
		}
	}
}

func checkUserTeamsOf(t *testing.T, rm *readmodel.Store, recs []es.Record, users []string) {
	t.Helper()
	want := team.Memberships(recs[0].AggregateID, foldState(recs))
	for _, u := range sample(users) {
		var w []team.Membership
		if m, ok := want[u]; ok {
			w = []team.Membership{m}
		}
		checkUserTeams(t, rm, u, w)
	}
}

func checkView(t *testing.T, rm *readmodel.Store, recs []es.Record) {
	t.Helper()
	var want team.View
	for _, r := range recs {
		want = team.ApplyView(want, r)
	}
	got, ok, err := teamviews.New(rm).Team(t.Context(), want.ID)
	if err != nil || !ok {
		t.Fatalf("team %s: %v, %v", want.ID, ok, err)
	}
	if w, g := mustJSON(t, want), mustJSON(t, got); w != g {
		t.Fatalf("team %s:\ngot  %s\nwant %s", want.ID, g, w)
	}
}

func checkUserTeams(t *testing.T, rm *readmodel.Store, u string, want []team.Membership) {
	t.Helper()
	slices.SortFunc(want, func(a, b team.Membership) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.TeamID, b.TeamID))
	})
	got, err := teamviews.New(rm).UserTeams(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if w, g := mustJSON(t, orEmpty(want)), mustJSON(t, got); w != g {
		t.Fatalf("teams of user %s:\ngot  %s\nwant %s", u, g, w)
	}
}

// sample is a few of users, the first and the last among them: the
// audit reads every row, the readers are checked on these.
func sample(users []string) []string {
	if len(users) <= 8 {
		return users
	}
	out := slices.Clone(users[:4])
	for i := 4; i < len(users)-4; i += len(users) / 8 {
		out = append(out, users[i])
	}
	return append(out, users[len(users)-4:]...)
}

func orEmpty(ms []team.Membership) []team.Membership {
	if ms == nil {
		return []team.Membership{}
	}
	return ms
}

func foldState(recs []es.Record) team.State {
	var s team.State
	for _, r := range recs {
		s = team.Evolve(s, r)
	}
	return s
}

// load reads a stream and decodes it.
func load(t *testing.T, store *dynamo.Store, reg *es.Registry, id string) []es.Record {
	t.Helper()
	recs, err := store.Load(t.Context(), id, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.DecodeAll(recs); err != nil {
		t.Fatal(err)
	}
	return recs
}

// record is the decoded record of e at version v of team id, a second
// per version after t0.
func record(id string, v int64, e es.Event) es.Record {
	return es.Record{ID: newID(), AggregateID: id, AggregateType: team.AggregateType, Version: v, Type: e.EventType(),
		SchemaVersion: 1, OccurredAt: t0.Add(time.Duration(v) * time.Second), Event: e}
}

// message is the queue message the relay sends for rec.
func message(t *testing.T, rec es.Record) events.SQSMessage {
	t.Helper()
	body, err := relay.EncodeMessage(rec)
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{
		MessageId: uuid.NewString(), Body: body, EventSource: "aws:sqs",
		Attributes: map[string]string{"MessageGroupId": rec.AggregateID, "MessageDeduplicationId": rec.ID},
	}
}

// rawRows counts the items of user's user-teams partition, tombstones
// included.
func rawRows(t *testing.T, rm *readmodel.Store, u string) int {
	t.Helper()
	out, err := rm.Client().Query(t.Context(), &dynamodb.QueryInput{
		TableName:                 aws.String(rm.Table()),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": readmodel.S("userteams#" + u)},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Items)
}

func putRaw(t *testing.T, rm *readmodel.Store, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := rm.Client().PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(rm.Table()), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
