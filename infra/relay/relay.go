// Package relay forwards the events table's stream (the transactional
// outbox) to the subscribers' SQS FIFO queues: the DynamoDB Streams handler.
//
// Each new event goes to the queues its type is routed to, with the
// aggregate id as message group (order per aggregate) and the event id as
// deduplication id (a resend within SQS's five-minute window is dropped).
// The stream is ordered per shard and Lambda retries a batch from the first
// record reported failed, so that record and every later one are reported.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/metrics"
)

// Sender is the part of *sqs.Client the relay uses.
type Sender interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ Sender = (*sqs.Client)(nil)

// SQS limits of one SendMessageBatch call.
const (
	maxBatchEntries = 10
	// maxBatchBytes bounds the sum of a batch's bodies: SQS's classic limit.
	// SQS (and moto) now take 1 MiB, but a queue's MaximumMessageSize may be
	// set lower, and a quarter of the limit costs only more calls.
	maxBatchBytes = 256 * 1024
)

// Relay is the stream handler. It is safe for concurrent use.
type Relay struct {
	sqs     Sender
	routes  Routes
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics.Recorder // nil: none
}

// Option tunes a Relay.
type Option func(*Relay)

// WithMetrics makes the relay write EMF metrics to m after each batch:
// Messages (stream records), BatchFailures and RelayLag (now − occurredAt
// of each event sent). Default: none.
func WithMetrics(m *metrics.Recorder) Option { return func(r *Relay) { r.metrics = m } }

// New returns a relay sending through client along routes.
func New(client Sender, routes Routes, logger *slog.Logger, now func() time.Time, opts ...Option) *Relay {
	r := &Relay{sqs: client, routes: routes, log: logger, now: now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// message is one event bound for one queue.
type message struct {
	index int // position of its record in the batch
	rec   es.Record
	body  string
	span  *recordSpan // nil with tracing off
}

// Handle sends every INSERT record of ev to its queues. The response lists
// the first record that could not be decoded or sent and every record after
// it; Lambda retries from there. Other records (events are never modified or
// removed) are logged and skipped. A per-record failure is never the
// handler's error.
func (r *Relay) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	start := r.now()
	first := len(ev.Records) // index of the first failed record
	fail := func(i int, err error, attrs ...any) {
		if i < first {
			first = i
		}
		r.log.ErrorContext(ctx, "relay record failed", append(attrs,
			"sequence_number", ev.Records[i].Change.SequenceNumber, "err", err)...)
	}

	queues := map[string][]message{}
	var spans []*recordSpan // each routed record's, ended with the batch
	defer func() { endRecordSpans(spans, first) }()
	var order []string // queue URLs in first-use order, for deterministic sends
	skipped, unrouted := 0, 0
	for i, sr := range ev.Records {
		if sr.EventName != string(events.DynamoDBOperationTypeInsert) {
			skipped++
			r.log.WarnContext(ctx, "relay skips a non-INSERT record: events are immutable",
				"event_name", sr.EventName, "sequence_number", sr.Change.SequenceNumber)
			continue
		}
		rec, err := RecordFromImage(sr.Change.NewImage)
		if err != nil {
			fail(i, err)
			break // nothing from here on is sent: Lambda resends it all
		}
		urls := r.routes.Queues(rec.Type)
		if len(urls) == 0 {
			unrouted++
			continue
		}
		body, err := EncodeMessage(rec)
		if err != nil {
			fail(i, err, "aggregate_id", rec.AggregateID, "version", rec.Version)
			break
		}
		span := startRecordSpan(ctx, rec, i)
		if span != nil {
			spans = append(spans, span)
		}
		for _, u := range urls {
			if _, seen := queues[u]; !seen {
				order = append(order, u)
			}
			queues[u] = append(queues[u], message{index: i, rec: rec, body: body, span: span})
		}
	}

	sent := 0
	for _, url := range order {
		n, serr := r.send(ctx, url, queues[url], first)
		sent += n
		if serr != nil {
			fail(serr.index, serr.err, "queue_url", url, "aggregate_id", serr.rec.AggregateID,
				"version", serr.rec.Version, "event_type", serr.rec.Type)
		}
	}

	var resp events.DynamoDBEventResponse
	for _, sr := range ev.Records[first:] {
		resp.BatchItemFailures = append(resp.BatchItemFailures,
			events.DynamoDBBatchItemFailure{ItemIdentifier: sr.Change.SequenceNumber})
	}
	level := slog.LevelInfo
	if len(resp.BatchItemFailures) > 0 {
		level = slog.LevelWarn
	}
	end := r.now()
	r.log.Log(ctx, level, "relay batch",
		"records", len(ev.Records), "sent", sent, "skipped", skipped, "unrouted", unrouted,
		"failures", len(resp.BatchItemFailures), "duration_ms", end.Sub(start).Milliseconds())
	if r.metrics != nil {
		r.metrics.Batch(ctx, metrics.Batch{Messages: len(ev.Records), Failures: len(resp.BatchItemFailures), Duration: end.Sub(start)})
		var lags []time.Duration
		for _, url := range order {
			for _, m := range queues[url] {
				if m.index < first {
					lags = append(lags, end.Sub(m.rec.OccurredAt))
				}
			}
		}
		r.metrics.Lag(ctx, "RelayLag", nil, lags)
	}
	return resp, nil
}

// sendError is the first message of a queue that was not sent.
type sendError struct {
	message
	err error
}

// send sends msgs to url in stream order, in batches within SQS's limits,
// and stops at the first message that fails or that is at or after before
// (a record already failed: Lambda resends from there, and sending later
// events of its aggregate first would only reorder the queue). It returns
// how many were sent.
func (r *Relay) send(ctx context.Context, url string, msgs []message, before int) (int, *sendError) {
	if cut := slices.IndexFunc(msgs, func(m message) bool { return m.index >= before }); cut >= 0 {
		msgs = msgs[:cut]
	}
	sent := 0
	for len(msgs) > 0 {
		n := batchLen(msgs)
		batch := msgs[:n]
		entries := make([]types.SendMessageBatchRequestEntry, len(batch))
		for i, m := range batch {
			entries[i] = types.SendMessageBatchRequestEntry{
				Id:                     aws.String(strconv.Itoa(i)),
				MessageBody:            aws.String(m.body),
				MessageGroupId:         aws.String(m.rec.AggregateID),
				MessageDeduplicationId: aws.String(m.rec.ID),
				MessageAttributes:      m.span.attributes(),
			}
		}
		out, err := r.sqs.SendMessageBatch(sendContext(ctx, batch), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			return sent, &sendError{batch[0], fmt.Errorf("send %d messages: %w", len(batch), err)}
		}
		if len(out.Failed) > 0 {
			// Entries after a failed one may have been sent; the resend from
			// the failed record is deduplicated by event id.
			bad := len(batch)
			var why string
			for _, f := range out.Failed {
				i, err := strconv.Atoi(aws.ToString(f.Id))
				if err != nil || i < 0 || i >= len(batch) {
					return sent, &sendError{batch[0], fmt.Errorf("send: unknown failed entry %q", aws.ToString(f.Id))}
				}
				if i < bad {
					bad = i
					why = fmt.Sprintf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
				}
			}
			return sent + bad, &sendError{batch[bad], fmt.Errorf("send: entry refused: %s", why)}
		}
		sent += n
		msgs = msgs[n:]
	}
	return sent, nil
}

// batchLen is how many of msgs fit in one SendMessageBatch: at most ten and
// at most maxBatchBytes of bodies, but always at least one (a body too large
// on its own is SQS's to refuse).
func batchLen(msgs []message) int {
	n, size := 0, 0
	for n < len(msgs) && n < maxBatchEntries {
		size += len(msgs[n].body)
		if n > 0 && size > maxBatchBytes {
			break
		}
		n++
	}
	return n
}

// Routes maps an event type to the URLs of the queues that receive it. The
// type "*" matches every event.
type Routes map[string][]string

// Wildcard is the route every event type takes.
const Wildcard = "*"

// Queues returns the queues of typ: its own and the wildcard's, each once.
func (rt Routes) Queues(typ string) []string {
	var urls []string
	for _, u := range append(slices.Clip(rt[typ]), rt[Wildcard]...) {
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	return urls
}

// ParseRoutes reads routes written as "type=URL,URL;type=URL", such as
// "user.created.v1=URL1,URL2;*=URL3". Spaces around items are ignored; a
// type may appear more than once.
func ParseRoutes(s string) (Routes, error) {
	rt := Routes{}
	for item := range strings.SplitSeq(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		typ, list, ok := strings.Cut(item, "=")
		typ = strings.TrimSpace(typ)
		if !ok || typ == "" {
			return nil, fmt.Errorf("route %q: want type=URL[,URL...]", item)
		}
		for u := range strings.SplitSeq(list, ",") {
			u = strings.TrimSpace(u)
			if u == "" {
				return nil, fmt.Errorf("route %q: empty queue URL", item)
			}
			if !slices.Contains(rt[typ], u) {
				rt[typ] = append(rt[typ], u)
			}
		}
	}
	if len(rt) == 0 {
		return nil, fmt.Errorf("routes %q: none given", s)
	}
	return rt, nil
}

// RecordFromImage decodes a stream record's NEW_IMAGE of the events table,
// with the event store's own item codec.
func RecordFromImage(image map[string]events.DynamoDBAttributeValue) (es.Record, error) {
	item, err := Item(image)
	if err != nil {
		return es.Record{}, fmt.Errorf("decode new image: %w", err)
	}
	rec, err := dynamo.RecordFromItem(item)
	if err != nil {
		return es.Record{}, fmt.Errorf("decode new image: %w", err)
	}
	return rec, nil
}

// ErrBadMessage: a queue message body that is not an event record.
var ErrBadMessage = errors.New("malformed event message")

// EncodeMessage is the body of the queue message carrying rec: the JSON of
// the es.Record (its json tags).
func EncodeMessage(rec es.Record) (string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode %s v%d: %w", rec.AggregateID, rec.Version, err)
	}
	return string(b), nil
}

// DecodeMessage reads a queue message body made by EncodeMessage. The
// record's Event is left nil.
func DecodeMessage(body string) (es.Record, error) {
	var rec es.Record
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		return es.Record{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if rec.ID == "" || rec.AggregateID == "" || rec.Version < 1 || rec.Type == "" {
		return es.Record{}, fmt.Errorf("%w: event id, aggregate id, type and a version >= 1 are required", ErrBadMessage)
	}
	return rec, nil
}
