package userviews

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// This file holds what rebuilds and repairs write: whole folds of a stream
// written at once (rather than event by event, as the projector does).

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
	g, err := s.GenerationOf(ctx, ProjectionUserView)
	if err != nil {
		return false, err
	}
	st := New(s.At(ProjectionUserView, g))
	if f.View.Version == 0 {
		return false, nil
	}
	if !force {
		err := st.putFreshUserView(ctx, g, f)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, readmodel.ErrConflict) {
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
		if !errors.Is(err, readmodel.ErrConflict) {
			return false, err
		}
		if err := readmodel.Pause(ctx, attempt+1); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("put view of user %s v%d: %w", f.Last.AggregateID, f.View.Version, readmodel.ErrConflict)
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
		{Put: &types.Put{TableName: aws.String(s.Table()), Item: viewItem(g, id, f.View, body)}},
	}
	if email := f.View.HeldEmail(); email != "" {
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.Table()),
			Item: map[string]types.AttributeValue{
				attrPK: readmodel.S(readmodel.GenerationPK(g, emailPK(email))), attrSK: readmodel.S(skLookup),
				attrUserID: readmodel.S(id), attrSince: readmodel.S(readmodel.Stamp(f.EmailSince)), attrVersion: readmodel.N(f.View.Version),
			},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}})
	}
	_, err = s.Client().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return readmodel.AppliedWrite(err, f.Last, "put view of user")
}

// PutActivity stores the activity items of recs, the stream of one
// aggregate up to its last record, and the actor-activity applied version
// of that record, unless the stored version is already past it. Activity
// items are keyed by event, so writing them again changes nothing.
func (s *Store) PutActivity(ctx context.Context, recs []es.Record) error {
	if len(recs) == 0 {
		return nil
	}
	g, err := s.GenerationOf(ctx, ProjectionActorActivity)
	if err != nil {
		return err
	}
	last := recs[len(recs)-1]
	puts, err := activityPuts(g, recs)
	if err != nil {
		return fmt.Errorf("put %w", err)
	}
	if err := s.BatchWrite(ctx, puts); err != nil {
		return fmt.Errorf("put activity of %s: %w", last.AggregateID, err)
	}
	_, err = s.Client().PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.Table()),
		Item: map[string]types.AttributeValue{
			attrPK: readmodel.S(readmodel.GenerationPK(g, userPK(last.AggregateID))), attrSK: readmodel.S(appliedPrefix + ProjectionActorActivity),
			attrVersion: readmodel.N(last.Version), attrEventID: readmodel.S(last.ID),
		},
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #v < :v"),
		ExpressionAttributeNames:  map[string]string{"#v": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": readmodel.N(last.Version)},
	})
	if err != nil && !readmodel.ConditionFailed(err) {
		return fmt.Errorf("put activity version of %s v%d: %w", last.AggregateID, last.Version, err)
	}
	return nil
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
