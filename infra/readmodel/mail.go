package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
	"github.com/google/uuid"
)

// Attributes of sent-mail items.
const (
	attrState      = "state"
	attrLeaseUntil = "leaseUntil" // N, Unix milliseconds
	attrToken      = "token"      // the claim's id
	attrClaimedAt  = "claimedAt"
	attrAttempts   = "attempts"
	attrSentAt     = "sentAt"
	attrMessageID  = "messageId"
)

// MailState is where the mail caused by an event is.
type MailState string

// Mail states.
const (
	MailSending MailState = "sending" // claimed: a delivery is sending it, until its lease ends
	MailSent    MailState = "sent"    // the mail service accepted it
)

var (
	// ErrMailSent: the mail of that event was already sent.
	ErrMailSent = errors.New("mail already sent")
	// ErrMailInFlight: another delivery holds a live claim on that mail.
	ErrMailInFlight = errors.New("mail being sent by another delivery")
	// ErrClaimLost: the claim expired and another delivery took it over.
	ErrClaimLost = errors.New("mail claim lost")
)

// Mail is the sent-mail record of an event.
type Mail struct {
	EventID    string
	State      MailState
	LeaseUntil time.Time
	ClaimedAt  time.Time
	Attempts   int64 // claims taken, the first one included
	SentAt     time.Time
	MessageID  string // the mail service's id
}

// ClaimMail claims the right to send the mail of eventID until now+lease and
// returns the claim's token. The claim is taken when there is no record yet,
// or when a previous claim was never completed and its lease has ended (that
// delivery crashed, or gave up without releasing). A live claim is
// ErrMailInFlight; a mail already sent is ErrMailSent.
func (s *Store) ClaimMail(ctx context.Context, eventID string, now time.Time, lease time.Duration) (string, error) {
	token := uuid.NewString()
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 key(mailPK(eventID), skSent),
		UpdateExpression:    aws.String("SET #state = :sending, #lease = :until, #token = :token, #claimed = :now ADD #attempts :one"),
		ConditionExpression: aws.String("attribute_not_exists(pk) OR (#state = :sending AND #lease <= :nowms)"),
		ExpressionAttributeNames: map[string]string{
			"#state": attrState, "#lease": attrLeaseUntil, "#token": attrToken,
			"#claimed": attrClaimedAt, "#attempts": attrAttempts,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":sending": str(string(MailSending)),
			":until":   num(now.Add(lease).UnixMilli()),
			":nowms":   num(now.UnixMilli()),
			":token":   str(token),
			":now":     str(stamp(now)),
			":one":     num(1),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return token, nil
	}
	if !conditionFailed(err) {
		return "", fmt.Errorf("claim mail of %s: %w", eventID, err)
	}
	// When the reply was lost after the claim applied, the SDK's retry
	// finds this very claim live: the record holds our token (new each
	// call), so the claim is ours.
	if oldHas(err, attrToken, token) {
		return token, nil
	}
	m, ok, err := s.Mail(ctx, eventID)
	switch {
	case err != nil:
		return "", fmt.Errorf("claim mail of %s: %w", eventID, err)
	case ok && m.State == MailSent:
		return "", fmt.Errorf("claim mail of %s: %w", eventID, ErrMailSent)
	default: // a live claim, or one that changed between the two reads
		return "", fmt.Errorf("claim mail of %s: %w", eventID, ErrMailInFlight)
	}
}

// MarkMailSent records that the mail of eventID, claimed with token, was
// accepted as messageID. When the claim was taken over meanwhile (the lease
// was too short), nothing is written and the error is ErrClaimLost: the
// other delivery sends and records its own.
func (s *Store) MarkMailSent(ctx context.Context, eventID, token, messageID string, now time.Time) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 key(mailPK(eventID), skSent),
		UpdateExpression:    aws.String("SET #state = :sent, #sentAt = :now, #msg = :msg REMOVE #lease"),
		ConditionExpression: aws.String("#token = :token AND #state = :sending"),
		ExpressionAttributeNames: map[string]string{
			"#state": attrState, "#sentAt": attrSentAt, "#msg": attrMessageID, "#lease": attrLeaseUntil, "#token": attrToken,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":sent": str(string(MailSent)), ":sending": str(string(MailSending)),
			":now": str(stamp(now)), ":msg": str(messageID), ":token": str(token),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	// A retry after a lost reply finds the record already sent, with our
	// token and message id: the mark applied.
	if conditionFailed(err) && oldHas(err, attrToken, token) && oldHas(err, attrState, string(MailSent)) &&
		oldHas(err, attrMessageID, messageID) {
		return nil
	}
	if conditionFailed(err) {
		return fmt.Errorf("mark mail of %s sent: %w", eventID, ErrClaimLost)
	}
	if err != nil {
		return fmt.Errorf("mark mail of %s sent: %w", eventID, err)
	}
	return nil
}

// ReleaseMail gives up the claim token holds on the mail of eventID, after a
// send that certainly failed, so that a retry need not wait for the lease.
// A claim already taken over is left alone.
func (s *Store) ReleaseMail(ctx context.Context, eventID, token string) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(mailPK(eventID), skSent),
		UpdateExpression:          aws.String("SET #lease = :zero"),
		ConditionExpression:       aws.String("#token = :token AND #state = :sending"),
		ExpressionAttributeNames:  map[string]string{"#lease": attrLeaseUntil, "#token": attrToken, "#state": attrState},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0), ":token": str(token), ":sending": str(string(MailSending))},
	})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("release mail of %s: %w", eventID, err)
	}
	return nil
}

// Mail returns the sent-mail record of eventID, read consistently.
func (s *Store) Mail(ctx context.Context, eventID string) (Mail, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(mailPK(eventID), skSent),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Mail{}, false, fmt.Errorf("get mail of %s: %w", eventID, err)
	}
	if out.Item == nil {
		return Mail{}, false, nil
	}
	m := Mail{EventID: eventID}
	state, err := attr.String(out.Item, attrState)
	if err != nil {
		return Mail{}, false, fmt.Errorf("mail of %s: %w", eventID, err)
	}
	m.State = MailState(state)
	// The rest is informative; a missing attribute leaves its zero value.
	if ms, err := attr.Int(out.Item, attrLeaseUntil); err == nil {
		m.LeaseUntil = time.UnixMilli(ms).UTC()
	}
	m.ClaimedAt, _ = attr.Time(out.Item, attrClaimedAt)
	m.SentAt, _ = attr.Time(out.Item, attrSentAt)
	m.Attempts, _ = attr.Int(out.Item, attrAttempts)
	m.MessageID, _ = attr.String(out.Item, attrMessageID)
	return m, true, nil
}
