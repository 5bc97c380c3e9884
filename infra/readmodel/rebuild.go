package readmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/domain/user"
)

// This file holds what rebuilds, repairs and audits write and read: whole
// folds of a stream written at once (rather than event by event, as the
// projector does), the progress of a rebuild, and Prune.

// UserFold is a user view rebuilt from the event store: the fold of its
// stream up to Last.
type UserFold struct {
	View user.View
	Last es.Record // the event at View.Version
	// EmailSince is when the user got the address it holds (the occurred-at
	// of the event that set it): the date of its email-lookup claim.
	EmailSince time.Time
}

// FoldUser folds recs, a stream from version 1 in order with their events
// decoded, into a UserFold.
func FoldUser(recs []es.Record) UserFold {
	var f UserFold
	for _, r := range recs {
		f = f.Apply(r)
	}
	return f
}

// Apply folds one more event into f.
func (f UserFold) Apply(r es.Record) UserFold {
	next := user.ApplyView(f.View, r)
	if next.Version == f.View.Version {
		return f // a duplicate
	}
	if next.Email != f.View.Email || f.View.Version == 0 {
		f.EmailSince = r.OccurredAt
	}
	f.View, f.Last = next, r
	return f
}

// maxPutAttempts bounds the read-decide-write rounds of PutUserView.
const maxPutAttempts = 6

// PutUserView stores f as the user view of its aggregate, with the
// user-view applied version and the email lookup, unless the stored view is
// already at or past f's version (then it reports false). With force, a
// stored view at f's version is written over (a repair), and its email
// lookup claimed again.
//
// A new generation has nothing stored, so the first attempt writes without
// reading; a condition that fails (the live projector got there first)
// turns it into read, compare, write.
func (s *Store) PutUserView(ctx context.Context, f UserFold, force bool) (bool, error) {
	g, err := s.gen(ctx, ProjectionUserView)
	if err != nil {
		return false, err
	}
	st := s.At(ProjectionUserView, g)
	if f.View.Version == 0 {
		return false, nil
	}
	if !force {
		err := st.putFreshUserView(ctx, g, f)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrConflict) {
			return false, err
		}
	}
	for attempt := range maxPutAttempts {
		before, applied, err := st.UserViewForUpdate(ctx, f.Last.AggregateID)
		if err != nil {
			return false, err
		}
		if applied > f.View.Version || (applied == f.View.Version && !force) {
			return false, nil
		}
		err = st.putUserView(ctx, g, before, f.View, f.Last, applied, f.EmailSince, force)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrConflict) {
			return false, err
		}
		if err := backoff.Sleep(ctx, retryPause.Delay(attempt+1, 0)); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("put view of user %s v%d: %w", f.Last.AggregateID, f.View.Version, ErrConflict)
}

// putFreshUserView writes f where nothing of its user is stored yet.
func (s *Store) putFreshUserView(ctx context.Context, g int64, f UserFold) error {
	id := f.Last.AggregateID
	body, err := json.Marshal(f.View)
	if err != nil {
		return fmt.Errorf("put view of user %s: %w", id, err)
	}
	items := []types.TransactWriteItem{
		{Put: s.appliedPutItem(g, id, ProjectionUserView, f.Last, 0)},
		{Put: &types.Put{TableName: aws.String(s.table), Item: viewItem(g, id, f.View, body)}},
	}
	if email := f.View.HeldEmail(); email != "" {
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table),
			Item: map[string]types.AttributeValue{
				attrPK: str(genPK(g, emailPK(email))), attrSK: str(skLookup),
				attrUserID: str(id), attrSince: str(stamp(f.EmailSince)), attrVersion: num(f.View.Version),
			},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}})
	}
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if OwnApplied(err, f.Last) {
		return nil
	}
	if conditionFailed(err) {
		return fmt.Errorf("put view of user %s: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put view of user %s v%d: %w", id, f.View.Version, err)
	}
	return nil
}

// maxBatchWrite is DynamoDB's limit on the items of one BatchWriteItem.
const maxBatchWrite = 25

// PutActivity stores the activity items of recs, the stream of one
// aggregate up to its last record, and the actor-activity applied version
// of that record, unless the stored version is already past it. Activity
// items are keyed by event, so writing them again changes nothing.
func (s *Store) PutActivity(ctx context.Context, recs []es.Record) error {
	if len(recs) == 0 {
		return nil
	}
	g, err := s.gen(ctx, ProjectionActorActivity)
	if err != nil {
		return err
	}
	last := recs[len(recs)-1]
	puts, err := activityPuts(g, recs)
	if err != nil {
		return fmt.Errorf("put %w", err)
	}
	if err := s.batchWrite(ctx, puts); err != nil {
		return fmt.Errorf("put activity of %s: %w", last.AggregateID, err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrPK: str(genPK(g, userPK(last.AggregateID))), attrSK: str(appliedPrefix + ProjectionActorActivity),
			attrVersion: num(last.Version), attrEventID: str(last.ID),
		},
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #v < :v"),
		ExpressionAttributeNames:  map[string]string{"#v": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": num(last.Version)},
	})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("put activity version of %s v%d: %w", last.AggregateID, last.Version, err)
	}
	return nil
}

// batchWrite writes reqs in batches of 25, sending unprocessed items
// (throttling) again after a short pause.
func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
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
				if err := backoff.Sleep(ctx, retryPause.Delay(attempt+1, 0)); err != nil {
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
			attrPK: str(pk), attrSK: str(skBuildState),
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
			sk, _ := attr.String(item, attrSK)
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
		attrPK: str(buildPK(projection, gen)), attrSK: str(segmentSK(seg.Number)),
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
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK},
	}
	deleted := 0
	for {
		out, err := s.client.Scan(ctx, in)
		if err != nil {
			return deleted, fmt.Errorf("prune %s: %w", projection, err)
		}
		var dels []types.WriteRequest
		for _, item := range out.Items {
			pk, _ := attr.String(item, attrPK)
			sk, _ := attr.String(item, attrSK)
			gen, logical := SplitGeneration(pk)
			if gen == g.Active || gen == g.Building || !p.Owns(logical, sk) {
				continue
			}
			dels = append(dels, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(pk, sk)}})
		}
		if err := s.batchWrite(ctx, dels); err != nil {
			return deleted, fmt.Errorf("prune %s: %w", projection, err)
		}
		deleted += len(dels)
		if len(out.LastEvaluatedKey) == 0 {
			return deleted, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// activityPuts are the batch-write requests of the activity rows, in
// generation g, of the records that name an actor (those without one are
// no one's activity).
func activityPuts(g int64, recs []es.Record) ([]types.WriteRequest, error) {
	var puts []types.WriteRequest
	for _, r := range recs {
		if r.Metadata.Actor == "" {
			continue
		}
		body, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("activity of %s v%d: %w", r.AggregateID, r.Version, err)
		}
		puts = append(puts, types.WriteRequest{PutRequest: &types.PutRequest{Item: activityItem(g, r, body)}})
	}
	return puts, nil
}
