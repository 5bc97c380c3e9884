package readmodel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// Attributes of checkpoint items.
const (
	attrLastEventID = "lastEventId"
	attrLastEventAt = "lastEventAt" // stamp, so that conditions compare it as a string
	attrProcessedAt = "processedAt"
	attrProcessed   = "processed"
	// attrWritePrefix names the slots of the last calls' tokens (w00, w01,
	// ...): AdvanceCheckpoint.
	attrWritePrefix = "w"
	checkpointSlots = 32
)

// Checkpoint is how far a projection has got: the latest event it applied
// (by occurred-at), when it last applied events, and how many it applied in
// all.
type Checkpoint struct {
	Projection  string
	LastEventID string
	LastEventAt time.Time
	ProcessedAt time.Time
	Processed   int64
}

// AdvanceCheckpoint records that c.Projection applied c.Processed more
// events at c.ProcessedAt, the latest of which is c.LastEventID at
// c.LastEventAt. Batches of different aggregates run concurrently and finish
// in any order, so the last event only moves forward in time; the count and
// the processing time always move.
//
// The count is an ADD, which the SDK's retry of an update whose reply was
// lost would apply twice. So each call writes a token of its own into one
// of checkpointSlots attributes, on condition that the slot does not hold
// it yet: the retry finds its token and stops. A retry still counts twice
// if, in the milliseconds between the attempts, another call took the same
// slot (1 in checkpointSlots of the calls that land in that window).
func (s *Store) AdvanceCheckpoint(ctx context.Context, c Checkpoint) error {
	k := key(checkpointPK(c.Projection), skCheckpoint)
	token := uuid.NewString()
	slot := fmt.Sprintf("%s%02d", attrWritePrefix, rand.IntN(checkpointSlots))
	const fresh = "(attribute_not_exists(#w) OR #w <> :w)"
	names := map[string]string{"#n": attrProcessed, "#pt": attrProcessedAt, "#w": slot}
	values := map[string]types.AttributeValue{":n": num(c.Processed), ":pt": str(stamp(c.ProcessedAt)), ":w": str(token)}
	forward := &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 k,
		UpdateExpression:    aws.String("SET #pt = :pt, #id = :id, #at = :at, #w = :w ADD #n :n"),
		ConditionExpression: aws.String("(attribute_not_exists(#at) OR #at <= :at) AND " + fresh),
		ExpressionAttributeNames: map[string]string{
			"#n": attrProcessed, "#pt": attrProcessedAt, "#id": attrLastEventID, "#at": attrLastEventAt, "#w": slot,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":n": num(c.Processed), ":pt": str(stamp(c.ProcessedAt)),
			":id": str(c.LastEventID), ":at": str(stamp(c.LastEventAt)), ":w": str(token),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	_, err := s.client.UpdateItem(ctx, forward)
	var older *types.ConditionalCheckFailedException
	if errors.As(err, &older) && !oldHas(err, slot, token) {
		_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       k,
			UpdateExpression:          aws.String("SET #pt = :pt, #w = :w ADD #n :n"),
			ConditionExpression:       aws.String(fresh),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		})
	}
	if conditionFailed(err) { // only our own token fails it: applied already
		return nil
	}
	if err != nil {
		return fmt.Errorf("advance checkpoint of %s: %w", c.Projection, err)
	}
	return nil
}

// CheckpointsOf returns the checkpoints of the projections named (at most
// 100) that have applied anything, in that order.
func (s *Store) CheckpointsOf(ctx context.Context, projections []string) ([]Checkpoint, error) {
	keys := make([]map[string]types.AttributeValue, len(projections))
	for i, p := range projections {
		keys[i] = key(checkpointPK(p), skCheckpoint)
	}
	byPK := map[string]map[string]types.AttributeValue{}
	req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	for len(req) > 0 {
		out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, fmt.Errorf("get checkpoints: %w", err)
		}
		for _, item := range out.Responses[s.table] {
			pk, err := attr.String(item, AttrPK)
			if err != nil {
				return nil, fmt.Errorf("get checkpoints: %w", err)
			}
			byPK[pk] = item
		}
		// Unprocessed keys are throttled reads; the SDK has already
		// retried, and the set is tiny, so asking again at once is fine.
		req = out.UnprocessedKeys
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("get checkpoints: %w", err)
		}
	}
	var cps []Checkpoint
	for _, p := range projections {
		item, ok := byPK[checkpointPK(p)]
		if !ok {
			continue
		}
		c, err := checkpointFromItem(p, item)
		if err != nil {
			return nil, fmt.Errorf("checkpoint of %s: %w", p, err)
		}
		cps = append(cps, c)
	}
	return cps, nil
}

func checkpointFromItem(projection string, item map[string]types.AttributeValue) (Checkpoint, error) {
	c := Checkpoint{Projection: projection}
	var errs [4]error
	c.LastEventID, errs[0] = attr.String(item, attrLastEventID)
	c.LastEventAt, errs[1] = attr.Time(item, attrLastEventAt)
	c.ProcessedAt, errs[2] = attr.Time(item, attrProcessedAt)
	c.Processed, errs[3] = attr.Int(item, attrProcessed)
	if err := errors.Join(errs[:]...); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}
