// Package memory is an in-memory es.Store for fast unit tests. It passes the
// same conformance suite as the DynamoDB store, limits included, so that what
// works here works there.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
)

// Store keeps streams, guards, idempotency records and snapshots in maps
// behind one mutex: an append is atomic because it holds the lock throughout.
type Store struct {
	mu          sync.RWMutex
	streams     map[string][]es.Record
	guards      map[string]string // key → owner
	idempotency map[string]es.IdempotencyRecord
	snapshots   map[string]es.Snapshot
	limits      es.Limits
	now         func() time.Time
}

var (
	_ es.Store      = (*Store)(nil)
	_ es.PageLoader = (*Store)(nil)
)

// New returns an empty store enforcing es.DefaultLimits.
func New() *Store {
	return &Store{
		streams:     map[string][]es.Record{},
		guards:      map[string]string{},
		idempotency: map[string]es.IdempotencyRecord{},
		snapshots:   map[string]es.Snapshot{},
		limits:      es.DefaultLimits,
		now:         time.Now,
	}
}

// Append implements es.EventStore.
func (s *Store) Append(ctx context.Context, req es.AppendRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	if err := s.limits.Check(req, itemSize); err != nil {
		return fmt.Errorf("append %s: %w", req.AggregateID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The key is checked first: a repeat must be told it is one, not that it
	// conflicts with its own first run.
	if r := req.Idempotency; r != nil {
		if old, ok := s.idempotency[r.Key]; ok && old.ExpiresAt.After(s.now()) {
			return fmt.Errorf("append %s: %w", req.AggregateID, es.ErrIdempotencyReplay)
		}
	}
	if cur := int64(len(s.streams[req.AggregateID])); cur != req.ExpectedVersion {
		return fmt.Errorf("append %s at v%d, stream is at v%d: %w", req.AggregateID, req.ExpectedVersion, cur, es.ErrConflict)
	}
	for _, g := range req.Claims {
		if owner, ok := s.guards[g.Key]; ok && owner != g.Owner {
			return fmt.Errorf("append %s: %w", req.AggregateID, &es.DuplicateError{Key: g.Key})
		}
	}
	for _, g := range req.Releases {
		if owner, ok := s.guards[g.Key]; ok && owner != g.Owner {
			return fmt.Errorf("append %s: %w", req.AggregateID, &es.ReleaseError{Key: g.Key})
		}
	}
	if r := req.Idempotency; r != nil {
		s.idempotency[r.Key] = *r
	}
	for _, g := range req.Claims {
		s.guards[g.Key] = g.Owner
	}
	for _, g := range req.Releases {
		delete(s.guards, g.Key)
	}
	for _, r := range req.Records {
		r.Event = nil // stores keep only what they would persist
		r.Data = slices.Clone(r.Data)
		s.streams[req.AggregateID] = append(s.streams[req.AggregateID], r)
	}
	return nil
}

// Load implements es.EventStore.
func (s *Store) Load(ctx context.Context, aggregateID string, from, to int64) ([]es.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	stream := s.streams[aggregateID]
	from = max(from, 1)
	end := int64(len(stream))
	if to > 0 {
		end = min(end, to)
	}
	if from > end {
		return nil, nil
	}
	out := make([]es.Record, end-from+1)
	copy(out, stream[from-1:end])
	return out, nil
}

// pageSize is the length of LoadPages' pages: a cancelled context stops a
// long load between two of them.
const pageSize = 256

// LoadPages implements es.PageLoader without copying: its pages are slices
// of the stored stream. An append never changes a stored record, and
// writes past the end of the slice read here, so no lock is held while fn
// runs.
func (s *Store) LoadPages(ctx context.Context, aggregateID string, from, to int64, fn func(page []es.Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	stream := s.streams[aggregateID]
	s.mu.RUnlock()
	from = max(from, 1)
	end := int64(len(stream))
	if to > 0 {
		end = min(end, to)
	}
	if from > end {
		return nil
	}
	recs := stream[from-1 : end : end] // capped: no append through it
	for len(recs) > 0 {
		n := min(len(recs), pageSize)
		if err := fn(recs[:n:n]); err != nil {
			return err
		}
		recs = recs[n:]
		if len(recs) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Idempotency implements es.EventStore.
func (s *Store) Idempotency(ctx context.Context, key string) (es.IdempotencyRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return es.IdempotencyRecord{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.idempotency[key]
	if !ok || !r.ExpiresAt.After(s.now()) {
		return es.IdempotencyRecord{}, false, nil
	}
	return r, true, nil
}

// Snapshot implements es.SnapshotStore.
func (s *Store) Snapshot(ctx context.Context, aggregateID string) (es.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return es.Snapshot{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap, ok := s.snapshots[aggregateID]
	return snap, ok, nil
}

// PutSnapshot implements es.SnapshotStore.
func (s *Store) PutSnapshot(ctx context.Context, snap es.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.snapshots[snap.AggregateID]; ok && old.Version >= snap.Version {
		return nil
	}
	snap.State = slices.Clone(snap.State)
	s.snapshots[snap.AggregateID] = snap
	return nil
}

// itemSize approximates what the record would weigh as a DynamoDB item:
// attribute values plus a fixed allowance for names and numbers.
func itemSize(r es.Record) int {
	m := r.Metadata
	return 128 + len(r.AggregateID) + len(r.ID) + len(r.AggregateType) + len(r.Type) + len(r.Data) +
		len(m.Actor) + len(m.Reason) + len(m.CorrelationID) + len(m.CausationID) + len(m.CommandID) + len(m.RequestID) +
		len(m.TraceParent)
}

// GuardOwner returns the aggregate that holds the unique value key, as
// dynamo.Store.GuardOwner does.
func (s *Store) GuardOwner(ctx context.Context, key string) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	owner, ok := s.guards[key]
	return owner, ok, nil
}
