//go:build unix

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseBench(t *testing.T) {
	// What go test -bench prints when the benchmark itself writes to stdout
	// (the functions' EMF lines) between a name and its numbers.
	out := `goos: linux
goarch: amd64
pkg: github.com/chronicle-go/chronicle/cmd/local/loadtest
BenchmarkCommandThroughput/clients=1-2   	{"_aws":{"Timestamp":1}}
{"_aws":{"Timestamp":2}}
       1	        43.24 cmd/s	         0 errors	       884.5 floor-cmd/s
BenchmarkCommandThroughput/clients=1-2   	       1	        45.00 cmd/s	         0 errors	       900 floor-cmd/s
BenchmarkPlainReplay10k-2   	      27	  13838534 ns/op	    722620 events/s	 3672660 B/op	   70003 allocs/op
BenchmarkFailing-2
--- FAIL: BenchmarkFailing
PASS
`
	got, err := parseBench(strings.NewReader(out), "cmd/local/loadtest", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []Sample{
		{Package: "cmd/local/loadtest", Benchmark: "BenchmarkCommandThroughput/clients=1", Round: 3,
			Metrics: map[string]float64{"cmd/s": 43.24, "errors": 0, "floor-cmd/s": 884.5}},
		{Package: "cmd/local/loadtest", Benchmark: "BenchmarkCommandThroughput/clients=1", Round: 3,
			Metrics: map[string]float64{"cmd/s": 45, "errors": 0, "floor-cmd/s": 900}},
		{Package: "cmd/local/loadtest", Benchmark: "BenchmarkPlainReplay10k", Round: 3,
			Metrics: map[string]float64{"ns/op": 13838534, "events/s": 722620, "B/op": 3672660, "allocs/op": 70003}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestNewStat(t *testing.T) {
	for _, tc := range []struct {
		values       []float64
		higher       bool
		median, best float64
	}{
		{[]float64{3, 1, 2}, false, 2, 1},
		{[]float64{3, 1, 2}, true, 2, 3},
		{[]float64{4, 1, 2, 3}, false, 2.5, 1},
		{[]float64{7}, true, 7, 7},
	} {
		s := newStat(tc.values, tc.higher)
		if s.Median != tc.median || s.Best != tc.best || !slices.Equal(s.Values, tc.values) {
			t.Errorf("newStat(%v, %v) = %+v, want median %v best %v", tc.values, tc.higher, s, tc.median, tc.best)
		}
	}
	if newStat(nil, false) != nil {
		t.Error("no values make a stat")
	}
}

func TestComputeFigures(t *testing.T) {
	samples := []Sample{
		{Package: pkgDynamo, Benchmark: "BenchmarkAggregateLoad/events=10000", Metrics: map[string]float64{"nosnap-ms": 300, "snap-ms": 5, "floor-ms": 250}},
		{Package: pkgDynamo, Benchmark: "BenchmarkAggregateLoad/events=10000", Metrics: map[string]float64{"nosnap-ms": 320, "snap-ms": 6, "floor-ms": 260}},
		{Package: pkgDynamo, Benchmark: "BenchmarkAggregateLoad/events=10000", Metrics: map[string]float64{"nosnap-ms": 600, "snap-ms": 40, "floor-ms": 270}},
		{Package: pkgPeer, Benchmark: "BenchmarkChronicleReplay10k", Metrics: map[string]float64{"ns/op": 1, "cpu-ns/op": 8e6}},
		{Package: pkgPeer, Benchmark: "BenchmarkPlainReplay10k", Metrics: map[string]float64{"ns/op": 1, "cpu-ns/op": 1.6e7}},
		{Package: pkgPeer, Benchmark: "BenchmarkHallgrenReplay10k", Metrics: map[string]float64{"ns/op": 1, "cpu-ns/op": 3.2e7}},
	}
	figs := computeFigures(figureSpecs(), samples, map[string]string{pkgLoadtest: "build failed"})
	byName := map[string]Figure{}
	for _, f := range figs {
		if _, dup := byName[f.Name]; !dup { // the first of a name: against the floor
			byName[f.Name] = f
		}
	}

	none := byName["Load a 10,000-event aggregate, no snapshot"]
	if none.Value.Median != 320 || none.Value.Best != 300 || none.Floor.Median != 260 {
		t.Errorf("no snapshot: %+v %+v", none.Value, none.Floor)
	}
	if none.Ratio != 320.0/260 || none.TargetMet == nil || !*none.TargetMet {
		t.Errorf("no snapshot: ratio %v, target %q %v", none.Ratio, none.Target, none.TargetMet)
	}
	snap := byName["Load a 10,000-event aggregate, snapshot every 100 events"]
	if snap.TargetMet == nil || !*snap.TargetMet || !strings.Contains(snap.Target, "53×") {
		t.Errorf("snapshot: target %q %v, want 320/6 = 53× met", snap.Target, snap.TargetMet)
	}
	replay := byName["Replay 10,000 events from the in-memory store, CPU time"]
	if replay.Value.Median != 8 || replay.Floor.Median != 16 || replay.Ratio != 0.5 {
		t.Errorf("replay: %+v %+v %v", replay.Value, replay.Floor, replay.Ratio)
	}
	for _, f := range figs {
		if f.Name == replay.Name && f.FloorName == hallgrenPeer+" and its in-memory store" {
			if f.Ratio != 0.25 || f.TargetMet == nil || !*f.TargetMet || !strings.Contains(f.Target, "4.0×") {
				t.Errorf("replay against hallgren: ratio %v, target %q %v", f.Ratio, f.Target, f.TargetMet)
			}
		}
	}
	api := byName["Commands/s, 8 clients"]
	if api.Error != "not measured: build failed" {
		t.Errorf("api error %q", api.Error)
	}
}

func TestMarkdown(t *testing.T) {
	met := true
	r := Report{
		Generated: time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC), Elapsed: 7 * time.Minute,
		Machine: Machine{CPU: "AMD EPYC", Cores: 2, MemoryMB: 24105, OS: "linux/amd64", Go: "go1.26.8", DynamoDBLocal: "3.3.1", Moto: "5.2.1"},
		Figures: []Figure{
			{Section: secStore, Name: "Append one event, p50", Unit: "ms", Value: newStat([]float64{1.1, 1.2, 1.0}, false),
				FloorName: rawPut, Floor: newStat([]float64{1, 1, 1}, false), Ratio: 1.1, Target: "fast", TargetMet: &met},
			{Section: secStore, Name: "Append one event, p99", Unit: "ms", FloorName: rawPut, Error: "not measured: a|b"},
		},
		Groups: []Group{{Name: "store", Emulators: "fresh DynamoDB Local + moto", Elapsed: time.Minute, LoadBefore: 1, LoadAfter: 2}},
		Others: []Other{{Package: "domain/user", Benchmark: "BenchmarkExecute", Metrics: map[string]float64{"ns/op": 105968, "B/op": 23720}}},
	}
	md := r.Markdown()
	for _, want := range []string{
		"on 2026-11-27 01:02 UTC, in 7m0s",
		"| DynamoDB Local | 3.3.1 |",
		"| **Event store** | Append one event, p50 | 1.10 ms (1.00) | raw conditional PutItem: 1.00 ms | 1.10× | fast ✓ |",
		"|  | Append one event, p99 | failed: not measured: a/b | raw conditional PutItem | | |",
		"| store |  | fresh DynamoDB Local + moto |  |  | 1m0s | 1.0 → 2.0 |",
		"| domain/user | Execute | 105,968 ns/op, 23,720 B/op |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestDiscoverOthers(t *testing.T) {
	repo := t.TempDir()
	write := func(path, src string) {
		t.Helper()
		p := filepath.Join(repo, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("infra/dynamo/bench_test.go", "func BenchmarkAppend(b *testing.B) {}\nfunc BenchmarkAppendLatency(b *testing.B) {}\n")
	write("domain/user/bench_test.go", "func BenchmarkExecute(b *testing.B) {}\n// func BenchmarkNot(b *testing.B)\n")
	write("bench/peer/peer_test.go", "func BenchmarkPlainReplay10k(b *testing.B) {}\n")
	write(".work/x_test.go", "func BenchmarkHidden(b *testing.B) {}\n")
	write("infra/dynamo/testdata/x_test.go", "func BenchmarkData(b *testing.B) {}\n")
	got, err := discoverOthers(repo)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"infra/dynamo": {"BenchmarkAppend"}, "domain/user": {"BenchmarkExecute"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-groups", "memory, store", "-out", "x.md"})
	if err != nil || !slices.Equal(o.groups, []string{"memory", "store"}) || o.out != "x.md" || o.json != "BENCHMARKS.json" {
		t.Errorf("got %+v, %v", o, err)
	}
	if _, err := parseOptions([]string{"-groups", "nope"}); err == nil {
		t.Error("an unknown group is accepted")
	}
	o, err = parseOptions([]string{"-groups", "api-latency", "-latency", "dynamodb=2ms"})
	if err != nil || o.latency.String() != "dynamodb=2ms" {
		t.Errorf("-latency: got %+v, %v", o, err)
	}
	if _, err := parseOptions([]string{"-latency", "off"}); err == nil {
		t.Error("-latency off is accepted: the api-latency group needs a delay")
	}
}

// TestEveryFigureHasItsGroup: each figure is kept when the group that
// measures it runs.
func TestEveryFigureHasItsGroup(t *testing.T) {
	for _, sp := range figureSpecs() {
		if g := groupOf(sp); !slices.Contains(allGroups, g) {
			t.Errorf("%s %q: group %q", sp.section, sp.name, g)
		}
		if sp.section == secAPILatency && groupOf(sp) != "api-latency" {
			t.Errorf("%q is measured by api-latency, not %s", sp.name, groupOf(sp))
		}
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0.6824: "0.682", 4.371: "4.37", 23.87: "23.9", 287.5: "288", 1791: "1,791", 13838534: "13,838,534"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestHallgrenVersion: the report names the version the bench module pins.
func TestHallgrenVersion(t *testing.T) {
	mod, err := os.ReadFile("../../bench/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "github.com/hallgren/eventsourcing "+hallgrenVersion+"\n") {
		t.Errorf("bench/go.mod does not require github.com/hallgren/eventsourcing %s", hallgrenVersion)
	}
}

// TestFigureWithoutFloor: a figure with no floor metric (the scaling
// group's backlog, drain and lag) is computed from its own samples, with
// no ratio, and written as such.
func TestFigureWithoutFloor(t *testing.T) {
	samples := []Sample{{Package: pkgLoadtest, Benchmark: "BenchmarkScaling/concurrency=5", Metrics: map[string]float64{
		"keeps-up-cmd/s": 90, "write-max-cmd/s": 100, "read-events/s": 50, "floor-events/s": 60,
		"backlog-events": 12, "drain-ms": 800, "lag-p50-ms": 100, "lag-p99-ms": 300}}}
	figs := computeFigures(scalingSpecs(), samples, map[string]string{})
	var found bool
	for _, f := range figs {
		if !strings.Contains(f.Name, "concurrency 5") {
			continue
		}
		found = true
		if f.Error != "" || f.Value == nil {
			t.Errorf("%s: %+v", f.Name, f)
		}
		if strings.HasPrefix(f.Name, "Highest rate") && (f.Ratio != 0.9 || f.TargetMet == nil || !*f.TargetMet) {
			t.Errorf("%s: ratio %v, target %v", f.Name, f.Ratio, f.TargetMet)
		}
	}
	if !found {
		t.Fatal("no figure of concurrency 5")
	}
	md := Report{Figures: figs}.Markdown()
	if !strings.Contains(md, "Backlog when the max load ends, concurrency 5 | 12.0 events | no floor: — | — |") {
		t.Errorf("the backlog row is not written without a floor:\n%s", md)
	}
}

// TestPIIFiguresOnlyInTheirGroup: the pii group's benchmark exists in
// infra/pii, and the others group does not run it a second time.
func TestPIIFiguresOnlyInTheirGroup(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "infra", "pii", "bench_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "func BenchmarkPIIFigures(b *testing.B)") {
		t.Fatal("infra/pii has no BenchmarkPIIFigures")
	}
	others, err := discoverOthers(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(others[pkgPII], "BenchmarkPIIFigures") {
		t.Errorf("the others group runs %v of %s", others[pkgPII], pkgPII)
	}
	if g := groupOf(piiSpecs()[0]); g != "pii" {
		t.Errorf("the pii figures are kept with group %q", g)
	}
}
