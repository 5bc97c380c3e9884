package notifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Mails keeps the sent-mail records: the notifier's leased claims on the
// mails it sends, in the read-model table (pk "mail#<eventId>", sk "sent").
// It is safe for concurrent use.
type Mails struct {
	client MailClient
	table  string
}

// MailClient is the part of *dynamodb.Client the sent-mail records use.
type MailClient interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	// Scan serves MailsInDoubt, the operator's.
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ MailClient = (*dynamodb.Client)(nil)

// NewMails returns the sent-mail records of the read-model table.
func NewMails(client MailClient, table string) *Mails { return &Mails{client: client, table: table} }

// Keys of sent-mail items.
const skSent = "sent"

func mailPK(eventID string) string { return "mail#" + eventID }

// Attributes of sent-mail items.
const (
	attrState       = "state"
	attrLeaseUntil  = "leaseUntil" // N, Unix milliseconds
	attrToken       = "token"      // the claim's id
	attrClaimedAt   = "claimedAt"
	attrAttempts    = "attempts"
	attrSentAt      = "sentAt"
	attrMessageID   = "messageId"
	attrMailAggID   = "aggregateId" // the user whose event caused the mail, for the operator
	attrDoubtAt     = "doubtAt"
	attrDoubtReason = "doubtReason"
)

// MailState is where the mail caused by an event is.
//
//	(none) ──claim──▶ sending ──SES accepted──▶ sent
//	                   │  ▲ └─SES refused (certainly not sent)──▶ retry ──claim──▶ sending
//	                   │  └──────────────────────────────────────────────┘
//	                   └─SES's answer unknown, or the claim expired─▶ unknown
//	unknown ──operator: resend──▶ retry        unknown ──operator: it was sent──▶ sent
//
// Nothing moves a mail out of unknown but an operator (or the late answer
// of the delivery that claimed it, with SES's message id): SES has no
// idempotency key, so sending again without evidence may send twice.
type MailState string

// Mail states.
const (
	MailSending MailState = "sending" // claimed: a delivery may be sending it, until its lease ends
	MailRetry   MailState = "retry"   // the last attempt certainly did not reach SES: claimable
	MailSent    MailState = "sent"    // the mail service accepted it
	MailUnknown MailState = "unknown" // an attempt may have reached SES: held for an operator
)

var (
	// ErrMailSent: the mail of that event was already sent.
	ErrMailSent = errors.New("mail already sent")
	// ErrMailInFlight: another delivery holds a live claim on that mail.
	ErrMailInFlight = errors.New("mail being sent by another delivery")
	// ErrMailInDoubt: an earlier attempt may have sent that mail; it is
	// held for an operator (MailUnknown).
	ErrMailInDoubt = errors.New("mail in doubt: an earlier attempt may have sent it")
	// ErrClaimLost: the claim is no longer this delivery's.
	ErrClaimLost = errors.New("mail claim lost")
)

// Mail is the sent-mail record of an event.
type Mail struct {
	EventID     string    `json:"eventId"`
	AggregateID string    `json:"aggregateId,omitempty"`
	State       MailState `json:"state"`
	LeaseUntil  time.Time `json:"leaseUntil,omitzero"`
	ClaimedAt   time.Time `json:"claimedAt,omitzero"`
	Attempts    int64     `json:"attempts"` // claims taken, the first one included
	SentAt      time.Time `json:"sentAt,omitzero"`
	MessageID   string    `json:"messageId,omitempty"` // the mail service's id, or the operator's note
	DoubtAt     time.Time `json:"doubtAt,omitzero"`
	DoubtReason string    `json:"doubtReason,omitempty"`
}

// ClaimMail claims the right to send the mail of eventID (caused by an
// event of aggregateID) until now+lease and returns the claim's token. The
// claim is taken when there is no record yet, or when the last attempt
// certainly did not reach the mail service (MailRetry). A live claim is
// ErrMailInFlight; a mail already sent is ErrMailSent; a mail in doubt is
// ErrMailInDoubt. An expired claim is in doubt too: its delivery died or
// ran out of time after claiming, perhaps after SES accepted the mail; it
// becomes MailUnknown here, with reason, and the answer is ErrMailInDoubt.
//
// The lease must outlast the claiming delivery (its invocation's
// deadline), so that an expired lease means nobody is sending any more.
//
// An SDK retry of the claim after a lost reply finds its own token and
// answers the claim: the write is recognized, not refused.
func (s *Mails) ClaimMail(ctx context.Context, eventID, aggregateID string, now time.Time, lease time.Duration) (string, error) {
	token := uuid.NewString()
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key:       readmodel.Key(mailPK(eventID), skSent),
		UpdateExpression: aws.String("SET #state = :sending, #lease = :until, #token = :token, #claimed = :now, #agg = :agg " +
			"ADD #attempts :one"),
		ConditionExpression: aws.String("attribute_not_exists(pk) OR #state = :retry"),
		ExpressionAttributeNames: map[string]string{
			"#state": attrState, "#lease": attrLeaseUntil, "#token": attrToken,
			"#claimed": attrClaimedAt, "#attempts": attrAttempts, "#agg": attrMailAggID,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":sending": readmodel.S(string(MailSending)),
			":retry":   readmodel.S(string(MailRetry)),
			":until":   readmodel.N(now.Add(lease).UnixMilli()),
			":token":   readmodel.S(token),
			":now":     readmodel.S(readmodel.Stamp(now)),
			":agg":     readmodel.S(aggregateID),
			":one":     readmodel.N(1),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return token, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return "", fmt.Errorf("claim mail of %s: %w", eventID, err)
	}
	old, err := decodeMail(eventID, ccf.Item)
	if err != nil {
		return "", fmt.Errorf("claim mail of %s: %w", eventID, err)
	}
	switch {
	case old.State == MailSending && old.token == token:
		return token, nil // our own claim: the reply of the first attempt was lost
	case old.State == MailSent:
		return "", fmt.Errorf("claim mail of %s: %w", eventID, ErrMailSent)
	case old.State == MailUnknown:
		return "", fmt.Errorf("claim mail of %s: %w", eventID, ErrMailInDoubt)
	case old.State == MailSending && !old.LeaseUntil.After(now):
		reason := fmt.Sprintf("the claim of %s expired at %s unconfirmed: its delivery died or ran out of time, perhaps after the mail service accepted the mail",
			readmodel.Stamp(old.ClaimedAt), readmodel.Stamp(old.LeaseUntil))
		err := s.MarkMailUnknown(ctx, eventID, old.token, reason, now)
		if err != nil && !errors.Is(err, ErrClaimLost) {
			return "", fmt.Errorf("claim mail of %s: %w", eventID, err)
		}
		// ErrClaimLost: the late delivery recorded its answer meanwhile,
		// or another delivery did this; the next delivery reads which.
		if errors.Is(err, ErrClaimLost) {
			return "", fmt.Errorf("claim mail of %s: %w", eventID, ErrMailInFlight)
		}
		return "", fmt.Errorf("claim mail of %s: %w", eventID, ErrMailInDoubt)
	default: // a live claim, or a retry state that changed since
		return "", fmt.Errorf("claim mail of %s: %w", eventID, ErrMailInFlight)
	}
}

// MarkMailSent records that the mail of eventID, claimed with token, was
// accepted as messageID. The claim may have been declared in doubt
// meanwhile (its lease ended before this answer): the message id is the
// evidence that settles it, so the mail is marked sent all the same. When
// the claim is someone else's, nothing is written and the error is
// ErrClaimLost. An SDK retry after a lost reply finds the mail sent under
// its own token and succeeds.
func (s *Mails) MarkMailSent(ctx context.Context, eventID, token, messageID string, now time.Time) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 readmodel.Key(mailPK(eventID), skSent),
		UpdateExpression:    aws.String("SET #state = :sent, #sentAt = :now, #msg = :msg REMOVE #lease"),
		ConditionExpression: aws.String("#token = :token AND (#state = :sending OR #state = :unknown)"),
		ExpressionAttributeNames: map[string]string{
			"#state": attrState, "#sentAt": attrSentAt, "#msg": attrMessageID, "#lease": attrLeaseUntil, "#token": attrToken,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":sent": readmodel.S(string(MailSent)), ":sending": readmodel.S(string(MailSending)), ":unknown": readmodel.S(string(MailUnknown)),
			":now": readmodel.S(readmodel.Stamp(now)), ":msg": readmodel.S(messageID), ":token": readmodel.S(token),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if old, derr := decodeMail(eventID, ccf.Item); derr == nil && old.State == MailSent && old.token == token {
			return nil // our own write: its reply was lost
		}
		return fmt.Errorf("mark mail of %s sent: %w", eventID, ErrClaimLost)
	}
	if err != nil {
		return fmt.Errorf("mark mail of %s sent: %w", eventID, err)
	}
	return nil
}

// ReleaseMail gives up the claim token holds on the mail of eventID after a
// send that certainly did not reach the mail service (refused, throttled,
// never connected): the mail becomes MailRetry, claimable at once. A claim
// no longer held is left alone.
func (s *Mails) ReleaseMail(ctx context.Context, eventID, token string) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       readmodel.Key(mailPK(eventID), skSent),
		UpdateExpression:          aws.String("SET #state = :retry REMOVE #lease"),
		ConditionExpression:       aws.String("#token = :token AND #state = :sending"),
		ExpressionAttributeNames:  map[string]string{"#lease": attrLeaseUntil, "#token": attrToken, "#state": attrState},
		ExpressionAttributeValues: map[string]types.AttributeValue{":retry": readmodel.S(string(MailRetry)), ":token": readmodel.S(token), ":sending": readmodel.S(string(MailSending))},
	})
	if err != nil && !readmodel.ConditionFailed(err) {
		return fmt.Errorf("release mail of %s: %w", eventID, err)
	}
	return nil
}

// MarkMailUnknown holds the mail of eventID, claimed with token, for an
// operator: an attempt may have reached the mail service and nobody knows
// whether it accepted the mail. A claim no longer held is ErrClaimLost.
func (s *Mails) MarkMailUnknown(ctx context.Context, eventID, token, reason string, now time.Time) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 readmodel.Key(mailPK(eventID), skSent),
		UpdateExpression:    aws.String("SET #state = :unknown, #doubtAt = :now, #reason = :reason REMOVE #lease"),
		ConditionExpression: aws.String("#token = :token AND (#state = :sending OR #state = :unknown)"),
		ExpressionAttributeNames: map[string]string{
			"#state": attrState, "#doubtAt": attrDoubtAt, "#reason": attrDoubtReason, "#lease": attrLeaseUntil, "#token": attrToken,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":unknown": readmodel.S(string(MailUnknown)), ":sending": readmodel.S(string(MailSending)),
			":now": readmodel.S(readmodel.Stamp(now)), ":reason": readmodel.S(reason), ":token": readmodel.S(token),
		},
	})
	if readmodel.ConditionFailed(err) {
		return fmt.Errorf("mark mail of %s in doubt: %w", eventID, ErrClaimLost)
	}
	if err != nil {
		return fmt.Errorf("mark mail of %s in doubt: %w", eventID, err)
	}
	return nil
}

// ResolveMail settles a mail in doubt, by an operator who has the evidence:
// sent (the recipient has it, or SES's sending records show it: note says
// which) marks it sent; otherwise it becomes MailRetry, so that the next
// delivery of its event sends it. A mail that is not in doubt is left alone
// and the error says where it is.
func (s *Mails) ResolveMail(ctx context.Context, eventID string, sent bool, note string, now time.Time) error {
	update := "SET #state = :retry REMOVE #lease"
	values := map[string]types.AttributeValue{":retry": readmodel.S(string(MailRetry)), ":unknown": readmodel.S(string(MailUnknown))}
	names := map[string]string{"#state": attrState, "#lease": attrLeaseUntil}
	if sent {
		update = "SET #state = :sent, #sentAt = :now, #msg = :note REMOVE #lease"
		values = map[string]types.AttributeValue{":sent": readmodel.S(string(MailSent)), ":unknown": readmodel.S(string(MailUnknown)),
			":now": readmodel.S(readmodel.Stamp(now)), ":note": readmodel.S("operator: " + note)}
		names = map[string]string{"#state": attrState, "#lease": attrLeaseUntil, "#sentAt": attrSentAt, "#msg": attrMessageID}
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       readmodel.Key(mailPK(eventID), skSent),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#state = :unknown"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if readmodel.ConditionFailed(err) {
		m, ok, gerr := s.Mail(ctx, eventID)
		switch {
		case gerr != nil:
			return fmt.Errorf("resolve mail of %s: %w", eventID, gerr)
		case !ok:
			return fmt.Errorf("resolve mail of %s: no such mail record", eventID)
		case sent && m.State == MailSent, !sent && m.State == MailRetry:
			return nil // done already (an SDK retry, or twice by hand)
		default:
			return fmt.Errorf("resolve mail of %s: it is %s, not in doubt", eventID, m.State)
		}
	}
	if err != nil {
		return fmt.Errorf("resolve mail of %s: %w", eventID, err)
	}
	return nil
}

// MailsInDoubt lists the mails held for an operator (MailUnknown), by a
// scan of the table: an operator's tool, for a list that is empty but after
// crashes.
func (s *Mails) MailsInDoubt(ctx context.Context) ([]Mail, error) {
	var out []Mail
	var start map[string]types.AttributeValue
	for {
		page, err := s.client.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 aws.String(s.table),
			FilterExpression:          aws.String("begins_with(pk, :mail) AND #state = :unknown"),
			ExpressionAttributeNames:  map[string]string{"#state": attrState},
			ExpressionAttributeValues: map[string]types.AttributeValue{":mail": readmodel.S(mailPK("")), ":unknown": readmodel.S(string(MailUnknown))},
			ExclusiveStartKey:         start,
			ConsistentRead:            aws.Bool(true),
		})
		if err != nil {
			return nil, fmt.Errorf("scan mails in doubt: %w", err)
		}
		for _, item := range page.Items {
			pk, err := attr.String(item, "pk")
			if err != nil {
				return nil, err
			}
			m, err := decodeMail(pk[len(mailPK("")):], item)
			if err != nil {
				return nil, err
			}
			out = append(out, m.Mail)
		}
		if start = page.LastEvaluatedKey; len(start) == 0 {
			return out, nil
		}
	}
}

// Mail returns the sent-mail record of eventID, read consistently.
func (s *Mails) Mail(ctx context.Context, eventID string) (Mail, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            readmodel.Key(mailPK(eventID), skSent),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Mail{}, false, fmt.Errorf("get mail of %s: %w", eventID, err)
	}
	if out.Item == nil {
		return Mail{}, false, nil
	}
	m, err := decodeMail(eventID, out.Item)
	return m.Mail, err == nil, err
}

// mailItem is a decoded record with its claim token.
type mailItem struct {
	Mail
	token string
}

func decodeMail(eventID string, item map[string]types.AttributeValue) (mailItem, error) {
	if item == nil {
		return mailItem{Mail: Mail{EventID: eventID}}, nil // no record
	}
	m := mailItem{Mail: Mail{EventID: eventID}}
	state, err := attr.String(item, attrState)
	if err != nil {
		return mailItem{}, fmt.Errorf("mail of %s: %w", eventID, err)
	}
	m.State = MailState(state)
	// The rest is informative; a missing attribute leaves its zero value.
	if ms, err := attr.Int(item, attrLeaseUntil); err == nil {
		m.LeaseUntil = time.UnixMilli(ms).UTC()
	}
	m.token, _ = attr.String(item, attrToken)
	m.AggregateID, _ = attr.String(item, attrMailAggID)
	m.ClaimedAt, _ = attr.Time(item, attrClaimedAt)
	m.SentAt, _ = attr.Time(item, attrSentAt)
	m.Attempts, _ = attr.Int(item, attrAttempts)
	m.MessageID, _ = attr.String(item, attrMessageID)
	m.DoubtAt, _ = attr.Time(item, attrDoubtAt)
	m.DoubtReason, _ = attr.String(item, attrDoubtReason)
	return m, nil
}
