// Package metrics writes CloudWatch metrics as Embedded Metric Format (EMF)
// lines: one JSON object per line on an io.Writer (a Lambda function's
// stdout), from which CloudWatch Logs extracts the metrics. There is no API
// call, no agent, no extra IAM permission and no latency on the request path.
//
// A nil *Recorder records nothing, so that every handler can hold one and
// default to none.
//
// Metrics, in the namespace given to New (default "Chronicle"), each with the
// dimension Function and the other dimensions listed:
//
//	CommandLatency          ms     Command    time of one command (load, decide, append, retries)
//	VersionConflictRetries  count  Command    load-decide-append rounds past the first
//	CommandErrors           count  Command    commands that ended in a server error
//	ProjectionLag           ms     Projection now − occurredAt of each event applied
//	Messages                count  -          messages (or stream records) in a batch
//	BatchFailures           count  -          items of a batch reported failed
//	DLQSends                count  -          failed messages on their last receive: SQS dead-letters them next
//	RelayLag                ms     -          now − occurredAt of each event relayed
//	RebuildEvents           count  Projection events folded by a rebuild slice
//	RebuildEventsPerSecond  count/s Projection rate of a rebuild slice
package metrics

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// Unit is a CloudWatch unit.
type Unit string

// Units used here.
const (
	Milliseconds Unit = "Milliseconds"
	Count        Unit = "Count"
	CountPerSec  Unit = "Count/Second"
)

// maxValues is EMF's limit on the values of one metric in one line.
const maxValues = 100

// DefaultNamespace is the namespace of New with an empty one.
const DefaultNamespace = "Chronicle"

// Recorder writes EMF lines. It is safe for concurrent use; each line is
// written with one Write call.
type Recorder struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	function  string
	now       func() time.Time
}

// New returns a recorder writing to w (os.Stdout in Lambda) under namespace
// (DefaultNamespace when empty), with function as the Function dimension of
// every metric ("commands", "projector", ...).
func New(w io.Writer, namespace, function string) *Recorder {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return &Recorder{w: w, namespace: namespace, function: function, now: time.Now}
}

// WithClock returns r with another clock for the lines' timestamps (tests).
func (r *Recorder) WithClock(now func() time.Time) *Recorder {
	if r == nil {
		return nil
	}
	return &Recorder{w: r.w, namespace: r.namespace, function: r.function, now: now}
}

// Metric is one metric of a line: a single value, or several samples
// (Values) of the same metric, which CloudWatch counts one by one.
type Metric struct {
	Name   string
	Unit   Unit
	Value  float64
	Values []float64 // when set, Value is ignored
}

// Emit writes one line with metrics ms under the dimensions dims (besides
// Function) and extra properties props, which are searchable in Logs
// Insights but are not dimensions. Metrics without a value are left out.
func (r *Recorder) Emit(_ context.Context, dims map[string]string, props map[string]any, ms ...Metric) {
	if r == nil || len(ms) == 0 {
		return
	}
	doc := make(map[string]any, len(dims)+len(props)+len(ms)+2)
	maps.Copy(doc, props)
	names := []string{"Function"}
	for _, k := range slices.Sorted(maps.Keys(dims)) {
		names = append(names, k)
		doc[k] = dims[k]
	}
	doc["Function"] = r.function
	type def struct {
		Name string `json:"Name"`
		Unit Unit   `json:"Unit"`
	}
	defs := make([]def, 0, len(ms))
	for _, m := range ms {
		switch {
		case m.Values != nil:
			if len(m.Values) == 0 {
				continue
			}
			doc[m.Name] = clean(m.Values[:min(len(m.Values), maxValues)])
		default:
			doc[m.Name] = finite(m.Value)
		}
		defs = append(defs, def{m.Name, m.Unit})
	}
	if len(defs) == 0 {
		return
	}
	doc["_aws"] = map[string]any{
		"Timestamp": r.now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  r.namespace,
			"Dimensions": [][]string{names},
			"Metrics":    defs,
		}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return // only strings and finite numbers: cannot fail
	}
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.w.Write(line) // metrics never fail the work they measure
}

// Command records one command: its latency, its version-conflict retries
// (attempts past the first), and whether it ended in a server error.
func (r *Recorder) Command(ctx context.Context, command string, latency time.Duration, attempts int, serverError bool) {
	errs := 0.0
	if serverError {
		errs = 1
	}
	r.Emit(ctx, map[string]string{"Command": command}, nil,
		Metric{Name: "CommandLatency", Unit: Milliseconds, Value: ms(latency)},
		Metric{Name: "VersionConflictRetries", Unit: Count, Value: float64(max(attempts-1, 0))},
		Metric{Name: "CommandErrors", Unit: Count, Value: errs},
	)
}

// Batch is what a queue or stream handler did with one batch.
type Batch struct {
	Messages int           // messages or records received
	Failures int           // reported back as batch item failures
	DLQSends int           // failures on their last allowed receive
	Duration time.Duration // handling time
}

// Batch records one batch: Messages, BatchFailures and DLQSends.
func (r *Recorder) Batch(ctx context.Context, b Batch) {
	r.Emit(ctx, nil, map[string]any{"duration_ms": ms(b.Duration)},
		Metric{Name: "Messages", Unit: Count, Value: float64(b.Messages)},
		Metric{Name: "BatchFailures", Unit: Count, Value: float64(b.Failures)},
		Metric{Name: "DLQSends", Unit: Count, Value: float64(b.DLQSends)},
	)
}

// ProjectionLag records, per projection, now − occurredAt of each event it
// applied.
func (r *Recorder) ProjectionLag(ctx context.Context, lags map[string][]time.Duration) {
	for _, p := range slices.Sorted(maps.Keys(lags)) {
		r.Lag(ctx, "ProjectionLag", map[string]string{"Projection": p}, lags[p])
	}
}

// Lag records samples of a lag metric, in lines of at most 100 values.
func (r *Recorder) Lag(ctx context.Context, name string, dims map[string]string, lags []time.Duration) {
	for chunk := range slices.Chunk(lags, maxValues) {
		vals := make([]float64, len(chunk))
		for i, d := range chunk {
			vals[i] = ms(max(d, 0))
		}
		r.Emit(ctx, dims, nil, Metric{Name: name, Unit: Milliseconds, Values: vals})
	}
}

// Rebuild records one slice of a rebuild: events folded and their rate.
func (r *Recorder) Rebuild(ctx context.Context, projection string, events int64, elapsed time.Duration) {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(events) / elapsed.Seconds()
	}
	r.Emit(ctx, map[string]string{"Projection": projection}, nil,
		Metric{Name: "RebuildEvents", Unit: Count, Value: float64(events)},
		Metric{Name: "RebuildEventsPerSecond", Unit: CountPerSec, Value: rate},
	)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func clean(vs []float64) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = finite(v)
	}
	return out
}
