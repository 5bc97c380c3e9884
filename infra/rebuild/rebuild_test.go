package rebuild_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/projector"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/rebuild/rebuildtest"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// env is an event store and a read model on the emulator, and a rebuilder
// between them.
type env struct {
	client *dynamodb.Client
	events *dynamo.Store
	tables dynamo.Tables
	rm     *userviews.Store
	rmName string
	rb     *rebuild.Rebuilder
}

func newEnv(t *testing.T, events *dynamo.Store, tables dynamo.Tables) env {
	t.Helper()
	client := awstest.DynamoDB(t)
	if events == nil {
		events, tables = readmodeltest.EventStore(t)
	}
	rmName := awstest.TableName("readmodel")
	if err := userviews.CreateTable(t.Context(), client, rmName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = readmodel.DeleteTable(ctx, client, rmName)
	})
	rm := userviews.New(readmodel.New(client, rmName, readmodel.WithGenerationTTL(0)))
	return env{client: client, events: events, tables: tables, rm: rm, rmName: rmName,
		rb: rebuild.New(client, tables.Events, events, rm.Store, user.NewRegistry(), userviews.Projections(), slog.New(slog.DiscardHandler))}
}

// fold is the view the event store says user id should have.
func fold(t *testing.T, e env, id string) user.View {
	t.Helper()
	recs, err := e.events.Load(t.Context(), id, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := user.NewRegistry().DecodeAll(recs); err != nil {
		t.Fatal(err)
	}
	return userviews.FoldUser(recs).View
}

func checkViews(t *testing.T, e env, ids []string) {
	t.Helper()
	for _, id := range ids {
		want := fold(t, e, id)
		got, ok, err := e.rm.UserView(t.Context(), id)
		if err != nil || !ok {
			t.Fatalf("view of %s: %v %v", id, ok, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("view of %s:\ngot  %+v\nwant %+v", id, got, want)
		}
		if want.Status != user.StatusDeleted {
			holder, _, err := e.rm.UserIDByEmail(t.Context(), want.Email)
			if err != nil || holder != id {
				t.Fatalf("lookup of %s = %q, %v; want %s", want.Email, holder, err, id)
			}
		}
	}
}

// rows are the read-model rows of the projections, without the progress
// and generation bookkeeping, by key without generation.
func rows(t *testing.T, e env) map[string]map[string]any {
	t.Helper()
	items, err := rebuildtest.Items(t.Context(), e.client, e.rmName)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, item := range items {
		pk := item["pk"].(string)
		if strings.HasPrefix(pk, "rebuild#") || pk == "generations" {
			continue
		}
		_, logical := readmodel.SplitGeneration(pk)
		item["pk"] = logical
		out[logical+"|"+item["sk"].(string)] = item
	}
	return out
}

// TestRebuildInterruptedAndResumed: a rebuild cut half-way (its context
// cancelled) and resumed writes the same rows as a clean one, and only then
// switches readers over.
func TestRebuildInterruptedAndResumed(t *testing.T) {
	t.Parallel()
	clean := newEnv(t, nil, dynamo.Tables{})
	ctx := t.Context()
	ids, err := rebuildtest.Seed(ctx, clean.client, clean.tables.Events, 60, 7, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Small pages, so that streams straddle pages and segments resume mid-stream.
	opts := rebuild.Options{Segments: 4, PageSize: 9, Settle: -1}
	for _, p := range clean.rb.Projections() {
		res, err := clean.rb.Run(ctx, p, opts)
		if err != nil || !res.Done || res.Generation != 2 || res.Events != 420 {
			t.Fatalf("clean rebuild of %s: %+v, %v", p, res, err)
		}
	}
	checkViews(t, clean, ids)

	cut := newEnv(t, clean.events, clean.tables)
	for _, p := range cut.rb.Projections() {
		runCtx, cancel := context.WithCancel(ctx)
		o := opts
		o.Progress = func(pr rebuild.Progress) {
			if pr.Events >= 200 {
				cancel()
			}
		}
		res, err := cut.rb.Run(runCtx, p, o)
		cancel()
		if !errors.Is(err, context.Canceled) || res.Done {
			t.Fatalf("interrupted rebuild of %s: %+v, %v", p, res, err)
		}
		// Readers still use generation 1, which is empty: nothing half-built shows.
		if g, err := cut.rm.Generation(ctx, p); err != nil || g.Active != 1 || g.Building != 2 {
			t.Fatalf("generation during the rebuild: %+v, %v", g, err)
		}
		st, err := cut.rb.Status(ctx, p)
		if err != nil || !st.HasBuild || st.Build.Events() < 200 || st.Build.Events() >= 420 {
			t.Fatalf("status after the interruption: %+v, %v", st, err)
		}
		res, err = cut.rb.Run(ctx, p, opts)
		if err != nil || !res.Done || res.Generation != 2 || res.Events != 420 || res.RunEvents >= 420 {
			t.Fatalf("resumed rebuild of %s: %+v, %v", p, res, err)
		}
	}
	if _, ok, _ := cut.rm.UserView(ctx, ids[0]); !ok {
		t.Fatal("no view after the switch")
	}
	want, got := rows(t, clean), rows(t, cut)
	if !maps.EqualFunc(want, got, func(a, b map[string]any) bool { return reflect.DeepEqual(a, b) }) {
		for k, w := range want {
			if !reflect.DeepEqual(w, got[k]) {
				t.Errorf("row %s:\nclean   %v\nresumed %v", k, w, got[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("row %s only in the resumed rebuild", k)
			}
		}
	}
}

// TestRebuildWithinBudget: with a time budget, Run stops between pages and
// the next Run goes on, as the replay function does across invocations.
func TestRebuildWithinBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, dynamo.Tables{})
	ctx := t.Context()
	ids, err := rebuildtest.Seed(ctx, e.client, e.tables.Events, 30, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	for {
		runs++
		if runs > 500 {
			t.Fatal("rebuild never finished")
		}
		// A budget already spent: each run does one page per segment at most.
		res, err := e.rb.Run(ctx, userviews.ProjectionUserView, rebuild.Options{Segments: 2, PageSize: 10, Settle: -1,
			Until: time.Now().Add(-time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Done {
			break
		}
		if res.Phase != rebuild.PhasePaused {
			t.Fatalf("phase %q", res.Phase)
		}
	}
	if runs < 3 {
		t.Fatalf("finished in %d runs; the budget was not applied", runs)
	}
	checkViews(t, e, ids)
}

// TestRebuildFollowsLiveEvents: events appended and projected while a
// rebuild runs reach the new generation through the live projector, which
// writes both generations; after the switch the views are current.
func TestRebuildFollowsLiveEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, dynamo.Tables{})
	ctx := t.Context()
	svc := usertest.Service(e.events)
	proj := projector.New(e.events, user.NewRegistry(), e.rm, userviews.Projections(), slog.New(slog.DiscardHandler), time.Now)
	var ids []string
	project := func(recs []es.Record) {
		for _, r := range recs {
			body, err := relay.EncodeMessage(r)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := proj.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: r.ID, Body: body,
				Attributes: map[string]string{"MessageGroupId": r.AggregateID, "ApproximateReceiveCount": "1"}}}})
			if err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatalf("project: %+v %v", resp, err)
			}
		}
	}
	exec := func(id string, c user.Command) {
		res, err := svc.Execute(ctx, id, c, es.ExecOptions{Metadata: es.Metadata{Actor: "admin"}})
		if err != nil {
			t.Fatal(err)
		}
		project(res.Records)
	}
	for i := range 20 {
		id := newID()
		ids = append(ids, id)
		exec(id, user.Create{Name: "U", Email: id + "@example.com"})
		if i%2 == 0 {
			exec(id, user.Rename{Name: "U2"})
		}
	}
	pages := 0
	res, err := e.rb.Run(ctx, userviews.ProjectionUserView, rebuild.Options{Segments: 1, PageSize: 5, Settle: -1,
		Progress: func(p rebuild.Progress) {
			if p.Phase != rebuild.PhaseScanning {
				return
			}
			pages++
			if pages == 2 { // mid-scan: the old generation is what readers see
				v, ok, err := e.rm.UserView(ctx, ids[0])
				if err != nil || !ok || v.Version == 0 {
					t.Errorf("view during the rebuild: %+v %v %v", v, ok, err)
				}
				for _, id := range ids {
					exec(id, user.Rename{Name: "Renamed during the rebuild"})
				}
				id := newID()
				ids = append(ids, id)
				exec(id, user.Create{Name: "Late", Email: id + "@example.com"})
			}
		}})
	if err != nil || !res.Done {
		t.Fatalf("rebuild: %+v %v", res, err)
	}
	checkViews(t, e, ids)
	// The old generation stays until pruned.
	n, err := e.rm.Prune(ctx, userviews.View)
	if err != nil || n == 0 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	checkViews(t, e, ids)
}

// TestAuditAndRepair: the audit finds a deliberately corrupted view row and
// a deleted email lookup; repairing the aggregate in place clears them.
func TestAuditAndRepair(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, dynamo.Tables{})
	ctx := t.Context()
	ids, err := rebuildtest.Seed(ctx, e.client, e.tables.Events, 12, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range e.rb.Projections() {
		if _, err := e.rb.Run(ctx, p, rebuild.Options{Settle: -1}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.rb.Audit(ctx, rebuild.AuditOptions{PageSize: 5})
	if err != nil || len(rep.Differences) != 0 || rep.Aggregates != 12 || rep.Events != 48 {
		t.Fatalf("audit of a clean read model: %+v, %v", rep, err)
	}

	victim := ids[3]
	v, _, err := e.rm.UserView(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	corrupt(t, e, victim, v)
	rep, err = e.rb.Audit(ctx, rebuild.AuditOptions{Segments: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 1 || rep.Differences[0].AggregateID != victim || rep.Differences[0].Kind != rebuild.DiffFields ||
		len(rep.Differences[0].Fields) != 1 || rep.Differences[0].Fields[0].Field != "name" {
		t.Fatalf("audit after corruption: %+v", rep.Differences)
	}
	if _, err := e.rb.Aggregate(ctx, userviews.ProjectionUserView, victim); err != nil {
		t.Fatal(err)
	}
	if rep, err = e.rb.Audit(ctx, rebuild.AuditOptions{}); err != nil || len(rep.Differences) != 0 {
		t.Fatalf("audit after repair: %+v, %v", rep, err)
	}
}

// corrupt overwrites the name in the view row of id, as a bug might.
func corrupt(t *testing.T, e env, id string, v user.View) {
	t.Helper()
	g, err := e.rm.Generation(t.Context(), userviews.ProjectionUserView)
	if err != nil {
		t.Fatal(err)
	}
	pk := "user#" + id
	if g.Active > 1 {
		pk = "g" + itoa(g.Active) + "#" + pk
	}
	v.Name = "Mallory"
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
		TableName: aws.String(e.rmName),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "view"},
		},
		UpdateExpression:          aws.String("SET #v = :v"),
		ExpressionAttributeNames:  map[string]string{"#v": "view"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: string(body)}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRebuildListsUsersAndAuditRepairsTheIndex: a rebuild writes the
// user-list index keys with every view of its new generation, and the list
// reads that generation once it is active; a view without them (written
// before the index existed) is an audit difference of its own, and
// repairing the aggregate lists it again.
func TestRebuildListsUsersAndAuditRepairsTheIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, dynamo.Tables{})
	ctx := t.Context()
	ids, err := rebuildtest.Seed(ctx, e.client, e.tables.Events, 12, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.rb.Run(ctx, userviews.ProjectionUserView, rebuild.Options{Settle: -1}); err != nil {
		t.Fatal(err)
	}
	if g, err := e.rm.Generation(ctx, userviews.ProjectionUserView); err != nil || g.Active < 2 {
		t.Fatalf("generation after the rebuild: %+v, %v", g, err)
	}
	listed := func() map[string]bool {
		t.Helper()
		page, err := e.rm.ListUsers(ctx, "", userviews.MaxLimit, "")
		if err != nil || page.Next != "" {
			t.Fatalf("list: %+v, %v", page, err)
		}
		got := map[string]bool{}
		for _, v := range page.Users {
			got[v.ID] = true
		}
		return got
	}
	live := map[string]bool{}
	for _, id := range ids {
		if fold(t, e, id).Status != user.StatusDeleted {
			live[id] = true
		}
	}
	if got := listed(); !maps.Equal(got, live) {
		t.Fatalf("listed after the rebuild %v, want the live users %v", got, live)
	}

	var victim string
	for id := range live {
		victim = id
		break
	}
	g, err := e.rm.Generation(ctx, userviews.ProjectionUserView)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(e.rmName),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "g" + itoa(g.Active) + "#user#" + victim}, "sk": &types.AttributeValueMemberS{Value: "view"},
		},
		UpdateExpression:         aws.String("REMOVE #p, #s"),
		ExpressionAttributeNames: map[string]string{"#p": userviews.AttrListPK, "#s": userviews.AttrListSK},
	})
	if err != nil {
		t.Fatal(err)
	}
	if listed()[victim] {
		t.Fatalf("%s listed without its index keys", victim)
	}
	rep, err := e.rb.Audit(ctx, rebuild.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range rep.Differences {
		if d.Kind != userviews.DiffActivity { // only the user view was rebuilt
			kinds = append(kinds, d.AggregateID+" "+d.Kind)
		}
	}
	if want := []string{victim + " " + userviews.DiffIndex}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("audit: %v, want %v (%+v)", kinds, want, rep.Differences)
	}
	if _, err := e.rb.Aggregate(ctx, userviews.ProjectionUserView, victim); err != nil {
		t.Fatal(err)
	}
	if got := listed(); !maps.Equal(got, live) {
		t.Fatalf("listed after the repair %v, want %v", got, live)
	}
	if d, err := e.rm.IndexMismatch(ctx, victim); err != nil || d != "" {
		t.Errorf("index of %s after the repair: %q, %v", victim, d, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func newID() string { return uuid.Must(uuid.NewV7()).String() }
