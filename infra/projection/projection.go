// Package projection is what the framework knows of a projection: a name,
// the events it consumes, and the four ways its rows in the read-model
// table (package readmodel) are written or checked. The projector, the
// rebuild and the audit loop over the projections a service registers and
// never branch on a projection's name, so "where is a projection updated?"
// has one answer: its own implementation of this interface.
//
// The live path (the projector, and a rebuild that reads the feed) reads an
// aggregate's state once, lines up the events it has not applied and hands
// them to Write, which folds them and writes once, on condition that the
// applied version is still the one read: one write per aggregate per batch
// per projection (docs/projector-coalescing.md). The batch path (a rebuild
// from the events table, the repair of one aggregate) hands Put a whole
// stream. The audit hands Audit a whole stream and gets back how the rows
// differ from its fold.
package projection

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// State is what a projection read of one aggregate for a live write: the
// projector hands it back to the same projection's Write untouched.
type State any

// Projection is one read model kept from the events of one kind of
// aggregate. Every method takes the generation of the read-model table to
// read or write (a *readmodel.Store pinned or resolving its active
// generation); an implementation holds no store of its own, so that one
// value serves every generation. Implementations are safe for concurrent
// use.
type Projection interface {
	// Name is the projection's name: the suffix of its applied-version and
	// checkpoint keys, the name the rebuild and the CLI take.
	Name() string
	// EventTypes are the event types the projection consumes; nil: every
	// event. The projector, the rebuild and the audit hand it only the
	// streams that hold an event it consumes (Takes): the User service's
	// view never sees a team's stream, nor a team's view a user's. Within
	// a stream it takes, an event it does not consume still moves its
	// applied version.
	EventTypes() []string
	// Decodes reports whether the projection reads the events' payloads
	// (record.Event), so that a rebuild decodes the streams it hands it.
	// One that keeps records as stored does not.
	Decodes() bool
	// Owns reports whether a row of the table, by its partition key without
	// generation (readmodel.SplitGeneration) and its sort key, belongs to
	// the projection: what Prune deletes of old generations.
	Owns(logicalPK, sk string) bool

	// Read returns what the projection keeps of aggregateID and the version
	// it applied (0: none), read consistently: the start of a live write.
	Read(ctx context.Context, rm *readmodel.Store, aggregateID string) (State, int64, error)
	// Write folds run (consecutive events of one aggregate from applied+1,
	// in order, decoded when Decodes) into before, what Read returned at
	// applied, and writes the result once, on condition that the applied
	// version is still applied: readmodel.ErrConflict otherwise. A lost
	// reply's retry finds its own write and succeeds.
	Write(ctx context.Context, rm *readmodel.Store, before State, applied int64, run []es.Record) error
	// Put writes the fold of stream (an aggregate's events from version 1,
	// in order, decoded when Decodes) unless the rows are already at or
	// past its last version; with force, rows at that version are written
	// over (a repair). It serves rebuilds and repairs.
	Put(ctx context.Context, rm *readmodel.Store, stream []es.Record, force bool) error
	// Audit compares the rows of stream's aggregate with the fold of
	// stream (decoded) and lists how they differ: none when they agree.
	Audit(ctx context.Context, rm *readmodel.Store, stream []es.Record) ([]Difference, error)
}

// Kinds of Difference every projection may report; a projection adds its
// own (package userviews: lookup, activity, index).
const (
	DiffMissing = "missing" // the projection has no row for the aggregate
	DiffBehind  = "behind"  // the row is at an older version than the event store
	DiffAhead   = "ahead"   // the row is at a version the event store does not have
	DiffFields  = "fields"  // same version, other content
)

// Difference is one way a projection's row differs from the fold of the
// aggregate's events.
type Difference struct {
	AggregateID  string      `json:"aggregateId"`
	Kind         string      `json:"kind"`
	StoreVersion int64       `json:"eventStoreVersion"`
	ViewVersion  int64       `json:"viewVersion"`
	Fields       []FieldDiff `json:"fields,omitempty"`
	Detail       string      `json:"detail,omitempty"`
}

// FieldDiff is one field of a view that differs: what the fold says
// (Want) and what the row holds (Got), as JSON.
type FieldDiff struct {
	Field string          `json:"field"`
	Want  json.RawMessage `json:"want"`
	Got   json.RawMessage `json:"got"`
}

// FieldDiffs lists the top-level JSON fields of two values (a fold and
// what a projection stored) that differ, by name: what an audit reports of
// a row that is there but wrong.
func FieldDiffs(want, got any) []FieldDiff {
	w, g := jsonFields(want), jsonFields(got)
	keys := map[string]bool{}
	for k := range w {
		keys[k] = true
	}
	for k := range g {
		keys[k] = true
	}
	var out []FieldDiff
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if string(w[k]) != string(g[k]) {
			out = append(out, FieldDiff{Field: k, Want: orNull(w[k]), Got: orNull(g[k])})
		}
	}
	return out
}

// jsonFields is v's JSON object by field; nil when v is not one.
func jsonFields(v any) map[string]json.RawMessage {
	b, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return m
}

func orNull(b json.RawMessage) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return b
}

// Names lists the names of ps, in their order.
func Names(ps []Projection) []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name()
	}
	return names
}

// Find returns the projection of ps named name.
func Find(ps []Projection, name string) (Projection, bool) {
	for _, p := range ps {
		if p.Name() == name {
			return p, true
		}
	}
	return nil, false
}

// Consumes reports whether p consumes events of type eventType: its
// EventTypes list it, or are nil (every event).
func Consumes(p Projection, eventType string) bool {
	types := p.EventTypes()
	return types == nil || slices.Contains(types, eventType)
}

// Takes reports whether p is to be handed recs, events of one aggregate:
// whether one of them is of a type p consumes. Several kinds of aggregate
// share one queue, one events table and one feed, so every caller of a
// projection's methods asks this first: a stream of another kind is not the
// projection's, neither to write (no row for it) nor to audit (no
// difference).
func Takes(p Projection, recs []es.Record) bool {
	types := p.EventTypes()
	if types == nil {
		return len(recs) > 0
	}
	for _, r := range recs {
		if slices.Contains(types, r.Type) {
			return true
		}
	}
	return false
}
