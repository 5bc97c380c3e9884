package es

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Store is what the kernel needs from a persistence adapter. Every
// implementation passes the conformance suite in package estest.
type Store interface {
	EventStore
	SnapshotStore
}

// EventStore appends and loads event streams.
type EventStore interface {
	// Append writes req atomically: all its events, guard claims and releases
	// and its idempotency record, or nothing. Errors wrap ErrConflict,
	// ErrDuplicate (as *DuplicateError), ErrIdempotencyReplay, ErrTooLarge,
	// ErrInvalidAppend, or ErrBusy when the store cancelled the append only
	// because concurrent operations held its items. When several parts fail,
	// the first of these wins: idempotency replay, version conflict,
	// duplicate value, release of a value held by another (*ReleaseError).
	//
	// ExpectedVersion must be the version the caller loaded: stores detect a
	// version already taken, not one skipped. The kernel only appends after
	// loading, so streams never have gaps.
	Append(ctx context.Context, req AppendRequest) error
	// Load returns the records of a stream with from <= version <= to, in
	// version order; to <= 0 means no upper bound. An unknown stream is empty.
	Load(ctx context.Context, aggregateID string, from, to int64) ([]Record, error)
	// Idempotency returns the live record stored under key, if any.
	Idempotency(ctx context.Context, key string) (IdempotencyRecord, bool, error)
}

// SnapshotStore keeps the latest snapshot of each aggregate.
type SnapshotStore interface {
	// Snapshot returns the latest snapshot of an aggregate, if any.
	Snapshot(ctx context.Context, aggregateID string) (Snapshot, bool, error)
	// PutSnapshot stores s unless a snapshot at the same or a later version is there.
	PutSnapshot(ctx context.Context, s Snapshot) error
}

// AppendRequest is one unit of work: new events at the next versions of one
// stream, the unique values claimed and released with them, and the
// idempotency record of the request that caused them.
type AppendRequest struct {
	AggregateID     string
	ExpectedVersion int64    // version of the stream before these events
	Records         []Record // versions ExpectedVersion+1, +2, ...
	Claims          []Guard  // unique values to take (or keep) for Owner
	Releases        []Guard  // unique values Owner gives up
	Idempotency     *IdempotencyRecord
	// Snapshot, set only for a store that keeps snapshots in the stream
	// (StreamSnapshots), is the state after the last record, stored with it.
	Snapshot *Snapshot
}

// StreamSnapshots is a Store that keeps snapshots in the event stream
// itself, each with the event it follows, so that the latest snapshot and
// the events after it come back in one read. For such a store the kernel
// sets AppendRequest.Snapshot (the snapshot is then written with its event,
// in the same request) instead of calling PutSnapshot, and loads the
// current state with LoadLatest.
type StreamSnapshots interface {
	// LoadLatest returns the latest snapshot of the stream up to version
	// to (to <= 0: no bound) that usable accepts, if any, and the records
	// after it up to to, in version order (every record up to to when
	// there is none). pageHint is how many records the caller expects
	// after that snapshot: a store reads that many and one more in its
	// first request.
	LoadLatest(ctx context.Context, aggregateID string, to int64, usable func(Snapshot) bool, pageHint int) (Snapshot, bool, []Record, error)
}

// Guard is a unique-value reservation: Key ("email#alice@example.com") held by Owner.
type Guard struct {
	Key   string
	Owner string // aggregate id
}

// IdempotencyRecord remembers the first outcome of a request made with an
// idempotency key, so that a repeat returns it instead of writing again.
type IdempotencyRecord struct {
	Key         string
	RequestHash string // hash of what identifies the request (route, body)
	AggregateID string
	Version     int64 // version after the first request
	CreatedAt   time.Time
	ExpiresAt   time.Time // stores may keep it to the second, rounded up
}

// Snapshot is an aggregate's state at a version, encoded as JSON. A snapshot
// whose SchemaVersion differs from the decider's StateSchema is ignored.
type Snapshot struct {
	AggregateID string
	// AggregateType is the decider's Type: what the state is the state
	// of, for adapters whose handling depends on it (which fields of the
	// state are personal data). Empty in snapshots stored before it was
	// recorded.
	AggregateType string
	Version       int64
	SchemaVersion int
	State         json.RawMessage
	UpdatedAt     time.Time // OccurredAt of the event at Version
	TakenAt       time.Time
}

// Validate checks the shape of an append request: what every store requires
// before it writes anything.
func (req AppendRequest) Validate() error {
	if req.AggregateID == "" {
		return fmt.Errorf("append: empty aggregate id: %w", ErrInvalidAppend)
	}
	if req.ExpectedVersion < 0 {
		return fmt.Errorf("append %s: negative expected version: %w", req.AggregateID, ErrInvalidAppend)
	}
	if len(req.Records) == 0 && req.Idempotency == nil && len(req.Claims) == 0 && len(req.Releases) == 0 {
		return fmt.Errorf("append %s: nothing to write: %w", req.AggregateID, ErrInvalidAppend)
	}
	for i, r := range req.Records {
		want := req.ExpectedVersion + int64(i) + 1
		if r.AggregateID != req.AggregateID || r.Version != want || r.ID == "" || r.Type == "" {
			return fmt.Errorf("append %s: record %d must have id, type, aggregate id and version %d: %w",
				req.AggregateID, i, want, ErrInvalidAppend)
		}
	}
	seen := map[string]bool{}
	for _, g := range append(append([]Guard{}, req.Claims...), req.Releases...) {
		if g.Key == "" || g.Owner == "" || seen[g.Key] {
			return fmt.Errorf("append %s: guard %q empty or listed twice: %w", req.AggregateID, g.Key, ErrInvalidAppend)
		}
		seen[g.Key] = true
	}
	if sn := req.Snapshot; sn != nil && (len(req.Records) == 0 || sn.AggregateID != req.AggregateID ||
		sn.Version != req.ExpectedVersion+int64(len(req.Records))) {
		return fmt.Errorf("append %s: a snapshot must be of the last record's version: %w", req.AggregateID, ErrInvalidAppend)
	}
	if req.Idempotency != nil && req.Idempotency.Key == "" {
		return fmt.Errorf("append %s: empty idempotency key: %w", req.AggregateID, ErrInvalidAppend)
	}
	return nil
}
