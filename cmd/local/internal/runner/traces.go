package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronicle-go/chronicle/infra/tracing"
	"github.com/chronicle-go/chronicle/infra/tracing/tracetree"
)

// The runner collects the spans of its functions itself, as the ADOT
// collector and X-Ray do in AWS: the functions run in this process, under
// one OpenTelemetry provider whose spans end up here, kept in memory
// (maxTraces, the oldest dropped first) and served by the gateway at
// GET /_local/traces/{id}, id being a request id (the API's X-Request-Id
// or API Gateway's) or a trace id. Under --rie the functions run as
// processes of their own: only the runner's spans (gateway, invocations)
// are collected then.

// tracesPath is the prefix of the local-only trace endpoint.
const tracesPath = "/_local/traces/"

// maxTraces bounds the traces kept.
const maxTraces = 5000

// apiRequestID is the attribute of API Gateway's own request id
// (X-Amzn-Requestid) on the gateway's span.
const apiRequestID = attribute.Key("aws.api_gateway.request_id")

// traceStore is an sdktrace.SpanProcessor that keeps ended spans by trace.
type traceStore struct {
	mu        sync.Mutex
	traces    map[trace.TraceID][]*tracetree.Span
	order     []trace.TraceID // first seen first: the eviction order
	byRequest map[string]trace.TraceID
}

func newTraceStore() *traceStore {
	return &traceStore{traces: map[trace.TraceID][]*tracetree.Span{}, byRequest: map[string]trace.TraceID{}}
}

// installTracing makes the runner's collector the process's provider.
func installTracing() *traceStore {
	st := newTraceStore()
	tracing.Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(st)))
	return st
}

func (st *traceStore) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (st *traceStore) Shutdown(context.Context) error                  { return nil }
func (st *traceStore) ForceFlush(context.Context) error                { return nil }

func (st *traceStore) OnEnd(s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	out := &tracetree.Span{
		TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(),
		Name: s.Name(), Kind: s.SpanKind().String(), Start: s.StartTime(),
		DurationMS: float64(s.EndTime().Sub(s.StartTime()).Microseconds()) / 1000,
	}
	if p := s.Parent(); p.IsValid() {
		out.ParentID = p.SpanID().String()
	}
	if s.Status().Code == codes.Error {
		out.Error = s.Status().Description
	}
	var requestIDs []string
	for _, kv := range s.Attributes() {
		if out.Attributes == nil {
			out.Attributes = map[string]string{}
		}
		out.Attributes[string(kv.Key)] = kv.Value.Emit()
		if kv.Key == tracing.RequestID || kv.Key == apiRequestID {
			requestIDs = append(requestIDs, kv.Value.AsString())
		}
		if kv.Key == tracing.Function {
			out.Service = kv.Value.AsString()
		}
	}
	for _, l := range s.Links() {
		out.Links = append(out.Links, l.SpanContext.TraceID().String()+"/"+l.SpanContext.SpanID().String())
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	id := sc.TraceID()
	if _, ok := st.traces[id]; !ok {
		st.order = append(st.order, id)
		if len(st.order) > maxTraces {
			delete(st.traces, st.order[0])
			st.order = st.order[1:]
		}
	}
	st.traces[id] = append(st.traces[id], out)
	for _, r := range requestIDs {
		st.byRequest[r] = id
	}
	if len(st.byRequest) > 4*maxTraces { // entries of dropped traces
		for r, t := range st.byRequest {
			if _, ok := st.traces[t]; !ok {
				delete(st.byRequest, r)
			}
		}
	}
}

// find returns the trace of id (a request id or a trace id), its spans
// copied and linked into trees; false when it has none.
func (st *traceStore) find(id string) (tracetree.Trace, bool) {
	st.mu.Lock()
	tid, ok := st.byRequest[id]
	requestID := id
	if !ok {
		var err error
		if tid, err = trace.TraceIDFromHex(id); err != nil {
			st.mu.Unlock()
			return tracetree.Trace{}, false
		}
		requestID = ""
	}
	kept := st.traces[tid]
	spans := make([]*tracetree.Span, len(kept))
	for i, s := range kept {
		c := *s
		c.Children = nil
		spans[i] = &c
	}
	st.mu.Unlock()
	if len(spans) == 0 {
		return tracetree.Trace{}, false
	}
	roots := tracetree.Build(spans)
	// A span names the function it ran in through its nearest invocation.
	var fill func(s *tracetree.Span, service string)
	fill = func(s *tracetree.Span, service string) {
		if s.Service == "" {
			s.Service = service
		}
		for _, c := range s.Children {
			fill(c, s.Service)
		}
	}
	for _, r := range roots {
		fill(r, "")
	}
	return tracetree.Trace{TraceID: tid.String(), RequestID: requestID, Roots: roots, Spans: len(spans)}, true
}

// serveTrace answers GET /_local/traces/{id}.
func (g *gateway) serveTrace(w http.ResponseWriter, req *http.Request, requestID string) {
	id := strings.TrimPrefix(req.URL.Path, tracesPath)
	switch {
	case req.Method != http.MethodGet:
		g.respond(w, req, requestID, replyMissingToken, "Missing Authentication Token")
		return
	case g.r.traces == nil:
		writeLocalProblem(w, http.StatusNotFound, "Tracing is off", "the runner collects traces only with --traces")
		return
	case id == "" || strings.Contains(id, "/"):
		writeLocalProblem(w, http.StatusBadRequest, "Bad trace id", "want /_local/traces/{request id or trace id}")
		return
	}
	t, ok := g.r.traces.find(id)
	if !ok {
		writeLocalProblem(w, http.StatusNotFound, "No such trace",
			fmt.Sprintf("no trace holds request or trace id %q (yet: the asynchronous spans arrive as the consumers run)", id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(t)
}

func writeLocalProblem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail})
}
