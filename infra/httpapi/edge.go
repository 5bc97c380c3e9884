package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/metrics"
	"github.com/chronicle-go/chronicle/infra/pii"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// MaxBodyBytes bounds a request body, after base64 decoding: 64 KiB.
const MaxBodyBytes = apigw.MaxBodyBytes

// Limits of the HTTP contract.
const (
	// maxSubLength bounds an actor's sub in a path (user.MaxSubLength).
	maxSubLength = user.MaxSubLength
	// Paging.
	defaultLimit = apigw.DefaultLimit
	maxLimit     = apigw.MaxLimit
)

// Path parameters of the routes.
const (
	paramID    = "id"
	paramSub   = "sub"
	paramAsset = "asset"
)

// Option tunes Commands and Queries.
type Option func(*settings)

type settings struct {
	newID   func() string
	now     func() time.Time
	metrics *metrics.Recorder // nil: none
	keys    KeyShredder       // nil: POST /users/{id}/forget answers 500
	more    []apigw.API       // the other APIs the function serves
	// checkpointed names the projections that keep checkpoints and
	// generations, for GET /ops/projections; default userviews.Names().
	checkpointed []string
}

// KeyShredder destroys the data key of a user (pii.Keys): what makes its
// personal data unreadable everywhere.
type KeyShredder interface {
	Forget(ctx context.Context, id string, at time.Time) error
}

// WithKeys gives the command handler the keys that forgetting a user
// destroys. Without it, POST /users/{id}/forget fails with 500 before it
// writes anything.
func WithKeys(k KeyShredder) Option { return func(s *settings) { s.keys = k } }

// WithAPI makes the function's edge serve api beside the User API: the
// routes of another aggregate on the same function (the Team API's
// commands on the commands function, its queries on the queries
// function). Its routes' errors are worded by its own apigw.Errors.
func WithAPI(api apigw.API) Option { return func(s *settings) { s.more = append(s.more, api) } }

// WithCheckpointed names the projections the projector runs, which keep
// checkpoints and generations in the read model: GET /ops/projections
// reports each (the User service's and the Team service's). Default: the
// User service's, userviews.Names().
func WithCheckpointed(names []string) Option {
	return func(s *settings) { s.checkpointed = slices.Clone(names) }
}

// WithIDs sets the source of new ids: request ids (when the client sends no
// X-Request-Id), command ids and the ids of created users. Default: UUID v7.
func WithIDs(newID func() string) Option { return func(s *settings) { s.newID = newID } }

// WithClock sets the clock of /ops/projections' ages. Default: time.Now.
func WithClock(now func() time.Time) Option { return func(s *settings) { s.now = now } }

// WithMetrics makes the command handler write EMF metrics to m for each
// command it runs: CommandLatency, VersionConflictRetries and CommandErrors,
// by command. Default: none.
func WithMetrics(m *metrics.Recorder) Option { return func(s *settings) { s.metrics = m } }

func newSettings(opts []Option) settings {
	s := settings{
		newID:        func() string { return uuid.Must(uuid.NewV7()).String() },
		now:          time.Now,
		checkpointed: userviews.Names(),
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// newEdge is the edge of function over handlers.
func newEdge(function string, handlers map[string]apigw.Handler, logger *slog.Logger, set settings) *apigw.Edge {
	return apigw.New(apigw.Config{Function: function, Routes: Routes, Handlers: handlers,
		Errors: userErrors, More: set.more, NewID: set.newID, Logger: logger})
}

// userErrors turns the User API's errors into problems: the User service's
// own errors by classify, the kernel's worded about a user.
var userErrors = apigw.Errors{Noun: "user", Classify: classify}

// problemFor is the problem answer of err.
func problemFor(err error) apigw.Problem { return userErrors.Problem(err) }

// classify gives the kind of the User service's errors: the domain's
// validation and rules, the read model's cursors, the data keys' erasure;
// nil for any other error.
func classify(err error) *apigw.Error {
	var (
		inval *user.ValidationError
		dup   *es.DuplicateError
	)
	switch {
	case errors.As(err, &inval):
		return &apigw.Error{Kind: apigw.Validation, Detail: "One or more fields are invalid.", Fields: fieldErrors(inval.Fields)}

	case errors.Is(err, readmodel.ErrBadCursor):
		return &apigw.Error{Kind: apigw.Validation, Detail: "The cursor is not one this query handed out.",
			Fields: []apigw.FieldError{{Field: "cursor", Message: "must be a nextCursor of the same query"}}}

	case errors.Is(err, user.ErrNotFound):
		return &apigw.Error{Kind: apigw.NotFound, Detail: "There is no such user."}

	case errors.Is(err, user.ErrForgotten), errors.Is(err, pii.ErrForgotten):
		return ruleViolated("The user is forgotten: its personal data is erased and it accepts no further command.")
	case errors.Is(err, user.ErrDeleted):
		return ruleViolated("The user is deleted and accepts no further command.")
	case errors.Is(err, user.ErrAlreadySuspended):
		return ruleViolated("The user is already suspended.")
	case errors.Is(err, user.ErrNotSuspended):
		return ruleViolated("The user is not suspended, so it cannot be reactivated.")
	case errors.Is(err, user.ErrAlreadyExists):
		return ruleViolated("A user with this id already exists.")

	case errors.As(err, &dup) && dup.Field() == "sub":
		// The identity, unlike an address, is not "taken by another
		// user": it is the caller's own, linked already.
		return &apigw.Error{Kind: apigw.Duplicate, Detail: "This identity is already linked to a user: one user per identity.",
			Fields: []apigw.FieldError{{Field: "sub", Message: "is already linked to a user"}}}
	}
	return nil
}

func ruleViolated(detail string) *apigw.Error {
	return &apigw.Error{Kind: apigw.RuleViolated, Detail: detail}
}

// fieldErrors are the domain's field errors as the edge answers them.
func fieldErrors(fs []user.FieldError) []apigw.FieldError {
	out := make([]apigw.FieldError, len(fs))
	for i, f := range fs {
		out[i] = apigw.FieldError{Field: f.Field, Message: f.Message}
	}
	return out
}

// userID is the {id} path parameter, checked and in canonical form.
func userID(c *apigw.Call) (string, error) {
	id, err := parseID(c.Params[paramID])
	if err != nil {
		return "", err
	}
	c.Params[paramID] = id
	return id, nil
}

// parseID checks a user id: a UUID in its 36-character form, in any case.
// It returns the lower-case form, so that one user has one stream.
func parseID(s string) (string, error) {
	if len(s) == 36 {
		if u, err := uuid.Parse(s); err == nil {
			return u.String(), nil
		}
	}
	return "", apigw.BadField("id", "must be a UUID such as 0190a5f0-7c3e-7d2a-9b1e-3f4a5b6c7d8e")
}

// parseSub checks an actor's sub from a path: printable ASCII without spaces.
func parseSub(s string) (string, error) {
	if s == "" || len(s) > maxSubLength || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return "", apigw.BadField("sub", "must be 1..256 printable ASCII characters without spaces")
	}
	return s, nil
}
