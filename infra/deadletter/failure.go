// Package deadletter is the dead-letter tooling's memory of why messages
// failed: the queue consumers (projector, notifier) report each failed
// delivery (Report), which logs it and records it under the message's id in
// the read-model table; `chronicle dlq show` reads it back (Store.Failure).
//
// SQS keeps no reason when it dead-letters a message, and a message cannot
// be given attributes on its way to the DLQ, so the reason is kept here,
// under the message id SQS keeps when it moves the message.
package deadletter

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Failure is one failed delivery of a queue message.
type Failure struct {
	MessageID    string
	Consumer     string // "projector", "notifier"
	Error        string
	AggregateID  string
	EventID      string
	EventType    string
	Version      int64
	ReceiveCount int // SQS's ApproximateReceiveCount of this delivery
	At           time.Time
}

// FailureRecord is what is known of a message's failed deliveries: the
// latest one, when the first was, and how many there were.
type FailureRecord struct {
	Failure
	FirstAt  time.Time
	Failures int64
}

// maxErrorBytes bounds the error text kept per message.
const maxErrorBytes = 2048

const (
	skFailure         = "failure"
	attrConsumer      = "consumer"
	attrError         = "error"
	attrAggregate     = "aggregateId"
	attrEventType     = "eventType"
	attrReceiveCount  = "receiveCount"
	attrFirstAt       = "firstAt"
	attrLastAt        = "lastAt"
	attrFailures      = "failures"
	failurePrefix     = "failure#"
	failureExpiration = 14 * 24 * time.Hour    // SQS's longest retention
	attrExpiresAt     = readmodel.TTLAttribute // failure records expire
	attrWriteToken    = "writeToken"           // the last call's token: RecordFailure
	attrEventID       = "eventId"
	attrVersion       = "version"
)

// Client is the part of *dynamodb.Client the failure records use: the
// consumers' roles allow UpdateItem on the read-model table, the CLI
// GetItem.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Store keeps the failure records, in the read-model table (pk
// "failure#<messageId>", sk "failure"). It is safe for concurrent use.
type Store struct {
	client Client
	table  string
}

// New returns the failure records of the read-model table.
func New(client Client, table string) *Store { return &Store{client: client, table: table} }

// RecordFailure records a failed delivery of f.MessageID. It uses only
// UpdateItem, which the consumers' roles allow.
//
// The failure count is an ADD, which the SDK's retry of an update whose
// reply was lost would apply twice; so each call writes a token of its own,
// on condition that the record does not hold it yet, and a retry that finds
// it has nothing left to do.
func (s *Store) RecordFailure(ctx context.Context, f Failure) error {
	msg := f.Error
	if len(msg) > maxErrorBytes {
		msg = msg[:maxErrorBytes]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       readmodel.Key(failurePrefix+f.MessageID, skFailure),
		UpdateExpression: aws.String("SET #c = :c, #e = :e, #agg = :agg, #ev = :ev, #t = :t, #v = :v, " +
			"#rc = :rc, #last = :at, #first = if_not_exists(#first, :at), #exp = :exp, #w = :w ADD #n :one"),
		ConditionExpression: aws.String("attribute_not_exists(#w) OR #w <> :w"),
		ExpressionAttributeNames: map[string]string{
			"#c": attrConsumer, "#e": attrError, "#agg": attrAggregate, "#ev": attrEventID, "#t": attrEventType,
			"#v": attrVersion, "#rc": attrReceiveCount, "#last": attrLastAt, "#first": attrFirstAt,
			"#exp": attrExpiresAt, "#n": attrFailures, "#w": attrWriteToken,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":c": readmodel.S(f.Consumer), ":e": readmodel.S(msg), ":agg": readmodel.S(f.AggregateID), ":ev": readmodel.S(f.EventID),
			":t": readmodel.S(f.EventType), ":v": readmodel.N(f.Version), ":rc": readmodel.N(int64(f.ReceiveCount)),
			":at": readmodel.S(readmodel.Stamp(f.At)), ":exp": readmodel.N(f.At.Add(failureExpiration).Unix()), ":one": readmodel.N(1),
			":w": readmodel.S(uuid.NewString()),
		},
	})
	if readmodel.ConditionFailed(err) { // the token is there: an earlier attempt applied
		return nil
	}
	if err != nil {
		return fmt.Errorf("record failure of message %s: %w", f.MessageID, err)
	}
	return nil
}

// Failure returns what is recorded of the failed deliveries of messageID.
func (s *Store) Failure(ctx context.Context, messageID string) (FailureRecord, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            readmodel.Key(failurePrefix+messageID, skFailure),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return FailureRecord{}, false, fmt.Errorf("get failure of message %s: %w", messageID, err)
	}
	if out.Item == nil {
		return FailureRecord{}, false, nil
	}
	r := FailureRecord{Failure: Failure{MessageID: messageID}}
	it := out.Item
	r.Consumer, _ = attr.String(it, attrConsumer)
	r.Error, _ = attr.String(it, attrError)
	r.AggregateID, _ = attr.String(it, attrAggregate)
	r.EventID, _ = attr.String(it, attrEventID)
	r.EventType, _ = attr.String(it, attrEventType)
	r.Version, _ = attr.Int(it, attrVersion)
	rc, _ := attr.Int(it, attrReceiveCount)
	r.ReceiveCount = int(rc)
	r.At, _ = attr.Time(it, attrLastAt)
	r.FirstAt, _ = attr.Time(it, attrFirstAt)
	r.Failures, _ = attr.Int(it, attrFailures)
	return r, true, nil
}
