package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
)

// errNoUser: the user has no events (at that point).
var errNoUser = errors.New("no such user")

// errNoTeam: the team has no events (at that point).
var errNoTeam = errors.New("no such team")

// aggregateType is the type of the aggregate whose stream is id, as its
// first stored record names it: history and state take a user's id or a
// team's and tell them apart by what is stored. A stream with no record
// is a user's (for the message: there is no such user).
func aggregateType(ctx context.Context, store es.EventStore, id string) (string, error) {
	recs, err := store.Load(ctx, id, 1, 1)
	if err != nil {
		return "", err
	}
	if len(recs) == 0 || recs[0].AggregateType == "" {
		return user.AggregateType, nil
	}
	return recs[0].AggregateType, nil
}

// notFound is the error of an aggregate of type kind without events.
func notFound(kind string) error {
	if kind == team.AggregateType {
		return errNoTeam
	}
	return errNoUser
}

// userID checks and canonicalizes the id argument.
func userID(args []string, want int) (string, error) {
	if len(args) != want {
		return "", usagef("want %d argument(s), got %d", want, len(args))
	}
	id, err := uuid.Parse(args[0])
	if err != nil {
		return "", usagef("%q is not a user id (a UUID)", args[0])
	}
	return id.String(), nil
}

// eventJSON is an event as history prints it: the API's history shape.
type eventJSON struct {
	EventID       string          `json:"eventId"`
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	OccurredAt    time.Time       `json:"occurredAt"`
	Actor         string          `json:"actor,omitempty"`
	Reason        string          `json:"reason,omitempty"`
	CorrelationID string          `json:"correlationId,omitempty"`
	CausationID   string          `json:"causationId,omitempty"`
	Data          json.RawMessage `json:"data"`
}

func toEventJSON(r es.Record) eventJSON {
	return eventJSON{EventID: r.ID, Version: r.Version, Type: r.Type, OccurredAt: r.OccurredAt.UTC(),
		Actor: r.Metadata.Actor, Reason: r.Metadata.Reason, CorrelationID: r.Metadata.CorrelationID,
		CausationID: r.Metadata.CausationID, Data: r.Data}
}

const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// printEvents prints records as a table.
func printEvents(w io.Writer, recs []es.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  V\tOCCURRED AT (UTC)\tTYPE\tACTOR\tREASON\tDATA")
	for _, r := range recs {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", r.Version, r.OccurredAt.UTC().Format(timeLayout), r.Type,
			orDash(r.Metadata.Actor), orDash(quoteIf(r.Metadata.Reason)), compact(r.Data))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func quoteIf(s string) string {
	if s == "" || !strings.ContainsAny(s, " \t") {
		return s
	}
	return strconv.Quote(s)
}

func compact(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// ---------------------------------------------------------------- history

func historyCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	from := fs.Int64("from", 1, "first version")
	limit := fs.Int("limit", 0, "at most this many events (0: all)")
	return func(ctx context.Context, args []string) error {
		id, err := userID(args, 1)
		if err != nil {
			return err
		}
		store, _, err := a.eventStore(ctx)
		if err != nil {
			return err
		}
		kind, err := aggregateType(ctx, store, id)
		if err != nil {
			return err
		}
		to := int64(0)
		if *limit > 0 {
			to = *from + int64(*limit) - 1
		}
		recs, err := store.Load(ctx, id, *from, to)
		if err != nil {
			return err
		}
		if len(recs) == 0 && *from <= 1 {
			return fmt.Errorf("%s %s: %w", kind, id, notFound(kind))
		}
		if a.asJSON {
			out := struct {
				ID     string      `json:"id"`
				Events []eventJSON `json:"events"`
			}{ID: id, Events: []eventJSON{}}
			for _, r := range recs {
				out.Events = append(out.Events, toEventJSON(r))
			}
			return a.printJSON(out)
		}
		fmt.Fprintf(a.stdout, "%s %s: %d event(s)\n", kind, id, len(recs))
		printEvents(a.stdout, recs)
		return nil
	}
}

// ---------------------------------------------------------------- state

// stateOf is an aggregate as it was: the API's state shape.
type stateOf[S any] struct {
	ID      string    `json:"id"`
	Version int64     `json:"version"`
	AsOf    time.Time `json:"asOf"`
	State   S         `json:"state"`
}

// stateJSON is a user as it was.
type stateJSON = stateOf[user.State]

// change is one field that differs between two states.
type change struct {
	Field string          `json:"field"`
	From  json.RawMessage `json:"from"`
	To    json.RawMessage `json:"to"`
}

func stateCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	at := fs.String("at", "", "the time (RFC 3339): the state after the events that occurred at or before it")
	version := fs.Int64("version", 0, "the version")
	diff := fs.String("diff", "", "two versions A..B (B empty: the latest): what changed, and the events between")
	return func(ctx context.Context, args []string) error {
		id, err := userID(args, 1)
		if err != nil {
			return err
		}
		set := 0
		for _, s := range []bool{*at != "", *version != 0, *diff != ""} {
			if s {
				set++
			}
		}
		if set > 1 {
			return usagef("give one of --at, --version and --diff")
		}
		store, svc, err := a.eventStore(ctx)
		if err != nil {
			return err
		}
		kind, err := aggregateType(ctx, store, id)
		if err != nil {
			return err
		}
		if kind == team.AggregateType {
			return showState(ctx, a, store, a.teamService(store), kind, id, *at, *version, *diff)
		}
		return showState(ctx, a, store, svc, kind, id, *at, *version, *diff)
	}
}

// showState prints the state of aggregate id, of type kind, as it was at
// a time, at a version, or now, or what changed between two versions.
func showState[S, C any](ctx context.Context, a *app, store es.EventStore, svc *es.Service[S, C], kind, id, at string, version int64, diff string) error {
	if diff != "" {
		return stateDiff(ctx, a, store, svc, kind, id, diff)
	}
	var (
		agg es.Aggregate[S]
		err error
	)
	switch {
	case at != "":
		t, err := parseTime(at)
		if err != nil {
			return err
		}
		agg, err = svc.LoadAsOf(ctx, id, t)
		if err != nil {
			return err
		}
	case version != 0:
		if version < 0 {
			return usagef("--version must be positive")
		}
		agg, err = svc.LoadAt(ctx, id, version)
		if err != nil {
			return err
		}
	default:
		if agg, err = svc.Load(ctx, id); err != nil {
			return err
		}
	}
	if agg.Version == 0 {
		return fmt.Errorf("%s %s did not exist then: %w", kind, id, notFound(kind))
	}
	st := stateOf[S]{ID: id, Version: agg.Version, AsOf: agg.UpdatedAt.UTC(), State: agg.State}
	if a.asJSON {
		return a.printJSON(st)
	}
	fmt.Fprintf(a.stdout, "%s %s at v%d (last changed %s):\n", kind, id, agg.Version, agg.UpdatedAt.UTC().Format(timeLayout))
	printState(a.stdout, agg.State)
	return nil
}

// printState prints a state's fields, one a line.
func printState(w io.Writer, s any) {
	m := jsonFields(s)
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(tw, "  %s:\t%s\n", k, m[k])
	}
	tw.Flush()
}

func jsonFields(v any) map[string]json.RawMessage {
	b, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return m
}

// changes lists the fields that differ between two states.
func changes(from, to any) []change {
	f, t := jsonFields(from), jsonFields(to)
	keys := map[string]bool{}
	for k := range f {
		keys[k] = true
	}
	for k := range t {
		keys[k] = true
	}
	var out []change
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if string(f[k]) != string(t[k]) {
			out = append(out, change{Field: k, From: nullIfNil(f[k]), To: nullIfNil(t[k])})
		}
	}
	return out
}

func nullIfNil(b json.RawMessage) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return b
}

func printChanges(w io.Writer, cs []change) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "  (no change)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, c := range cs {
		from, to := string(c.From), string(c.To)
		if from == "null" {
			from = "(none)"
		}
		if to == "null" {
			to = "(none)"
		}
		fmt.Fprintf(tw, "  %s:\t%s → %s\n", c.Field, from, to)
	}
	tw.Flush()
}

// parseDiff reads "A..B" (B may be empty: the latest).
func parseDiff(s string) (from, to int64, err error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		return 0, 0, usagef("--diff %q: want A..B, such as 3..5", s)
	}
	from, err = strconv.ParseInt(a, 10, 64)
	if err != nil || from < 0 {
		return 0, 0, usagef("--diff %q: %q is not a version", s, a)
	}
	if b != "" {
		if to, err = strconv.ParseInt(b, 10, 64); err != nil || to < 1 {
			return 0, 0, usagef("--diff %q: %q is not a version", s, b)
		}
		if to <= from {
			return 0, 0, usagef("--diff %q: the second version must be after the first", s)
		}
	}
	return from, to, nil
}

func stateDiff[S, C any](ctx context.Context, a *app, store es.EventStore, svc *es.Service[S, C], kind, id, spec string) error {
	from, to, err := parseDiff(spec)
	if err != nil {
		return err
	}
	before, err := svc.LoadAt(ctx, id, from)
	if err != nil {
		return err
	}
	var after es.Aggregate[S]
	if to == 0 {
		after, err = svc.Load(ctx, id)
	} else {
		after, err = svc.LoadAt(ctx, id, to)
	}
	if err != nil {
		return err
	}
	if after.Version == 0 {
		return fmt.Errorf("%s %s: %w", kind, id, notFound(kind))
	}
	if to != 0 && after.Version < to {
		return fmt.Errorf("%s %s is at v%d; it has no v%d", kind, id, after.Version, to)
	}
	if before.Version < from {
		return fmt.Errorf("%s %s is at v%d; it has no v%d", kind, id, after.Version, from)
	}
	recs, err := store.Load(ctx, id, from+1, after.Version)
	if err != nil {
		return err
	}
	cs := changes(before.State, after.State)
	if a.asJSON {
		out := struct {
			ID      string      `json:"id"`
			From    stateOf[S]  `json:"from"`
			To      stateOf[S]  `json:"to"`
			Changes []change    `json:"changes"`
			Events  []eventJSON `json:"events"`
		}{ID: id, Changes: cs, Events: []eventJSON{},
			From: stateOf[S]{ID: id, Version: before.Version, AsOf: before.UpdatedAt.UTC(), State: before.State},
			To:   stateOf[S]{ID: id, Version: after.Version, AsOf: after.UpdatedAt.UTC(), State: after.State}}
		if out.Changes == nil {
			out.Changes = []change{}
		}
		for _, r := range recs {
			out.Events = append(out.Events, toEventJSON(r))
		}
		return a.printJSON(out)
	}
	fmt.Fprintf(a.stdout, "%s %s: v%d → v%d\n", kind, id, before.Version, after.Version)
	printChanges(a.stdout, cs)
	fmt.Fprintf(a.stdout, "events v%d..v%d:\n", before.Version+1, after.Version)
	printEvents(a.stdout, recs)
	return nil
}

// parseTime reads RFC 3339 (fractional seconds optional), or a date (its
// end of day is not implied: midnight UTC).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usagef("%q is not a time: want RFC 3339, such as 2026-03-01T12:00:00Z", s)
}
