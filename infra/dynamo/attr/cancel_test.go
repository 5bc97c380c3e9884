package attr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

func TestCanceled(t *testing.T) {
	canceled := func(codes ...string) error {
		e := &types.TransactionCanceledException{}
		for _, c := range codes {
			r := types.CancellationReason{}
			if c != "" {
				r.Code = aws.String(c)
			}
			e.CancellationReasons = append(e.CancellationReasons, r)
		}
		return fmt.Errorf("wrapped: %w", e)
	}
	tests := []struct {
		name                     string
		err                      error
		ok, conflicts, condsConf bool
		throttled                int
	}{
		{"not a cancellation", errors.New("reset"), false, false, false, 0},
		{"only conflicts", canceled("None", "TransactionConflict", ""), true, true, true, 0},
		{"a condition", canceled("ConditionalCheckFailed", "None"), true, false, true, 0},
		{"condition and conflict", canceled("ConditionalCheckFailed", "TransactionConflict"), true, false, true, 0},
		{"throttled", canceled("None", "ThrottlingError"), true, false, false, 1},
		{"conflict and validation", canceled("TransactionConflict", "ValidationError"), true, false, false, 0},
		{"no reasons", canceled(), true, false, false, 0},
	}
	for _, tc := range tests {
		c, ok := attr.Canceled(tc.err)
		if ok != tc.ok || c.OnlyConflicts() != tc.conflicts || c.ConditionsOrConflicts() != tc.condsConf || c.Throttled != tc.throttled {
			t.Errorf("%s: ok %v, only conflicts %v, conditions or conflicts %v, throttled %d", tc.name, ok, c.OnlyConflicts(), c.ConditionsOrConflicts(), c.Throttled)
		}
	}
	c, _ := attr.Canceled(canceled("None", "ConditionalCheckFailed"))
	if c.Code(1) != attr.ReasonConditionalCheckFailed || c.Code(0) != attr.ReasonNone || c.Code(2) != "" {
		t.Errorf("codes: %q %q %q", c.Code(0), c.Code(1), c.Code(2))
	}
}
