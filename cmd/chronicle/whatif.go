package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
)

// whatIfInput is the JSON argument of what-if: a command,
// {"command":"rename","name":"x"}, or an event,
// {"event":"user.deleted.v1","data":{"reason":"..."}}.
type whatIfInput struct {
	Command       string          `json:"command"`
	Name          string          `json:"name"`
	Email         string          `json:"email"`
	Sub           string          `json:"sub"`
	Reason        string          `json:"reason"`
	Event         string          `json:"event"`
	SchemaVersion int             `json:"schemaVersion"`
	Data          json.RawMessage `json:"data"`
}

// commandOf builds the user command named in in.
func commandOf(in whatIfInput) (user.Command, error) {
	switch strings.ReplaceAll(strings.ToLower(in.Command), "-", "_") {
	case "create":
		return user.Create{Name: in.Name, Email: in.Email, Sub: in.Sub}, nil
	case "rename":
		return user.Rename{Name: in.Name}, nil
	case "change_email", "changeemail":
		return user.ChangeEmail{Email: in.Email}, nil
	case "suspend":
		return user.Suspend{Reason: in.Reason}, nil
	case "reactivate":
		return user.Reactivate{Reason: in.Reason}, nil
	case "delete":
		return user.Delete{Reason: in.Reason}, nil
	}
	return nil, usagef("unknown command %q: want create, rename, change_email, suspend, reactivate or delete", in.Command)
}

// whatIfJSON is what what-if answers.
type whatIfJSON struct {
	ID       string      `json:"id"`
	At       time.Time   `json:"at"`
	Applied  string      `json:"applied"` // "command rename" or "event user.deleted.v1"
	Before   stateJSON   `json:"before"`
	Events   []eventJSON `json:"events"`
	Rejected string      `json:"rejected,omitempty"` // the rule that refuses the command
	After    stateJSON   `json:"after"`
	Changes  []change    `json:"changes"`
	Written  bool        `json:"written"` // always false
}

func whatIfCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	at := fs.String("at", "", "the moment (RFC 3339): the state just then, and the command applied at that time (default: now)")
	actor := fs.String("actor", "what-if", "the actor recorded on the hypothetical events")
	return func(ctx context.Context, args []string) error {
		if len(args) != 2 {
			return usagef("want a user id and a JSON command or event, such as '{\"command\":\"rename\",\"name\":\"Ada\"}'")
		}
		id, err := userID(args[:1], 1)
		if err != nil {
			return err
		}
		when := time.Now().UTC()
		if *at != "" {
			if when, err = parseTime(*at); err != nil {
				return err
			}
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(args[1])))
		dec.DisallowUnknownFields()
		var in whatIfInput
		if err := dec.Decode(&in); err != nil {
			return usagef("the JSON argument: %v", err)
		}
		if (in.Command == "") == (in.Event == "") {
			return usagef(`the JSON argument names a "command" or an "event", not both or neither`)
		}
		_, svc, err := a.eventStore(ctx)
		if err != nil {
			return err
		}
		md := es.Metadata{Actor: *actor, Reason: in.Reason}
		var res es.WhatIf[user.State]
		var applied string
		if in.Command != "" {
			cmd, err := commandOf(in)
			if err != nil {
				return err
			}
			applied = "command " + in.Command
			if res, err = svc.WhatIfCommand(ctx, id, when, cmd, md); err != nil {
				return err
			}
		} else {
			schema := in.SchemaVersion
			if schema == 0 {
				schema = 1
			}
			data := in.Data
			if len(data) == 0 {
				data = json.RawMessage("{}")
			}
			e, err := svc.Registry().Decode(es.Record{AggregateID: id, Type: in.Event, SchemaVersion: schema, Data: data})
			if err != nil {
				if errors.Is(err, es.ErrUnknownEvent) {
					return usagef("%v", err)
				}
				return err
			}
			applied = "event " + in.Event
			if res, err = svc.WhatIfEvent(ctx, id, when, e, md); err != nil {
				return err
			}
		}
		out := whatIfJSON{ID: id, At: when, Applied: applied, Events: []eventJSON{},
			Before: stateJSON{ID: id, Version: res.Before.Version, AsOf: res.Before.UpdatedAt.UTC(), State: res.Before.State},
			After:  stateJSON{ID: id, Version: res.After.Version, AsOf: res.After.UpdatedAt.UTC(), State: res.After.State}}
		for _, r := range res.Records {
			out.Events = append(out.Events, toEventJSON(r))
		}
		if res.Rejected != nil {
			out.Rejected = res.Rejected.Error()
		}
		out.Changes = changes(res.Before.State, res.After.State)
		if out.Changes == nil {
			out.Changes = []change{}
		}
		if a.asJSON {
			return a.printJSON(out)
		}
		w := a.stdout
		fmt.Fprintf(w, "what if, at %s, user %s got %s:\n\n", when.Format(timeLayout), id, applied)
		if res.Before.Version == 0 {
			fmt.Fprintln(w, "before: the user did not exist yet")
		} else {
			fmt.Fprintf(w, "before (v%d, last changed %s):\n", res.Before.Version, res.Before.UpdatedAt.UTC().Format(timeLayout))
			printState(w, res.Before.State)
		}
		fmt.Fprintln(w)
		switch {
		case res.Rejected != nil:
			fmt.Fprintf(w, "rejected: %v\n", res.Rejected)
		case len(res.Records) == 0:
			fmt.Fprintln(w, "no event: the command changes nothing")
		default:
			fmt.Fprintln(w, "would append:")
			printEvents(w, res.Records)
			fmt.Fprintf(w, "\nafter (v%d):\n", res.After.Version)
			printState(w, res.After.State)
			fmt.Fprintln(w, "\nchanges:")
			printChanges(w, out.Changes)
		}
		fmt.Fprintln(w, "\nNothing was written.")
		return nil
	}
}
