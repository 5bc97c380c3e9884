package notifier

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// Resolver settles, for an operator, the mails the notifier held in doubt
// (MailUnknown): chronicle mail resolve.
type Resolver struct {
	Mails    *Mails
	Events   EventLoader // the event store, to find the event to deliver again
	Queue    Sender      // SQS
	QueueURL string      // the notifications queue
	Now      func() time.Time
}

// EventLoader reads an aggregate's events: *dynamo.Store is one.
type EventLoader interface {
	Load(ctx context.Context, aggregateID string, from, to int64) ([]es.Record, error)
}

// Sender sends one message: *sqs.Client is one.
type Sender interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// MarkSent settles the mail of eventID as sent, on the operator's evidence
// (note says which: SES's sending records, the recipient).
func (r Resolver) MarkSent(ctx context.Context, eventID, note string) error {
	return r.Mails.ResolveMail(ctx, eventID, true, note, r.Now())
}

// Resend makes the mail of eventID claimable again and delivers its event
// to the notifications queue once more, so that the notifier sends it. Run
// twice, it delivers twice; the notifier still sends one mail.
func (r Resolver) Resend(ctx context.Context, eventID string) error {
	m, ok, err := r.Mails.Mail(ctx, eventID)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("resend mail of %s: no such mail record", eventID)
	case m.AggregateID == "":
		return fmt.Errorf("resend mail of %s: the record names no user (written before aggregateId was kept)", eventID)
	}
	if err := r.Mails.ResolveMail(ctx, eventID, false, "", r.Now()); err != nil {
		return err
	}
	recs, err := r.Events.Load(ctx, m.AggregateID, 1, 0)
	if err != nil {
		return fmt.Errorf("resend mail of %s: %w", eventID, err)
	}
	for _, rec := range recs {
		if rec.ID != eventID {
			continue
		}
		body, err := relay.EncodeMessage(rec)
		if err != nil {
			return err
		}
		// A new deduplication id: the event's own may still be inside
		// SQS's five-minute window.
		if _, err := r.Queue.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(r.QueueURL), MessageBody: aws.String(body),
			MessageGroupId: aws.String(rec.AggregateID), MessageDeduplicationId: aws.String(rec.ID + "#resend#" + uuid.NewString())}); err != nil {
			return fmt.Errorf("resend mail of %s: deliver the event again: %w", eventID, err)
		}
		return nil
	}
	return fmt.Errorf("resend mail of %s: event not found among the %d events of %s", eventID, len(recs), m.AggregateID)
}
