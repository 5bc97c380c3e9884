package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/console"
)

// GET /console: the audit console's page. It needs no token: the page holds
// no data, and asks the API for everything with the admin's token.
//
// The page names its assets relative to itself (console/app.js), so that it
// works under any stage or base path. Where API Gateway routes /console/ to
// this resource too (the runner does), those names would not resolve: it
// is redirected to ../console, relatively.
func (q *Queries) consolePage(_ context.Context, c *call) (reply, error) {
	if strings.HasSuffix(c.req.Path, "/") {
		h := console.Headers("text/plain; charset=utf-8")
		h["Location"] = "../console"
		return reply{status: http.StatusPermanentRedirect, headers: h, raw: []byte("See ../console\n")}, nil
	}
	return assetReply(console.Page)
}

// GET /console/{asset}: the page's script and style sheet.
func (q *Queries) consoleAsset(_ context.Context, c *call) (reply, error) {
	return assetReply(c.params[paramAsset])
}

func assetReply(name string) (reply, error) {
	a, ok := console.Lookup(name)
	if !ok {
		return reply{}, &edgeError{kind: errNoRoute, detail: "The console has no such file."}
	}
	return reply{status: http.StatusOK, headers: console.Headers(a.ContentType), raw: a.Body}, nil
}

// whatIfAnswer is what POST /users/{id}/what-if answers: the state at the
// moment, the events the command would have appended (or the rule that
// refuses it), and the state after. Nothing is written.
type whatIfAnswer struct {
	ID       string        `json:"id"`
	At       time.Time     `json:"at"`
	Command  string        `json:"command"`
	Before   stateAnswer   `json:"before"`
	Events   []eventAnswer `json:"events"`
	Rejected string        `json:"rejected,omitempty"`
	After    stateAnswer   `json:"after"`
	Written  bool          `json:"written"`
}

// whatIfCommands are the commands a what-if may ask about, by their name in
// the body, and the body field each takes.
var whatIfCommands = map[string]struct {
	field string
	make  func(v string) user.Command
}{
	"rename":       {"name", func(v string) user.Command { return user.Rename{Name: v} }},
	"change-email": {"email", func(v string) user.Command { return user.ChangeEmail{Email: v} }},
	"suspend":      {"reason", func(v string) user.Command { return user.Suspend{Reason: v} }},
	"reactivate":   {"reason", func(v string) user.Command { return user.Reactivate{Reason: v} }},
	"delete":       {"reason", func(v string) user.Command { return user.Delete{Reason: v} }},
}

// POST /users/{id}/what-if {"command","name"|"email"|"reason","at"}: admin
// only. The command is decided on the state as of at (default: now), at
// that time, by the same rules as a real one; nothing is written and no
// unique value is claimed.
func (q *Queries) whatIf(ctx context.Context, c *call) (reply, error) {
	p, err := c.principal()
	if err != nil {
		return reply{}, err
	}
	id, err := c.userID()
	if err != nil {
		return reply{}, err
	}
	var command, name, email, reason, at field
	if _, err := bodyFields(c.req, true, map[string]*field{
		"command": &command, "name": &name, "email": &email, "reason": &reason, "at": &at,
	}); err != nil {
		return reply{}, err
	}
	if !p.IsAdmin() {
		return reply{}, forbidden("Only an admin may ask what if.")
	}
	spec, known := whatIfCommands[command.value]
	if !known {
		return reply{}, badField("command", "must be rename, change-email, suspend, reactivate or delete")
	}
	values := map[string]field{"name": name, "email": email, "reason": reason}
	for _, f := range []string{"name", "email"} { // reason is every command's
		if values[f].set && f != spec.field {
			return reply{}, badField(f, "is not a field of "+command.value)
		}
	}
	when := time.Now().UTC()
	if at.set {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(at.value))
		if err != nil {
			return reply{}, badField("at", "must be an RFC 3339 time such as 2025-01-02T15:04:05.123456789Z")
		}
		when = t.UTC()
	}
	metaReason := &reason // a reason that is only metadata; nil: the command carries it
	if spec.field == "reason" {
		metaReason = nil
	}
	cmd, why, err := validate(spec.make(values[spec.field].value), metaReason)
	if err != nil {
		return reply{}, err
	}
	md := es.Metadata{Actor: p.Sub, Reason: why, CorrelationID: c.requestID, CausationID: c.requestID}
	res, err := q.deps.Users.WhatIfCommand(ctx, id, when, cmd, md)
	if err != nil {
		return reply{}, err
	}
	if res.Before.Version == 0 { // no such user, or not yet at that time
		return reply{}, user.ErrNotFound
	}
	ans := whatIfAnswer{ID: id, At: when, Command: command.value, Events: []eventAnswer{},
		Before: stateAnswer{ID: id, Version: res.Before.Version, AsOf: res.Before.UpdatedAt.UTC(), State: stateBodyOf(res.Before.State)},
		After:  stateAnswer{ID: id, Version: res.After.Version, AsOf: res.After.UpdatedAt.UTC(), State: stateBodyOf(res.After.State)}}
	for _, rec := range res.Records {
		ans.Events = append(ans.Events, eventOf(rec, false))
	}
	if res.Rejected != nil {
		var verr *user.ValidationError
		if errors.As(res.Rejected, &verr) {
			return reply{}, res.Rejected
		}
		ans.Rejected = res.Rejected.Error()
	}
	return reply{status: http.StatusOK, body: ans}, nil
}
