package dynamo

import (
	"context"
	"fmt"

	"github.com/chronicle-go/chronicle/domain/es"
)

// Cipher keeps the personal fields of events and snapshots encrypted, and
// the unique values of the guards table unreadable (package pii). A store
// with one seals on the way in and opens on the way out, so that what it
// writes (and so the stream, the queues and the feed) holds no personal
// data in clear, while its callers see the events as they were decided.
type Cipher interface {
	Seal(ctx context.Context, recs []es.Record) ([]es.Record, error)
	SealSnapshot(ctx context.Context, s es.Snapshot) (es.Snapshot, error)
	Open(ctx context.Context, recs []es.Record) error
	OpenSnapshot(ctx context.Context, s *es.Snapshot) error
	GuardKey(ctx context.Context, key string) (string, error)
}

// WithCipher makes the store seal and open personal data with c.
func WithCipher(c Cipher) Option { return func(s *Store) { s.cipher = c } }

// seal returns req with its records and snapshot sealed and its guard keys
// hashed; req itself is left as it is.
func (s *Store) seal(ctx context.Context, req es.AppendRequest) (es.AppendRequest, error) {
	if s.cipher == nil {
		return req, nil
	}
	recs, err := s.cipher.Seal(ctx, req.Records)
	if err != nil {
		return req, err
	}
	req.Records = recs
	if req.Snapshot != nil {
		snap, err := s.cipher.SealSnapshot(ctx, *req.Snapshot)
		if err != nil {
			return req, err
		}
		req.Snapshot = &snap
	}
	if req.Claims, err = s.guardKeys(ctx, req.Claims); err != nil {
		return req, err
	}
	if req.Releases, err = s.guardKeys(ctx, req.Releases); err != nil {
		return req, err
	}
	return req, nil
}

func (s *Store) guardKeys(ctx context.Context, gs []es.Guard) ([]es.Guard, error) {
	if len(gs) == 0 {
		return gs, nil
	}
	out := make([]es.Guard, len(gs))
	for i, g := range gs {
		k, err := s.cipher.GuardKey(ctx, g.Key)
		if err != nil {
			return nil, fmt.Errorf("guard key: %w", err)
		}
		out[i] = es.Guard{Key: k, Owner: g.Owner}
	}
	return out, nil
}

// open opens recs in place.
func (s *Store) open(ctx context.Context, recs []es.Record) error {
	if s.cipher == nil || len(recs) == 0 {
		return nil
	}
	return s.cipher.Open(ctx, recs)
}

func (s *Store) openSnapshot(ctx context.Context, snap *es.Snapshot) error {
	if s.cipher == nil {
		return nil
	}
	return s.cipher.OpenSnapshot(ctx, snap)
}
