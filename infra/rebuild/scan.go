package rebuild

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// page is what one Scan page of a segment gave: the streams it holds, each
// complete from version 1 up to the last event the page holds.
type page struct {
	streams [][]es.Record
	events  int // items the page held
	fresh   int // streams not continued from the previous page
	lastKey map[string]types.AttributeValue
}

// segmentScan reads one segment of the events table page by page and hands
// out each aggregate's stream whole from version 1. A Scan returns the items
// of one partition (an aggregate) together, in version order, and every
// partition belongs to one segment; a stream may straddle two pages. The
// last stream of a page is handed out as far as it goes and kept, so that
// the next page continues it without reading it again; a stream whose first
// event on a page is not version 1 and not a continuation (after a resume)
// gets its beginning read from the event store.
type segmentScan struct {
	r        *Rebuilder
	segment  int
	segments int
	pageSize int32
	decode   bool
	startKey map[string]types.AttributeValue
	done     bool
	carry    []es.Record // the last stream of the previous page
	// holdLast hands out the last stream of a page only once it is known
	// to be whole (audits); otherwise it is handed out as far as it goes,
	// and again, longer, if the next page continues it (rebuilds).
	holdLast bool
}

func (s *segmentScan) next(ctx context.Context) (page, error) {
	in := &dynamodb.ScanInput{
		TableName:         aws.String(s.r.table),
		Limit:             aws.Int32(s.pageSize),
		ExclusiveStartKey: s.startKey,
		ConsistentRead:    aws.Bool(true),
	}
	if s.segments > 1 {
		in.Segment, in.TotalSegments = aws.Int32(int32(s.segment)), aws.Int32(int32(s.segments))
	}
	out, err := s.r.client.Scan(ctx, in)
	if err != nil {
		return page{}, fmt.Errorf("scan segment %d/%d of %s: %w", s.segment, s.segments, s.r.table, err)
	}
	p := page{events: len(out.Items), lastKey: out.LastEvaluatedKey}
	for _, item := range out.Items {
		rec, err := dynamo.RecordFromItem(item)
		if err != nil {
			return page{}, fmt.Errorf("scan segment %d: %w", s.segment, err)
		}
		if s.decode {
			if rec.Event, err = s.r.decode(ctx, rec); err != nil {
				return page{}, err
			}
		}
		if n := len(p.streams); n > 0 && p.streams[n-1][0].AggregateID == rec.AggregateID {
			p.streams[n-1] = append(p.streams[n-1], rec)
			continue
		}
		p.streams = append(p.streams, []es.Record{rec})
	}
	p.fresh = len(p.streams)
	switch {
	case len(s.carry) == 0:
	case len(p.streams) > 0 && p.streams[0][0].AggregateID == s.carry[0].AggregateID:
		p.streams[0] = append(s.carry, p.streams[0]...)
		p.fresh--
	case s.holdLast:
		// The stream held back ended with the previous page.
		p.streams = append([][]es.Record{s.carry}, p.streams...)
	}
	for i, st := range p.streams {
		if first := st[0].Version; first > 1 {
			head, err := s.r.events.Load(ctx, st[0].AggregateID, 1, first-1)
			if err != nil {
				return page{}, fmt.Errorf("read the beginning of %s: %w", st[0].AggregateID, err)
			}
			if int64(len(head)) != first-1 {
				return page{}, fmt.Errorf("read the beginning of %s: %d events before v%d", st[0].AggregateID, len(head), first)
			}
			if s.decode {
				if err := s.r.decodeAll(ctx, head); err != nil {
					return page{}, err
				}
			}
			p.streams[i] = append(head, st...)
		}
	}
	s.carry = nil
	if len(p.lastKey) > 0 && len(p.streams) > 0 {
		s.carry = p.streams[len(p.streams)-1]
		if s.holdLast {
			p.streams = p.streams[:len(p.streams)-1]
		}
	}
	s.startKey, s.done = p.lastKey, len(p.lastKey) == 0
	return p, nil
}

// each runs fn on every stream of streams, with up to workers at once, and
// returns the first error.
func each(ctx context.Context, streams [][]es.Record, workers int, fn func(context.Context, []es.Record) error) error {
	if workers <= 1 || len(streams) <= 1 {
		for _, st := range streams {
			if err := fn(ctx, st); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan []es.Record)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(workers, len(streams)) {
		wg.Go(func() {
			for st := range work {
				if err := fn(ctx, st); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
	for _, st := range streams {
		if ctx.Err() != nil {
			break
		}
		work <- st
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
