package attr

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Reason codes of a TransactionCanceledException, one per item.
const (
	ReasonNone                   = "None"
	ReasonConditionalCheckFailed = "ConditionalCheckFailed"
	ReasonTransactionConflict    = "TransactionConflict"
	ReasonThrottlingError        = "ThrottlingError"
)

// Cancellation is what a cancelled transaction's reasons say: one reason
// per item, in item order, counted by kind. It is the one reading of
// those reasons that the event store, the read model and the HTTP
// handlers share.
type Cancellation struct {
	Reasons    []types.CancellationReason
	Conditions int // items whose condition failed
	Conflicts  int // items held by concurrent transactions
	Throttled  int // items throttled
	Others     int // any other code (validation, item size, ...)
}

// Canceled returns the cancellation err wraps, if err is a
// TransactionCanceledException.
func Canceled(err error) (Cancellation, bool) {
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		return Cancellation{}, false
	}
	c := Cancellation{Reasons: canceled.CancellationReasons}
	for _, r := range c.Reasons {
		switch aws.ToString(r.Code) {
		case "", ReasonNone:
		case ReasonConditionalCheckFailed:
			c.Conditions++
		case ReasonTransactionConflict:
			c.Conflicts++
		case ReasonThrottlingError:
			c.Throttled++
		default:
			c.Others++
		}
	}
	return c, true
}

// Code returns the reason code of item i ("" when there is none).
func (c Cancellation) Code(i int) string {
	if i < 0 || i >= len(c.Reasons) {
		return ""
	}
	return aws.ToString(c.Reasons[i].Code)
}

// OnlyConflicts reports a transaction cancelled only because concurrent
// transactions held some of its items: sending it again is safe (nothing
// was written) and may succeed.
func (c Cancellation) OnlyConflicts() bool {
	return c.Conflicts > 0 && c.Conditions+c.Throttled+c.Others == 0
}

// ConditionsOrConflicts reports a transaction cancelled only by failed
// conditions or concurrent transactions: nothing was written, and reading
// again tells why.
func (c Cancellation) ConditionsOrConflicts() bool {
	return c.Conditions+c.Conflicts > 0 && c.Throttled+c.Others == 0
}
