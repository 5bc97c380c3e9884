package notifier_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/notifier"
)

// TestWarmerGetsTheBatchFirst: the warmer is called once per batch, before
// any message is handled, with the batch's user.created events only; an
// error of the warmer fails no message, and every welcome mail goes.
func TestWarmerGetsTheBatchFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	var (
		calls  int
		warmed []string // event ids
		claims []bool   // per warmed event: already claimed when warmed
	)
	warm := func(ctx context.Context, recs []es.Record) error {
		calls++
		for _, r := range recs {
			warmed = append(warmed, r.ID)
			_, claimed, err := e.ledger.Mail(ctx, r.ID)
			if err != nil {
				t.Error(err)
			}
			claims = append(claims, claimed)
		}
		return errors.New("the keys table is unavailable")
	}
	n, err := notifier.New(e.ses, e.ledger, registry, notifier.Config{From: e.from}, slog.New(slog.DiscardHandler), e.clock.now,
		notifier.WithWarmer(warm))
	if err != nil {
		t.Fatal(err)
	}
	a, b := created(t, "Warm A", fmt.Sprintf("a-%s@example.com", uuid.NewString())), created(t, "Warm B", fmt.Sprintf("b-%s@example.com", uuid.NewString()))
	renamed := record(t, a.AggregateID, 2, user.Renamed{Name: "Warm A2"})
	bad := events.SQSMessage{MessageId: "not-an-event", Body: "not json", Attributes: map[string]string{"MessageGroupId": "g"}}
	failed := handle(t, n, message(t, a), message(t, renamed), bad, message(t, b))
	if !slices.Equal(failed, []string{bad.MessageId}) {
		t.Fatalf("failed %v; want only the message that is not an event", failed)
	}
	if calls != 1 || !slices.Equal(warmed, []string{a.ID, b.ID}) || slices.Contains(claims, true) {
		t.Fatalf("warmer: %d calls, events %v (claimed before: %v); want 1 call with %s, %s before any claim", calls, warmed, claims, a.ID, b.ID)
	}
	for _, r := range []es.Record{a, b} {
		var c user.Created
		decodeInto(t, r, &c)
		if got := mailsTo(t, c.Email); len(got) != 1 {
			t.Errorf("%d mails to %s, want 1", len(got), c.Email)
		}
	}
}

func decodeInto(t *testing.T, r es.Record, v *user.Created) {
	t.Helper()
	e, err := registry.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	*v = e.(user.Created)
}
