package faults

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SerialSQS makes the SQS calls of a test one at a time. moto's server
// runs concurrent calls on threads that share a queue's state without a
// lock: a receive that races a delete of the same message can leave it
// "in flight" for good, which blocks its FIFO message group, and a delete
// that races a send can drop the message sent. Real SQS does neither, so
// the drivers and the relay of one test share one SerialSQS.
type SerialSQS struct {
	mu     sync.Mutex
	client *sqs.Client
}

// NewSerialSQS wraps client.
func NewSerialSQS(client *sqs.Client) *SerialSQS { return &SerialSQS{client: client} }

var (
	_ Sender      = (*SerialSQS)(nil)
	_ QueueClient = (*SerialSQS)(nil)
)

// SendMessage sends one message (the tests put poisoned ones), one call at a time.
func (s *SerialSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client.SendMessage(ctx, in, o...)
}

// SendMessageBatch implements Sender, one call at a time.
func (s *SerialSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, o ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client.SendMessageBatch(ctx, in, o...)
}

// ReceiveMessage implements QueueClient, one call at a time. The drivers
// short-poll, so no call holds the others back for a long poll.
func (s *SerialSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client.ReceiveMessage(ctx, in, o...)
}

// DeleteMessageBatch implements QueueClient, one call at a time.
func (s *SerialSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client.DeleteMessageBatch(ctx, in, o...)
}

// GetQueueAttributes implements QueueClient, one call at a time.
func (s *SerialSQS) GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, o ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client.GetQueueAttributes(ctx, in, o...)
}
