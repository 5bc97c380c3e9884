package relay

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/chronicle-go/chronicle/domain/es"
)

// StreamReader is the part of *dynamodbstreams.Client that reads a failed
// batch back from its stream.
type StreamReader interface {
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

var _ StreamReader = (*dynamodbstreams.Client)(nil)

// ErrNoStreamPosition: the OnFailure record names no stream, shard or
// sequence numbers to read the batch back from.
var ErrNoStreamPosition = errors.New("no stream position in the OnFailure record")

// maxEmptyPages is how many empty pages in a row ReadBatch accepts before
// the batch's last record: a shard's records up to it exist already, so a
// run of empty pages means the stream does not hold them any more.
const maxEmptyPages = 5

// ReadBatch reads a failed batch back from its stream by its shard and
// sequence numbers, while the stream still holds it (24 hours), and returns
// its events (records of other items, and of items other than events, are
// left out). This is the exact content of the batch, whenever its events
// committed: an arrival-time window cannot be, since a write DynamoDB
// applies late (after the writer gave up on it) arrives long after its
// events' occurred-at. A record past the stream's retention fails with
// TrimmedDataAccessException: the caller falls back to the window.
func ReadBatch(ctx context.Context, sr StreamReader, b BatchInfo) ([]es.Record, error) {
	if b.StreamARN == "" || b.ShardID == "" || b.StartSequenceNumber == "" || b.EndSequenceNumber == "" {
		return nil, ErrNoStreamPosition
	}
	end, ok := new(big.Int).SetString(b.EndSequenceNumber, 10)
	if !ok {
		return nil, fmt.Errorf("read batch back: end sequence number %q", b.EndSequenceNumber)
	}
	it, err := sr.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(b.StreamARN),
		ShardId: aws.String(b.ShardID), ShardIteratorType: streamtypes.ShardIteratorTypeAtSequenceNumber,
		SequenceNumber: aws.String(b.StartSequenceNumber)})
	if err != nil {
		return nil, fmt.Errorf("read batch back from %s %s: %w", b.ShardID, b.StartSequenceNumber, err)
	}
	// Pages of the batch's size: a page of GetRecords' default 1,000 would
	// read far past the batch (an outage of 1,000 commands made 310
	// records, each read back in 1,000-record pages: minutes of reads).
	limit := int32(min(max(b.BatchSize, 10), 1000))
	var recs []es.Record
	iter, empty := it.ShardIterator, 0
	for iter != nil {
		out, err := sr.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(limit)})
		if err != nil {
			return nil, fmt.Errorf("read batch back from %s: %w", b.ShardID, err)
		}
		if len(out.Records) == 0 {
			if empty++; empty >= maxEmptyPages {
				return nil, fmt.Errorf("read batch back from %s: %d empty pages before %s", b.ShardID, empty, b.EndSequenceNumber)
			}
		} else {
			empty = 0
		}
		for _, r := range out.Records {
			if r.Dynamodb == nil {
				continue
			}
			seq, ok := new(big.Int).SetString(aws.ToString(r.Dynamodb.SequenceNumber), 10)
			if !ok {
				return nil, fmt.Errorf("read batch back from %s: sequence number %q", b.ShardID, aws.ToString(r.Dynamodb.SequenceNumber))
			}
			if seq.Cmp(end) > 0 {
				return recs, nil
			}
			if rec, ok, err := eventOf(r); err != nil {
				return nil, fmt.Errorf("read batch back from %s at %s: %w", b.ShardID, seq, err)
			} else if ok {
				recs = append(recs, rec)
			}
			if seq.Cmp(end) == 0 {
				return recs, nil
			}
		}
		iter = out.NextShardIterator
	}
	return recs, nil // the shard closed before the end: all of it is read
}

// eventOf decodes the event a stream record inserted, as the relay does;
// ok is false for records of anything else.
func eventOf(r streamtypes.Record) (es.Record, bool, error) {
	if r.EventName != streamtypes.OperationTypeInsert {
		return es.Record{}, false, nil
	}
	img := EventRecord(r, "").Change.NewImage
	// An event has an id and a type (events written before the feed have
	// no feed key, so dynamo.IsEventItem would leave them out).
	for _, name := range [...]string{"id", "type"} {
		if a, ok := img[name]; !ok || a.DataType() != events.DataTypeString {
			return es.Record{}, false, nil
		}
	}
	rec, err := RecordFromImage(img)
	return rec, err == nil, err
}
