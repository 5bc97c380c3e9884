package pii

import (
	"context"
	"errors"
	"sync"

	"github.com/chronicle-go/chronicle/domain/es"
)

// WarmConcurrency bounds how many keys Warm reads at once: a batch of new
// subjects costs the time of one key read, not of one per subject, without
// sending the keys table and KMS a burst as wide as the batch.
const WarmConcurrency = 8

// Warm reads into the cache the keys that opening recs will need (those of
// the subjects of records with personal fields) and that it does not hold
// yet, WarmConcurrency at a time. A consumer calls it once per batch before
// it opens the batch's records one by one: each GetItem + KMS Decrypt of a
// new subject then overlaps the others instead of following them.
//
// Warm only fills the cache: what Open does with each record is unchanged
// (a forget in the batch still takes effect from its own record on). An
// error is the joined errors of the keys that could not be read; those
// subjects are simply not cached, so the records' own Open reads them
// again and fails as it did without Warm, and the others open from the
// cache. Callers may ignore the error.
func (c *Cipher) Warm(ctx context.Context, recs []es.Record) error {
	var ids []string
	for _, r := range recs {
		if len(c.fields(r.Type)) > 0 {
			ids = append(ids, r.AggregateID)
		}
	}
	return c.keys.Warm(ctx, ids)
}

// Warm reads into the cache the keys of ids it does not hold (each id
// once), WarmConcurrency at a time; see Cipher.Warm. A key read here never
// replaces a destroyed key in the cache: a subject this container has
// forgotten stays forgotten.
func (k *Keys) Warm(ctx context.Context, ids []string) error {
	var (
		seen = map[string]bool{}
		sem  = make(chan struct{}, WarmConcurrency)
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if _, ok := k.cached(id); ok {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, context.Cause(ctx))...)
		}
		wg.Go(func() {
			defer func() { <-sem }()
			e, err := k.read(ctx, id)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			k.rememberRead(e)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// rememberRead is remember for a key read from the table, unless the cache
// says the subject is forgotten by now: another goroutine of this
// container may have read its forget (forgetHere) while the read was on
// its way, and a destroyed key never comes back.
func (k *Keys) rememberRead(e entry) {
	e.raw = nil
	e.expires = k.cfg.Now().Add(k.cfg.CacheTTL)
	k.mu.Lock()
	defer k.mu.Unlock()
	if el, ok := k.byID[e.id]; ok {
		if el.Value.(*entry).state == stateForgotten {
			return
		}
		*el.Value.(*entry) = e
		k.order.MoveToFront(el)
		return
	}
	k.byID[e.id] = k.order.PushFront(&e)
	for k.order.Len() > k.cfg.CacheSize {
		last := k.order.Back()
		k.order.Remove(last)
		delete(k.byID, last.Value.(*entry).id)
	}
}
