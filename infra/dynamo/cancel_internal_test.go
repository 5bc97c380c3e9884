package dynamo

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// TestCancellationCodes covers the reason codes DynamoDB Local never
// produces (it serializes transactions, so there is no TransactionConflict);
// the codes it does produce are covered against it in TestAppendErrors.
func TestCancellationCodes(t *testing.T) {
	parts := []part{{kind: partEvent, version: 3}, {kind: partClaim, key: "email#a"}, {kind: partIdempotency, key: "k"}}
	canceled := func(codes ...string) error {
		e := &types.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
		for _, c := range codes {
			e.CancellationReasons = append(e.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
		}
		return fmt.Errorf("operation error DynamoDB: TransactWriteItems: %w", e)
	}
	tests := []struct {
		name string
		err  error
		busy bool
		want error // errors.Is; nil: the error is passed through unmapped
	}{
		{"only conflicts", canceled("TransactionConflict", "None", "TransactionConflict"), true, es.ErrBusy},
		{"conflict and a failed condition", canceled("TransactionConflict", "ConditionalCheckFailed", "None"), false, es.ErrDuplicate},
		{"throttled", canceled("None", "ThrottlingError", "None"), false, nil},
		{"conflict and throttled", canceled("TransactionConflict", "ThrottlingError", "None"), false, nil},
		{"reasons missing", canceled(), false, nil},
		{"another error", errors.New("connection reset"), false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := busy(tc.err); got != tc.busy {
				t.Errorf("busy = %v, want %v", got, tc.busy)
			}
			got := cancellation(tc.err, parts)
			if tc.want != nil && !errors.Is(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if tc.busy && errors.Is(got, es.ErrConflict) {
				t.Errorf("got %v: a busy store is no version conflict", got)
			}
			if tc.want == nil && (errors.Is(got, es.ErrConflict) || errors.Is(got, es.ErrBusy) || errors.Is(got, es.ErrDuplicate) || errors.Is(got, es.ErrIdempotencyReplay)) {
				t.Errorf("got %v, want no kernel error", got)
			}
		})
	}
}

// TestCancellationKeyItem: the cipher's key item (KeyPutter) found taken is
// the answer only when nothing else failed; with it, the item found.
func TestCancellationKeyItem(t *testing.T) {
	parts := []part{{kind: partEvent, version: 1}, {kind: partClaim, key: "email#a"}, {kind: partKey}}
	found := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "id"}}
	canceled := func(codes ...string) error {
		e := &types.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
		for i, c := range codes {
			r := types.CancellationReason{Code: aws.String(c)}
			if i == 2 && c == attr.ReasonConditionalCheckFailed {
				r.Item = found
			}
			e.CancellationReasons = append(e.CancellationReasons, r)
		}
		return e
	}
	var taken *keyTakenError
	if err := cancellation(canceled("None", "None", "ConditionalCheckFailed"), parts); !errors.As(err, &taken) || taken.item["pk"] == nil {
		t.Errorf("only the key item failed: %v, want the key item found", err)
	}
	if err := cancellation(canceled("None", "ConditionalCheckFailed", "ConditionalCheckFailed"), parts); !errors.Is(err, es.ErrDuplicate) {
		t.Errorf("the claim and the key item failed: %v, want ErrDuplicate", err)
	}
	if err := cancellation(canceled("ConditionalCheckFailed", "None", "ConditionalCheckFailed"), parts); !errors.Is(err, es.ErrConflict) {
		t.Errorf("the event and the key item failed: %v, want ErrConflict", err)
	}
}
