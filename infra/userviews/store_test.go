package userviews_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

var (
	registry = user.NewRegistry()
	t0       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func record(t *testing.T, id string, version int64, e es.Event, at time.Time, actor string) es.Record {
	t.Helper()
	typ, schema, data, err := registry.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return es.Record{
		ID: uuid.Must(uuid.NewV7()).String(), AggregateID: id, AggregateType: user.AggregateType,
		Version: version, Type: typ, SchemaVersion: schema, OccurredAt: at, Data: data,
		Metadata: es.Metadata{Actor: actor}, Event: e,
	}
}

// project applies recs to the user view in order, as the projector does.
func project(t *testing.T, s *userviews.Store, recs ...es.Record) {
	t.Helper()
	for _, rec := range recs {
		before, applied, err := s.UserViewForUpdate(t.Context(), rec.AggregateID)
		if err != nil {
			t.Fatal(err)
		}
		if applied != rec.Version-1 {
			t.Fatalf("applied %d before v%d", applied, rec.Version)
		}
		if err := s.SaveUserView(t.Context(), before, user.ApplyView(before, rec), rec); err != nil {
			t.Fatal(err)
		}
	}
}

func lookup(t *testing.T, s *userviews.Store, email string) string {
	t.Helper()
	id, ok, err := s.UserIDByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return id
}

func TestUserViewLifecycle(t *testing.T) {
	t.Parallel()
	s := userviews.New(readmodeltest.Store(t))
	ctx := t.Context()
	id := uuid.NewString()
	recs := []es.Record{
		record(t, id, 1, user.Created{Name: "Ada", Email: "ada@example.com", Sub: "sub-ada"}, t0, "admin"),
		record(t, id, 2, user.Renamed{Name: "Ada L."}, t0.Add(time.Second), "sub-ada"),
		record(t, id, 3, user.EmailChanged{Email: "ada@lovelace.org", Previous: "ada@example.com"}, t0.Add(2*time.Second), "sub-ada"),
		record(t, id, 4, user.Suspended{Reason: "spam"}, t0.Add(3*time.Second), "admin"),
	}
	project(t, s, recs...)

	var want user.View
	for _, r := range recs {
		want = user.ApplyView(want, r)
	}
	got, ok, err := s.UserView(ctx, id)
	if err != nil || !ok {
		t.Fatalf("UserView: %v, %v", ok, err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("view:\ngot  %+v\nwant %+v", got, want)
	}
	if got := lookup(t, s, "ada@example.com"); got != "" {
		t.Errorf("old address still held by %q", got)
	}
	if got := lookup(t, s, "ADA@lovelace.org"); got != id {
		t.Errorf("suspended user's address held by %q, want %q", got, id)
	}

	project(t, s, record(t, id, 5, user.Deleted{Reason: "asked"}, t0.Add(4*time.Second), "admin"))
	got, ok, err = s.UserView(ctx, id)
	if err != nil || !ok || got.Status != user.StatusDeleted || got.DeletedBy != "admin" || got.Version != 5 {
		t.Errorf("deleted view = %+v, %v, %v", got, ok, err)
	}
	if got := lookup(t, s, "ada@lovelace.org"); got != "" {
		t.Errorf("deleted user's address held by %q", got)
	}
	applied, err := s.AppliedVersions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(map[string]int64{userviews.ProjectionUserView: 5}, applied) {
		t.Errorf("applied versions:\ngot  %+v\nwant %+v", applied, map[string]int64{userviews.ProjectionUserView: 5})
	}
	if _, ok, err := s.UserView(ctx, uuid.NewString()); ok || err != nil {
		t.Errorf("unknown user: %v, %v", ok, err)
	}
}

func TestSaveUserViewIsConditional(t *testing.T) {
	t.Parallel()
	s := userviews.New(readmodeltest.Store(t))
	ctx := t.Context()
	id := uuid.NewString()
	v1 := record(t, id, 1, user.Created{Name: "Bo", Email: "bo@example.com"}, t0, "")
	project(t, s, v1)

	// A second delivery of v1, decided from the state before it, finds v1
	// applied: what it meant to write is there (as for the SDK's retry of
	// a save whose reply was lost), so it succeeds and writes nothing.
	if err := s.SaveUserView(ctx, user.View{}, user.ApplyView(user.View{}, v1), v1); err != nil {
		t.Errorf("duplicate save: %v, want success", err)
	}
	// Another event at v1 is a conflict.
	other := record(t, id, 1, user.Created{Name: "Other", Email: "other@example.com"}, t0, "")
	if err := s.SaveUserView(ctx, user.View{}, user.ApplyView(user.View{}, other), other); !errors.Is(err, readmodel.ErrConflict) {
		t.Errorf("save of another v1: %v, want ErrConflict", err)
	}
	// v3 without v2.
	view, _, _ := s.UserViewForUpdate(ctx, id)
	v3 := record(t, id, 3, user.Renamed{Name: "Bob"}, t0.Add(time.Second), "")
	if err := s.SaveUserView(ctx, view, user.ApplyView(view, v3), v3); !errors.Is(err, readmodel.ErrConflict) {
		t.Errorf("save past a gap: %v, want ErrConflict", err)
	}
	got, applied, err := s.UserViewForUpdate(ctx, id)
	if err != nil || applied != 1 || got.Name != "Bo" {
		t.Errorf("after refused saves: %+v at %d, %v", got, applied, err)
	}
}

// An address passes from B to A. The lookups of the two users are written
// from different message groups, so either user's events may be projected
// first; the holder must end up being A either way.
func TestEmailLookupHandover(t *testing.T) {
	t.Parallel()
	for _, aFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("A first %v", aFirst), func(t *testing.T) {
			t.Parallel()
			s := userviews.New(readmodeltest.Store(t))
			a, b := uuid.NewString(), uuid.NewString()
			bCreated := record(t, b, 1, user.Created{Name: "B", Email: "shared@example.com"}, t0, "")
			bChanged := record(t, b, 2, user.EmailChanged{Email: "b@example.com", Previous: "shared@example.com"}, t0.Add(time.Second), "")
			aCreated := record(t, a, 1, user.Created{Name: "A", Email: "shared@example.com"}, t0.Add(2*time.Second), "")
			if aFirst {
				project(t, s, aCreated)
				project(t, s, bCreated, bChanged)
			} else {
				project(t, s, bCreated)
				project(t, s, aCreated)
				project(t, s, bChanged)
			}
			if got := lookup(t, s, "shared@example.com"); got != a {
				t.Errorf("shared address held by %q, want A %q", got, a)
			}
			if got := lookup(t, s, "b@example.com"); got != b {
				t.Errorf("B's new address held by %q, want B %q", got, b)
			}
		})
	}
}

func TestActorActivityPaging(t *testing.T) {
	t.Parallel()
	s := userviews.New(readmodeltest.Store(t))
	ctx := t.Context()
	actor := "sub-" + uuid.NewString()
	var recs []es.Record
	for i := range 3 {
		id := uuid.NewString()
		recs = append(recs, record(t, id, 1, user.Created{Name: "U", Email: id + "@example.com"}, t0.Add(time.Duration(i)*time.Minute), actor))
		for v := int64(2); v <= 8; v++ {
			recs = append(recs, record(t, id, v, user.Renamed{Name: fmt.Sprint("U", v)}, t0.Add(time.Duration(i)*time.Minute+time.Duration(v)*time.Second), actor))
		}
	}
	noActor := record(t, uuid.NewString(), 1, user.Created{Name: "Sys", Email: "sys@example.com"}, t0, "")
	for _, r := range append(recs, noActor) {
		if err := s.SaveActivity(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveActivity(ctx, recs[0]); !errors.Is(err, readmodel.ErrConflict) {
		t.Errorf("duplicate activity: %v, want ErrConflict", err)
	}
	if v, err := s.ActivityApplied(ctx, noActor.AggregateID); v != 1 || err != nil {
		t.Errorf("applied without an actor: %d, %v", v, err)
	}

	var got []es.Record
	cursor := ""
	pages := 0
	for {
		page, next, err := s.ActorActivity(ctx, actor, 10, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if pages != 3 || len(got) != len(recs) {
		t.Fatalf("%d records in %d pages, want %d in 3", len(got), pages, len(recs))
	}
	for i, r := range got {
		want := recs[len(recs)-1-i] // newest first
		want.Event = nil
		if !reflect.DeepEqual(want, r) {
			t.Fatalf("record %d:\ngot  %+v\nwant %+v", i, r, want)
		}
	}
	// An exact page: no cursor to an empty page.
	page, next, err := s.ActorActivity(ctx, actor, len(recs), "")
	if err != nil || len(page) != len(recs) || next != "" {
		t.Errorf("exact page: %d records, next %q, %v", len(page), next, err)
	}

	_, other, err := s.ActorActivity(ctx, actor, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"%%%", "bm90IGpzb24", other} {
		if _, _, err := s.ActorActivity(ctx, "someone-else", 10, c); !errors.Is(err, readmodel.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
	if page, next, err := s.ActorActivity(ctx, "nobody", 0, ""); len(page) != 0 || next != "" || err != nil {
		t.Errorf("unknown actor: %v, %q, %v", page, next, err)
	}
}
