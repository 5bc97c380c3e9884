package teamapi

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/infra/apigw"
)

// QueriesDeps are what the query routes read.
type QueriesDeps struct {
	Teams  TeamLoader        // teams from the event store: read-your-writes, authorization, history's 404
	Users  UserLoader        // GET /users/{id}/teams of a user that does not exist: 404
	Events apigw.EventLoader // history
	Guards Guards            // the user linked to the caller's identity
	// Views is the read model of teams; nil until it is wired: GET
	// /teams/{id} then reads the event store, and GET /users/{id}/teams
	// fails with 500.
	Views Views
}

// Queries serves the Team API's read side: GET /teams/{id}, GET
// /teams/{id}/history and GET /users/{id}/teams. Like Commands it is
// served by the queries function's edge, beside the User API (API). It is
// safe for concurrent use.
type Queries struct {
	deps QueriesDeps
}

// NewQueries returns the Team API's query handlers over deps, or an error
// naming a missing dependency.
func NewQueries(deps QueriesDeps) (*Queries, error) {
	var missing []string
	for name, isNil := range map[string]bool{
		"Teams": deps.Teams == nil, "Users": deps.Users == nil, "Events": deps.Events == nil, "Guards": deps.Guards == nil,
	} {
		if isNil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, errors.New("teamapi: NewQueries: missing " + strings.Join(missing, ", "))
	}
	return &Queries{deps: deps}, nil
}

// API is the Team API as the queries function's edge serves it.
func (q *Queries) API() apigw.API {
	return apigw.API{Routes: Routes, Errors: teamErrors, Handlers: map[string]apigw.Handler{
		routeTeam:      q.team,
		routeHistory:   q.history,
		routeUserTeams: q.userTeams,
	}}
}

// teamAnswer is a team as GET /teams/{id} answers it.
type teamAnswer struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Version   int64          `json:"version"`
	Members   []memberAnswer `json:"members"`
	CreatedAt time.Time      `json:"createdAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
}

type memberAnswer struct {
	UserID string    `json:"userId"`
	Role   team.Role `json:"role"`
	Since  time.Time `json:"since"`
}

func answerOf(v team.View) teamAnswer {
	a := teamAnswer{ID: v.ID, Name: v.Name, Version: v.Version, CreatedAt: utc(v.CreatedAt), UpdatedAt: utc(v.UpdatedAt),
		Members: make([]memberAnswer, 0, len(v.Members))}
	for _, m := range v.Members {
		a.Members = append(a.Members, memberAnswer{UserID: m.UserID, Role: m.Role, Since: utc(m.Since)})
	}
	return a
}

// GET /teams/{id}[?minVersion=N][&consistent=true], X-Min-Version: N: from
// the read model when it is at minVersion or later, else from the event
// store, as it is with consistent=true (X-Source says which). An admin or
// a member of the team may read it; anyone else gets 403, whether or not
// the team exists.
func (q *Queries) team(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	id, err := pathID(c, paramID)
	if err != nil {
		return apigw.Reply{}, err
	}
	minVersion, err := apigw.MinVersion(c.Req)
	if err != nil {
		return apigw.Reply{}, err
	}
	consistent, err := apigw.QueryBool(c.Req, "consistent")
	if err != nil {
		return apigw.Reply{}, err
	}
	actor, err := actorOf(ctx, q.deps.Guards, p, false)
	if err != nil {
		return apigw.Reply{}, err
	}
	v, source, found, err := q.view(ctx, id, minVersion, consistent)
	if err != nil {
		return apigw.Reply{}, err
	}
	if team.Authorize(v.State(), actor, team.ActionRead) != nil && source == apigw.SourceProjection {
		// The view may be behind a join the caller just made: the
		// event store decides a refusal.
		if v, source, found, err = q.view(ctx, id, 0, true); err != nil {
			return apigw.Reply{}, err
		}
	}
	if err := team.Authorize(v.State(), actor, team.ActionRead); err != nil {
		return apigw.Reply{}, err
	}
	if !found {
		return apigw.Reply{}, team.ErrNotFound
	}
	return apigw.Reply{Status: http.StatusOK, Body: answerOf(v),
		Headers: map[string]string{"ETag": apigw.ETag(v.Version), "X-Source": source}}, nil
}

// view is the current view of team id: from the read model when it is at
// minVersion or later, else rebuilt from the event store, as it is when
// consistent is set or no read model is wired.
func (q *Queries) view(ctx context.Context, id string, minVersion int64, consistent bool) (team.View, string, bool, error) {
	if !consistent && q.deps.Views != nil {
		v, ok, err := q.deps.Views.Team(ctx, id)
		if err != nil {
			return team.View{}, "", false, err
		}
		if ok && v.Version >= minVersion {
			return v, apigw.SourceProjection, true, nil
		}
	}
	agg, err := q.deps.Teams.Load(ctx, id)
	if err != nil {
		return team.View{}, "", false, err
	}
	if agg.Version == 0 {
		return team.View{}, apigw.SourceEventStore, false, nil
	}
	return team.ViewOf(id, agg.Version, agg.UpdatedAt, agg.State), apigw.SourceEventStore, true, nil
}

// GET /teams/{id}/history?fromVersion=&limit=&cursor=: as a user's
// history; an admin or a member of the team (now) may read it.
func (q *Queries) history(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	id, err := pathID(c, paramID)
	if err != nil {
		return apigw.Reply{}, err
	}
	hq, err := apigw.HistoryParams(c.Req, id)
	if err != nil {
		return apigw.Reply{}, err
	}
	actor, err := actorOf(ctx, q.deps.Guards, p, false)
	if err != nil {
		return apigw.Reply{}, err
	}
	if !actor.Admin {
		agg, err := q.deps.Teams.Load(ctx, id)
		if err != nil {
			return apigw.Reply{}, err
		}
		if err := team.Authorize(agg.State, actor, team.ActionRead); err != nil {
			return apigw.Reply{}, err
		}
	}
	ans, found, err := apigw.History(ctx, q.deps.Events, id, hq)
	if err != nil {
		return apigw.Reply{}, err
	}
	if !found {
		return apigw.Reply{}, team.ErrNotFound
	}
	return apigw.Reply{Status: http.StatusOK, Body: ans}, nil
}

// userTeamsAnswer is what GET /users/{id}/teams answers.
type userTeamsAnswer struct {
	Teams []membershipAnswer `json:"teams"`
}

type membershipAnswer struct {
	TeamID string    `json:"teamId"`
	Name   string    `json:"name"`
	Role   team.Role `json:"role"`
	Since  time.Time `json:"since"`
}

// GET /users/{id}/teams: the teams of a user, from the read model, oldest
// membership first. The user itself may read them, and an admin; anyone
// else gets 403, whether or not the user exists.
func (q *Queries) userTeams(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	id, err := pathID(c, paramID)
	if err != nil {
		return apigw.Reply{}, err
	}
	actor, err := actorOf(ctx, q.deps.Guards, p, false)
	if err != nil {
		return apigw.Reply{}, err
	}
	if !actor.Admin && actor.UserID != id {
		return apigw.Reply{}, apigw.Deny("You may only read the teams of the user linked to your identity.")
	}
	if actor.Admin {
		agg, err := q.deps.Users.Load(ctx, id)
		if err != nil {
			return apigw.Reply{}, err
		}
		if agg.Version == 0 {
			return apigw.Reply{}, errNoSuchUser
		}
	}
	if q.deps.Views == nil {
		return apigw.Reply{}, errors.New("GET /users/{id}/teams: no read model of teams is wired")
	}
	ms, err := q.deps.Views.UserTeams(ctx, id)
	if err != nil {
		return apigw.Reply{}, err
	}
	slices.SortFunc(ms, func(a, b team.Membership) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.TeamID, b.TeamID))
	})
	ans := userTeamsAnswer{Teams: make([]membershipAnswer, 0, len(ms))}
	for _, m := range ms {
		ans.Teams = append(ans.Teams, membershipAnswer{TeamID: m.TeamID, Name: m.Name, Role: m.Role, Since: utc(m.Since)})
	}
	return apigw.Reply{Status: http.StatusOK, Body: ans}, nil
}
