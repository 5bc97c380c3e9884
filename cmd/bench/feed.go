//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// The feed group: what the durable feed costs the append, how
// fast it reads, and how fast a projection catches up from it, each
// against its floor in the same run, interleaved.
const (
	secFeed    = "Feed"
	pkgRebuild = "infra/rebuild"
	feedRounds = 3
)

func init() {
	figureBenchmarks[pkgDynamo] = append(figureBenchmarks[pkgDynamo], "BenchmarkFeedFigures")
	figureBenchmarks[pkgRebuild] = append(figureBenchmarks[pkgRebuild], "BenchmarkFeedCatchUp")
}

// feedGroup runs the feed's benchmarks on emulators of their own: on the
// emulators the others group shares, after the other benchmarks of
// infra/dynamo, the feed benchmark was answered a 500 (see feedTable in
// infra/dynamo's feed_bench_test.go).
func (b *bench) feedGroup() group {
	return group{
		name: "feed", measures: "append p50 with the feed's index vs without; reading the whole feed vs a paged Query; a projection's catch-up from the feed vs the parallel-scan rebuild",
		tables: "events tables with and without the feed's index, no stream; a read model as template.yaml's",
		rounds: fmt.Sprintf("%d, each 300 appends to each table interleaved, 3 reads of 2,000+ events each way, and, once, 3 rebuilds of 10,000 events each way (order alternating; the median)", feedRounds),
		aws:    true,
		needs:  []string{pkgDynamo, pkgRebuild},
		run: func(ctx context.Context, env []string, log io.Writer) error {
			figs := b.runBench(ctx, pkgDynamo, invocation{bench: "^BenchmarkFeedFigures$", benchtime: "1x", count: feedRounds, timeout: 15 * time.Minute}, env, log, 0)
			catchUp := b.runBench(ctx, pkgRebuild, invocation{bench: "^BenchmarkFeedCatchUp$", benchtime: "1x", count: 1, timeout: 15 * time.Minute}, env, log, 0)
			return errors.Join(figs, catchUp)
		},
	}
}

// feedSpecs are the feed's figures.
func feedSpecs() []spec {
	return []spec{
		{section: secFeed, name: "Append one event, p50, with the feed's index", unit: "ms", pkg: pkgDynamo, bench: "BenchmarkFeedFigures",
			metric: "append-p50-ms-feed", floorMetric: "append-p50-ms-plain", floorName: "the same append, table without the index",
			target: func(f Figure, _ []Figure) (string, *bool) { return "≤ 1.3× without", met(f.Ratio <= 1.3) }},
		{section: secFeed, name: "Read every event in order (ReadFeed, pages of 1,000 over 16 shards)", unit: "events/s", pkg: pkgDynamo,
			bench: "BenchmarkFeedFigures", metric: "feed-events/s", floorMetric: "query-events/s", floorName: rawQuery + " of one partition holding as many",
			higherIsBetter: true},
		{section: secFeed, name: "Catch-up of a projection (user view) from the feed, in commit order", unit: "events/s", pkg: pkgRebuild,
			bench: "BenchmarkFeedCatchUp", metric: "feed-events/s", floorMetric: "scan-events/s", floorName: "parallel-scan rebuild, 4 segments (no order)",
			higherIsBetter: true},
	}
}
