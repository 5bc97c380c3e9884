package rebuild

import (
	"context"
	"slices"

	"github.com/chronicle-go/chronicle/domain/es"
)

// OpenWith makes the rebuilder open the personal fields of the events it
// reads with open (pii.Cipher.Open) before decoding them. The records
// themselves keep their data as stored (sealed), so that the activity it
// rebuilds holds nothing personal in clear; its events loader must read
// them as stored too (a store without a cipher).
func (r *Rebuilder) OpenWith(open func(ctx context.Context, recs []es.Record) error) { r.open = open }

// decode decodes rec's event, opened.
func (r *Rebuilder) decode(ctx context.Context, rec es.Record) (es.Event, error) {
	if r.open == nil {
		return r.registry.Decode(rec)
	}
	one := []es.Record{rec}
	if err := r.open(ctx, one); err != nil {
		return nil, err
	}
	return r.registry.Decode(one[0])
}

// decodeAll decodes every event of recs, opened.
func (r *Rebuilder) decodeAll(ctx context.Context, recs []es.Record) error {
	if r.open == nil {
		return r.registry.DecodeAll(recs)
	}
	opened := slices.Clone(recs)
	if err := r.open(ctx, opened); err != nil {
		return err
	}
	if err := r.registry.DecodeAll(opened); err != nil {
		return err
	}
	for i := range recs {
		recs[i].Event = opened[i].Event
	}
	return nil
}
