package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// BackfillClient is the part of the DynamoDB client BackfillFeed uses.
type BackfillClient interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// BackfillPage is what one Scan page of BackfillFeed did.
type BackfillPage struct {
	Scanned int                             // items the page read
	Written int                             // events given their feed attributes
	LastKey map[string]types.AttributeValue // resume after it; nil: the segment is done
}

// BackfillFeed gives the events of one Scan segment of table that were
// written before the feed existed (no fs/fk) their feed attributes, as
// ItemFromRecord would have written them, starting after start (nil: the
// segment's beginning). onPage is told of every page: what a caller keeps
// to resume. Each write is conditional on the item existing and having no
// feed key yet, so a run again, a concurrent run, or an SDK retry after a
// lost reply writes nothing twice and never touches an event the append
// wrote whole.
//
// Old events go into the feed at their occurred-at: a reader already past
// that time does not see them (the feed's invariant covers appends made
// within the append window, not a backfill); readers from the beginning,
// redrives and audits do.
func BackfillFeed(ctx context.Context, client BackfillClient, table string, segment, segments int, start map[string]types.AttributeValue, onPage func(BackfillPage) error) error {
	in := &dynamodb.ScanInput{
		TableName:                aws.String(table),
		ExclusiveStartKey:        start,
		FilterExpression:         aws.String("attribute_not_exists(#fk) AND attribute_exists(#id) AND attribute_exists(#type)"),
		ExpressionAttributeNames: map[string]string{"#fk": attrFeedKey, "#id": attrID, "#type": attrType},
	}
	if segments > 1 {
		in.Segment, in.TotalSegments = aws.Int32(int32(segment)), aws.Int32(int32(segments))
	}
	for {
		out, err := client.Scan(ctx, in)
		if err != nil {
			return fmt.Errorf("backfill feed: scan segment %d/%d of %s: %w", segment, segments, table, err)
		}
		p := BackfillPage{Scanned: int(out.ScannedCount), LastKey: out.LastEvaluatedKey}
		for _, item := range out.Items {
			ok, err := backfillItem(ctx, client, table, item)
			if err != nil {
				return err
			}
			if ok {
				p.Written++
			}
		}
		if err := onPage(p); err != nil {
			return err
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// backfillItem writes the feed attributes of one old event; false when it
// already had them (written meanwhile).
func backfillItem(ctx context.Context, client BackfillClient, table string, item map[string]types.AttributeValue) (bool, error) {
	var (
		r    es.Record
		errs [3]error
	)
	r.AggregateID, errs[0] = attr.String(item, attrPK)
	r.Version, errs[1] = attr.Int(item, attrSK)
	r.OccurredAt, errs[2] = attr.Time(item, attrOccurredAt)
	if err := errors.Join(errs[:]...); err != nil {
		return false, fmt.Errorf("backfill feed: %w", err)
	}
	_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(table),
		Key:                      map[string]types.AttributeValue{attrPK: item[attrPK], attrSK: item[attrSK]},
		UpdateExpression:         aws.String("SET #fs = :fs, #fk = :fk"),
		ConditionExpression:      aws.String("attribute_exists(#pk) AND attribute_not_exists(#fk)"),
		ExpressionAttributeNames: map[string]string{"#fs": attrFeedShard, "#fk": attrFeedKey, "#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":fs": &types.AttributeValueMemberN{Value: strconv.Itoa(FeedShard(r.AggregateID))},
			":fk": &types.AttributeValueMemberS{Value: feedKey(r)},
		},
	})
	var done *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &done):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("backfill feed %s v%d: %w", r.AggregateID, r.Version, err)
	}
	return true, nil
}
