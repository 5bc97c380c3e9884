package metrics_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/infra/metrics"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// lines decodes the EMF lines written to b.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// directive checks the _aws member of an EMF line and returns its metric
// names and dimension names.
func directive(t *testing.T, m map[string]any) (names, dims []string) {
	t.Helper()
	aws, ok := m["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("no _aws: %v", m)
	}
	if aws["Timestamp"] != float64(t0.UnixMilli()) {
		t.Errorf("Timestamp %v", aws["Timestamp"])
	}
	cwm := aws["CloudWatchMetrics"].([]any)
	if len(cwm) != 1 {
		t.Fatalf("CloudWatchMetrics %v", cwm)
	}
	d := cwm[0].(map[string]any)
	if d["Namespace"] != "Chronicle" {
		t.Errorf("Namespace %v", d["Namespace"])
	}
	for _, set := range d["Dimensions"].([]any) {
		for _, n := range set.([]any) {
			dims = append(dims, n.(string))
			if _, ok := m[n.(string)]; !ok {
				t.Errorf("dimension %s has no value", n)
			}
		}
	}
	for _, md := range d["Metrics"].([]any) {
		name := md.(map[string]any)["Name"].(string)
		names = append(names, name)
		if _, ok := m[name]; !ok {
			t.Errorf("metric %s has no value", name)
		}
	}
	return names, dims
}

func TestCommand(t *testing.T) {
	var b bytes.Buffer
	r := metrics.New(&b, "", "commands").WithClock(func() time.Time { return t0 })
	r.Command(t.Context(), "rename", 12500*time.Microsecond, 3, false)
	ls := lines(t, &b)
	if len(ls) != 1 {
		t.Fatalf("%d lines", len(ls))
	}
	names, dims := directive(t, ls[0])
	if strings.Join(names, ",") != "CommandLatency,VersionConflictRetries,CommandErrors" || strings.Join(dims, ",") != "Function,Command" {
		t.Errorf("metrics %v dims %v", names, dims)
	}
	if ls[0]["CommandLatency"] != 12.5 || ls[0]["VersionConflictRetries"] != 2.0 || ls[0]["CommandErrors"] != 0.0 ||
		ls[0]["Function"] != "commands" || ls[0]["Command"] != "rename" {
		t.Errorf("line %v", ls[0])
	}
}

func TestBatchAndLag(t *testing.T) {
	var b bytes.Buffer
	r := metrics.New(&b, "Chronicle", "projector").WithClock(func() time.Time { return t0 })
	r.Batch(t.Context(), metrics.Batch{Messages: 10, Failures: 2, DLQSends: 1, Duration: time.Second})
	lags := make([]time.Duration, 150)
	for i := range lags {
		lags[i] = time.Duration(i) * time.Millisecond
	}
	r.ProjectionLag(t.Context(), map[string][]time.Duration{"user-view": lags, "actor-activity": {time.Second}})
	ls := lines(t, &b)
	if len(ls) != 4 { // the batch, actor-activity, user-view in two lines of at most 100 values
		t.Fatalf("%d lines: %v", len(ls), ls)
	}
	if names, _ := directive(t, ls[0]); strings.Join(names, ",") != "Messages,BatchFailures,DLQSends" || ls[0]["DLQSends"] != 1.0 {
		t.Errorf("batch line %v", ls[0])
	}
	if _, dims := directive(t, ls[1]); ls[1]["Projection"] != "actor-activity" || strings.Join(dims, ",") != "Function,Projection" ||
		ls[1]["ProjectionLag"].([]any)[0] != 1000.0 {
		t.Errorf("lag line %v", ls[1])
	}
	if len(ls[2]["ProjectionLag"].([]any)) != 100 || len(ls[3]["ProjectionLag"].([]any)) != 50 {
		t.Errorf("lag values split %d + %d", len(ls[2]["ProjectionLag"].([]any)), len(ls[3]["ProjectionLag"].([]any)))
	}
}

func TestNilRecorder(t *testing.T) {
	var r *metrics.Recorder
	r.Command(t.Context(), "create", time.Millisecond, 1, true)
	r.Batch(t.Context(), metrics.Batch{})
	r.ProjectionLag(t.Context(), map[string][]time.Duration{"x": {1}})
	r.Rebuild(t.Context(), "user-view", 10, time.Second)
	if r.WithClock(time.Now) != nil {
		t.Error("WithClock of nil")
	}
}

func TestRebuild(t *testing.T) {
	var b bytes.Buffer
	metrics.New(&b, "", "replay").WithClock(func() time.Time { return t0 }).Rebuild(t.Context(), "user-view", 5000, 2*time.Second)
	ls := lines(t, &b)
	if len(ls) != 1 || ls[0]["RebuildEvents"] != 5000.0 || ls[0]["RebuildEventsPerSecond"] != 2500.0 || ls[0]["Projection"] != "user-view" {
		t.Errorf("%v", ls)
	}
}
