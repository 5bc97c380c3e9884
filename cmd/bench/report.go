//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is everything one run measured: BENCHMARKS.json, and the source
// of BENCHMARKS.md.
type Report struct {
	Generated time.Time     `json:"generated"`
	Elapsed   time.Duration `json:"elapsedNanos"`
	Machine   Machine       `json:"machine"`
	Groups    []Group       `json:"groups"`
	Figures   []Figure      `json:"figures"`
	Others    []Other       `json:"otherBenchmarks"`
	Samples   []Sample      `json:"samples"` // every result line, every round
}

// Group is one set of benchmarks run together, on emulators of its own.
type Group struct {
	Name       string        `json:"name"`
	Measures   string        `json:"measures"`
	Emulators  string        `json:"emulators"`
	Tables     string        `json:"tables"`
	Rounds     string        `json:"rounds"`
	Elapsed    time.Duration `json:"elapsedNanos"`
	LoadBefore float64       `json:"loadAverageBefore"`
	LoadAfter  float64       `json:"loadAverageAfter"`
	Error      string        `json:"error,omitempty"`
}

// Other is a benchmark of the repository that is no figure of its own,
// run once.
type Other struct {
	Package   string             `json:"package"`
	Benchmark string             `json:"benchmark"`
	Metrics   map[string]float64 `json:"metrics"`
	Error     string             `json:"error,omitempty"`
}

// JSON is the report as BENCHMARKS.json holds it.
func (r Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Markdown is the report as BENCHMARKS.md holds it.
func (r Report) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	p("Written by `make bench` (`go run ./cmd/bench`) on %s UTC, in %s, from commit %s. ",
		r.Generated.UTC().Format("2006-01-02 15:04"), r.Elapsed.Round(time.Second), or(r.Machine.Commit, "unknown"))
	p("Every number below was measured in that run; none is typed by hand. ")
	p("BENCHMARKS.json holds the same figures with every round's value.\n\n")

	p("## Machine\n\n| | |\n|---|---|\n")
	p("| CPU | %s, %d cores |\n", or(r.Machine.CPU, "unknown"), r.Machine.Cores)
	p("| Memory | %.1f GiB |\n", float64(r.Machine.MemoryMB)/1024)
	p("| OS | %s%s |\n", r.Machine.OS, prefixed(", kernel ", r.Machine.Kernel))
	p("| Go | %s |\n", r.Machine.Go)
	p("| DynamoDB Local | %s%s |\n", or(r.Machine.DynamoDBLocal, "unknown"), prefixed(", on ", r.Machine.Java))
	p("| moto | %s |\n\n", or(r.Machine.Moto, "unknown"))

	p("## Figures\n\n")
	p("Each cell is the median over the rounds of its group, the best round in brackets (the lowest time, the highest rate). ")
	p("Ratio is Chronicle's median over its floor's or peer's, measured in the same run and interleaved with it: ")
	p("for a time, above 1× is slower than the floor; for a rate, below 1× is slower.\n\n")
	p("| | Figure | Chronicle | Floor or peer | Ratio | Target |\n|---|---|---|---|---|---|\n")
	section := ""
	for _, f := range r.Figures {
		head := ""
		if f.Section != section {
			section, head = f.Section, "**"+f.Section+"**"
		}
		if f.Error != "" {
			p("| %s | %s | failed: %s | %s | | |\n", head, f.Name, cell(f.Error), f.FloorName)
			continue
		}
		target := f.Target
		if f.TargetMet != nil {
			target += map[bool]string{true: " ✓", false: " ✗"}[*f.TargetMet]
		}
		if f.Note != "" {
			target = strings.TrimPrefix(target+"; "+f.Note, "; ")
		}
		p("| %s | %s | %s | %s: %s | %s | %s |\n", head, f.Name, stat(f.Value, f.Unit), f.FloorName, stat(f.Floor, f.Unit),
			ratio(f.Ratio), target)
	}

	p("\n## How each group ran\n\n")
	p("Each group that needs AWS ran on a DynamoDB Local and a moto of its own, started for it (cmd/emulators), ")
	p("because both slow down over their lifetime: DynamoDB Local as stream records pile up, moto as its queues fill. ")
	p("Other work on the machine shares its cores: the load average says how much.\n\n")
	p("| Group | Measures | Emulators | Tables | Rounds | Time | Load average, start → end |\n|---|---|---|---|---|---|---|\n")
	for _, g := range r.Groups {
		status := g.Elapsed.Round(time.Second).String()
		if g.Error != "" {
			status += ", failed: " + cell(g.Error)
		}
		p("| %s | %s | %s | %s | %s | %s | %.1f → %.1f |\n", g.Name, g.Measures, g.Emulators, g.Tables, g.Rounds, status, g.LoadBefore, g.LoadAfter)
	}

	if len(r.Others) > 0 {
		p("\n## Every other benchmark\n\n")
		p("The repository's other benchmarks, run once each in the last group (`-benchtime 500ms`), as they are written. ")
		p("They are not interleaved with a floor, so they carry no ratio: on a shared machine, two benchmarks run one after ")
		p("the other can differ by more than what they measure. The figures above are the ones to compare.\n\n")
		p("| Package | Benchmark | Result |\n|---|---|---|\n")
		for _, o := range r.Others {
			if o.Error != "" {
				p("| %s | %s | failed: %s |\n", o.Package, strings.TrimPrefix(o.Benchmark, "Benchmark"), cell(o.Error))
				continue
			}
			p("| %s | %s | %s |\n", o.Package, strings.TrimPrefix(o.Benchmark, "Benchmark"), metricsCell(o.Metrics))
		}
	}
	return b.String()
}

// stat writes a median and the best round.
func stat(s *Stat, unit string) string {
	if s == nil {
		return "—"
	}
	if len(s.Values) == 1 || s.Best == s.Median {
		return num(s.Median) + " " + unit
	}
	return fmt.Sprintf("%s %s (%s)", num(s.Median), unit, num(s.Best))
}

func ratio(r float64) string {
	if r == 0 || math.IsInf(r, 0) || math.IsNaN(r) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", r)
}

// num writes a value with three significant digits, and no exponent.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return thousands(int(math.Round(v)))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// metricsCell writes a benchmark's metrics, ns/op first.
func metricsCell(m map[string]float64) string {
	var units []string
	for u := range m {
		units = append(units, u)
	}
	slices.SortFunc(units, func(a, b string) int {
		if (a == "ns/op") != (b == "ns/op") {
			if a == "ns/op" {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, u := range units {
		if u == "ns/op" && m[u] == 0 {
			continue // suppressed by the benchmark
		}
		parts = append(parts, num(m[u])+" "+u)
	}
	return strings.Join(parts, ", ")
}

// cell makes text safe in a table cell: one line, no pipes, not too long.
func cell(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "|", "/")), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
