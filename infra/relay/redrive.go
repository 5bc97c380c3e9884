package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
)

// BatchInfo is what the relay's event source mapping sends to its OnFailure
// destination about a batch it gave up on: where the batch was in the
// stream and when its records arrived, but none of its keys.
type BatchInfo struct {
	ShardID             string    `json:"shardId"`
	StartSequenceNumber string    `json:"startSequenceNumber"`
	EndSequenceNumber   string    `json:"endSequenceNumber"`
	FirstArrival        time.Time `json:"approximateArrivalOfFirstRecord"`
	LastArrival         time.Time `json:"approximateArrivalOfLastRecord"`
	BatchSize           int       `json:"batchSize"`
	StreamARN           string    `json:"streamArn"`
}

// failureRecord is the OnFailure message of a stream event source mapping.
type failureRecord struct {
	RequestContext struct {
		Condition string `json:"condition"`
	} `json:"requestContext"`
	Batch *BatchInfo `json:"DDBStreamBatchInfo"`
}

// ParseFailureRecord reads an OnFailure record of the relay's mapping.
func ParseFailureRecord(body string) (BatchInfo, error) {
	var f failureRecord
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		return BatchInfo{}, fmt.Errorf("parse OnFailure record: %w", err)
	}
	if f.Batch == nil {
		return BatchInfo{}, errors.New("parse OnFailure record: no DDBStreamBatchInfo")
	}
	b := *f.Batch
	if b.FirstArrival.IsZero() || b.LastArrival.Before(b.FirstArrival) {
		return BatchInfo{}, fmt.Errorf("parse OnFailure record: arrival times %s..%s", b.FirstArrival, b.LastArrival)
	}
	return b, nil
}

// ArrivalPrecision is the precision of a stream record's arrival time:
// DynamoDB rounds ApproximateCreationDateTime down to the second.
const ArrivalPrecision = time.Second

// Window is the occurred-at range the batch's events lie in: a stream
// record arrives when its event commits, which is between its occurred-at
// and occurred-at + appendWindow by the writer's clock, off DynamoDB's by up
// to skew; and the arrival times are rounded down to ArrivalPrecision.
func (b BatchInfo) Window(appendWindow, skew time.Duration) (from, to time.Time) {
	return b.FirstArrival.Add(-appendWindow - skew), b.LastArrival.Add(ArrivalPrecision + skew)
}

// Send routes recs to their subscribers' queues exactly as Handle routes
// stream records (group: aggregate id, deduplication: event id), in order,
// and returns how many messages it sent. Subscribers skip what they already
// applied, so sending an event again is harmless.
func (r *Relay) Send(ctx context.Context, recs []es.Record) (int, error) {
	queues := map[string][]message{}
	var order []string
	for i, rec := range recs {
		body, err := EncodeMessage(rec)
		if err != nil {
			return 0, fmt.Errorf("encode %s v%d: %w", rec.AggregateID, rec.Version, err)
		}
		for _, u := range r.routes.Queues(rec.Type) {
			if _, seen := queues[u]; !seen {
				order = append(order, u)
			}
			queues[u] = append(queues[u], message{index: i, rec: rec, body: body})
		}
	}
	sent := 0
	for _, url := range order {
		n, serr := r.send(ctx, url, queues[url], len(recs))
		sent += n
		if serr != nil {
			return sent, fmt.Errorf("send %s v%d to %s: %w", serr.rec.AggregateID, serr.rec.Version, url, serr.err)
		}
	}
	return sent, nil
}
