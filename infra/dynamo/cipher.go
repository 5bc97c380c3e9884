package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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

// KeyPutter is a Cipher that can leave the storing of a new subject's data
// key to the append: SealAppend seals like Seal and SealSnapshot, and when
// it had to make the subject's key, returns the put of its key item, which
// the store adds to the append's transaction, and settle, which the store
// calls with the outcome: applied, or the item the put's condition failed
// on (taken: the subject had a key item after all; the store then seals
// again, with that key, without a key item). A create is then one KMS call
// and one DynamoDB call, and the key is stored if and only if the events
// are. pii.Cipher implements it.
type KeyPutter interface {
	SealAppend(ctx context.Context, recs []es.Record, snap *es.Snapshot) (
		sealed []es.Record, sealedSnap *es.Snapshot, key *types.Put,
		settle func(ctx context.Context, applied bool, taken map[string]types.AttributeValue) error, err error)
}

// keyWrite is the key item an append's transaction holds for its cipher
// (KeyPutter).
type keyWrite struct {
	put    *types.Put
	settle func(ctx context.Context, applied bool, taken map[string]types.AttributeValue) error
}

// WithCipher makes the store seal and open personal data with c.
func WithCipher(c Cipher) Option { return func(s *Store) { s.cipher = c } }

// seal returns req with its records and snapshot sealed and its guard keys
// hashed; req itself is left as it is. The guard keys are hashed while the
// records are sealed: in a cold container each needs a key of its own (the
// guard secret; the subject's data key, made by KMS for a create), and
// fetched one after the other they doubled the latency of a cold create.
// With keyInTx, a cipher that is a KeyPutter may return a new subject's key
// item for the append's transaction to hold.
func (s *Store) seal(ctx context.Context, req es.AppendRequest, keyInTx bool) (es.AppendRequest, *keyWrite, error) {
	if s.cipher == nil {
		return req, nil, nil
	}
	var (
		wg               sync.WaitGroup
		claims, releases []es.Guard
		claimErr, relErr error
	)
	if len(req.Claims)+len(req.Releases) > 0 {
		wg.Go(func() {
			claims, claimErr = s.guardKeys(ctx, req.Claims)
			if claimErr == nil {
				releases, relErr = s.guardKeys(ctx, req.Releases)
			}
		})
	} else {
		claims, releases = req.Claims, req.Releases
	}
	var (
		recs []es.Record
		key  *keyWrite
		err  error
	)
	if kp, ok := s.cipher.(KeyPutter); ok && keyInTx {
		var (
			snap   *es.Snapshot
			put    *types.Put
			settle func(context.Context, bool, map[string]types.AttributeValue) error
		)
		recs, snap, put, settle, err = kp.SealAppend(ctx, req.Records, req.Snapshot)
		if err == nil {
			req.Snapshot = snap
			if put != nil {
				key = &keyWrite{put: put, settle: settle}
			}
		}
	} else {
		recs, err = s.cipher.Seal(ctx, req.Records)
		if err == nil && req.Snapshot != nil {
			var snap es.Snapshot
			if snap, err = s.cipher.SealSnapshot(ctx, *req.Snapshot); err == nil {
				req.Snapshot = &snap
			}
		}
	}
	wg.Wait()
	if err = errors.Join(err, claimErr, relErr); err != nil {
		if key != nil {
			_ = key.settle(ctx, false, nil) // nothing sent: nothing to learn
		}
		return req, nil, err
	}
	req.Records, req.Claims, req.Releases = recs, claims, releases
	return req, key, nil
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
