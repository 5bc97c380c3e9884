package faults

import (
	"context"
	"fmt"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// Sender is the SQS call the relay makes (relay.Sender); *sqs.Client is one.
type Sender interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ Sender = (*sqs.Client)(nil)

// SQSFaults are the probabilities of each fault of a SendMessageBatch.
type SQSFaults struct {
	// Error fails the whole call before anything is sent: a server error
	// or throttling, as if the SDK's retries had run out.
	Error float64
	// Lost sends the batch, then loses the answer: every message is on the
	// queue although the caller sees a connection reset.
	Lost float64
	// Entry, per entry, refuses that entry alone: it is listed in Failed,
	// and the batch's other entries are sent.
	Entry float64
}

// SQS is a Sender that injects SQSFaults into the batches it passes on.
type SQS struct {
	next   Sender
	in     *Injector
	faults SQSFaults
}

var _ Sender = (*SQS)(nil)

// NewSQS wraps next.
func NewSQS(next Sender, in *Injector, f SQSFaults) *SQS {
	return &SQS{next: next, in: in, faults: f}
}

// SendMessageBatch implements Sender.
func (s *SQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, o ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if s.in.Strike("sqs.error", s.faults.Error) {
		var err error = &smithy.GenericAPIError{Code: "InternalError", Message: "injected: internal error", Fault: smithy.FaultServer}
		if s.in.IntN(2) == 0 {
			err = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "injected: rate exceeded", Fault: smithy.FaultClient}
		}
		return nil, sqsError(err)
	}
	var refused []types.BatchResultErrorEntry
	var pass []types.SendMessageBatchRequestEntry
	for _, e := range in.Entries {
		if s.in.Strike("sqs.entry", s.faults.Entry) {
			refused = append(refused, types.BatchResultErrorEntry{
				Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("injected: entry refused"), SenderFault: false,
			})
			continue
		}
		pass = append(pass, e)
	}
	out := &sqs.SendMessageBatchOutput{}
	if len(pass) > 0 {
		sent := *in
		sent.Entries = pass
		var err error
		if out, err = s.next.SendMessageBatch(ctx, &sent, o...); err != nil {
			return nil, err
		}
	}
	if s.in.Strike("sqs.lost", s.faults.Lost) {
		return nil, sqsError(fmt.Errorf("injected: answer lost after the batch was sent: %w", syscall.ECONNRESET))
	}
	out.Failed = append(out.Failed, refused...)
	return out, nil
}

func sqsError(err error) error {
	return &smithy.OperationError{ServiceID: "SQS", OperationName: "SendMessageBatch", Err: err}
}

// WithOptions is next with opts added to every call: a client option (an
// IAM check, say) on a Sender that is not a client of its own, such as SQS
// wrapping a shared one.
func WithOptions(next Sender, opts ...func(*sqs.Options)) Sender {
	return optionsSender{next: next, opts: opts}
}

type optionsSender struct {
	next Sender
	opts []func(*sqs.Options)
}

func (w optionsSender) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, o ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return w.next.SendMessageBatch(ctx, in, append(o, w.opts...)...)
}
