// Package membership is the process manager between the User and the Team
// aggregates: when a user is deleted or forgotten, it takes the user out of
// every team it is in, with team.RemoveDeletedMember commands that carry
// the deletion's actor, reason, correlation id and, as their causation, the
// deletion event's id.
//
// It consumes a FIFO queue the relay fills with user.deleted.v1,
// user.forgotten.v1, team.created (the first owner joins), team.member_added
// and team.member_removed. A team's events and a user's events arrive in
// different message groups, so a join and the deletion of the user who
// joins race. The read models lag and cannot settle that race; the manager
// keeps a table of its own (Table), one partition per user, and each side
// writes its own item before it reads the other's, with strong
// consistency:
//
//   - a join (team T, user U, version v): record U in T at v, then read
//     U's deletion marker; if there is one, remove U from T;
//   - a deletion of U: record U's marker, then read U's teams; remove U
//     from each team it is a member of.
//
// Whichever write comes second, its reader sees the first: no membership
// escapes. Both may see each other; then both remove, and the second
// removal is a no-op twice over: RemoveDeletedMember of a non-member
// decides nothing, and both carry the same idempotency key, derived from
// the deletion event, the team and the version at which U joined it (a
// later join, after the user was removed, is another membership and gets
// another key). Redelivered, duplicated and reordered messages, and a
// crash between two teams, therefore leave one MemberRemoved per
// membership.
//
// A leave (team.member_removed) records U out of T at its version, so that
// a deletion does not load teams U has left; a row only moves forward in
// the team's versions, so that a join delivered after a later leave
// changes nothing.
package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/relay"
	"github.com/chronicle-go/chronicle/infra/tracing"
)

// Teams executes team commands: *team.Service is one.
type Teams interface {
	Execute(ctx context.Context, id string, cmd team.Command, x es.ExecOptions) (es.Result[team.State], error)
}

var _ Teams = (*team.Service)(nil)

// EventTypes are the event types the manager handles: the relay's route
// to its queue.
func EventTypes() []string {
	return []string{
		user.Deleted{}.EventType(), user.Forgotten{}.EventType(),
		team.Created{}.EventType(), team.MemberAdded{}.EventType(), team.MemberRemoved{}.EventType(),
	}
}

// Manager is the handler of the membership queue. It is safe for
// concurrent use.
type Manager struct {
	table    *Table
	teams    Teams
	registry *es.Registry
	log      *slog.Logger
	now      func() time.Time

	metrics      *metrics.Recorder // nil: none
	failures     deadletter.Recorder
	maxReceive   int
	backoff      *relay.Backoff
	parallel     int // message groups of a batch handled at once
	teamParallel int // teams of one deleted user left at once
}

// Option tunes a Manager.
type Option func(*Manager)

// WithMetrics makes the manager write EMF metrics after each batch
// (Messages, BatchFailures, DLQSends).
func WithMetrics(m *metrics.Recorder) Option { return func(p *Manager) { p.metrics = m } }

// WithFailureLog records why each failed message failed, for `chronicle
// dlq show`.
func WithFailureLog(f deadletter.Recorder) Option { return func(p *Manager) { p.failures = f } }

// WithMaxReceiveCount tells the manager its queue's maxReceiveCount, so
// that a failure SQS will dead-letter is logged as such.
func WithMaxReceiveCount(n int) Option { return func(p *Manager) { p.maxReceive = n } }

// WithBackoff makes failed messages come back within seconds
// (relay.Backoff).
func WithBackoff(b *relay.Backoff) Option { return func(p *Manager) { p.backoff = b } }

// DefaultGroupConcurrency is how many message groups of a batch are handled
// at once: all ten of a full FIFO batch (they are distinct users and teams).
const DefaultGroupConcurrency = 10

// teamConcurrency is how many teams one deletion leaves at once.
const teamConcurrency = 4

// StartBudget is the least time left to an invocation for the manager to
// start a message group: with less, the group is failed untouched and
// comes back, rather than being cut off half-way (which would be safe, but
// wasted).
const StartBudget = 1500 * time.Millisecond

// Reserve is the part of an invocation the messages never use, so that the
// handler always answers: a message still running then is cut off and
// failed.
const Reserve = time.Second

// New returns a manager that keeps its state in table and removes deleted
// users through teams.
func New(table *Table, teams Teams, logger *slog.Logger, now func() time.Time, opts ...Option) *Manager {
	r := es.NewRegistry()
	user.Register(r)
	team.Register(r)
	m := &Manager{table: table, teams: teams, registry: r, log: logger, now: now,
		parallel: DefaultGroupConcurrency, teamParallel: teamConcurrency}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Handle handles a batch. The messages of one group (one user, or one
// team) are handled in order; a message that fails is reported in
// BatchItemFailures with every later message of its group, so that the
// queue delivers them again in order. A message that cannot be decoded is
// a poison: it fails every time and goes to the dead-letter queue, holding
// back only its own group. An event type the manager does not handle is
// acknowledged and logged. Per-message failures are never the handler's
// error.
func (m *Manager) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	start := m.now()
	work, tail := ctx, ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancelWork, cancelTail context.CancelFunc
		work, cancelWork = context.WithDeadline(ctx, deadline.Add(-Reserve))
		defer cancelWork()
		tail, cancelTail = context.WithDeadline(ctx, deadline.Add(-Reserve/5))
		defer cancelTail()
	}
	gs := groups(ev.Records)
	outcomes := make([]outcome, len(gs))
	var wg sync.WaitGroup
	slots := make(chan struct{}, m.parallel)
	for k, g := range gs {
		slots <- struct{}{}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < StartBudget {
			<-slots
			outcomes[k].err = fmt.Errorf("not attempted: %s left to the invocation", time.Until(deadline).Round(time.Millisecond))
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			gctx, span := tracing.StartMessages(work, "membership", ev.Records, g)
			outcomes[k] = m.handleGroup(gctx, ev.Records, g)
			tracing.End(span, outcomes[k].err)
		})
	}
	wg.Wait()

	var resp events.SQSEventResponse
	failed := map[int]bool{}
	var errs []string
	dlq := 0
	for k, g := range gs {
		o := outcomes[k]
		if o.err == nil {
			continue
		}
		first := ev.Records[g[o.from]]
		errs = append(errs, fmt.Sprintf("%s: %v", first.MessageId, o.err))
		for j, i := range g[o.from:] {
			failed[i] = true
			why := o.err
			if j > 0 {
				why = fmt.Errorf("not handled: message %s of the same group failed before it", first.MessageId)
			}
			if m.report(ctx, ev.Records[i], why) {
				dlq++
			}
		}
	}
	for i, msg := range ev.Records {
		if failed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		}
	}
	m.backoff.Apply(tail, ev, resp)
	elapsed := m.now().Sub(start)
	level := slog.LevelInfo
	if len(resp.BatchItemFailures) > 0 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.Int("messages", len(ev.Records)), slog.Int("failures", len(resp.BatchItemFailures)),
		slog.Int64("duration_ms", elapsed.Milliseconds()),
	}
	if len(errs) > 0 {
		attrs = append(attrs, slog.Any("errors", errs))
	}
	m.log.LogAttrs(ctx, level, "membership batch", attrs...)
	m.metrics.Batch(ctx, metrics.Batch{Messages: len(ev.Records), Failures: len(resp.BatchItemFailures), DLQSends: dlq, Duration: elapsed})
	return resp, nil
}

// outcome is how one group went: nil, or the first message not handled
// (an index in the group) and why.
type outcome struct {
	from int
	err  error
}

func (m *Manager) handleGroup(ctx context.Context, msgs []events.SQSMessage, g []int) outcome {
	for j, i := range g {
		if err := m.handleMessage(ctx, msgs[i]); err != nil {
			return outcome{from: j, err: err}
		}
	}
	return outcome{}
}

// handleMessage decodes one message and acts on its event.
func (m *Manager) handleMessage(ctx context.Context, msg events.SQSMessage) error {
	rec, err := relay.DecodeMessage(msg.Body)
	if err != nil {
		return fmt.Errorf("poison: %w", err)
	}
	if !handles(rec.Type) {
		m.log.LogAttrs(ctx, slog.LevelWarn, "membership: event type not handled, acknowledged",
			slog.String("event_type", rec.Type), slog.String("event_id", rec.ID), slog.String("message_id", msg.MessageId))
		return nil
	}
	if rec.Event, err = m.registry.Decode(rec); err != nil {
		return fmt.Errorf("poison: %s %s: %w", rec.Type, rec.ID, err)
	}
	switch e := rec.Event.(type) {
	case user.Deleted:
		return m.deleted(ctx, rec, e.Reason)
	case user.Forgotten:
		return m.deleted(ctx, rec, e.Reason)
	case team.Created:
		return m.joined(ctx, rec, e.Owner)
	case team.MemberAdded:
		return m.joined(ctx, rec, e.UserID)
	case team.MemberRemoved:
		if _, err := m.table.SetMember(ctx, e.UserID, rec.AggregateID, false, rec.Version); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("poison: %s %s decodes to %T", rec.Type, rec.ID, rec.Event)
}

func handles(typ string) bool {
	for _, t := range EventTypes() {
		if t == typ {
			return true
		}
	}
	return false
}

// joined handles user joining the team of rec at rec's version: record
// it, then read the user's deletion marker (strongly consistent); a
// deleted user is removed at once.
func (m *Manager) joined(ctx context.Context, rec es.Record, userID string) error {
	current, err := m.table.SetMember(ctx, userID, rec.AggregateID, true, rec.Version)
	if err != nil || !current {
		// !current: a later event of the team about this user was handled;
		// it decided (a leave, or a later join that read the marker).
		return err
	}
	marker, deleted, err := m.table.Deleted(ctx, userID)
	if err != nil || !deleted {
		return err
	}
	return m.remove(ctx, rec.AggregateID, userID, rec.Version, marker)
}

// deleted handles the deletion of rec's user: record the marker (the first
// deletion handled stays), then read the user's teams (strongly
// consistent) and remove the user from each it is a member of.
func (m *Manager) deleted(ctx context.Context, rec es.Record, reason string) error {
	if reason == "" {
		reason = rec.Metadata.Reason
	}
	correlation := rec.Metadata.CorrelationID
	if correlation == "" {
		correlation = rec.ID // the deletion starts the conversation
	}
	userID := rec.AggregateID
	marker, err := m.table.MarkDeleted(ctx, userID, Marker{
		EventID: rec.ID, EventType: rec.Type, Actor: rec.Metadata.Actor, Reason: reason,
		CorrelationID: correlation, At: rec.OccurredAt,
	})
	if err != nil {
		return err
	}
	rows, err := m.table.Teams(ctx, userID)
	if err != nil {
		return err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		slots = make(chan struct{}, m.teamParallel)
	)
	for _, r := range rows {
		if !r.Member {
			continue // left; a later join reads the marker itself
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := m.remove(ctx, r.TeamID, userID, r.Joined, marker); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// remove takes the deleted user out of teamID, where it joined at version
// joined, with the deletion's metadata. The idempotency key names the
// deletion and the membership, so that both paths and every redelivery
// are one request.
func (m *Manager) remove(ctx context.Context, teamID, userID string, joined int64, d Marker) error {
	key := IdempotencyKey(d.EventID, teamID, joined)
	res, err := m.teams.Execute(ctx, teamID, team.RemoveDeletedMember{UserID: userID, Reason: d.Reason}, es.ExecOptions{
		Metadata: es.Metadata{
			Actor: d.Actor, Reason: d.Reason, CorrelationID: d.CorrelationID, CausationID: d.EventID, CommandID: key,
		},
		Idempotency: &es.IdempotencyKey{Key: key, RequestHash: "remove-deleted-member " + userID},
	})
	switch {
	case errors.Is(err, team.ErrNotFound):
		// A row exists only for a team whose event was handled, so the
		// team exists; a stream that reads as absent is nothing to leave.
		m.log.LogAttrs(ctx, slog.LevelWarn, "membership: team not found, nothing to leave",
			slog.String("team_id", teamID), slog.String("user_id", userID))
		return nil
	case err != nil:
		return fmt.Errorf("remove deleted user %s from team %s: %w", userID, teamID, err)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "membership: deleted user left team",
		slog.String("team_id", teamID), slog.String("user_id", userID), slog.String("deletion_event_id", d.EventID),
		slog.Int("events", len(res.Records)), slog.Bool("replayed", res.Replayed), slog.Int64("version", res.Version))
	return nil
}

// IdempotencyKey is the key of the removal of a deleted user from teamID,
// where it joined at version joined, because of the deletion event
// deletionID.
func IdempotencyKey(deletionID, teamID string, joined int64) string {
	return "membership#" + deletionID + "#" + teamID + "#" + strconv.FormatInt(joined, 10)
}

func (m *Manager) report(ctx context.Context, msg events.SQSMessage, err error) bool {
	return deadletter.Report{Consumer: "membership", MaxReceive: m.maxReceive, Log: m.log, Failures: m.failures, Now: m.now}.
		Report(ctx, msg, err)
}

// groups splits msgs by message group: the indexes of each group's
// messages in delivery order.
func groups(msgs []events.SQSMessage) [][]int {
	var out [][]int
	at := map[string]int{}
	for i, msg := range msgs {
		g := msg.Attributes["MessageGroupId"]
		if g == "" {
			g = "message:" + msg.MessageId
		}
		k, ok := at[g]
		if !ok {
			k = len(out)
			at[g] = k
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}
