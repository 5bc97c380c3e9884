package userviews

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// This file holds the projector's coalesced writes: a run of consecutive
// events of one aggregate (the messages of one FIFO group in a batch, with
// the events that heal a gap) folded and written at once, on condition that
// the projection is still at the version applied before the first.

// SaveUserViewRun stores the fold of before over recs (consecutive events
// of one user, from version applied+1, in order, decoded) in one
// transaction with the user-view applied version (the last record's, on
// condition that it is still applied) and the email-lookup changes the run
// makes, whatever its length: one view write for the whole run.
//
// The lookup claim is dated by the event that gave the user the address it
// ends the run with. When the run leaves the user with the address it
// started with but moved away and back in between, the address is claimed
// again at its new date, as the event-by-event writes would have done
// (another user may have claimed it in between). An address held only
// inside the run is neither claimed nor freed: the event-by-event writes
// would have claimed and freed it, which leaves the lookup as it was.
//
// A lost reply's retry finds its own write (the applied item holds the
// last record's id and version) and succeeds; a concurrent change is
// readmodel.ErrConflict.
func (s *Store) SaveUserViewRun(ctx context.Context, before user.View, applied int64, recs []es.Record) error {
	if len(recs) == 0 {
		return nil
	}
	last := recs[len(recs)-1]
	if recs[0].Version != applied+1 || last.Version != applied+int64(len(recs)) {
		return fmt.Errorf("save view of user %s: run v%d..v%d does not follow v%d",
			last.AggregateID, recs[0].Version, last.Version, applied)
	}
	g, err := s.GenerationOf(ctx, ProjectionUserView)
	if err != nil {
		return err
	}
	after, since, reclaim := foldRun(before, recs)
	return s.putUserView(ctx, g, before, after, last, applied, since, reclaim)
}

// foldRun folds recs into before and returns the view after them, the date
// of the event that gave the last address held, and whether that address is
// the one before held but was given up and taken again within the run.
func foldRun(before user.View, recs []es.Record) (after user.View, since time.Time, reclaim bool) {
	after = before
	changed := false
	for _, r := range recs {
		next := user.ApplyView(after, r)
		if next.HeldEmail() != after.HeldEmail() {
			since, changed = r.OccurredAt, true
		}
		after = next
	}
	reclaim = changed && after.HeldEmail() != "" && after.HeldEmail() == before.HeldEmail()
	return after, since, reclaim
}

// SaveActivityRun adds recs (consecutive events of one aggregate, from
// version applied+1, in order) to the activity of their actors and then
// moves the actor-activity applied version to the last record, on
// condition that it is still applied.
//
// The rows go in BatchWriteItem requests of 25 (unprocessed items sent
// again after a jittered pause), not in a transaction with the applied
// version: an activity row is keyed by its event and its content is the
// event, so writing it again changes nothing, and writing the rows before
// the version means a crash or a failure in between leaves rows the
// redelivery writes again, never a version past rows missing. A reader may
// see the rows of a run before its version moves: they are committed events
// all the same. What this buys: any number of rows per write, each row
// costs one write unit instead of a transaction's two, and on DynamoDB
// Local a batch write plus a PutItem take less time than one transaction.
//
// A lost reply's retry of the version finds its own write and succeeds; a
// concurrent change is readmodel.ErrConflict.
func (s *Store) SaveActivityRun(ctx context.Context, applied int64, recs []es.Record) error {
	if len(recs) == 0 {
		return nil
	}
	last := recs[len(recs)-1]
	if recs[0].Version != applied+1 || last.Version != applied+int64(len(recs)) {
		return fmt.Errorf("save activity of %s: run v%d..v%d does not follow v%d",
			last.AggregateID, recs[0].Version, last.Version, applied)
	}
	g, err := s.GenerationOf(ctx, ProjectionActorActivity)
	if err != nil {
		return err
	}
	puts, err := activityPuts(g, recs)
	if err != nil {
		return fmt.Errorf("save %w", err)
	}
	if err := s.BatchWrite(ctx, puts); err != nil {
		return fmt.Errorf("save activity of %s v%d..v%d: %w", last.AggregateID, recs[0].Version, last.Version, err)
	}
	put := s.appliedPutItem(g, last.AggregateID, ProjectionActorActivity, last, applied)
	_, err = s.Client().PutItem(ctx, &dynamodb.PutItemInput{
		TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
		ExpressionAttributeNames: put.ExpressionAttributeNames, ExpressionAttributeValues: put.ExpressionAttributeValues,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	return readmodel.AppliedWrite(err, last, "save activity of")
}
