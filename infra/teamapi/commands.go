package teamapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/auth"
)

// CommandsDeps are what the command routes use.
type CommandsDeps struct {
	Teams  *team.Service // the events, idempotency records and snapshots of teams
	Users  UserLoader    // whether an owner or a joining member is active
	Guards Guards        // the user linked to the caller's identity
	Logger *slog.Logger  // one line per failed snapshot (slog.Default() when nil)
	// Metrics, when set, receives each command's latency, version-conflict
	// retries and whether it failed on the server's side, as the User
	// API's commands do (httpapi.WithMetrics): the commands function
	// passes both the same recorder, so that one dashboard shows both
	// aggregates' commands, told apart by their names ("team.create").
	Metrics CommandMetrics
}

// CommandMetrics records one command (metrics.Recorder does, as EMF).
type CommandMetrics interface {
	Command(ctx context.Context, command string, latency time.Duration, attempts int, serverError bool)
}

// Commands serves the Team API's write side: POST /teams, PUT
// /teams/{id}/name, PUT and DELETE /teams/{id}/members/{userId}. It has no
// edge of its own: the commands function's edge serves it beside the User
// API (API). It is safe for concurrent use.
type Commands struct {
	deps CommandsDeps
	set  settings
}

// NewCommands returns the Team API's command handlers over deps.
func NewCommands(deps CommandsDeps, opts ...Option) *Commands {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	return &Commands{deps: deps, set: newSettings(opts)}
}

// API is the Team API as the commands function's edge serves it.
func (h *Commands) API() apigw.API {
	return apigw.API{Routes: Routes, Errors: teamErrors, Handlers: map[string]apigw.Handler{
		routeCreate:       h.create,
		routeRename:       h.rename,
		routeSetMember:    h.setMember,
		routeRemoveMember: h.removeMember,
	}}
}

// The bodies of the commands: every member a string (apigw.DecodeBody).
type (
	// POST /teams
	createBody struct {
		Name  apigw.String `json:"name"`
		Owner apigw.String `json:"owner"`
	}
	// PUT /teams/{id}/name
	renameBody struct {
		Name apigw.String `json:"name"`
	}
	// PUT /teams/{id}/members/{userId}
	setMemberBody struct {
		Role apigw.String `json:"role"`
	}
	// DELETE /teams/{id}/members/{userId}
	removeMemberBody struct {
		Reason apigw.String `json:"reason"`
	}
)

// POST /teams {"name"[,"owner"]}: the owner is the caller's own user; an
// admin may name another (and must, without a user of its own). The owner
// must be active: 409 otherwise. A caller without a user, which could own
// nothing, gets 403.
func (h *Commands) create(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	var body createBody
	pre, b, err := c.Command(true, &body)
	if err != nil {
		return apigw.Reply{}, err
	}
	if body.Owner.Set && !p.IsAdmin() {
		return apigw.Reply{}, apigw.Deny(`Only an admin may name the owner: a team is owned by its creator's user.`)
	}
	owner := strings.TrimSpace(body.Owner.Value)
	if !body.Owner.Set {
		// The caller's own user: validated first, so that a 400 needs no read.
		if _, err := team.Validate(team.Rename{Name: body.Name.Value}); err != nil {
			return apigw.Reply{}, err
		}
		a, err := actorOf(ctx, h.deps.Guards, p, true)
		if err != nil {
			return apigw.Reply{}, err
		}
		switch {
		case a.UserID == "" && a.Admin:
			return apigw.Reply{}, apigw.BadField("owner", "is required: your identity is linked to no user")
		case a.UserID == "":
			return apigw.Reply{}, apigw.Deny("Your identity is linked to no user: create your user (POST /users) before a team.")
		}
		owner = a.UserID
	}
	cmd, err := team.Validate(team.Create{Name: body.Name.Value, Owner: owner})
	if err != nil {
		return apigw.Reply{}, err
	}
	create := cmd.(team.Create)
	if create.OwnerActive, err = userActive(ctx, h.deps.Users, create.Owner); err != nil {
		return apigw.Reply{}, err
	}
	return h.exec(ctx, c, p, h.set.newID(), create, "", pre, b, http.StatusCreated, team.Actor{Admin: true})
}

// PUT /teams/{id}/name {"name"}: an owner or an admin.
func (h *Commands) rename(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	var body renameBody
	return h.teamCommand(ctx, c, true, &body, func(string) team.Command { return team.Rename{Name: body.Name.Value} })
}

// PUT /teams/{id}/members/{userId} {"role"}: an owner or an admin adds a
// member or gives it another role. Only an active user may join (409).
func (h *Commands) setMember(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	var body setMemberBody
	return h.teamCommand(ctx, c, true, &body, func(member string) team.Command {
		return team.SetMember{UserID: member, Role: team.Role(strings.TrimSpace(body.Role.Value))}
	})
}

// DELETE /teams/{id}/members/{userId} [{"reason"}]: an owner or an admin
// removes a member; a member leaves (its own user). The last owner cannot
// leave (409).
func (h *Commands) removeMember(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	var body removeMemberBody
	return h.teamCommand(ctx, c, false, &body, func(member string) team.Command {
		return team.RemoveMember{UserID: member, Reason: body.Reason.Value}
	})
}

// teamCommand runs a command on an existing team, which team.Policy
// decides who may run. The path, the write headers and the body are
// checked first (400 before any read); then the caller's user is looked
// up, and the policy checked on the state the command is decided on (403
// whether or not the team exists, before a failed precondition). command
// makes the command from the decoded body and the {userId} parameter, if
// the route has one.
func (h *Commands) teamCommand(ctx context.Context, c *apigw.Call, bodyRequired bool, body any,
	command func(member string) team.Command) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	id, err := pathID(c, paramID)
	if err != nil {
		return apigw.Reply{}, err
	}
	var member string
	if _, ok := c.Params[paramUserID]; ok {
		if member, err = pathID(c, paramUserID); err != nil {
			return apigw.Reply{}, err
		}
	}
	pre, b, err := c.Command(bodyRequired, body)
	if err != nil {
		return apigw.Reply{}, err
	}
	cmd, err := team.Validate(command(member))
	if err != nil {
		return apigw.Reply{}, err
	}
	actor, err := actorOf(ctx, h.deps.Guards, p, false)
	if err != nil {
		return apigw.Reply{}, err
	}
	if !actor.Admin && actor.UserID == "" {
		return apigw.Reply{}, team.ErrForbidden // no user: a member of no team
	}
	var reason string
	switch tc := cmd.(type) {
	case team.SetMember:
		// Whether the user may join is a fact of the user's stream, read
		// there, consistently. Adding a member with the role it has is a
		// no-op whatever this says.
		if tc.UserActive, err = userActive(ctx, h.deps.Users, tc.UserID); err != nil {
			return apigw.Reply{}, err
		}
		cmd = tc
	case team.RemoveMember:
		reason = tc.Reason
	}
	return h.exec(ctx, c, p, id, cmd, reason, pre, b, http.StatusOK, actor)
}

// exec runs a valid command (apigw.Execute). Unless actor is an admin, the
// policy is checked by the service on the state it decides on, so that a
// warm command still makes one call; on a cached state a 403 is confirmed
// on the stream's.
func (h *Commands) exec(ctx context.Context, c *apigw.Call, p auth.Principal, id string, cmd team.Command, reason string,
	pre apigw.Preconditions, body []byte, status int, actor team.Actor) (apigw.Reply, error) {
	var authorize func(state any) error
	if !actor.Admin {
		action := team.ActionOf(cmd, actor)
		authorize = func(state any) error {
			s, _ := state.(team.State)
			return team.Authorize(s, actor, action)
		}
	}
	start := time.Now()
	reply, res, err := apigw.Execute(ctx, c, p, h.deps.Teams, apigw.Command[team.Command]{
		Cmd: cmd, Name: commandName(cmd), ID: id, Reason: reason, Pre: pre, Body: body,
		Created: status == http.StatusCreated, LocationPrefix: "/teams/",
		Authorize: authorize, CommandID: h.set.newID(),
	}, h.deps.Logger)
	if h.deps.Metrics != nil {
		h.deps.Metrics.Command(ctx, commandName(cmd), time.Since(start), res.Attempts, err != nil && teamErrors.Problem(err).Status >= 500)
	}
	return reply, err
}

// commandName names cmd in traces and metrics.
func commandName(cmd team.Command) string {
	switch cmd.(type) {
	case team.Create:
		return "team.create"
	case team.Rename:
		return "team.rename"
	case team.SetMember:
		return "team.set_member"
	case team.RemoveMember:
		return "team.remove_member"
	}
	return "team.unknown"
}
