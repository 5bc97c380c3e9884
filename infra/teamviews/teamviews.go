// Package teamviews holds the Team service's projections over the
// read-model table, each a projection.Projection, and the reader the Teams
// API answers from (Store):
//
//   - team: the team with its members (team.View), what GET /teams/{id}
//     answers;
//   - user-teams: per user, its teams (team.Membership), what
//     GET /users/{id}/teams answers.
//
// Both fold a team's events, so both are keyed by the team: the projector
// hands them a team's stream in order, and they write conditionally on the
// version of that team they applied. user-teams writes one row per (user,
// team) under the user's partition, so a rename or a role change rewrites
// member rows and a departure deletes one; how those writes stay atomic per
// team, and what happens past DynamoDB's 100 items per transaction, is
// said on userTeams.
//
// Layout (generation prefixes as readmodel's, per projection):
//
//	team view          pk "team#<teamId>"      sk "view"                attributes view (JSON), version, eventId
//	user-teams state   pk "team#<teamId>"      sk "applied#user-teams"  attributes state (team.State JSON), version, eventId
//	membership row     pk "userteams#<userId>" sk "team#<teamId>"       attributes teamId, name, role, since, version[, gone]
package teamviews

import (
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Projection names: the suffix of their checkpoint keys, the names the
// rebuild and the CLI take.
const (
	ProjectionTeam      = "team"       // the team view
	ProjectionUserTeams = "user-teams" // each user's teams
)

// The projections of the Team service.
var (
	// View is the team view: GET /teams/{id}.
	View projection.Projection = teamView{}
	// UserTeams is each user's teams: GET /users/{id}/teams.
	UserTeams projection.Projection = userTeams{}
)

// Projections are the Team service's projections, in the order the
// projector applies them.
func Projections() []projection.Projection { return []projection.Projection{View, UserTeams} }

// DiffMembership is the kind of projection.Difference user-teams reports
// when a user's row of a team does not say what the fold of the team's
// events says (a row missing, left behind, or with other content).
const DiffMembership = "membership"

// Keys and attributes.
const (
	attrPK      = readmodel.AttrPK
	attrSK      = readmodel.AttrSK
	attrView    = "view"                // team view: team.View as JSON
	attrState   = "state"               // user-teams state: team.State as JSON
	attrVersion = readmodel.AttrVersion // the team version the item is at
	attrEventID = readmodel.AttrEventID // the event at that version (readmodel.OwnApplied finds a lost reply's own write by it)
	attrTeamID  = "teamId"
	attrName    = "name"
	attrRole    = "role"
	attrSince   = "since"
	attrGone    = "gone" // a membership row's tombstone (userTeams' chunked writes)

	skView      = "view"
	skUserTeams = "applied#" + ProjectionUserTeams
)

func teamPK(id string) string        { return "team#" + id }
func userTeamsPK(user string) string { return "userteams#" + user }
func membershipSK(id string) string  { return "team#" + id }

// teamEvents are the events of a team's stream, all of which both
// projections fold.
func teamEvents() []string { return team.EventTypes() }
