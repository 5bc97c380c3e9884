package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/rebuild"
)

// feedBackfill gives the events written before the feed existed their feed
// attributes (dynamo.BackfillFeed), scanning the events table in parallel
// segments. It is resumable by running it again: the scan skips (filters
// out) every event that has them, so a second run reads the table but
// writes only what the first left undone.
func (a *app) feedBackfill(ctx context.Context, segments int) error {
	if segments < 1 || segments > rebuild.MaxSegments {
		return usagef("--segments must be 1..%d", rebuild.MaxSegments)
	}
	if _, _, err := a.eventStore(ctx); err != nil {
		return err
	}
	events, _ := a.events()
	var scanned, written atomic.Int64
	errs := make([]error, segments)
	var wg sync.WaitGroup
	for seg := range segments {
		wg.Go(func() {
			errs[seg] = dynamo.BackfillFeed(ctx, a.ddb, events, seg, segments, nil, func(p dynamo.BackfillPage) error {
				scanned.Add(int64(p.Scanned))
				written.Add(int64(p.Written))
				return nil
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if a.asJSON {
		return a.printJSON(map[string]int64{"scanned": scanned.Load(), "written": written.Load()})
	}
	fmt.Fprintf(a.stdout, "scanned %s items of %s; %s events added to the feed\n", count(scanned.Load()), events, count(written.Load()))
	return nil
}
