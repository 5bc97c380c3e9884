package faults

import (
	"context"
	"fmt"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// DynamoDBClient is every DynamoDB call the event store (dynamo.Client) and
// the read model (readmodel.Client) make; *dynamodb.Client is one.
type DynamoDBClient interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ DynamoDBClient = (*dynamodb.Client)(nil)

// DynamoDBFaults are the probabilities, per call, of each fault.
type DynamoDBFaults struct {
	// Error fails the call before it reaches DynamoDB with a server error
	// (InternalServerError), as if the SDK's retries had run out.
	Error float64
	// Throttle fails the call before it reaches DynamoDB as throttled:
	// ProvisionedThroughputExceededException, ThrottlingException or
	// RequestLimitExceeded, and for TransactWriteItems also a
	// TransactionCanceledException whose reason is ThrottlingError.
	Throttle float64
	// Lost lets the call run, then loses its answer: a write may have been
	// applied although the caller sees a connection reset.
	Lost float64
}

// DynamoDB is a DynamoDBClient that injects DynamoDBFaults into the calls
// it passes on to its inner client.
type DynamoDB struct {
	next   DynamoDBClient
	in     *Injector
	faults DynamoDBFaults
}

var _ DynamoDBClient = (*DynamoDB)(nil)

// NewDynamoDB wraps next.
func NewDynamoDB(next DynamoDBClient, in *Injector, f DynamoDBFaults) *DynamoDB {
	return &DynamoDB{next: next, in: in, faults: f}
}

// call runs one operation through the faults.
func call[I, O any](ctx context.Context, d *DynamoDB, op string, in I, opts []func(*dynamodb.Options),
	next func(context.Context, I, ...func(*dynamodb.Options)) (O, error), items int) (O, error) {
	var zero O
	switch {
	case d.in.Strike("dynamodb.error", d.faults.Error):
		return zero, opError(op, &types.InternalServerError{Message: aws.String("injected: internal server error")})
	case d.in.Strike("dynamodb.throttle", d.faults.Throttle):
		return zero, opError(op, throttled(d.in, op, items))
	}
	out, err := next(ctx, in, opts...)
	if err == nil && d.in.Strike("dynamodb.lost", d.faults.Lost) {
		return zero, opError(op, fmt.Errorf("injected: answer lost after the call ran: %w", syscall.ECONNRESET))
	}
	return out, err
}

// throttled is one of the throttling errors DynamoDB answers to op.
func throttled(in *Injector, op string, items int) error {
	shapes := 3
	if op == "TransactWriteItems" && items > 0 {
		shapes = 4
	}
	switch in.IntN(shapes) {
	case 0:
		return &types.ProvisionedThroughputExceededException{Message: aws.String("injected: throughput exceeded")}
	case 1:
		return &smithy.GenericAPIError{Code: "ThrottlingException", Message: "injected: rate exceeded", Fault: smithy.FaultClient}
	case 2:
		return &types.RequestLimitExceeded{Message: aws.String("injected: request limit exceeded")}
	default:
		// A throttled transaction is cancelled with one reason per item.
		reasons := make([]types.CancellationReason, items)
		hit := in.IntN(items)
		for i := range reasons {
			reasons[i].Code = aws.String("None")
			if i == hit {
				reasons[i] = types.CancellationReason{Code: aws.String("ThrottlingError"), Message: aws.String("injected: throughput exceeded")}
			}
		}
		return &types.TransactionCanceledException{Message: aws.String("injected: transaction cancelled [ThrottlingError]"), CancellationReasons: reasons}
	}
}

// opError wraps err as the SDK does: an operation error around the API's.
func opError(op string, err error) error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: op, Err: err}
}

func (d *DynamoDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return call(ctx, d, "GetItem", in, o, d.next.GetItem, 0)
}

func (d *DynamoDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return call(ctx, d, "BatchGetItem", in, o, d.next.BatchGetItem, 0)
}

func (d *DynamoDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return call(ctx, d, "PutItem", in, o, d.next.PutItem, 0)
}

func (d *DynamoDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return call(ctx, d, "UpdateItem", in, o, d.next.UpdateItem, 0)
}

func (d *DynamoDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return call(ctx, d, "Query", in, o, d.next.Query, 0)
}

func (d *DynamoDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return call(ctx, d, "TransactWriteItems", in, o, d.next.TransactWriteItems, len(in.TransactItems))
}

func (d *DynamoDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return call(ctx, d, "BatchWriteItem", in, o, d.next.BatchWriteItem, 0)
}

func (d *DynamoDB) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return call(ctx, d, "Scan", in, o, d.next.Scan, 0)
}
