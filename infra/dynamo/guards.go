package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// GuardKeyLookup is a Cipher that can hash a guard key for a read without
// making the guard secret when there is none yet (pii.Cipher): no value
// is then held, and a read-only role need not create anything.
type GuardKeyLookup interface {
	LookupGuardKey(ctx context.Context, key string) (hashed string, ok bool, err error)
}

// GuardOwner returns the aggregate that holds the unique value key
// ("sub#alice"), read consistently: the guard is written in the same
// transaction as the events that claim it, so the answer is as current
// as the event store. With a cipher, key is hashed as appends hash it.
func (s *Store) GuardOwner(ctx context.Context, key string) (string, bool, error) {
	if s.cipher != nil {
		var (
			hashed string
			ok     = true
			err    error
		)
		if l, is := s.cipher.(GuardKeyLookup); is {
			hashed, ok, err = l.LookupGuardKey(ctx, key)
		} else {
			hashed, err = s.cipher.GuardKey(ctx, key)
		}
		if err != nil || !ok {
			return "", false, err
		}
		key = hashed
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.tables.Guards),
		Key:                      map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: key}},
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#o"),
		ExpressionAttributeNames: map[string]string{"#o": attrOwner},
	})
	if err != nil {
		return "", false, fmt.Errorf("get guard: %w", err)
	}
	if out.Item == nil {
		return "", false, nil
	}
	owner, err := attr.String(out.Item, attrOwner)
	if err != nil {
		return "", false, fmt.Errorf("get guard: %w", err)
	}
	return owner, true, nil
}
