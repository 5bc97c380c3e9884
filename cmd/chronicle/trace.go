package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/xray"

	"github.com/chronicle-go/chronicle/infra/tracing/tracetree"
)

// traceCmd prints the trace of one API request, found by its request id
// (the X-Request-Id of the answer, the events' correlation id): from the
// local runner (GET /_local/traces/{id}) when CHRONICLE_URL or --url names
// it, else from X-Ray, where the command's span carries the id as the
// request_id annotation.
func traceCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	base := fs.String("url", "", "the local runner's URL (default: CHRONICLE_URL, which go run ./cmd/local env prints); empty: X-Ray")
	since := fs.Duration("since", 6*time.Hour, "X-Ray: how far back to look for the request")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return usagef("want one request id")
		}
		u := *base
		if u == "" {
			u = a.env("CHRONICLE_URL")
		}
		var t tracetree.Trace
		var err error
		if u != "" {
			t, err = localTrace(ctx, u, args[0])
		} else {
			t, err = a.xrayTrace(ctx, args[0], *since)
		}
		if err != nil {
			return err
		}
		if a.asJSON {
			return a.printJSON(t)
		}
		tracetree.Print(a.stdout, t)
		return nil
	}
}

func localTrace(ctx context.Context, base, id string) (tracetree.Trace, error) {
	var t tracetree.Trace
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/_local/traces/"+url.PathEscape(id), nil)
	if err != nil {
		return t, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return t, fmt.Errorf("trace %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p struct{ Detail string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(b, &p) == nil && p.Detail != "" {
			return t, fmt.Errorf("trace %s: %s", id, p.Detail)
		}
		return t, fmt.Errorf("trace %s: %s from %s", id, resp.Status, base)
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
		return t, fmt.Errorf("trace %s: %w", id, err)
	}
	return t, nil
}

// xrayTrace finds the trace annotated with the request id and reads its
// segments (needs xray:GetTraceSummaries and xray:BatchGetTraces).
func (a *app) xrayTrace(ctx context.Context, id string, since time.Duration) (tracetree.Trace, error) {
	var t tracetree.Trace
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return t, err
	}
	client := xray.NewFromConfig(cfg)
	end := time.Now()
	var traceID string
	// X-Ray takes at most 6 hours a call: step back through the window.
	for to := end; to.After(end.Add(-since)) && traceID == ""; to = to.Add(-6 * time.Hour) {
		from := to.Add(-6 * time.Hour)
		if from.Before(end.Add(-since)) {
			from = end.Add(-since)
		}
		p := xray.NewGetTraceSummariesPaginator(client, &xray.GetTraceSummariesInput{
			StartTime: aws.Time(from), EndTime: aws.Time(to),
			FilterExpression: aws.String(fmt.Sprintf("annotation.request_id = %q", id)),
		})
		for p.HasMorePages() && traceID == "" {
			page, err := p.NextPage(ctx)
			if err != nil {
				return t, fmt.Errorf("x-ray trace summaries: %w", err)
			}
			for _, s := range page.TraceSummaries {
				traceID = aws.ToString(s.Id)
				break
			}
		}
	}
	if traceID == "" {
		return t, fmt.Errorf("no X-Ray trace annotated request_id = %q in the last %s (is EnableTracing on?)", id, since)
	}
	out, err := client.BatchGetTraces(ctx, &xray.BatchGetTracesInput{TraceIds: []string{traceID}})
	if err != nil {
		return t, fmt.Errorf("x-ray trace %s: %w", traceID, err)
	}
	var spans []*tracetree.Span
	for _, tr := range out.Traces {
		for _, seg := range tr.Segments {
			s, err := segmentSpans(aws.ToString(seg.Document))
			if err != nil {
				return t, fmt.Errorf("x-ray trace %s: %w", traceID, err)
			}
			spans = append(spans, s...)
		}
	}
	if len(spans) == 0 {
		return t, errors.New("x-ray trace " + traceID + ": no segments yet")
	}
	return tracetree.Trace{TraceID: traceID, RequestID: id, Roots: tracetree.Build(spans), Spans: len(spans)}, nil
}

// segment is the part of an X-Ray segment (or subsegment) document read.
type segment struct {
	ID          string    `json:"id"`
	TraceID     string    `json:"trace_id"`
	ParentID    string    `json:"parent_id"`
	Name        string    `json:"name"`
	Origin      string    `json:"origin"`
	StartTime   float64   `json:"start_time"`
	EndTime     float64   `json:"end_time"`
	Fault       bool      `json:"fault"`
	Error       bool      `json:"error"`
	Subsegments []segment `json:"subsegments"`
}

// segmentSpans flattens a segment document and its subsegments.
func segmentSpans(doc string) ([]*tracetree.Span, error) {
	var root segment
	if err := json.Unmarshal([]byte(doc), &root); err != nil {
		return nil, fmt.Errorf("segment document: %w", err)
	}
	var out []*tracetree.Span
	var walk func(s segment, parent, service string)
	walk = func(s segment, parent, service string) {
		if s.ParentID != "" {
			parent = s.ParentID
		}
		sp := &tracetree.Span{TraceID: root.TraceID, SpanID: s.ID, ParentID: parent, Name: s.Name, Service: service,
			Start:      time.UnixMicro(int64(math.Round(s.StartTime * 1e6))),
			DurationMS: math.Round((s.EndTime-s.StartTime)*1e6) / 1000}
		if s.Fault || s.Error {
			sp.Error = "fault"
		}
		out = append(out, sp)
		for _, c := range s.Subsegments {
			walk(c, s.ID, service)
		}
	}
	walk(root, "", root.Name)
	return out, nil
}
