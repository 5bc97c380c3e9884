package deadletter_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
)

// TestLostReplies runs the failure records' conditional write through a
// client whose writes apply and whose replies are lost until the SDK's
// last attempt (faults.LostReplies), so that each write is sent again after
// it applied. It must answer what one successful call answers and leave
// what one call leaves.
func TestLostReplies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	in := faults.New(7)
	table := readmodeltest.Table(t)
	s := deadletter.New(dynamodb.NewFromConfig(faults.WithLostReplies(awstest.Config(t), in, 1)), table)

	t.Run("failure record", func(t *testing.T) {
		msg := uuid.NewString()
		// Now, not t0: a record whose expiresAt (At + 14 days) is past may be
		// deleted by DynamoDB Local's TTL between the two calls.
		at := time.Now().UTC()
		for i := range 2 {
			f := deadletter.Failure{MessageID: msg, Consumer: "projector", Error: "boom", ReceiveCount: i + 1, At: at}
			if err := s.RecordFailure(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		r, ok, err := s.Failure(ctx, msg)
		if err != nil || !ok || r.Failures != 2 {
			t.Errorf("failure record: %+v, %v, %v; want 2 failures", r, ok, err)
		}
	})

	t.Logf("faults: %s", in)
	if in.Total("lostreply.") == 0 {
		t.Error("no reply was lost")
	}
}
