//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// secScaling is the report's section of the scaling group:
// does the read side keep up with the write side, by projector concurrency.
const secScaling = "Scaling: the read side against the write side"

// scalingLevels are the projector concurrencies BenchmarkScaling measures.
var scalingLevels = []int{1, 2, 5, 10}

// scalingGroup runs cmd/local/loadtest's BenchmarkScaling once: its levels
// run one after the other on one stack, each with its floor.
func (b *bench) scalingGroup() group {
	return group{
		name: "scaling", measures: "sustained renames over 1,000 users at rising rates, by projector MaximumConcurrency (1, 2, 5, 10): the write side's max, the highest rate the read side keeps up with (backlog drained within 1 s), its throughput, backlog and lag; floor: as many raw FIFO consumers writing one PutItem per message",
		tables: "template.yaml's, every event source mapping running, one stack served by a runner per concurrency in turn; floor: a table without a stream",
		rounds: "1; per concurrency a 4 s closed-loop phase at the max, then 4 s at each of 0.25, 0.5, 0.75 and 0.9 of it, each followed by its drain",
		aws:    true,
		needs:  []string{pkgLoadtest},
		run: func(ctx context.Context, env []string, log io.Writer) error {
			return b.runBench(ctx, pkgLoadtest, invocation{bench: "^BenchmarkScaling$", benchtime: "1x", count: 1, timeout: 40 * time.Minute}, env, log, 0)
		},
	}
}

// scalingSpecs are the scaling group's figures, per concurrency.
func scalingSpecs() []spec {
	var s []spec
	for _, c := range scalingLevels {
		bench := fmt.Sprintf("BenchmarkScaling/concurrency=%d", c)
		keeps := spec{section: secScaling, name: fmt.Sprintf("Highest rate the read side keeps up with, concurrency %d", c), unit: "cmd/s",
			pkg: pkgLoadtest, bench: bench, metric: "keeps-up-cmd/s", floorMetric: "write-max-cmd/s",
			floorName: "the write side's own max, same run", higherIsBetter: true}
		if c == 5 {
			keeps.target = func(f Figure, _ []Figure) (string, *bool) {
				return "≥ 0.9× the write side's max", met(f.Ratio >= 0.9)
			}
		}
		s = append(s, keeps,
			spec{section: secScaling, name: fmt.Sprintf("Read side at the write side's max, concurrency %d", c), unit: "events/s",
				pkg: pkgLoadtest, bench: bench, metric: "read-events/s", floorMetric: "floor-events/s",
				floorName: fmt.Sprintf("%d raw FIFO consumer(s), one PutItem per message", c), higherIsBetter: true},
			spec{section: secScaling, name: fmt.Sprintf("Backlog when the max load ends, concurrency %d", c), unit: "events",
				pkg: pkgLoadtest, bench: bench, metric: "backlog-events", floorName: "no floor"},
			spec{section: secScaling, name: fmt.Sprintf("Its drain, concurrency %d", c), unit: "ms",
				pkg: pkgLoadtest, bench: bench, metric: "drain-ms", floorName: "no floor"},
			spec{section: secScaling, name: fmt.Sprintf("Lag p50 at 0.75 of the max, concurrency %d", c), unit: "ms",
				pkg: pkgLoadtest, bench: bench, metric: "lag-p50-ms", floorName: "no floor"},
			spec{section: secScaling, name: fmt.Sprintf("Lag p99 at 0.75 of the max, concurrency %d", c), unit: "ms",
				pkg: pkgLoadtest, bench: bench, metric: "lag-p99-ms", floorName: "no floor"},
		)
	}
	return s
}
