// Package readmodel owns the read-model table's core: one DynamoDB table
// (pk S, sk S) whose key prefixes belong to the projections, the notifier
// (sent mail: notifier.Mails) and the dead-letter tooling (failed
// messages: deadletter.Store). The core is the keys, the generations, the
// checkpoints, the rebuilds' progress, Prune, and the item kit the stores
// of the table share (item.go); it knows no projection. Each projection
// keeps its own rows through that kit: the User service's in
// infra/userviews, the Team service's in infra/teamviews (each a
// projection.Projection), each package documenting its layout.
//
//	checkpoint       pk "checkpoint#<projection>" sk "checkpoint"
//	generations      pk "generations"             sk "generations"
//	rebuild progress pk "rebuild#<projection>#<generation>" sk "state" | "segment#<i>"
//	sent mail        pk "mail#<eventId>"          sk "sent"
//	failed message   pk "failure#<messageId>"     sk "failure"
//
// The rows of a projection belong to a generation of it: generation 1 is
// its layout, and generation N > 1 prefixes the partition key with "g<N>#"
// ("g2#user#<id>": GenerationPK). A rebuild fills a new generation while
// readers use the active one, then switches them over (generation.go).
//
// Every projection write is conditional on the version the projection had
// applied to the aggregate, so a duplicate or a lost race never writes
// twice: the writer gets ErrConflict, reads again and decides again; one
// whose reply was lost finds its own write (OwnApplied).
package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

var (
	// ErrConflict: a conditional write found the item changed since it was
	// read (another delivery of the same events, or a concurrent writer of
	// the same row, such as an email lookup). Read again and decide again.
	ErrConflict = errors.New("read model changed concurrently")
	// ErrBadCursor: a paging cursor that this store did not hand out for
	// this query.
	ErrBadCursor = errors.New("invalid cursor")
)

// Client is the part of *dynamodb.Client the store uses.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	// BatchWriteItem and Scan serve rebuilds, audits and Prune.
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ Client = (*dynamodb.Client)(nil)

// Store reads and writes the read-model table. It is safe for concurrent use.
type Store struct {
	client Client
	table  string
	gens   *genCache
	// pinned fixes the generation of some projections (At); the others
	// resolve their active generation through gens.
	pinned map[string]int64
}

// Option tunes a Store.
type Option func(*Store)

// WithGenerationTTL sets how long the store trusts the generations it read
// (default DefaultGenerationTTL); 0 reads them on every call.
func WithGenerationTTL(d time.Duration) Option {
	return func(s *Store) { s.gens.ttl = d }
}

// New returns a store over table.
func New(client Client, table string, opts ...Option) *Store {
	s := &Store{client: client, table: table, gens: &genCache{ttl: DefaultGenerationTTL, now: time.Now}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// The table's key and the attributes of an applied-version item: the
// version of an aggregate a projection applied and the event at it, which
// OwnApplied reads.
const (
	AttrPK      = "pk"
	AttrSK      = "sk"
	AttrVersion = "version"
	AttrEventID = "eventId"

	skCheckpoint = "checkpoint"
)

func checkpointPK(name string) string { return "checkpoint#" + name }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: str(pk), AttrSK: str(sk)}
}

func str(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// StampLayout is RFC 3339 with all nine fractional digits, in UTC: fixed
// width, so that stamps sort as strings in time order (keys, conditions).
const StampLayout = "2006-01-02T15:04:05.000000000Z07:00"

func stamp(t time.Time) string { return t.UTC().Format(StampLayout) }

// OwnApplied reports whether err is a write refused by its condition on an
// applied-version item (the first item of a transaction, or a PutItem) that
// already holds rec: an earlier attempt of the same write applied and its
// reply was lost, so the SDK's retry found its own work. The applied item is
// only ever written together with the rest of its projection's rows, so
// finding rec in it means all of them were written. The writes ask for the
// old item (ReturnValuesOnConditionCheckFailure) at no extra cost.
func OwnApplied(err error, rec es.Record) bool {
	var old map[string]types.AttributeValue
	var ccf *types.ConditionalCheckFailedException
	canceled, isCanceled := attr.Canceled(err)
	switch {
	case errors.As(err, &ccf):
		old = ccf.Item
	case isCanceled && canceled.Code(0) == attr.ReasonConditionalCheckFailed:
		old = canceled.Reasons[0].Item
	}
	id, errID := attr.String(old, AttrEventID)
	v, errV := attr.Int(old, AttrVersion)
	return errID == nil && errV == nil && id == rec.ID && v == rec.Version
}

// AppliedWrite is the outcome of a projection's write whose applied-version
// item moves to rec: nil when it succeeded, or when a lost reply's retry
// found its own write (OwnApplied); ErrConflict when the item's condition
// failed otherwise (another writer moved it: reload and apply again); else
// err. what names the write in the error ("save activity of").
func AppliedWrite(err error, rec es.Record, what string) error {
	switch {
	case err == nil, OwnApplied(err, rec):
		return nil
	case ConditionFailed(err):
		return fmt.Errorf("%s %s v%d: %w", what, rec.AggregateID, rec.Version, ErrConflict)
	}
	return fmt.Errorf("%s %s v%d: %w", what, rec.AggregateID, rec.Version, err)
}

// oldHas reports whether err is a failed condition whose old item (asked for
// with ReturnValuesOnConditionCheckFailure) holds the string value at name.
func oldHas(err error, name, value string) bool {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return false
	}
	v, aerr := attr.String(ccf.Item, name)
	return aerr == nil && v == value
}

// conditionFailed reports a write refused by its condition: a
// ConditionalCheckFailedException, or a cancelled transaction whose reasons
// are conditions that failed or concurrent transactions on the same items.
// Either way nothing was written and reading again is the answer.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return true
	}
	canceled, ok := attr.Canceled(err)
	return ok && canceled.ConditionsOrConflicts()
}
