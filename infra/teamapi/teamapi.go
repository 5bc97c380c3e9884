package teamapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/auth"
)

// Path parameters of the routes.
const (
	paramID     = "id"
	paramUserID = "userId"
)

// Views is the read model of teams (infra/teamviews): a team with its
// members, and a user's teams.
type Views interface {
	Team(ctx context.Context, id string) (team.View, bool, error)
	UserTeams(ctx context.Context, userID string) ([]team.Membership, error)
}

// Guards finds the aggregate holding a unique value, read consistently:
// *dynamo.Store (hashing the key as its appends do when it seals) and
// *memory.Store are ones.
type Guards interface {
	GuardOwner(ctx context.Context, key string) (owner string, found bool, err error)
}

// UserLoader rebuilds users from the event store: *user.Service is one.
// Whether a user is active is read there, consistently, before a command
// that needs it (an owner, a member joining).
type UserLoader interface {
	Load(ctx context.Context, id string) (es.Aggregate[user.State], error)
}

// TeamLoader rebuilds teams from the event store: *team.Service is one.
type TeamLoader interface {
	Load(ctx context.Context, id string) (es.Aggregate[team.State], error)
}

// teamErrors turns the Team API's errors into problems: the Team service's
// own errors by classify, the kernel's worded about a team.
var teamErrors = apigw.Errors{Noun: "team", Classify: classify}

// classify gives the kind of the Team service's errors; nil for any other.
func classify(err error) *apigw.Error {
	var inval *team.ValidationError
	switch {
	case errors.As(err, &inval):
		fields := make([]apigw.FieldError, len(inval.Fields))
		for i, f := range inval.Fields {
			fields[i] = apigw.FieldError{Field: f.Field, Message: f.Message}
		}
		return &apigw.Error{Kind: apigw.Validation, Detail: "One or more fields are invalid.", Fields: fields}
	case errors.Is(err, team.ErrForbidden):
		return &apigw.Error{Kind: apigw.Forbidden, Detail: "You may not do this on this team."}
	case errors.Is(err, team.ErrNotFound):
		return &apigw.Error{Kind: apigw.NotFound, Detail: "There is no such team."}
	case errors.Is(err, team.ErrNotMember):
		return &apigw.Error{Kind: apigw.NotFound, Detail: "The user is not a member of the team."}
	case errors.Is(err, errNoSuchUser):
		return &apigw.Error{Kind: apigw.NotFound, Detail: "There is no such user."}
	case errors.Is(err, team.ErrUserNotActive):
		return &apigw.Error{Kind: apigw.RuleViolated, Detail: "Only an active user may own or join a team; this one is not active (suspended, deleted, or never created)."}
	case errors.Is(err, team.ErrLastOwner):
		return &apigw.Error{Kind: apigw.RuleViolated, Detail: "The last owner cannot leave the team or stop being an owner: make another member an owner first."}
	case errors.Is(err, team.ErrAlreadyExists):
		return &apigw.Error{Kind: apigw.RuleViolated, Detail: "A team with this id already exists."}
	}
	return nil
}

// errNoSuchUser: GET /users/{id}/teams of a user that never existed.
var errNoSuchUser = errors.New("no such user")

// Option tunes Commands and Queries.
type Option func(*settings)

type settings struct {
	newID func() string
}

// WithIDs sets the source of new ids: command ids and the ids of created
// teams. Default: UUID v7, as users get.
func WithIDs(newID func() string) Option { return func(s *settings) { s.newID = newID } }

func newSettings(opts []Option) settings {
	s := settings{newID: func() string { return uuid.Must(uuid.NewV7()).String() }}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// pathID checks path parameter name, a UUID, and puts its canonical form
// back (so that one team has one stream and one idempotent request one
// path).
func pathID(c *apigw.Call, name string) (string, error) {
	s := c.Params[name]
	if len(s) == 36 {
		if u, err := uuid.Parse(s); err == nil {
			c.Params[name] = u.String()
			return u.String(), nil
		}
	}
	return "", apigw.BadField(name, "must be a UUID such as 0190a5f0-7c3e-7d2a-9b1e-3f4a5b6c7d8e")
}

// actorOf is p as a team sees it: an admin, or the user linked to its
// identity ("" when it has none). An admin's linked user is looked up only
// when withUser is set (the default owner of its team).
func actorOf(ctx context.Context, guards Guards, p auth.Principal, withUser bool) (team.Actor, error) {
	a := team.Actor{Admin: p.IsAdmin()}
	if a.Admin && !withUser {
		return a, nil
	}
	id, ok, err := guards.GuardOwner(ctx, user.SubKey(p.Sub))
	if err != nil {
		return team.Actor{}, fmt.Errorf("the user of the caller's identity: %w", err)
	}
	if ok {
		a.UserID = id
	}
	return a, nil
}

// userActive reports whether user id exists and is active, read from the
// event store.
func userActive(ctx context.Context, users UserLoader, id string) (bool, error) {
	agg, err := users.Load(ctx, id)
	if err != nil {
		return false, fmt.Errorf("load user %s: %w", id, err)
	}
	return agg.Version > 0 && agg.State.Status == user.StatusActive, nil
}

// utc is t in UTC, as every time the API answers.
func utc(t time.Time) time.Time { return t.UTC() }
