package userviews_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// saveRun folds recs into the stored view of their user and writes them as
// one run, as the projector does.
func saveRun(t *testing.T, s *userviews.Store, recs ...es.Record) error {
	t.Helper()
	before, applied, err := s.UserViewForUpdate(t.Context(), recs[0].AggregateID)
	if err != nil {
		t.Fatal(err)
	}
	return s.SaveUserViewRun(t.Context(), before, applied, recs)
}

// A run is written on condition that the view is still where it was read,
// and a run that does not follow the applied version is refused.
func TestSaveUserViewRunIsConditional(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := userviews.New(readmodeltest.Store(t))
	id := uuid.NewString()
	v1 := record(t, id, 1, user.Created{Name: "Ada", Email: id + "@example.com"}, t0, "")
	v2 := record(t, id, 2, user.Renamed{Name: "Ada L."}, t0.Add(time.Second), "")
	v3 := record(t, id, 3, user.Renamed{Name: "Ada Lovelace"}, t0.Add(2*time.Second), "")
	if err := saveRun(t, s, v1, v2); err != nil {
		t.Fatal(err)
	}
	// A writer that read the view before the run lost the race.
	if err := s.SaveUserViewRun(ctx, user.View{}, 0, []es.Record{v1, v2, v3}); !errors.Is(err, readmodel.ErrConflict) {
		t.Errorf("stale run: %v, want ErrConflict", err)
	}
	view, _, err := s.UserViewForUpdate(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveUserViewRun(ctx, view, 2, []es.Record{v1, v3}); err == nil || errors.Is(err, readmodel.ErrConflict) {
		t.Errorf("run v1, v3 over v2: %v, want a refusal", err)
	}
	if err := s.SaveUserViewRun(ctx, view, 2, []es.Record{v3}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.UserView(ctx, id)
	if want := user.ApplyView(user.ApplyView(user.ApplyView(user.View{}, v1), v2), v3); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("view %+v, %v; want %+v", got, err, want)
	}
}

// A user who leaves an address and takes it back within one run claims it
// again at the later date, as event-by-event writes would: another user who
// held it in between, and whose claim the projector saw first, no longer
// holds it.
func TestSaveUserViewRunReclaimsAnAddressTakenBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := userviews.New(readmodeltest.Store(t))
	x, y := uuid.NewString(), uuid.NewString()
	a, b := "a-"+x+"@example.com", "b-"+x+"@example.com"
	if err := saveRun(t, s, record(t, x, 1, user.Created{Name: "X", Email: a}, t0, "")); err != nil {
		t.Fatal(err)
	}
	// X leaves a at t0+1s, Y holds it from t0+2s to t0+3s, X takes it
	// back at t0+4s; the projector sees Y's claim first.
	if err := saveRun(t, s, record(t, y, 1, user.Created{Name: "Y", Email: a}, t0.Add(2*time.Second), "")); err != nil {
		t.Fatal(err)
	}
	if holder, _, _ := s.UserIDByEmail(ctx, a); holder != y {
		t.Fatalf("holder of a after Y's claim: %q, want Y", holder)
	}
	run := []es.Record{
		record(t, x, 2, user.EmailChanged{Email: b, Previous: a}, t0.Add(time.Second), ""),
		record(t, x, 3, user.EmailChanged{Email: a, Previous: b}, t0.Add(4*time.Second), ""),
	}
	if err := saveRun(t, s, run...); err != nil {
		t.Fatal(err)
	}
	if holder, ok, err := s.UserIDByEmail(ctx, a); err != nil || !ok || holder != x {
		t.Errorf("holder of a: %q, %v, %v; want X", holder, ok, err)
	}
	if holder, ok, _ := s.UserIDByEmail(ctx, b); ok {
		t.Errorf("b, held only inside the run, is held by %q", holder)
	}
	// Y's release of a, seen now, leaves X's claim alone.
	if err := saveRun(t, s, record(t, y, 2, user.EmailChanged{Email: "c-" + y + "@example.com", Previous: a}, t0.Add(3*time.Second), "")); err != nil {
		t.Fatal(err)
	}
	if holder, ok, err := s.UserIDByEmail(ctx, a); err != nil || !ok || holder != x {
		t.Errorf("holder of a after Y's release: %q, %v, %v; want X", holder, ok, err)
	}
}

// SaveActivityRun writes every row of a run (more than one BatchWriteItem
// holds) and the applied version once; a stale run is ErrConflict and
// writes no version.
func TestSaveActivityRun(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := userviews.New(readmodeltest.Store(t))
	id, actor := uuid.NewString(), "sub-"+uuid.NewString()
	var recs []es.Record
	for v := int64(1); v <= 30; v++ {
		e := es.Event(user.Renamed{Name: "Ada"})
		if v == 1 {
			e = user.Created{Name: "Ada", Email: id + "@example.com"}
		}
		who := actor
		if v%10 == 0 {
			who = "" // no actor: no row
		}
		recs = append(recs, record(t, id, v, e, t0.Add(time.Duration(v)*time.Second), who))
	}
	if err := s.SaveActivityRun(ctx, 0, recs[:2]); err != nil {
		t.Fatal(err)
	}
	// The same run again is its own write found again (as after a lost
	// reply): done. A run that the stored version has passed is a conflict.
	if err := s.SaveActivityRun(ctx, 0, recs[:2]); err != nil {
		t.Errorf("the same run again: %v, want nil", err)
	}
	if err := s.SaveActivityRun(ctx, 0, recs[:1]); !errors.Is(err, readmodel.ErrConflict) {
		t.Errorf("stale run: %v, want ErrConflict", err)
	}
	if err := s.SaveActivityRun(ctx, 2, recs[2:]); err != nil {
		t.Fatal(err)
	}
	acts, _, err := s.ActorActivity(ctx, actor, userviews.MaxLimit, "")
	if err != nil || len(acts) != 27 {
		t.Errorf("activity: %d rows, %v; want 27", len(acts), err)
	}
	if v, err := s.ActivityApplied(ctx, id); err != nil || v != 30 {
		t.Errorf("applied v%d, %v; want v30", v, err)
	}
}

// The run writes survive an SDK retry after a lost reply: each write's
// reply is lost until the SDK's last attempt (faults.LostReplies), and each
// run must answer as one successful call does.
func TestRunLostReplies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	table := readmodeltest.Table(t)
	s := userviews.New(readmodel.New(dynamodb.NewFromConfig(faults.WithLostReplies(awstest.Config(t), faults.New(11), 1)), table))
	id, actor := uuid.NewString(), "sub-"+uuid.NewString()
	recs := []es.Record{
		record(t, id, 1, user.Created{Name: "Ada", Email: "ada-" + id + "@example.com"}, t0, actor),
		record(t, id, 2, user.EmailChanged{Email: "lovelace-" + id + "@example.com", Previous: "ada-" + id + "@example.com"}, t0.Add(time.Second), actor),
		record(t, id, 3, user.Renamed{Name: "Ada L."}, t0.Add(2*time.Second), ""),
	}
	if err := saveRun(t, s, recs...); err != nil {
		t.Errorf("view run: %v", err)
	}
	if err := s.SaveActivityRun(ctx, 0, recs); err != nil {
		t.Errorf("activity run: %v", err)
	}
	var want user.View
	for _, r := range recs {
		want = user.ApplyView(want, r)
	}
	if got, ok, err := s.UserView(ctx, id); err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("view: %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if holder, ok, err := s.UserIDByEmail(ctx, "lovelace-"+id+"@example.com"); err != nil || !ok || holder != id {
		t.Errorf("lookup: %q, %v, %v", holder, ok, err)
	}
	acts, _, err := s.ActorActivity(ctx, actor, 10, "")
	if err != nil || len(acts) != 2 {
		t.Errorf("activity: %d rows, %v; want 2", len(acts), err)
	}
}
