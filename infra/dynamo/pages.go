package dynamo

import (
	"context"
	"fmt"

	"github.com/chronicle-go/chronicle/domain/es"
)

var _ es.PageLoader = (*Store)(nil)

// LoadPages implements es.PageLoader: the consistent, paged Query of Load,
// each page handed to fn as it arrives, so that a load decodes and folds
// one page while it holds no other, and stops reading when fn says so.
func (s *Store) LoadPages(ctx context.Context, aggregateID string, from, to int64, fn func(page []es.Record) error) error {
	from = max(from, 1)
	if to > 0 && to < from {
		return nil
	}
	in := s.streamQuery(aggregateID, from, to)
	var page []es.Record // reused: fn keeps no page
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("load %s from v%d: %w", aggregateID, from, err)
		}
		page = page[:0]
		for _, item := range out.Items {
			r, err := RecordFromItem(item)
			if err != nil {
				return fmt.Errorf("load %s: %w", aggregateID, err)
			}
			page = append(page, r)
		}
		if len(page) > 0 {
			if err := s.open(ctx, page); err != nil {
				return fmt.Errorf("load %s: %w", aggregateID, err)
			}
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
