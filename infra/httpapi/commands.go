package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/auth"
)

// Commands serves the write side of the API: POST /users, PUT
// /users/{id}/name, PUT /users/{id}/email, POST /users/{id}/suspend, POST
// /users/{id}/reactivate and DELETE /users/{id}. It is safe for concurrent use.
type Commands struct {
	edge     *apigw.Edge
	handlers map[string]apigw.Handler // by pattern
	logger   *slog.Logger
	set      settings
	svc      *user.Service
}

// NewCommands returns the command handler over svc, the user service (whose
// store holds events, guards, idempotency records and snapshots). logger
// receives one line per server error (slog.Default() when nil).
func NewCommands(svc *user.Service, logger *slog.Logger, opts ...Option) *Commands {
	if logger == nil {
		logger = slog.Default()
	}
	h := &Commands{svc: svc, logger: logger, set: newSettings(opts)}
	h.handlers = map[string]apigw.Handler{
		routeCreate:      h.create,
		routeRename:      h.rename,
		routeChangeEmail: h.changeEmail,
		routeSuspend:     h.suspend,
		routeReactivate:  h.reactivate,
		routeDelete:      h.delete,
		routeForget:      h.forget,
	}
	h.edge = newEdge(commandsFunction, h.handlers, logger, h.set)
	return h
}

// Handle is the Lambda handler of the command routes.
func (h *Commands) Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return h.edge.Serve(ctx, req)
}

// The bodies of the commands: every member a string (apigw.DecodeBody).
type (
	// POST /users
	createBody struct {
		Name   apigw.String `json:"name"`
		Email  apigw.String `json:"email"`
		Sub    apigw.String `json:"sub"`
		Reason apigw.String `json:"reason"`
	}
	// PUT /users/{id}/name
	renameBody struct {
		Name   apigw.String `json:"name"`
		Reason apigw.String `json:"reason"`
	}
	// PUT /users/{id}/email
	changeEmailBody struct {
		Email  apigw.String `json:"email"`
		Reason apigw.String `json:"reason"`
	}
	// POST /users/{id}/suspend, /reactivate, /forget, DELETE /users/{id}
	reasonBody struct {
		Reason apigw.String `json:"reason"`
	}
)

// POST /users {"name","email"[,"sub"][,"reason"]}
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
	link := p.Sub // a user creates its own user
	if p.IsAdmin() {
		link = body.Sub.Value // an admin links the user to the identity it names, if any
	} else if body.Sub.Set {
		return apigw.Reply{}, apigw.Deny(`Only an admin may set "sub": a user is linked to its creator's identity.`)
	}
	cmd, why, err := validate(user.Create{Name: body.Name.Value, Email: body.Email.Value, Sub: link}, &body.Reason)
	if !p.IsAdmin() && !linksExactly(cmd, err, p.Sub) {
		// Validation would trim "alice " to "alice" and link the new user
		// to another identity, or drop a blank sub and link it to none.
		return apigw.Reply{}, apigw.Deny(`This identity cannot be linked to a user: its sub must be 1..256 printable ASCII characters without spaces or "#".`)
	}
	if err != nil {
		return apigw.Reply{}, err
	}
	return h.exec(ctx, c, p, h.set.newID(), cmd, why, pre, b, http.StatusCreated, nil)
}

// linksExactly reports whether a create validated as cmd (err: its
// validation error) links the new user to sub itself: the domain took the
// sub as it is.
func linksExactly(cmd user.Command, err error, sub string) bool {
	var inval *user.ValidationError
	if errors.As(err, &inval) {
		return !slices.ContainsFunc(inval.Fields, func(f user.FieldError) bool { return f.Field == "sub" })
	}
	c, ok := cmd.(user.Create)
	return err != nil || (ok && c.Sub == sub)
}

// PUT /users/{id}/name {"name"[,"reason"]}
func (h *Commands) rename(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	var body renameBody
	return h.ownerCommand(ctx, c, &body, &body.Reason,
		func() user.Command { return user.Rename{Name: body.Name.Value} })
}

// PUT /users/{id}/email {"email"[,"reason"]}
func (h *Commands) changeEmail(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	var body changeEmailBody
	return h.ownerCommand(ctx, c, &body, &body.Reason,
		func() user.Command { return user.ChangeEmail{Email: body.Email.Value} })
}

// POST /users/{id}/suspend {"reason"}
func (h *Commands) suspend(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	return h.adminCommand(ctx, c, "suspend", true, func(reason string) user.Command { return user.Suspend{Reason: reason} })
}

// POST /users/{id}/reactivate [{"reason"}]
func (h *Commands) reactivate(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	return h.adminCommand(ctx, c, "reactivate", false, func(reason string) user.Command { return user.Reactivate{Reason: reason} })
}

// DELETE /users/{id} [{"reason"}]
func (h *Commands) delete(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	return h.adminCommand(ctx, c, "delete", false, func(reason string) user.Command { return user.Delete{Reason: reason} })
}

// POST /users/{id}/forget {"reason"}: the right to be forgotten. The
// command appends the deletion (for a live user, freeing its address at
// once) and user.forgotten.v1; then the user's data key is destroyed, so
// the personal fields of every copy of its events read as null. The key
// goes after the append: a command racing the forget either appended
// before it (its fields sealed with the key about to go) or is refused by
// the forgotten state. A forget repeated after a failure between the two
// steps answers 409, as for any forgotten user, and destroys the key all
// the same, so that a retry always completes the erasure.
func (h *Commands) forget(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	if h.set.keys == nil {
		return apigw.Reply{}, errors.New("forget: no data keys configured (KEYS_TABLE, PII_KEY_ID)")
	}
	r, err := h.adminCommand(ctx, c, "forget", true, func(reason string) user.Command { return user.Forget{Reason: reason} })
	if err != nil && !errors.Is(err, user.ErrForgotten) {
		return r, err
	}
	id, _ := userID(c) // adminCommand checked it
	if kerr := h.set.keys.Forget(ctx, id, h.set.now()); kerr != nil {
		return apigw.Reply{}, fmt.Errorf("forget %s: the event is appended, the key is not destroyed yet (a retry destroys it): %w", id, kerr)
	}
	return r, err
}

// ownerCommand runs a command that an admin, or the user linked to the
// caller's identity, may run on an existing user.
func (h *Commands) ownerCommand(ctx context.Context, c *apigw.Call, body any, reason *apigw.String, cmd func() user.Command) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	id, err := userID(c)
	if err != nil {
		return apigw.Reply{}, err
	}
	pre, b, err := c.Command(true, body)
	if err != nil {
		return apigw.Reply{}, err
	}
	valid, why, err := validate(cmd(), reason)
	if err != nil {
		return apigw.Reply{}, err
	}
	var authorize func(any) error
	if !p.IsAdmin() {
		// 403 whether or not the user exists, before any precondition: a
		// stranger learns nothing. The service checks it on the state it
		// decides on, so that a warm command still makes one call; on a
		// cached state, a 403 is confirmed on the stream's.
		authorize = func(state any) error {
			if s, ok := state.(user.State); ok && owns(p, s) {
				return nil
			}
			return apigw.Deny("You may only change the user linked to your identity.")
		}
	}
	return h.exec(ctx, c, p, id, valid, why, pre, b, http.StatusOK, authorize)
}

// adminCommand runs a command only an admin may run, whose reason is part
// of the command (required or not).
func (h *Commands) adminCommand(ctx context.Context, c *apigw.Call, verb string, bodyRequired bool, cmd func(reason string) user.Command) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	if !p.IsAdmin() {
		return apigw.Reply{}, apigw.Deny("Only an admin may " + verb + " users.")
	}
	id, err := userID(c)
	if err != nil {
		return apigw.Reply{}, err
	}
	var body reasonBody
	pre, b, err := c.Command(bodyRequired, &body)
	if err != nil {
		return apigw.Reply{}, err
	}
	valid, why, err := validate(cmd(body.Reason.Value), nil)
	if err != nil {
		return apigw.Reply{}, err
	}
	return h.exec(ctx, c, p, id, valid, why, pre, b, http.StatusOK, nil)
}

// exec runs a valid command (apigw.Execute) and records its metrics. A
// create answers 201 with its Location.
func (h *Commands) exec(ctx context.Context, c *apigw.Call, p auth.Principal, id string, cmd user.Command, reason string,
	pre apigw.Preconditions, body []byte, status int, authorize func(state any) error) (apigw.Reply, error) {
	start := time.Now()
	reply, res, err := apigw.Execute(ctx, c, p, h.svc, apigw.Command[user.Command]{
		Cmd: cmd, Name: commandName(cmd), ID: id, Reason: reason, Pre: pre, Body: body,
		Created: status == http.StatusCreated, LocationPrefix: "/users/",
		Authorize: authorize, CommandID: h.set.newID(),
	}, h.logger)
	if h.set.metrics != nil {
		h.set.metrics.Command(ctx, commandName(cmd), time.Since(start), res.Attempts, err != nil && h.edge.Problem(err).Status >= 500)
	}
	return reply, err
}

// commandName names cmd in metrics.
func commandName(cmd user.Command) string {
	switch cmd.(type) {
	case user.Create:
		return "create"
	case user.Rename:
		return "rename"
	case user.ChangeEmail:
		return "change_email"
	case user.Suspend:
		return "suspend"
	case user.Reactivate:
		return "reactivate"
	case user.Delete:
		return "delete"
	case user.Forget:
		return "forget"
	}
	return "unknown"
}

// owns reports whether p may act on, and see, the user in state s: an admin
// may, and so may the identity the user is linked to.
func owns(p auth.Principal, s user.State) bool {
	return p.IsAdmin() || (s.Exists() && s.Sub != "" && s.Sub == p.Sub)
}

// validate normalizes cmd with user.Validate and checks the optional reason
// of commands whose reason is only metadata (reason != nil). It returns the
// command, the reason to record, and a *user.ValidationError listing every
// invalid field.
func validate(cmd user.Command, reason *apigw.String) (user.Command, string, error) {
	var fields []user.FieldError
	valid, err := user.Validate(cmd)
	var inval *user.ValidationError
	switch {
	case errors.As(err, &inval):
		fields = append(fields, inval.Fields...)
	case err != nil:
		return nil, "", err
	}
	why := ""
	switch c := valid.(type) {
	case user.Suspend:
		why = c.Reason
	case user.Reactivate:
		why = c.Reason
	case user.Delete:
		why = c.Reason
	case user.Forget:
		why = c.Reason
	}
	if reason != nil {
		why = strings.TrimSpace(reason.Value)
		if utf8.RuneCountInString(why) > user.MaxReasonLength {
			fields = append(fields, user.FieldError{Field: "reason", Message: "must be at most " + strconv.Itoa(user.MaxReasonLength) + " characters"})
		}
	}
	if len(fields) > 0 {
		return nil, "", &user.ValidationError{Fields: fields}
	}
	return valid, why, nil
}
