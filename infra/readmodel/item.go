package readmodel

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// This file is the table's item kit for the stores that share the table
// with the projections (the notifier's mails, the dead-letter failure
// records, each projection's rows): keys, attribute values, stamps and
// the classification of refused writes, written once.

// Table returns the store's table name.
func (s *Store) Table() string { return s.table }

// Client returns the store's DynamoDB client.
func (s *Store) Client() Client { return s.client }

// Key is the primary key of the item at pk, sk.
func Key(pk, sk string) map[string]types.AttributeValue { return key(pk, sk) }

// S is a string attribute value.
func S(v string) *types.AttributeValueMemberS { return str(v) }

// N is a number attribute value.
func N(n int64) *types.AttributeValueMemberN { return num(n) }

// Stamp formats t as the table's times are kept: RFC 3339 with all nine
// fractional digits, in UTC, so that stamps sort as strings in time order.
func Stamp(t time.Time) string { return stamp(t) }

// ConditionFailed reports a write refused by its condition (or a
// transaction cancelled by conditions or concurrent transactions): nothing
// was written, and reading again is the answer.
func ConditionFailed(err error) bool { return conditionFailed(err) }

// OldHas reports whether err is a failed condition whose old item (asked
// for with ReturnValuesOnConditionCheckFailure) holds the string value at
// name.
func OldHas(err error, name, value string) bool { return oldHas(err, name, value) }

// GenerationOf is the generation of projection's rows that s reads and
// writes: the one s is pinned to (At), else the active one. A projection
// outside this package keys its rows with GenerationPK.
func (s *Store) GenerationOf(ctx context.Context, projection string) (int64, error) {
	return s.gen(ctx, projection)
}

// GenerationPK is the partition key pk in generation gen: pk itself in
// generation 1, "g<gen>#"+pk after (SplitGeneration undoes it).
func GenerationPK(gen int64, pk string) string { return genPK(gen, pk) }
