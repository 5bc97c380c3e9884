package userviews

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// userView is the user-view projection: user.View per user, the email
// lookup of the address a live user holds, the user list's index keys.
type userView struct{}

func (userView) Name() string         { return ProjectionUserView }
func (userView) EventTypes() []string { return slices.Clone(userEvents) }
func (userView) Decodes() bool        { return true }

func (userView) Owns(logicalPK, sk string) bool {
	return (strings.HasPrefix(logicalPK, "user#") && (sk == "view" || sk == "applied#"+ProjectionUserView)) ||
		(strings.HasPrefix(logicalPK, "email#") && sk == "lookup")
}

func (userView) Read(ctx context.Context, rm *readmodel.Store, id string) (projection.State, int64, error) {
	return New(rm).UserViewForUpdate(ctx, id)
}

func (userView) Write(ctx context.Context, rm *readmodel.Store, before projection.State, applied int64, run []es.Record) error {
	v, ok := before.(user.View)
	if !ok {
		return fmt.Errorf("user view: state %T, want user.View", before)
	}
	return New(rm).SaveUserViewRun(ctx, v, applied, run)
}

func (userView) Put(ctx context.Context, rm *readmodel.Store, stream []es.Record, force bool) error {
	_, err := New(rm).PutUserView(ctx, FoldUser(stream), force)
	return err
}

// Audit compares the user's view (with its user-list index keys), its
// applied version and the email lookup with the fold of stream.
func (userView) Audit(ctx context.Context, rm *readmodel.Store, recs []es.Record) ([]projection.Difference, error) {
	st := New(rm)
	want := FoldUser(recs).View
	id, version := recs[0].AggregateID, recs[len(recs)-1].Version
	var diffs []projection.Difference
	got, applied, err := st.UserViewForUpdate(ctx, id)
	if err != nil {
		return nil, err
	}
	base := projection.Difference{AggregateID: id, StoreVersion: version, ViewVersion: got.Version}
	switch {
	case applied == 0 && got.Version == 0:
		d := base
		d.Kind, d.Detail = projection.DiffMissing, "no view"
		diffs = append(diffs, d)
	case got.Version < version:
		d := base
		d.Kind, d.Detail = projection.DiffBehind, fmt.Sprintf("view at v%d, event store at v%d", got.Version, version)
		diffs = append(diffs, d)
	case got.Version > version:
		d := base
		d.Kind, d.Detail = projection.DiffAhead, fmt.Sprintf("view at v%d, event store at v%d", got.Version, version)
		diffs = append(diffs, d)
	case !reflect.DeepEqual(normalize(got), normalize(want)):
		d := base
		d.Kind, d.Fields = projection.DiffFields, projection.FieldDiffs(want, got)
		diffs = append(diffs, d)
	}
	if got.Version > 0 {
		// A view written before the list index existed, or by a writer
		// that forgot its keys, is missing from GET /users.
		detail, err := st.IndexMismatch(ctx, id)
		if err != nil {
			return nil, err
		}
		if detail != "" {
			d := base
			d.Kind, d.Detail = DiffIndex, detail
			diffs = append(diffs, d)
		}
	}
	if applied != got.Version && !(applied == 0 && got.Version == 0) {
		d := base
		d.Kind, d.Detail = projection.DiffFields, fmt.Sprintf("applied version %d, view version %d", applied, got.Version)
		diffs = append(diffs, d)
	}
	if want.HeldEmail() != "" {
		holder, ok, err := st.UserIDByEmail(ctx, want.Email)
		if err != nil {
			return nil, err
		}
		if !ok || holder != id {
			d := base
			d.Kind = DiffLookup
			d.Detail = fmt.Sprintf("email %s looks up %q", want.Email, holder)
			if !ok {
				d.Detail = fmt.Sprintf("email %s has no lookup", want.Email)
			}
			diffs = append(diffs, d)
		}
	}
	return diffs, nil
}

// normalize makes times comparable: a view read back from JSON has UTC
// times without monotonic readings.
func normalize(v user.View) user.View {
	v.CreatedAt, v.UpdatedAt, v.DeletedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC(), v.DeletedAt.UTC()
	return v
}
