package template_test

import (
	"testing"

	"github.com/chronicle-go/chronicle/infra/template"
)

// TestScalingSettings: the scaling settings are parameters with
// the defaults docs/scaling.md explains, and each reaches the resource it
// tunes (the local runner reads them from the same model).
func TestScalingSettings(t *testing.T) {
	type want struct {
		parallelization, streamBatch, streamWindow int
		projectorMax, notifierMax                  int
		commandsReserved, projectorReserved        int
		notifierReserved                           int
		dedupScope, throughputLimit                string
		rate                                       float64
		burst                                      int
	}
	cases := []struct {
		name   string
		params map[string]string
		want   want
	}{
		{"defaults", nil, want{2, 100, 0, 10, 2, 0, 0, 0, "messageGroup", "perMessageGroupId", 1000, 2000}},
		{"overridden", map[string]string{
			"StreamParallelizationFactor": "10", "StreamBatchSize": "500", "StreamBatchingWindowSeconds": "1",
			"ProjectorMaxConcurrency": "60", "NotifierMaxConcurrency": "5",
			"CommandsReservedConcurrency": "100", "ProjectorReservedConcurrency": "60", "NotifierReservedConcurrency": "5",
			"FifoHighThroughput": "false", "ApiThrottlingRateLimit": "2.5", "ApiThrottlingBurstLimit": "7",
		}, want{10, 500, 1, 60, 5, 100, 60, 5, "queue", "perQueue", 2.5, 7}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := load(t, with(c.params))
			fns := functions(t, tpl)
			w := c.want

			relay := fns["RelayFunction"].StreamEvents
			if len(relay) != 1 {
				t.Fatalf("relay stream mappings: %d", len(relay))
			}
			if e := relay[0]; e.ParallelizationFactor != w.parallelization || e.BatchSize != w.streamBatch || e.MaximumBatchingWindowInSeconds != w.streamWindow {
				t.Errorf("stream mapping: parallelization %d, batch %d, window %d; want %d, %d, %d",
					e.ParallelizationFactor, e.BatchSize, e.MaximumBatchingWindowInSeconds, w.parallelization, w.streamBatch, w.streamWindow)
			}
			for fn, max := range map[string]int{"ProjectorFunction": w.projectorMax, "NotifierFunction": w.notifierMax} {
				evs := fns[fn].QueueEvents
				if len(evs) != 1 || evs[0].MaximumConcurrency != max {
					t.Errorf("%s: queue mappings %+v, want one with MaximumConcurrency %d", fn, evs, max)
				}
			}
			for fn, n := range map[string]int{"CommandsFunction": w.commandsReserved, "ProjectorFunction": w.projectorReserved,
				"NotifierFunction": w.notifierReserved, "QueriesFunction": 0, "RelayFunction": 0} {
				if got := fns[fn].ReservedConcurrency; got != n {
					t.Errorf("%s: reserved concurrency %d, want %d", fn, got, n)
				}
			}

			qs := queues(t, tpl)
			for _, id := range []string{"ProjectionsQueue", "NotificationsQueue"} {
				r := qs[id].Resource
				if r.DeduplicationScope == nil || *r.DeduplicationScope != w.dedupScope ||
					r.FifoThroughputLimit == nil || *r.FifoThroughputLimit != w.throughputLimit {
					t.Errorf("%s: DeduplicationScope %v, FifoThroughputLimit %v; want %s, %s", id, r.DeduplicationScope, r.FifoThroughputLimit, w.dedupScope, w.throughputLimit)
				}
			}

			apis, err := tpl.APIs()
			if err != nil || len(apis) != 1 {
				t.Fatalf("APIs: %v, %v", apis, err)
			}
			if got := apis[0].Throttle; got != (template.Throttle{RateLimit: w.rate, BurstLimit: w.burst}) {
				t.Errorf("stage throttle %+v, want rate %v burst %d", got, w.rate, w.burst)
			}
		})
	}
}

// TestScalingBounds: every SQS mapping caps its concurrency (Lambda's own
// bound for FIFO is the number of message groups, i.e. users: unbounded),
// within what ScalingConfig accepts; the stream's factor is one Lambda takes.
func TestScalingBounds(t *testing.T) {
	tpl := load(t, required)
	for _, f := range functions(t, tpl) {
		for _, e := range f.QueueEvents {
			if f.Name == "ReplayFunction" {
				continue // one message group per projection: at most two batches ever
			}
			if e.MaximumConcurrency < 2 || e.MaximumConcurrency > 1000 {
				t.Errorf("%s.%s: MaximumConcurrency %d, want 2..1000", f.Name, e.Name, e.MaximumConcurrency)
			}
			if f.ReservedConcurrency > 0 && f.ReservedConcurrency < e.MaximumConcurrency {
				t.Errorf("%s: reserved concurrency %d under its mapping's MaximumConcurrency %d: Lambda would throttle the mapping", f.Name, f.ReservedConcurrency, e.MaximumConcurrency)
			}
		}
		for _, e := range f.StreamEvents {
			if e.ParallelizationFactor < 1 || e.ParallelizationFactor > 10 {
				t.Errorf("%s.%s: ParallelizationFactor %d, want 1..10", f.Name, e.Name, e.ParallelizationFactor)
			}
		}
	}
}
