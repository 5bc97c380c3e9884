package notifier_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
)

// TestLostReplies runs the sent-mail records' conditional writes through a
// client whose writes apply and whose replies are lost until the SDK's
// last attempt (faults.LostReplies), so that each write is sent again after
// it applied. Each must answer what one successful call answers and leave
// what one call leaves.
func TestLostReplies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	in := faults.New(7)
	table := readmodeltest.Table(t)
	s := notifier.NewMails(dynamodb.NewFromConfig(faults.WithLostReplies(awstest.Config(t), in, 1)), table)

	t.Run("mail claim", func(t *testing.T) {
		ev := uuid.NewString()
		if _, err := s.ClaimMail(ctx, ev, uuid.NewString(), t0, time.Minute); err != nil {
			t.Fatalf("claim: %v", err)
		}
		m, ok, err := s.Mail(ctx, ev)
		if err != nil || !ok || m.State != notifier.MailSending || m.Attempts != 1 {
			t.Errorf("mail: %+v, %v, %v", m, ok, err)
		}
	})
	t.Run("mail marked sent", func(t *testing.T) {
		ev := uuid.NewString()
		tok, err := notifier.NewMails(awstest.DynamoDB(t), table).ClaimMail(ctx, ev, uuid.NewString(), t0, time.Minute) // the claim's reply arrives
		if err != nil {
			t.Fatal(err)
		}
		if err := s.MarkMailSent(ctx, ev, tok, "m-1", t0.Add(time.Second)); err != nil {
			t.Fatalf("mark sent: %v", err)
		}
		m, ok, err := s.Mail(ctx, ev)
		if err != nil || !ok || m.State != notifier.MailSent || m.MessageID != "m-1" {
			t.Errorf("mail: %+v, %v, %v", m, ok, err)
		}
	})

	t.Logf("faults: %s", in)
	if in.Total("lostreply.") == 0 {
		t.Error("no reply was lost")
	}
}
