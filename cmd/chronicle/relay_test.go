package main

import (
	"reflect"
	"testing"
	"time"
)

// TestMergeSpans: overlapping (and touching) windows of OnFailure records
// are redriven as one, with every record they hold; disjoint ones apart.
func TestMergeSpans(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	got := mergeSpans([]redriveSpan{
		{from: at(20), to: at(27), records: []int{0}},
		{from: at(0), to: at(7), records: []int{1}},
		{from: at(5), to: at(9), records: []int{2}},
		{from: at(9), to: at(12), records: []int{3}},
		{from: at(6), to: at(8), records: []int{4}},
	})
	want := []redriveSpan{
		{from: at(0), to: at(12), records: []int{1, 2, 4, 3}},
		{from: at(20), to: at(27), records: []int{0}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
