package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/backoff"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// Conditions of the items of an append.
const (
	// An event is new: no item has its (pk, sk).
	condNewEvent = "attribute_not_exists(pk)"
	// A guard is free or already the owner's, both to claim and to release it.
	condGuardOwner = "attribute_not_exists(pk) OR #owner = :owner"
	// An idempotency key is unused, or its record has expired (TTL deletes
	// lazily). Expiry is the same test Idempotency makes: expiresAt <= now.
	condIdemFree = "attribute_not_exists(pk) OR expiresAt <= :now"
)

// part is what one transaction item stands for, so that its cancellation
// reason can be explained.
type part struct {
	kind    partKind
	key     string // guard or idempotency key
	version int64  // event version
}

type partKind int

const (
	partEvent partKind = iota
	partClaim
	partRelease
	partIdempotency
	partKey // a new subject's data key (KeyPutter)
)

// Append implements es.EventStore with one atomic write: a TransactWriteItems,
// or a conditional PutItem when the append is a single event and nothing else.
// The request is validated and checked against the limits before anything is
// sent. A new subject's data key, when the cipher makes one (KeyPutter), is
// written in the same transaction.
func (s *Store) Append(ctx context.Context, req es.AppendRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	// The key item takes a transaction item of its own: only when there is
	// room for it.
	keyInTx := req.Items() < s.limits.MaxTransactionItems
	err := s.appendSealed(ctx, req, keyInTx)
	var taken *keyTakenError
	if errors.As(err, &taken) {
		// The subject had a key item after all (settle cached it, or its
		// tombstone): sealed again with it, the append holds no key item.
		err = s.appendSealed(ctx, req, false)
	}
	if err != nil {
		return fmt.Errorf("append %s v%d: %w", req.AggregateID, req.ExpectedVersion+1, err)
	}
	return nil
}

// appendSealed seals req and appends it; keyInTx: a new subject's key item
// may be part of the transaction (Store.seal).
func (s *Store) appendSealed(ctx context.Context, req es.AppendRequest, keyInTx bool) error {
	req, key, err := s.seal(ctx, req, keyInTx)
	if err != nil {
		return err
	}
	items, parts, err := s.transaction(req, key)
	if err != nil {
		if key != nil {
			_ = key.settle(ctx, false, nil) // nothing sent
		}
		return err
	}
	err = s.appendInWindow(ctx, req, func(ctx context.Context) error { return s.append(ctx, req, items, parts) })
	if key != nil {
		var taken *keyTakenError
		if !errors.As(err, &taken) {
			_ = key.settle(ctx, err == nil, nil) // only a key found can fail
			return err
		}
		if serr := key.settle(ctx, false, taken.item); serr != nil {
			return fmt.Errorf("the subject's key, found stored: %w", serr)
		}
	}
	return err
}

// keyTakenError: of the append's items, only the condition of its key item
// (KeyPutter) failed, on item, the key item the subject had already;
// nothing was written.
type keyTakenError struct {
	item map[string]types.AttributeValue // empty when DynamoDB did not return it
}

func (e *keyTakenError) Error() string { return "the subject has a key item already" }

// append sends the items of req: one PutItem or one transaction.
func (s *Store) append(ctx context.Context, req es.AppendRequest, items []types.TransactWriteItem, parts []part) error {
	if len(items) == 1 && parts[0].kind == partEvent {
		return s.putEvent(ctx, req, items[0].Put)
	}
	for attempt := 1; ; attempt++ {
		// A fresh input each time: the SDK fills in a new ClientRequestToken
		// (before its retry loop), which its own retries of this call then
		// share. So when a reply is lost after the transaction applied, the
		// SDK's retry is answered success without writing again (DynamoDB
		// keeps the token 10 minutes; DynamoDB Local honours it too), and
		// one still running is TransactionInProgressException, which the
		// SDK retries with the same token. This loop sends again only after
		// a cancellation, a definite answer that nothing was written, so a
		// new token cannot apply the append twice.
		_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		if !busy(err) || attempt > s.conflictRetries {
			return cancellation(err, parts)
		}
		if err := backoff.Sleep(ctx, retryBusy.Delay(attempt, 0)); err != nil {
			return err
		}
	}
}

// appendInWindow runs send under the append window: no attempt of the
// append, the SDK's retries included, is sent after its events' occurred-at
// plus the window, by the store's clock. An append already past it is
// refused before anything is sent: es.ErrBusy, so that the service decides
// again, with a fresh occurred-at, within its retry budget. One the window
// cut in flight may or may not have been written: a consistent read of its
// first event tells when it was; else the outcome is unknown, as after any
// timeout. (A write still in DynamoDB's hands then lands within the margin
// the feed's window keeps above the append window.)
func (s *Store) appendInWindow(ctx context.Context, req es.AppendRequest, send func(context.Context) error) error {
	if s.appendWindow <= 0 || len(req.Records) == 0 {
		return send(ctx)
	}
	stamp := req.Records[0].OccurredAt
	for _, r := range req.Records[1:] {
		if r.OccurredAt.Before(stamp) {
			stamp = r.OccurredAt
		}
	}
	left := stamp.Add(s.appendWindow).Sub(s.now())
	if left <= 0 {
		return fmt.Errorf("occurred %s ago, past the feed's append window of %s: %w",
			(s.appendWindow - left).Round(time.Millisecond), s.appendWindow, es.ErrBusy)
	}
	bounded, cancel := context.WithTimeout(ctx, left)
	defer cancel()
	err := send(bounded)
	if err == nil || bounded.Err() == nil || ctx.Err() != nil {
		return err // not the window's cut
	}
	first := req.Records[0]
	got, lerr := s.Load(ctx, req.AggregateID, first.Version, first.Version)
	switch {
	case lerr != nil:
		return fmt.Errorf("cut at the end of the feed's append window, then %w (outcome unknown)", lerr)
	case len(got) == 1 && got[0].ID == first.ID:
		return nil // written before the cut
	default:
		// Not written yet, which does not mean never: the outcome is
		// unknown, as after any timeout, so this is not es.ErrBusy and
		// the service does not decide again (that could apply the
		// command twice). The client's retry, with its idempotency key,
		// resolves it.
		return fmt.Errorf("cut at the end of the feed's append window of %s, not written so far: %w", s.appendWindow, err)
	}
}

// putEvent appends a single event with no guard and no idempotency record
// (most commands: rename, suspend, ...) as one conditional PutItem: as atomic
// as a one-item transaction, at half its write cost and about half its latency.
//
// A PutItem has no request token. When its reply is lost (a timeout, a
// reset, a 5xx after the write) the SDK sends it again, and if the first
// attempt had applied, the retry's condition fails on the event it wrote
// itself. So a failed condition returns the item that is there (ALL_OLD, at
// no extra cost), and an item holding this event's id is this append's own
// write: success, as the first attempt's reply would have said. Event ids
// are unique (UUIDv7), so another writer's event never carries it.
func (s *Store) putEvent(ctx context.Context, req es.AppendRequest, put *types.Put) error {
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           put.TableName,
		Item:                                put.Item,
		ConditionExpression:                 put.ConditionExpression,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		if ownWrite(failed.Item, req.Records[0].ID) {
			return nil
		}
		err = es.ErrConflict
	}
	return err
}

// ownWrite reports whether old, the event item a failed condition found, is
// the event eventID: written by an earlier attempt of the same append.
func ownWrite(old map[string]types.AttributeValue, eventID string) bool {
	id, ok := old[attrID].(*types.AttributeValueMemberS)
	return ok && id.Value == eventID
}

// transaction builds the items of req, in the order events, claims, releases,
// idempotency record, the cipher's key item (key, if not nil), and checks them against the store's limits.
func (s *Store) transaction(req es.AppendRequest, key *keyWrite) ([]types.TransactWriteItem, []part, error) {
	n := req.Items()
	tx := make([]types.TransactWriteItem, 0, n)
	parts := make([]part, 0, n)
	if err := checkKey("aggregate id", req.AggregateID); err != nil {
		return nil, nil, err
	}

	events := make([]map[string]types.AttributeValue, len(req.Records))
	for i, r := range req.Records {
		events[i] = ItemFromRecord(r)
	}
	if req.Snapshot != nil { // Validate made it the last record's
		withSnapshot(events[len(events)-1], *req.Snapshot, s.limits.MaxItemBytes)
	}
	first := req.ExpectedVersion + 1 // Validate made versions contiguous from here
	if err := s.limits.Check(req, func(r es.Record) int { return ItemSize(events[r.Version-first]) }); err != nil {
		return nil, nil, err
	}
	total := 0
	for i, item := range events {
		total += ItemSize(item)
		tx = append(tx, types.TransactWriteItem{Put: &types.Put{
			TableName:           aws.String(s.tables.Events),
			Item:                item,
			ConditionExpression: aws.String(condNewEvent),
		}})
		parts = append(parts, part{kind: partEvent, version: first + int64(i)})
	}

	now := s.now()
	ownerNames := map[string]string{"#owner": attrOwner}
	for _, g := range req.Claims {
		if err := checkGuardKey(g.Key); err != nil {
			return nil, nil, err
		}
		item := claimItem(g, now)
		total += ItemSize(item)
		tx = append(tx, types.TransactWriteItem{Put: &types.Put{
			TableName:                 aws.String(s.tables.Guards),
			Item:                      item,
			ConditionExpression:       aws.String(condGuardOwner),
			ExpressionAttributeNames:  ownerNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: g.Owner}},
		}})
		parts = append(parts, part{kind: partClaim, key: g.Key})
	}
	for _, g := range req.Releases {
		if err := checkGuardKey(g.Key); err != nil {
			return nil, nil, err
		}
		key := map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: g.Key}}
		total += ItemSize(key)
		tx = append(tx, types.TransactWriteItem{Delete: &types.Delete{
			TableName:                 aws.String(s.tables.Guards),
			Key:                       key,
			ConditionExpression:       aws.String(condGuardOwner),
			ExpressionAttributeNames:  ownerNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: g.Owner}},
		}})
		parts = append(parts, part{kind: partRelease, key: g.Key})
	}
	if rec := req.Idempotency; rec != nil {
		if err := checkKey("idempotency key", idemPrefix+rec.Key); err != nil {
			return nil, nil, err
		}
		item := idempotencyItem(*rec)
		total += ItemSize(item)
		tx = append(tx, types.TransactWriteItem{Put: &types.Put{
			TableName:           aws.String(s.tables.Guards),
			Item:                item,
			ConditionExpression: aws.String(condIdemFree),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
			},
		}})
		parts = append(parts, part{kind: partIdempotency, key: rec.Key})
	}
	if key != nil {
		total += ItemSize(key.put.Item)
		tx = append(tx, types.TransactWriteItem{Put: key.put})
		parts = append(parts, part{kind: partKey})
	}
	// Limits.Check counts the events; DynamoDB counts every item.
	if total > s.limits.MaxTransactionBytes {
		return nil, nil, &es.LimitError{What: "transaction size", Size: total, Limit: s.limits.MaxTransactionBytes}
	}
	return tx, parts, nil
}

// checkKey rejects a partition key DynamoDB would refuse for its size.
func checkKey(what, key string) error {
	if len(key) > maxKeyBytes {
		return &es.LimitError{What: what + " size", Size: len(key), Limit: maxKeyBytes}
	}
	return nil
}

// checkGuardKey also keeps guard keys out of the idempotency records' namespace.
func checkGuardKey(key string) error {
	if strings.HasPrefix(key, idemPrefix) {
		return fmt.Errorf("guard key %q uses the reserved prefix %q: %w", key, idemPrefix, es.ErrInvalidAppend)
	}
	return checkKey("guard key", key)
}

// cancellation maps a failed TransactWriteItems to the kernel's errors. Its
// reasons come one per item, in item order. When several items failed, the
// answer is the one the in-memory store gives: an idempotency replay first (a
// repeat must be told it is one, not that it conflicts with its own first
// run), then a version conflict, a duplicate, a release held by another;
// last, the subject's key item found stored (keyTakenError, which Append
// resolves by sealing again with that key).
func cancellation(err error, parts []part) error {
	c, ok := attr.Canceled(err)
	if !ok {
		return err
	}
	reasons := c.Reasons
	if len(reasons) != len(parts) {
		return fmt.Errorf("%d cancellation reasons for %d items: %w", len(reasons), len(parts), err)
	}
	var (
		failed  [partKey + 1]*part // the first failed item of each kind
		keyItem map[string]types.AttributeValue
	)
	for i, r := range reasons {
		if c.Code(i) == attr.ReasonConditionalCheckFailed && failed[parts[i].kind] == nil {
			failed[parts[i].kind] = &parts[i]
			if parts[i].kind == partKey {
				keyItem = r.Item
			}
		}
	}
	switch p := failed; {
	case p[partIdempotency] != nil:
		return fmt.Errorf("idempotency key %q: %w", p[partIdempotency].key, es.ErrIdempotencyReplay)
	case p[partEvent] != nil:
		return fmt.Errorf("event v%d already exists: %w", p[partEvent].version, es.ErrConflict)
	case p[partClaim] != nil:
		return &es.DuplicateError{Key: p[partClaim].key}
	case p[partRelease] != nil:
		return &es.ReleaseError{Key: p[partRelease].key}
	case p[partKey] != nil:
		if keyItem == nil {
			keyItem = map[string]types.AttributeValue{}
		}
		return &keyTakenError{item: keyItem}
	case c.OnlyConflicts():
		// Not a version conflict: the versions are unknown, so a caller
		// with If-Match must not be told its version is stale.
		return fmt.Errorf("concurrent transaction on the same items: %w", es.ErrBusy)
	default: // throttling, validation: the exception's message lists the reasons
		return err
	}
}

// busy reports a transaction cancelled only because concurrent transactions
// held some of its items. Nothing else is known about it, so sending it again
// is safe (a cancelled transaction wrote nothing) and resolves to success or
// to one of the errors of cancellation.
func busy(err error) bool {
	c, ok := attr.Canceled(err)
	return ok && c.OnlyConflicts()
}

// retryBusy is the wait before sending a transaction again: full jitter
// under a ceiling that doubles from 10 ms to 200 ms, and at least 1 ms.
var retryBusy = backoff.Policy{Base: 10 * time.Millisecond, Cap: 200 * time.Millisecond, Min: time.Millisecond, Mode: backoff.FullJitter}
