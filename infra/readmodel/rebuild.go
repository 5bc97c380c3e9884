package readmodel

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// This file holds what rebuilds, repairs and audits need of the core: batch
// writes (the projections' puts of whole folds, written at once rather than
// event by event as the projector does), the progress of a rebuild, and
// Prune.

// maxBatchWrite is DynamoDB's limit on the items of one BatchWriteItem.
const maxBatchWrite = 25

// BatchWrite writes reqs (puts and deletes of items of s's table) in
// batches of 25, sending unprocessed items (throttling) again after a
// short pause (Pause).
func (s *Store) BatchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for len(reqs) > 0 {
		n := min(len(reqs), maxBatchWrite)
		pending := map[string][]types.WriteRequest{s.table: reqs[:n]}
		for attempt := 0; len(pending) > 0; attempt++ {
			out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return err
			}
			pending = out.UnprocessedItems
			if len(pending) > 0 {
				if err := Pause(ctx, attempt+1); err != nil {
					return err
				}
			}
		}
		reqs = reqs[n:]
	}
	return nil
}

// retryPause is the wait before a write (after a conflict) or a batch
// (after unprocessed items: throttling) is sent again: full jitter under a
// ceiling that doubles from 10 ms to 640 ms, and at least 1 ms.
var retryPause = backoff.Policy{Base: 10 * time.Millisecond, Cap: 640 * time.Millisecond, Min: time.Millisecond, Mode: backoff.FullJitter}

// Pause waits retryPause's delay before attempt (1 for the first retry) of
// a write that lost a race or a batch that came back unprocessed, or until
// ctx ends: the one pause of the table's stores.
func Pause(ctx context.Context, attempt int) error {
	return backoff.Sleep(ctx, retryPause.Delay(attempt, 0))
}

// Build is the progress of a rebuild of one generation of a projection:
// the events table is scanned in Segments parallel segments, each resuming
// after the last key it checkpointed.
type Build struct {
	Projection string
	Generation int64
	Segments   []Segment // by number
	StartedAt  time.Time
	// ScanAfter is when the scan may start: once every live projector
	// writes the new generation (DefaultGenerationTTL after StartedAt).
	ScanAfter  time.Time
	Total      int64 // the events table's item count at the start; 0: unknown
	FinishedAt time.Time
}

// Segment is the progress of one scan segment.
type Segment struct {
	Number     int
	LastKey    map[string]types.AttributeValue // resume after it; nil: from the start
	Done       bool
	Events     int64 // events folded so far
	Aggregates int64 // aggregates written so far
	UpdatedAt  time.Time
}

// Events is the number of events the build has folded.
func (b Build) Events() int64 {
	var n int64
	for _, s := range b.Segments {
		n += s.Events
	}
	return n
}

// Aggregates is the number of aggregates the build has written.
func (b Build) Aggregates() int64 {
	var n int64
	for _, s := range b.Segments {
		n += s.Aggregates
	}
	return n
}

// Scanned reports whether every segment is done.
func (b Build) Scanned() bool {
	for _, s := range b.Segments {
		if !s.Done {
			return false
		}
	}
	return len(b.Segments) > 0
}

// Attributes of build items.
const (
	skBuildState    = "state"
	buildSegmentPre = "segment#"

	attrSegments   = "segments"
	attrStartedAt  = "startedAt"
	attrScanAfter  = "scanAfter"
	attrTotal      = "total"
	attrFinishedAt = "finishedAt"
	attrLastKey    = "lastKey"
	attrDone       = "done"
	attrEvents     = "events"
	attrAggregates = "aggregates"
	attrUpdatedAt  = "updatedAt"
)

func buildPK(projection string, gen int64) string {
	return "rebuild#" + projection + "#" + strconv.FormatInt(gen, 10)
}

func segmentSK(n int) string { return fmt.Sprintf("%s%04d", buildSegmentPre, n) }

// CreateBuild records the start of b, with its segments at their start,
// unless a build of that generation is recorded already; it returns the
// recorded one.
func (s *Store) CreateBuild(ctx context.Context, b Build) (Build, error) {
	pk := buildPK(b.Projection, b.Generation)
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			AttrPK: str(pk), AttrSK: str(skBuildState),
			attrSegments: num(int64(len(b.Segments))), attrStartedAt: str(stamp(b.StartedAt)),
			attrScanAfter: str(stamp(b.ScanAfter)), attrTotal: num(b.Total),
		},
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if err != nil && !conditionFailed(err) {
		return Build{}, fmt.Errorf("record build %d of %s: %w", b.Generation, b.Projection, err)
	}
	got, ok, err := s.Build(ctx, b.Projection, b.Generation)
	if err != nil {
		return Build{}, err
	}
	if !ok {
		return Build{}, fmt.Errorf("record build %d of %s: not found after writing it", b.Generation, b.Projection)
	}
	return got, nil
}

// Build returns the recorded progress of the rebuild of generation gen of
// projection, read consistently.
func (s *Store) Build(ctx context.Context, projection string, gen int64) (Build, bool, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(buildPK(projection, gen))},
		ConsistentRead:            aws.Bool(true),
	}
	b := Build{Projection: projection, Generation: gen}
	found := false
	segs := map[int]Segment{}
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return Build{}, false, fmt.Errorf("read build %d of %s: %w", gen, projection, err)
		}
		for _, item := range out.Items {
			sk, _ := attr.String(item, AttrSK)
			switch {
			case sk == skBuildState:
				found = true
				n, err := attr.Int(item, attrSegments)
				if err != nil {
					return Build{}, false, fmt.Errorf("build %d of %s: %w", gen, projection, err)
				}
				b.Segments = make([]Segment, n)
				b.StartedAt, _ = attr.Time(item, attrStartedAt)
				b.ScanAfter, _ = attr.Time(item, attrScanAfter)
				b.Total, _ = attr.Int(item, attrTotal)
				b.FinishedAt, _ = attr.Time(item, attrFinishedAt)
			case strings.HasPrefix(sk, buildSegmentPre):
				n, err := strconv.Atoi(strings.TrimPrefix(sk, buildSegmentPre))
				if err != nil {
					return Build{}, false, fmt.Errorf("build %d of %s: segment %q: %w", gen, projection, sk, err)
				}
				seg := Segment{Number: n}
				if m, ok := item[attrLastKey].(*types.AttributeValueMemberM); ok {
					seg.LastKey = m.Value
				}
				if d, ok := item[attrDone].(*types.AttributeValueMemberBOOL); ok {
					seg.Done = d.Value
				}
				seg.Events, _ = attr.Int(item, attrEvents)
				seg.Aggregates, _ = attr.Int(item, attrAggregates)
				seg.UpdatedAt, _ = attr.Time(item, attrUpdatedAt)
				segs[n] = seg
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if !found {
		return Build{}, false, nil
	}
	for i := range b.Segments {
		b.Segments[i] = Segment{Number: i}
		if seg, ok := segs[i]; ok {
			b.Segments[i] = seg
		}
	}
	return b, true, nil
}

// SaveSegment records the progress of one segment. Progress never moves
// back: a record with fewer events than the stored one is ignored.
func (s *Store) SaveSegment(ctx context.Context, projection string, gen int64, seg Segment) error {
	item := map[string]types.AttributeValue{
		AttrPK: str(buildPK(projection, gen)), AttrSK: str(segmentSK(seg.Number)),
		attrDone: &types.AttributeValueMemberBOOL{Value: seg.Done}, attrEvents: num(seg.Events),
		attrAggregates: num(seg.Aggregates), attrUpdatedAt: str(stamp(seg.UpdatedAt)),
	}
	if seg.LastKey != nil {
		item[attrLastKey] = &types.AttributeValueMemberM{Value: seg.LastKey}
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #e <= :e"),
		ExpressionAttributeNames:  map[string]string{"#e": attrEvents},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": num(seg.Events)},
	})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("save segment %d of build %d of %s: %w", seg.Number, gen, projection, err)
	}
	return nil
}

// FinishBuild records that the build of generation gen ended at at.
func (s *Store) FinishBuild(ctx context.Context, projection string, gen int64, at time.Time) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(buildPK(projection, gen), skBuildState),
		UpdateExpression:          aws.String("SET #f = :f"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  map[string]string{"#f": attrFinishedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":f": str(stamp(at))},
	})
	if err != nil {
		return fmt.Errorf("finish build %d of %s: %w", gen, projection, err)
	}
	return nil
}

// Owner is a projection as Prune sees it: its name and the rows that are
// its own (projection.Projection is one).
type Owner interface {
	Name() string
	// Owns reports whether a row, by its partition key without generation
	// and its sort key, belongs to the projection.
	Owns(logicalPK, sk string) bool
}

// Prune deletes the rows of projection's generations other than the active
// and the building one (those a switch or an abandoned rebuild left), by
// scanning the table, and returns how many it deleted.
func (s *Store) Prune(ctx context.Context, p Owner) (int, error) {
	projection := p.Name()
	g, err := s.Generation(ctx, projection)
	if err != nil {
		return 0, err
	}
	in := &dynamodb.ScanInput{
		TableName:                aws.String(s.table),
		ProjectionExpression:     aws.String("#pk, #sk"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
	}
	deleted := 0
	for {
		out, err := s.client.Scan(ctx, in)
		if err != nil {
			return deleted, fmt.Errorf("prune %s: %w", projection, err)
		}
		var dels []types.WriteRequest
		for _, item := range out.Items {
			pk, _ := attr.String(item, AttrPK)
			sk, _ := attr.String(item, AttrSK)
			gen, logical := SplitGeneration(pk)
			if gen == g.Active || gen == g.Building || !p.Owns(logical, sk) {
				continue
			}
			dels = append(dels, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(pk, sk)}})
		}
		if err := s.BatchWrite(ctx, dels); err != nil {
			return deleted, fmt.Errorf("prune %s: %w", projection, err)
		}
		deleted += len(dels)
		if len(out.LastEvaluatedKey) == 0 {
			return deleted, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
