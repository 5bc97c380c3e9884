package apigw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/domain/es"
)

// Paging of the lists the APIs answer (histories, activity, lists).
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// HeaderMinVersion is the header of read-your-writes: the version a read
// must show at least (as the query parameter minVersion).
const HeaderMinVersion = "X-Min-Version"

// Where a read's answer came from (the X-Source header).
const (
	SourceProjection = "projection"
	SourceEventStore = "event-store"
)

// MinVersion is the larger of ?minVersion and X-Min-Version (0: none).
func MinVersion(req *events.APIGatewayProxyRequest) (int64, error) {
	n, err := QueryInt(req, "minVersion", 1, MaxInt, 0)
	if err != nil {
		return 0, err
	}
	v, ok, err := SingleHeader(req, HeaderMinVersion)
	if err != nil || !ok {
		return n, err
	}
	h, err := strconv.ParseInt(v, 10, 64)
	if err != nil || h < 1 {
		return 0, BadField(HeaderMinVersion, "must be an integer of at least 1")
	}
	return max(n, h), nil
}

// EventLoader reads the records of a stream with from <= version <= to (to
// <= 0: no bound), in version order: *dynamo.Store is one.
type EventLoader interface {
	Load(ctx context.Context, aggregateID string, from, to int64) ([]es.Record, error)
}

// EventAnswer is one event of a history or of an actor's activity, as
// every API answers it, whatever the aggregate.
type EventAnswer struct {
	EventID       string          `json:"eventId"`
	AggregateID   string          `json:"aggregateId,omitempty"` // activity only
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	OccurredAt    time.Time       `json:"occurredAt"`
	Actor         string          `json:"actor"`
	Reason        string          `json:"reason"`
	CorrelationID string          `json:"correlationId"`
	CausationID   string          `json:"causationId"`
	Data          json.RawMessage `json:"data"`
}

// EventOf is the answer of r; withAggregate names its stream (activity).
func EventOf(r es.Record, withAggregate bool) EventAnswer {
	e := EventAnswer{
		EventID: r.ID, Version: r.Version, Type: r.Type, OccurredAt: r.OccurredAt.UTC(),
		Actor: r.Metadata.Actor, Reason: r.Metadata.Reason,
		CorrelationID: r.Metadata.CorrelationID, CausationID: r.Metadata.CausationID,
		Data: r.Data,
	}
	if !json.Valid(e.Data) {
		e.Data = json.RawMessage("null")
	}
	if withAggregate {
		e.AggregateID = r.AggregateID
	}
	return e
}

// HistoryAnswer is a page of a stream's history.
type HistoryAnswer struct {
	ID         string        `json:"id"`
	Events     []EventAnswer `json:"events"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

// HistoryQuery is the page of a history a request asks for.
type HistoryQuery struct {
	From, Limit int64
}

// HistoryParams reads ?fromVersion=&limit=&cursor= of the history of
// stream id: a cursor carries on from where the last page ended.
func HistoryParams(req *events.APIGatewayProxyRequest, id string) (HistoryQuery, error) {
	from, err := QueryInt(req, "fromVersion", 1, MaxInt, 1)
	if err != nil {
		return HistoryQuery{}, err
	}
	limit, err := QueryInt(req, "limit", 1, MaxLimit, DefaultLimit)
	if err != nil {
		return HistoryQuery{}, err
	}
	if cur, ok, err := QueryValue(req, "cursor"); err != nil {
		return HistoryQuery{}, err
	} else if ok {
		if from, err = decodeHistoryCursor(cur, id); err != nil {
			return HistoryQuery{}, err
		}
	}
	return HistoryQuery{From: from, Limit: limit}, nil
}

// History reads the page q of the history of stream id. found is false
// when the stream has no event (no such aggregate): the caller answers its
// API's 404.
func History(ctx context.Context, events EventLoader, id string, q HistoryQuery) (HistoryAnswer, bool, error) {
	// One more than asked for tells whether there is a next page.
	recs, err := events.Load(ctx, id, q.From, q.From+q.Limit)
	if err != nil {
		return HistoryAnswer{}, false, err
	}
	if len(recs) == 0 { // no such stream, or past the end of its history
		exists := false
		if q.From > 1 {
			first, err := events.Load(ctx, id, 1, 1)
			if err != nil {
				return HistoryAnswer{}, false, err
			}
			exists = len(first) > 0
		}
		if !exists {
			return HistoryAnswer{}, false, nil
		}
	}
	ans := HistoryAnswer{ID: id, Events: make([]EventAnswer, 0, min(len(recs), int(q.Limit)))}
	if int64(len(recs)) > q.Limit {
		recs = recs[:q.Limit]
		ans.NextCursor = encodeHistoryCursor(id, recs[len(recs)-1].Version+1)
	}
	for _, r := range recs {
		ans.Events = append(ans.Events, EventOf(r, false))
	}
	return ans, true, nil
}

// A history cursor is opaque to clients: the stream id and the next version.
func encodeHistoryCursor(id string, next int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id + "@" + strconv.FormatInt(next, 10)))
}

func decodeHistoryCursor(cursor, id string) (int64, error) {
	bad := BadField("cursor", "must be a nextCursor of the same history")
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, bad
	}
	cid, v, ok := strings.Cut(string(b), "@")
	n, err := strconv.ParseInt(v, 10, 64)
	if !ok || cid != id || err != nil || n < 1 {
		return 0, bad
	}
	return n, nil
}
