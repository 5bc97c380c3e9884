package dynamo

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
)

// The feed: every event of every aggregate, in one order, read with a cursor.
//
// Each event item carries two more attributes, which make it an item of the
// events table's sparse global secondary index FeedIndex:
//
//	fs (N)  feed shard: FNV-1a of the aggregate id mod FeedShards
//	fk (S)  feed key:   occurredAt (fixed width, UTC) "#" aggregate id "#" version (20 digits)
//
// Writes spread over FeedShards index partitions (no hot partition); a reader
// merges the shards by feed key. The feed key is unique (the version is
// fixed width at its end, so it parses back) and, along one aggregate,
// strictly increasing: the kernel never lets occurred-at decrease along a
// stream, and the version breaks ties.
//
// The invariant. A reader that pages with ReadFeed's cursors sees every
// event exactly once, in an order consistent with each aggregate's
// versions, and never an event behind a cursor it was already given,
// provided
//
//	FeedWindow > AppendWindow + 2 × (clock skew between any writer and the reader) + index propagation
//
// because ReadFeed never reads past its horizon, now - FeedWindow, and an
// append whose Store has an append window (WithAppendWindow) is never sent
// after its events' occurred-at + AppendWindow by the writer's clock: so no
// event can commit, or reach the index, at a feed key the horizon has
// already passed. Writers without an append window (tests that import
// history with old timestamps) are outside the invariant: their events are
// in the feed, but may appear behind a reader's cursor.
const (
	// FeedIndex is the events table's index of the feed.
	FeedIndex = "feed"
	// FeedShards is the number of feed shards. Changing it moves the
	// aggregates' new events to other shards: it needs a backfill of the
	// old events' fs attribute (docs/feed.md), so it is a constant.
	FeedShards = 16
	// AppendWindow is the longest an append may be in flight after its
	// events' occurred-at (WithAppendWindow in the commands function).
	AppendWindow = 5 * time.Second
	// FeedWindow is how far behind the reader's clock ReadFeed stops:
	// AppendWindow, 1 s of clock skew each way, 3 s for the index to catch up.
	FeedWindow = AppendWindow + 2*time.Second + 3*time.Second

	attrFeedShard = "fs"
	attrFeedKey   = "fk"

	// feedTimeLayout is RFC 3339 with nanoseconds, fixed width, so that feed
	// keys sort as times do.
	feedTimeLayout = "2006-01-02T15:04:05.000000000Z"
	versionDigits  = 20
	// feedStart sorts before every feed key (they start with a year).
	feedStart = "0000"
)

// FeedShard is the feed shard of an aggregate's events.
func FeedShard(aggregateID string) int {
	h := fnv.New32a()
	h.Write([]byte(aggregateID))
	return int(h.Sum32() % FeedShards)
}

// feedKey is the feed key of r.
func feedKey(r es.Record) string {
	return r.OccurredAt.UTC().Format(feedTimeLayout) + "#" + r.AggregateID + "#" +
		fmt.Sprintf("%0*d", versionDigits, r.Version)
}

// IsEventItem reports whether item, of the events table, is an event: the
// one predicate of what the feed (and anything that reads the events table
// as a whole) treats as an event. Other items may share the events'
// partitions (snapshots, a stream's tip): they carry no feed attributes and
// no event type, and are never events.
func IsEventItem(item map[string]types.AttributeValue) bool {
	for _, name := range [...]string{attrFeedKey, attrID, attrType} {
		if _, ok := item[name].(*types.AttributeValueMemberS); !ok {
			return false
		}
	}
	_, ok := item[attrFeedShard].(*types.AttributeValueMemberN)
	return ok
}

// FeedCursor is a position in the feed: the feed key of the last event read,
// or a time before which nothing is wanted. The zero cursor is the
// beginning.
type FeedCursor struct{ key string }

// FeedFrom is the cursor just before the first event that occurred at or
// after t.
func FeedFrom(t time.Time) FeedCursor { return FeedCursor{key: t.UTC().Format(feedTimeLayout)} }

const cursorPrefix = "f1:"

// String is the opaque form of c that ParseFeedCursor reads back.
func (c FeedCursor) String() string {
	key := c.key
	if key == "" {
		key = feedStart
	}
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + key))
}

// ErrBadFeedCursor: a cursor ReadFeed did not hand out.
var ErrBadFeedCursor = errors.New("not a feed cursor")

// ParseFeedCursor reads a cursor String made; "" is the beginning.
func ParseFeedCursor(s string) (FeedCursor, error) {
	if s == "" {
		return FeedCursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return FeedCursor{}, ErrBadFeedCursor
	}
	key := strings.TrimPrefix(string(b), cursorPrefix)
	if key == feedStart {
		return FeedCursor{}, nil
	}
	if !validFeedKey(key) {
		return FeedCursor{}, ErrBadFeedCursor
	}
	return FeedCursor{key: key}, nil
}

// validFeedKey accepts a feed key or a bare time (FeedFrom).
func validFeedKey(key string) bool {
	if len(key) < len(feedTimeLayout) {
		return false
	}
	if _, err := time.Parse(feedTimeLayout, key[:len(feedTimeLayout)]); err != nil {
		return false
	}
	rest := key[len(feedTimeLayout):]
	if rest == "" {
		return true
	}
	if len(rest) < 2+versionDigits || rest[0] != '#' || rest[len(rest)-versionDigits-1] != '#' {
		return false
	}
	v, err := strconv.ParseInt(rest[len(rest)-versionDigits:], 10, 64)
	return err == nil && v >= 1 && len(rest) > 2+versionDigits
}

// FeedEvent is an event of the feed and the cursor just after it.
type FeedEvent struct {
	Record   es.Record
	Position FeedCursor
}

// FeedPage is a page of the feed. Next is always set: the last event's
// position, or the cursor read from when the page is empty (caught up).
type FeedPage struct {
	Events []FeedEvent
	Next   FeedCursor
}

// Key is c's position as a string that sorts as the feed does ("" is the
// beginning): for conditions on a stored checkpoint.
func (c FeedCursor) Key() string { return c.key }

// Before reports whether c is before d in the feed.
func (c FeedCursor) Before(d FeedCursor) bool { return c.key < d.key }

const condFeed = "fs = :s AND fk BETWEEN :lo AND :hi"

// ReadFeed returns up to limit events after cursor, in feed order, up to
// the horizon: the store's clock minus its feed window (WithFeedWindow,
// default FeedWindow). It queries every shard, in parallel, and merges them.
func (s *Store) ReadFeed(ctx context.Context, after FeedCursor, limit int) (FeedPage, error) {
	if limit < 1 {
		return FeedPage{}, fmt.Errorf("read feed: limit %d: must be at least 1", limit)
	}
	page := FeedPage{Next: after}
	lo := after.key
	if lo == "" {
		lo = feedStart
	}
	// Keys of events that occurred before the horizon sort below it: a
	// feed key is longer than the bare time it starts with.
	hi := s.now().Add(-s.feedWindow).UTC().Format(feedTimeLayout)
	if lo >= hi {
		return page, nil
	}
	type shard struct {
		items []map[string]types.AttributeValue
		err   error
	}
	shards := make([]shard, FeedShards)
	var wg sync.WaitGroup
	for i := range FeedShards {
		wg.Go(func() {
			shards[i].items, shards[i].err = s.readShard(ctx, i, lo, hi, limit)
		})
	}
	wg.Wait()
	var all []map[string]types.AttributeValue
	for i, sh := range shards {
		if sh.err != nil {
			return FeedPage{}, fmt.Errorf("read feed shard %d after %q: %w", i, lo, sh.err)
		}
		all = append(all, sh.items...)
	}
	key := func(item map[string]types.AttributeValue) string {
		return item[attrFeedKey].(*types.AttributeValueMemberS).Value // IsEventItem checked it
	}
	slices.SortFunc(all, func(a, b map[string]types.AttributeValue) int { return cmp.Compare(key(a), key(b)) })
	for _, item := range all[:min(limit, len(all))] {
		r, err := RecordFromItem(item)
		if err != nil {
			return FeedPage{}, fmt.Errorf("read feed: %w", err)
		}
		pos := FeedCursor{key: key(item)}
		page.Events = append(page.Events, FeedEvent{Record: r, Position: pos})
		page.Next = pos
	}
	if s.cipher != nil && len(page.Events) > 0 {
		recs := make([]es.Record, len(page.Events))
		for i, e := range page.Events {
			recs[i] = e.Record
		}
		if err := s.open(ctx, recs); err != nil {
			return FeedPage{}, fmt.Errorf("read feed: %w", err)
		}
		for i := range recs {
			page.Events[i].Record = recs[i]
		}
	}
	return page, nil
}

// readShard returns up to limit events of shard after lo (exclusive) and
// before hi, in feed order, paging past DynamoDB's 1 MB pages.
func (s *Store) readShard(ctx context.Context, shard int, lo, hi string, limit int) ([]map[string]types.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.tables.Events),
		IndexName:              aws.String(FeedIndex),
		KeyConditionExpression: aws.String(condFeed),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s":  &types.AttributeValueMemberN{Value: strconv.Itoa(shard)},
			":lo": &types.AttributeValueMemberS{Value: lo},
			":hi": &types.AttributeValueMemberS{Value: hi},
		},
		// One more than asked: the cursor's own event, BETWEEN being inclusive.
		Limit: aws.Int32(int32(limit + 1)),
	}
	var out []map[string]types.AttributeValue
	for {
		res, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, item := range res.Items {
			if !IsEventItem(item) || item[attrFeedKey].(*types.AttributeValueMemberS).Value == lo {
				continue
			}
			out = append(out, item)
		}
		if len(out) >= limit || len(res.LastEvaluatedKey) == 0 {
			return out[:min(limit, len(out))], nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}
