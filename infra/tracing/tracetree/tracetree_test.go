package tracetree

import (
	"strings"
	"testing"
	"time"
)

func TestBuildAndPrint(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	spans := []*Span{
		{SpanID: "c", ParentID: "b", Name: "DynamoDB.TransactWriteItems", Start: t0.Add(2 * time.Millisecond), DurationMS: 3},
		{SpanID: "a", Name: "API Gateway POST /users", Service: "api-gateway", Start: t0, DurationMS: 10},
		{SpanID: "b", ParentID: "a", Name: "command create", Start: t0.Add(time.Millisecond), DurationMS: 8},
		{SpanID: "d", ParentID: "gone", Name: "orphan", Start: t0.Add(20 * time.Millisecond), DurationMS: 1, Error: "boom"},
	}
	roots := Build(spans)
	if len(roots) != 2 || roots[0].SpanID != "a" || roots[1].SpanID != "d" {
		t.Fatalf("roots %v, want a then the orphan d", roots)
	}
	var b strings.Builder
	Print(&b, Trace{TraceID: "t", RequestID: "r", Roots: roots, Spans: 4})
	want := `trace t (request r): 4 spans
     +0.0ms      10.0ms  API Gateway POST /users  [api-gateway]
     +1.0ms       8.0ms    command create
     +2.0ms       3.0ms      DynamoDB.TransactWriteItems
    +20.0ms       1.0ms  orphan  ERROR: boom
`
	if b.String() != want {
		t.Errorf("Print:\n%s\nwant:\n%s", b.String(), want)
	}
}
