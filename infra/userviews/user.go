package userviews

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Attributes of the user items (besides attrVersion and attrEventID).
const (
	attrView   = "view"   // view: the user.View as JSON
	attrUserID = "userId" // lookup: the user holding the address
	attrSince  = "since"  // lookup: when the holder claimed it (stamp)
)

// UserView returns the view of user id, if the projection has seen it. A
// deleted user's view is kept, with status deleted. The read is eventually
// consistent.
func (s *Store) UserView(ctx context.Context, id string) (user.View, bool, error) {
	g, err := s.GenerationOf(ctx, ProjectionUserView)
	if err != nil {
		return user.View{}, false, err
	}
	out, err := s.Client().GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.Table()),
		Key:       readmodel.Key(readmodel.GenerationPK(g, userPK(id)), skView),
	})
	if err != nil {
		return user.View{}, false, fmt.Errorf("get view of user %s: %w", id, err)
	}
	if out.Item == nil {
		return user.View{}, false, nil
	}
	v, err := viewFromItem(out.Item)
	if err != nil {
		return user.View{}, false, fmt.Errorf("get view of user %s: %w", id, err)
	}
	return v, true, nil
}

// UserIDByEmail returns the id of the live user holding email, as the
// projection last saw it. Addresses are stored lower-cased; email is
// lower-cased before the look-up.
func (s *Store) UserIDByEmail(ctx context.Context, email string) (string, bool, error) {
	email = strings.ToLower(email)
	g, err := s.GenerationOf(ctx, ProjectionUserView)
	if err != nil {
		return "", false, err
	}
	out, err := s.Client().GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.Table()),
		Key:       readmodel.Key(readmodel.GenerationPK(g, emailPK(email)), skLookup),
	})
	if err != nil {
		return "", false, fmt.Errorf("look up email %q: %w", email, err)
	}
	if out.Item == nil {
		return "", false, nil
	}
	id, err := attr.String(out.Item, attrUserID)
	if err != nil {
		return "", false, fmt.Errorf("look up email %q: %w", email, err)
	}
	return id, true, nil
}

// AppliedVersions returns, per projection name, the last version of
// aggregateID that projection (its active generation) applied. A projection
// that has not seen the aggregate is absent. The read is strongly consistent.
func (s *Store) AppliedVersions(ctx context.Context, aggregateID string) (map[string]int64, error) {
	applied := map[string]int64{}
	for _, p := range Names() {
		v, err := s.appliedVersion(ctx, aggregateID, p)
		if err != nil {
			return nil, fmt.Errorf("applied versions of %s: %w", aggregateID, err)
		}
		if v > 0 {
			applied[p] = v
		}
	}
	return applied, nil
}

// appliedVersion is the version of aggregateID that projection applied (0:
// none), read consistently.
func (s *Store) appliedVersion(ctx context.Context, aggregateID, projection string) (int64, error) {
	g, err := s.GenerationOf(ctx, projection)
	if err != nil {
		return 0, err
	}
	out, err := s.Client().GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Table()),
		Key:            readmodel.Key(readmodel.GenerationPK(g, userPK(aggregateID)), appliedPrefix+projection),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("get %s version of %s: %w", projection, aggregateID, err)
	}
	if out.Item == nil {
		return 0, nil
	}
	v, err := attr.Int(out.Item, attrVersion)
	if err != nil {
		return 0, fmt.Errorf("%s version of %s: %w", projection, aggregateID, err)
	}
	return v, nil
}

// UserViewForUpdate returns the view of user id and the version the user-view
// projection applied (0 when it has not seen the user), read consistently:
// the starting point of SaveUserView.
func (s *Store) UserViewForUpdate(ctx context.Context, id string) (user.View, int64, error) {
	g, err := s.GenerationOf(ctx, ProjectionUserView)
	if err != nil {
		return user.View{}, 0, err
	}
	items, err := s.userItems(ctx, readmodel.GenerationPK(g, userPK(id)))
	if err != nil {
		return user.View{}, 0, err
	}
	var v user.View
	if item, ok := items[skView]; ok {
		if v, err = viewFromItem(item); err != nil {
			return user.View{}, 0, fmt.Errorf("view of user %s: %w", id, err)
		}
	}
	applied, err := appliedFrom(items, ProjectionUserView)
	if err != nil {
		return user.View{}, 0, fmt.Errorf("view of user %s: %w", id, err)
	}
	return v, applied, nil
}

// SaveUserView stores after, the fold of before and rec, in one transaction
// with the user-view applied version (rec.Version, on condition that it is
// still rec.Version-1) and the email-lookup changes: the address before held
// is freed when after no longer holds it, and the one after holds is claimed.
//
// Lookups of different users race when an address passes from one to the
// other, and their events arrive through different message groups. The
// holder is the user whose claim (the event that gave it the address) is
// latest: the event store's guard lets only one live user hold an address at
// a time, so the latest claim is the current one. A user frees an address
// only while it is the holder. Every lookup written is conditional on what
// was read, so a concurrent change is readmodel.ErrConflict, not a lost update.
func (s *Store) SaveUserView(ctx context.Context, before, after user.View, rec es.Record) error {
	g, err := s.GenerationOf(ctx, ProjectionUserView)
	if err != nil {
		return err
	}
	return s.putUserView(ctx, g, before, after, rec, rec.Version-1, rec.OccurredAt, false)
}

// putUserView writes after (last is the event at its version) over before,
// in one transaction with the user-view applied version, on condition that
// it is still prev, and the email-lookup changes from before to after; a
// claim is dated since. With reclaim, the lookup of after's address is
// written even when before held the same one (a repair).
func (s *Store) putUserView(ctx context.Context, g int64, before, after user.View, last es.Record, prev int64, since time.Time, reclaim bool) error {
	id := last.AggregateID
	viewJSON, err := json.Marshal(after)
	if err != nil {
		return fmt.Errorf("save view of user %s v%d: %w", id, last.Version, err)
	}
	items := []types.TransactWriteItem{
		{Put: s.appliedPutItem(g, id, ProjectionUserView, last, prev)},
		{Put: &types.Put{TableName: aws.String(s.Table()), Item: viewItem(g, id, after, viewJSON)}},
	}
	old := before.HeldEmail()
	if reclaim {
		old = "" // claim again what after holds; free what before held
		if h := before.HeldEmail(); h != "" && h != after.HeldEmail() {
			frees, err := s.lookupChanges(ctx, g, id, h, "", last, since)
			if err != nil {
				return fmt.Errorf("save view of user %s v%d: %w", id, last.Version, err)
			}
			items = append(items, frees...)
		}
	}
	lookups, err := s.lookupChanges(ctx, g, id, old, after.HeldEmail(), last, since)
	if err != nil {
		return fmt.Errorf("save view of user %s v%d: %w", id, last.Version, err)
	}
	items = append(items, lookups...)
	// The SDK's ClientRequestToken already makes its retry of an applied
	// transaction succeed; OwnApplied covers a store that does not keep
	// tokens.
	_, err = s.Client().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return readmodel.AppliedWrite(err, last, "save view of user")
}

// lookupChanges are the lookup writes, in generation g, of a user going
// from holding old to holding new ("" for none) because of rec; a claim is
// dated since.
func (s *Store) lookupChanges(ctx context.Context, g int64, id, old, new string, rec es.Record, sinceAt time.Time) ([]types.TransactWriteItem, error) {
	if old == new {
		return nil, nil
	}
	var items []types.TransactWriteItem
	if old != "" {
		cur, ok, err := s.lookup(ctx, g, old)
		if err != nil {
			return nil, err
		}
		if ok && cur.userID == id {
			items = append(items, types.TransactWriteItem{Delete: &types.Delete{
				TableName:                 aws.String(s.Table()),
				Key:                       readmodel.Key(readmodel.GenerationPK(g, emailPK(old)), skLookup),
				ConditionExpression:       aws.String("#u = :u AND #since = :since"),
				ExpressionAttributeNames:  map[string]string{"#u": attrUserID, "#since": attrSince},
				ExpressionAttributeValues: map[string]types.AttributeValue{":u": readmodel.S(cur.userID), ":since": readmodel.S(cur.since)},
			}})
		}
	}
	if new != "" {
		cur, ok, err := s.lookup(ctx, g, new)
		if err != nil {
			return nil, err
		}
		since := readmodel.Stamp(sinceAt)
		put := &types.Put{
			TableName: aws.String(s.Table()),
			Item: map[string]types.AttributeValue{
				attrPK: readmodel.S(readmodel.GenerationPK(g, emailPK(new))), attrSK: readmodel.S(skLookup),
				attrUserID: readmodel.S(id), attrSince: readmodel.S(since), attrVersion: readmodel.N(rec.Version),
			},
		}
		switch {
		case !ok:
			put.ConditionExpression = aws.String("attribute_not_exists(pk)")
		case cur.userID == id || cur.since <= since:
			put.ConditionExpression = aws.String("#u = :u AND #since = :since")
			put.ExpressionAttributeNames = map[string]string{"#u": attrUserID, "#since": attrSince}
			put.ExpressionAttributeValues = map[string]types.AttributeValue{":u": readmodel.S(cur.userID), ":since": readmodel.S(cur.since)}
		default:
			put = nil // a later claim by another user already holds it
		}
		if put != nil {
			items = append(items, types.TransactWriteItem{Put: put})
		}
	}
	return items, nil
}

type lookupItem struct {
	userID string
	since  string
}

func (s *Store) lookup(ctx context.Context, g int64, email string) (lookupItem, bool, error) {
	out, err := s.Client().GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Table()),
		Key:            readmodel.Key(readmodel.GenerationPK(g, emailPK(email)), skLookup),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return lookupItem{}, false, fmt.Errorf("get lookup of %q: %w", email, err)
	}
	if out.Item == nil {
		return lookupItem{}, false, nil
	}
	var l lookupItem
	var errU, errS error
	l.userID, errU = attr.String(out.Item, attrUserID)
	l.since, errS = attr.String(out.Item, attrSince)
	if errU != nil || errS != nil {
		return lookupItem{}, false, fmt.Errorf("lookup of %q: %w", email, errors.Join(errU, errS))
	}
	return l, true, nil
}

// appliedPutItem is the applied-version item, in generation g, of
// projection for rec's aggregate, on condition that the projection is at
// prev (absent for 0).
func (s *Store) appliedPutItem(g int64, id, projection string, rec es.Record, prev int64) *types.Put {
	put := &types.Put{
		TableName: aws.String(s.Table()),
		Item: map[string]types.AttributeValue{
			attrPK: readmodel.S(readmodel.GenerationPK(g, userPK(id))), attrSK: readmodel.S(appliedPrefix + projection),
			attrVersion: readmodel.N(rec.Version), attrEventID: readmodel.S(rec.ID),
		},
		// The old item tells a lost reply's retry from a conflict: ownApplied.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if prev == 0 {
		put.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		put.ConditionExpression = aws.String("#v = :prev")
		put.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":prev": readmodel.N(prev)}
	}
	return put
}

// userItems reads every item of a user's partition pk (the view and the
// applied versions), consistently, keyed by sk.
func (s *Store) userItems(ctx context.Context, pk string) (map[string]map[string]types.AttributeValue, error) {
	_, logical := readmodel.SplitGeneration(pk)
	id := strings.TrimPrefix(logical, "user#")
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.Table()),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": readmodel.S(pk)},
		ConsistentRead:            aws.Bool(true),
	}
	items := map[string]map[string]types.AttributeValue{}
	for {
		out, err := s.Client().Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read user %s: %w", id, err)
		}
		for _, item := range out.Items {
			sk, err := attr.String(item, attrSK)
			if err != nil {
				return nil, fmt.Errorf("read user %s: %w", id, err)
			}
			items[sk] = item
		}
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func appliedFrom(items map[string]map[string]types.AttributeValue, projection string) (int64, error) {
	item, ok := items[appliedPrefix+projection]
	if !ok {
		return 0, nil
	}
	v, err := attr.Int(item, attrVersion)
	if err != nil {
		return 0, fmt.Errorf("applied version of %s: %w", projection, err)
	}
	return v, nil
}

func viewFromItem(item map[string]types.AttributeValue) (user.View, error) {
	s, err := attr.String(item, attrView)
	if err != nil {
		return user.View{}, err
	}
	var v user.View
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return user.View{}, fmt.Errorf("decode view: %w", err)
	}
	return v, nil
}
