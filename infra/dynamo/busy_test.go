package dynamo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// conflictingClient cancels the first n transactions with
// TransactionConflict on their first item, as DynamoDB does when another
// transaction holds it (DynamoDB Local serializes transactions and never
// does).
type conflictingClient struct {
	dynamo.Client
	n atomic.Int32
}

func (c *conflictingClient) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if c.n.Add(-1) >= 0 {
		reasons := make([]types.CancellationReason, len(in.TransactItems))
		for i := range reasons {
			reasons[i].Code = aws.String("None")
		}
		reasons[0].Code = aws.String("TransactionConflict")
		return nil, &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "TransactWriteItems",
			Err: &types.TransactionCanceledException{Message: aws.String("Transaction cancelled [TransactionConflict]"), CancellationReasons: reasons}}
	}
	return c.Client.TransactWriteItems(ctx, in, o...)
}

// TestBusyIsNoFailedPrecondition: defect 9 on DynamoDB. A change of email
// with If-Match at the current version, whose transactions are cancelled by
// concurrent ones more often than the store resends them, succeeds on a
// later attempt of the service, rather than answering that the version
// (which is the If-Match one) is stale.
func TestBusyIsNoFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	client, tables := newTables(t)
	cc := &conflictingClient{Client: client}
	svc := es.NewService(user.Decider(), user.NewRegistry(), dynamo.New(cc, tables), es.Options{})
	id := newID()
	if _, err := svc.Execute(ctx, id, user.Create{Name: "Busy", Email: id + "@example.com"}, es.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	cc.n.Store(8) // more than the store's own resends (4)
	v := int64(1)
	res, err := svc.Execute(ctx, id, user.ChangeEmail{Email: "new-" + id + "@example.com"}, es.ExecOptions{ExpectedVersion: &v})
	var pe *es.PreconditionError
	if errors.As(err, &pe) {
		t.Fatalf("got %v: a failed precondition at the If-Match version", err)
	}
	if err != nil || res.Version != 2 {
		t.Fatalf("got %+v, %v; want version 2", res, err)
	}
	if n := cc.n.Load(); n >= 0 {
		t.Fatalf("%d injected cancellations left: the test did not exercise them", n+1)
	}
}
