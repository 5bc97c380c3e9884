//go:build unix

package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Stat summarizes one metric over the rounds of a run: the median and the
// best round (the lowest time, the highest rate).
type Stat struct {
	Median float64   `json:"median"`
	Best   float64   `json:"best"`
	Values []float64 `json:"values"` // one per round, in order
}

func newStat(values []float64, higherIsBetter bool) *Stat {
	if len(values) == 0 {
		return nil
	}
	s := slices.Clone(values)
	slices.Sort(s)
	st := &Stat{Values: values, Best: s[0]}
	if higherIsBetter {
		st.Best = s[len(s)-1]
	}
	if n := len(s); n%2 == 1 {
		st.Median = s[n/2]
	} else {
		st.Median = (s[n/2-1] + s[n/2]) / 2
	}
	return st
}

// Figure is one line of the report: a measurement of Chronicle's and the
// same measurement of its floor or peer, from the same run.
type Figure struct {
	Section   string  `json:"section"`
	Name      string  `json:"name"`
	Unit      string  `json:"unit"`
	Value     *Stat   `json:"value"`
	FloorName string  `json:"floorName"`
	Floor     *Stat   `json:"floor"`
	Ratio     float64 `json:"ratio"` // Value.Median / Floor.Median
	// HigherIsBetter: a rate, where a ratio under 1 means slower.
	HigherIsBetter bool   `json:"higherIsBetter"`
	Target         string `json:"target,omitempty"`
	TargetMet      *bool  `json:"targetMet,omitempty"`
	Source         string `json:"source"` // where the numbers come from
	Note           string `json:"note,omitempty"`
	Error          string `json:"error,omitempty"`
}

// spec says how a figure is read from the samples.
type spec struct {
	section, name, unit string
	pkg, bench, metric  string
	floorName           string
	floorPkg            string // default pkg
	floorBench          string // default bench
	floorMetric         string
	higherIsBetter      bool
	scale               float64 // applied to both values (0: 1)
	// errors names the metric counting failed operations, if any; the
	// figure notes their sum over the rounds.
	errors string
	// target checks the figure, given every figure computed so far.
	target func(f Figure, all []Figure) (string, *bool)
}

// Sections of the report, in order.
const (
	secStore = "Event store"
	secAPI   = "HTTP API"
	// secAPILatency: the api-latency group, every AWS call delayed as in a
	// region (the group's row in the table of groups says by how much).
	secAPILatency = "HTTP API, simulated cloud latency"
	secReadSide   = "Read side"
	secMemory     = "In memory"
	secColdStart  = "Cold start"
)

// Where the figures' benchmarks live.
const (
	pkgDynamo    = "infra/dynamo"
	pkgLoadtest  = "cmd/local/loadtest"
	pkgProjector = "infra/projector"
	pkgPeer      = "bench/peer"
)

// projectorFloor is the projector's floor: per batch, one PutItem per
// message group (aggregate), the least a consumer keeping one conditional
// item per aggregate writes.
const projectorFloor = "raw SQS receive + one PutItem per aggregate of each batch"

const (
	rawPut   = "raw conditional PutItem"
	rawQuery = "raw paged Query"
	// The in-memory peers: plain Go, the floor, and an event-sourcing
	// library, whose version the bench module pins.
	plainPeer    = "plain Go aggregate (bench/peer)"
	hallgrenPeer = "hallgren/eventsourcing " + hallgrenVersion + " (bench/peer/hallgren)"
)

// hallgrenVersion is the version of github.com/hallgren/eventsourcing in
// bench/go.mod (a test checks it).
const hallgrenVersion = "v0.9.1"

// thriceHallgren is the target of the figures against hallgren/eventsourcing.
func thriceHallgren(f Figure, _ []Figure) (string, *bool) {
	if f.Ratio <= 0 {
		return "≥ 3× faster than hallgren/eventsourcing", nil
	}
	return fmt.Sprintf("≥ 3× faster than hallgren/eventsourcing: %.1f×", 1/f.Ratio), met(f.Ratio <= 1.0/3)
}

// The in-memory figures compare CPU time per operation (cpu-ns/op, which
// bench/peer reports): on two cores that other work shares, wall time
// mostly measures the waits for a core.

// figureSpecs lists every figure but the cold-start ones, which depend on
// the functions found (coldStartFigures).
func figureSpecs() []spec {
	s := []spec{
		{section: secStore, name: "Append one event, p50", unit: "ms", pkg: pkgDynamo, bench: "BenchmarkAppendLatency",
			metric: "p50-ms", floorMetric: "floor-p50-ms", floorName: rawPut,
			target: func(f Figure, _ []Figure) (string, *bool) {
				return "≤ 1.5× the raw PutItem", met(f.Ratio <= 1.5)
			}},
		{section: secStore, name: "Append one event, p99", unit: "ms", pkg: pkgDynamo, bench: "BenchmarkAppendLatency",
			metric: "p99-ms", floorMetric: "floor-p99-ms", floorName: rawPut},
	}
	for _, n := range []int{10, 1_000, 10_000} {
		bench := fmt.Sprintf("BenchmarkAggregateLoad/events=%d", n)
		none := spec{section: secStore, name: fmt.Sprintf("Load a %s-event aggregate, no snapshot", thousands(n)), unit: "ms",
			pkg: pkgDynamo, bench: bench, metric: "nosnap-ms", floorMetric: "floor-ms", floorName: rawQuery + " of the same items"}
		snap := none
		snap.name = fmt.Sprintf("Load a %s-event aggregate, snapshot every 100 events", thousands(n))
		if n < 100 {
			snap.name += " (none written yet)"
		}
		snap.metric = "snap-ms"
		if n == 10_000 {
			none.target = func(f Figure, _ []Figure) (string, *bool) {
				return "< 500 ms (the talk's Python: 5 s)", met(f.Value.Median < 500)
			}
			snap.target = func(f Figure, all []Figure) (string, *bool) {
				for _, o := range all {
					if o.Name == none.name && o.Value != nil && f.Value.Median > 0 {
						x := o.Value.Median / f.Value.Median
						return fmt.Sprintf("≥ 20× faster than no snapshot: %.0f×", x), met(x >= 20)
					}
				}
				return "≥ 20× faster than no snapshot", nil
			}
		}
		s = append(s, none, snap)
	}
	ratioAtLeast := func(x float64) func(Figure, []Figure) (string, *bool) {
		return func(f Figure, _ []Figure) (string, *bool) {
			return fmt.Sprintf("≥ %.1f× the floor's", x), met(f.Ratio >= x)
		}
	}
	ratioAtMost := func(x float64) func(Figure, []Figure) (string, *bool) {
		return func(f Figure, _ []Figure) (string, *bool) {
			return fmt.Sprintf("≤ %.1f× the floor's", x), met(f.Ratio <= x)
		}
	}
	// Targets: a command makes one DynamoDB call, as the floor does.
	rateTargets := map[int]func(Figure, []Figure) (string, *bool){1: ratioAtLeast(0.6), 8: ratioAtLeast(0.5)}
	p50Targets := map[int]func(Figure, []Figure) (string, *bool){1: ratioAtMost(1.5)}
	api := func(section, bench string, clients []int, rates, p50Targets map[int]func(Figure, []Figure) (string, *bool)) {
		floor := "HTTP handler + one conditional PutItem"
		for _, c := range clients {
			bench := fmt.Sprintf("%s/clients=%d", bench, c)
			s = append(s,
				spec{section: section, name: fmt.Sprintf("Commands/s, %d client%s", c, plural(c)), unit: "cmd/s", pkg: pkgLoadtest, bench: bench,
					metric: "cmd/s", floorMetric: "floor-cmd/s", floorName: floor, higherIsBetter: true, errors: "errors", target: rates[c]},
				spec{section: section, name: fmt.Sprintf("Command p50, %d client%s", c, plural(c)), unit: "ms", pkg: pkgLoadtest, bench: bench,
					metric: "p50-ms", floorMetric: "floor-p50-ms", floorName: floor, target: p50Targets[c]},
				spec{section: section, name: fmt.Sprintf("Command p99, %d client%s", c, plural(c)), unit: "ms", pkg: pkgLoadtest, bench: bench,
					metric: "p99-ms", floorMetric: "floor-p99-ms", floorName: floor},
			)
		}
	}
	api(secAPI, "BenchmarkCommandThroughput", []int{1, 8, 32}, rateTargets, p50Targets)
	api(secAPILatency, "BenchmarkCommandLatency", []int{1, 8}, nil,
		map[int]func(Figure, []Figure) (string, *bool){1: ratioAtMost(1.3)})
	pipeline := "raw pipeline: PutItem → stream → SQS FIFO → PutItem"
	s = append(s,
		spec{section: secReadSide, name: "Projection lag, p50 (write answered → read model)", unit: "ms", pkg: pkgLoadtest,
			bench: "BenchmarkProjectionLag", metric: "p50-ms", floorMetric: "floor-p50-ms", floorName: pipeline, errors: "errors"},
		spec{section: secReadSide, name: "Projection lag, p99", unit: "ms", pkg: pkgLoadtest,
			bench: "BenchmarkProjectionLag", metric: "p99-ms", floorMetric: "floor-p99-ms", floorName: pipeline,
			target: func(f Figure, _ []Figure) (string, *bool) { return "< 1 s", met(f.Value.Median < 1000) }},
		spec{section: secReadSide, name: "Projector throughput, users interleaved (a batch: one event per user)", unit: "events/s", pkg: pkgProjector,
			bench: "BenchmarkProjectorThroughput", metric: "events/s", floorMetric: "floor-events/s",
			floorName: projectorFloor, higherIsBetter: true,
			target: func(f Figure, _ []Figure) (string, *bool) { return "≥ 0.8× the raw loop", met(f.Ratio >= 0.8) }},
		spec{section: secReadSide, name: "Projector throughput, bursts (a batch: mostly one user's events, coalesced)", unit: "events/s", pkg: pkgProjector,
			bench: "BenchmarkProjectorThroughput", metric: "bursts-events/s", floorMetric: "bursts-floor-events/s",
			floorName: projectorFloor, higherIsBetter: true,
			target: func(f Figure, _ []Figure) (string, *bool) { return "≥ 0.8× the raw loop", met(f.Ratio >= 0.8) }},
		spec{section: secMemory, name: "Decide + evolve one command, CPU time", unit: "ns", pkg: pkgPeer,
			bench: "BenchmarkChronicleDecideEvolve", metric: "cpu-ns/op", floorBench: "BenchmarkPlainDecideEvolve",
			floorMetric: "cpu-ns/op", floorName: plainPeer},
		spec{section: secMemory, name: "Decide + evolve one command, CPU time", unit: "ns", pkg: pkgPeer,
			bench: "BenchmarkChronicleDecideEvolve", metric: "cpu-ns/op", floorBench: "BenchmarkHallgrenDecideEvolve",
			floorMetric: "cpu-ns/op", floorName: hallgrenPeer, target: thriceHallgren},
		spec{section: secMemory, name: "Replay 10,000 events from the in-memory store, CPU time", unit: "ms", pkg: pkgPeer,
			bench: "BenchmarkChronicleReplay10k", metric: "cpu-ns/op", floorBench: "BenchmarkPlainReplay10k",
			floorMetric: "cpu-ns/op", floorName: plainPeer + " and store", scale: 1e-6,
			target: func(f Figure, _ []Figure) (string, *bool) { return "< 2 ms", met(f.Value.Median < 2) }},
		spec{section: secMemory, name: "Replay 10,000 events from the in-memory store, CPU time", unit: "ms", pkg: pkgPeer,
			bench: "BenchmarkChronicleReplay10k", metric: "cpu-ns/op", floorBench: "BenchmarkHallgrenReplay10k",
			floorMetric: "cpu-ns/op", floorName: hallgrenPeer + " and its in-memory store", scale: 1e-6, target: thriceHallgren},
		spec{section: secMemory, name: "A command on a 10-event aggregate (load, decide, append), CPU time", unit: "µs", pkg: pkgPeer,
			bench: "BenchmarkChronicleCommand10", metric: "cpu-ns/op", floorBench: "BenchmarkPlainCommand10",
			floorMetric: "cpu-ns/op", floorName: plainPeer + " and store", scale: 1e-3},
		spec{section: secMemory, name: "A command on a 10-event aggregate (load, decide, append), CPU time", unit: "µs", pkg: pkgPeer,
			bench: "BenchmarkChronicleCommand10", metric: "cpu-ns/op", floorBench: "BenchmarkHallgrenCommand10",
			floorMetric: "cpu-ns/op", floorName: hallgrenPeer + " and its in-memory store", scale: 1e-3, target: thriceHallgren},
	)
	s = append(s, feedSpecs()...)
	s = append(s, piiSpecs()...)
	return append(s, scalingSpecs()...)
}

// coldStartSpecs are the figures of each function: init time and size.
func coldStartSpecs(names []string) []spec {
	var s []spec
	floor := "a function that does nothing (bench/floorfn)"
	for _, n := range names {
		s = append(s,
			spec{section: secColdStart, name: n + ": init (exec → ready)", unit: "ms", pkg: "functions/" + n, bench: "init",
				metric: "ms", floorPkg: "functions/" + floorFunction, floorMetric: "ms", floorName: floor},
			spec{section: secColdStart, name: n + ": size (linux/arm64)", unit: "MiB", pkg: "functions/" + n, bench: "size",
				metric: "bytes", floorPkg: "functions/" + floorFunction, floorMetric: "bytes", floorName: floor, scale: 1.0 / (1 << 20)},
		)
	}
	return s
}

// computeFigures reads every spec from the samples. A figure whose samples
// are missing carries an error instead (its group failed).
func computeFigures(specs []spec, samples []Sample, failed map[string]string) []Figure {
	var out []Figure
	for _, sp := range specs {
		f := Figure{Section: sp.section, Name: sp.name, Unit: sp.unit, FloorName: sp.floorName,
			HigherIsBetter: sp.higherIsBetter, Source: sp.pkg + " " + sp.bench}
		fpkg, fbench := or(sp.floorPkg, sp.pkg), or(sp.floorBench, sp.bench)
		scale := sp.scale
		if scale == 0 {
			scale = 1
		}
		f.Value = newStat(values(samples, sp.pkg, sp.bench, sp.metric, scale), sp.higherIsBetter)
		f.Floor = newStat(values(samples, fpkg, fbench, sp.floorMetric, scale), sp.higherIsBetter)
		if fbench != sp.bench || fpkg != sp.pkg {
			f.Source += " vs " + fpkg + " " + fbench
		}
		switch {
		case f.Value == nil || (f.Floor == nil && sp.floorMetric != ""): // no floorMetric: a figure without a floor
			f.Error = "not measured"
			why := failed[sp.pkg]
			if fpkg != sp.pkg && failed[fpkg] != "" {
				why = strings.TrimPrefix(why+"; "+failed[fpkg], "; ")
			}
			if why != "" {
				f.Error += ": " + why
			}
		default:
			if f.Floor != nil && f.Floor.Median != 0 {
				f.Ratio = f.Value.Median / f.Floor.Median
			}
			if sp.target != nil {
				f.Target, f.TargetMet = sp.target(f, out)
			}
			if n := sum(values(samples, sp.pkg, sp.bench, sp.errors, 1)); sp.errors != "" && n > 0 {
				f.Note = fmt.Sprintf("%.0f failed, left out", n)
			}
		}
		out = append(out, f)
	}
	return out
}

// values are a metric's values over the rounds of a benchmark, scaled.
func values(samples []Sample, pkg, bench, metric string, scale float64) []float64 {
	var out []float64
	for _, s := range samples {
		if s.Package != pkg || s.Benchmark != bench {
			continue
		}
		if v, ok := s.Metrics[metric]; ok && !math.IsNaN(v) {
			out = append(out, v*scale)
		}
	}
	return out
}

func met(ok bool) *bool { return &ok }

func sum(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// thousands writes n with a comma every three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
