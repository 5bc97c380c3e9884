package feed

import (
	"context"
	"fmt"
	"slices"

	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Subscribers is what the completeness audit reads of the subscribers'
// records: each projection's applied version of an aggregate, and the
// welcome mails. Stores is the User service's.
type Subscribers interface {
	Applied(ctx context.Context, pr projection.Projection, aggregateID string) (int64, error)
	Mail(ctx context.Context, eventID string) (notifier.Mail, bool, error)
}

// Stores are the subscribers' stores: the read model the projections
// keep (their applied versions), the notifier's sent-mail records.
type Stores struct {
	Views *readmodel.Store
	Mails *notifier.Mails
}

// Applied is the version of aggregateID pr applied in Views (its active
// generation): what pr.Read says, read consistently.
func (s Stores) Applied(ctx context.Context, pr projection.Projection, aggregateID string) (int64, error) {
	_, v, err := pr.Read(ctx, s.Views, aggregateID)
	if err != nil {
		return 0, fmt.Errorf("%s of %s: %w", pr.Name(), aggregateID, err)
	}
	return v, nil
}

// Mail is Mails.Mail.
func (s Stores) Mail(ctx context.Context, eventID string) (notifier.Mail, bool, error) {
	return s.Mails.Mail(ctx, eventID)
}

// Missing is an event of the feed a subscriber has not taken in.
type Missing struct {
	Subscriber  string `json:"subscriber"` // a projection, or "welcome-mail"
	AggregateID string `json:"aggregateId"`
	Version     int64  `json:"version"`           // the projection's applied version falls short of it
	EventID     string `json:"eventId,omitempty"` // the welcome mail's event
	Detail      string `json:"detail"`
}

// Completeness is the report of AuditCompleteness.
type Completeness struct {
	Events     int       `json:"events"`
	Aggregates int       `json:"aggregates"`
	Missing    []Missing `json:"missing"`
}

// welcomeEvent is the event type the notifier mails about.
const welcomeEvent = "user.created.v1"

// AuditCompleteness reads the feed from after and checks that every event
// reached every subscriber: each aggregate at its last version in every
// projection that takes its stream (projection.Takes: a team's stream is
// not the user view's), and a welcome mail sent for each user.created.v1.
// It lists what did not; events behind the feed's horizon are not yet
// audited.
func AuditCompleteness(ctx context.Context, r Reader, subs Subscribers, projections []projection.Projection, after dynamo.FeedCursor) (Completeness, error) {
	var rep Completeness
	last := map[string]int64{}
	types := map[string]map[string]bool{} // the event types of each aggregate seen
	var order []string
	for cur := after; ; {
		page, err := r.ReadFeed(ctx, cur, 1000)
		if err != nil {
			return rep, fmt.Errorf("audit completeness: %w", err)
		}
		if len(page.Events) == 0 {
			break
		}
		for _, e := range page.Events {
			rec := e.Record
			rep.Events++
			if _, seen := last[rec.AggregateID]; !seen {
				order = append(order, rec.AggregateID)
				types[rec.AggregateID] = map[string]bool{}
			}
			last[rec.AggregateID] = max(last[rec.AggregateID], rec.Version)
			types[rec.AggregateID][rec.Type] = true
			if rec.Type != welcomeEvent {
				continue
			}
			m, ok, err := subs.Mail(ctx, rec.ID)
			if err != nil {
				return rep, fmt.Errorf("audit completeness: %w", err)
			}
			if !ok || m.State != notifier.MailSent {
				state := "no record"
				if ok {
					state = string(m.State)
				}
				rep.Missing = append(rep.Missing, Missing{Subscriber: "welcome-mail", AggregateID: rec.AggregateID,
					Version: rec.Version, EventID: rec.ID, Detail: "welcome mail " + state})
			}
		}
		cur = page.Next
	}
	rep.Aggregates = len(order)
	for _, id := range order {
		for _, p := range projections {
			if !takes(p, types[id]) {
				continue
			}
			v, err := subs.Applied(ctx, p, id)
			if err != nil {
				return rep, fmt.Errorf("audit completeness: %w", err)
			}
			if v < last[id] {
				rep.Missing = append(rep.Missing, Missing{Subscriber: p.Name(), AggregateID: id, Version: last[id],
					Detail: fmt.Sprintf("applied v%d of v%d", v, last[id])})
			}
		}
	}
	slices.SortStableFunc(rep.Missing, func(a, b Missing) int {
		if a.Subscriber != b.Subscriber {
			if a.Subscriber < b.Subscriber {
				return -1
			}
			return 1
		}
		return 0
	})
	return rep, nil
}

// takes reports whether p consumes one of types (projection.Takes, on the
// event types of an aggregate the feed showed).
func takes(p projection.Projection, types map[string]bool) bool {
	for t := range types {
		if projection.Consumes(p, t) {
			return true
		}
	}
	return false
}
