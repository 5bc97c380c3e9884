package teamapi

import "github.com/chronicle-go/chronicle/infra/apigw"

// The functions of the API, by their logical ids in the template: the
// User API's.
const (
	commandsFunction = "CommandsFunction"
	queriesFunction  = "QueriesFunction"
)

// The routes of the Team API, as http.ServeMux patterns whose paths are the
// template's resources.
const (
	routeCreate       = "POST /teams"
	routeRename       = "PUT /teams/{id}/name"
	routeSetMember    = "PUT /teams/{id}/members/{userId}"
	routeRemoveMember = "DELETE /teams/{id}/members/{userId}"

	routeTeam      = "GET /teams/{id}"
	routeHistory   = "GET /teams/{id}/history"
	routeUserTeams = "GET /users/{id}/teams"
)

// Routes is the whole Team API, each route with the function that serves
// it: the one declaration of its routes. template.yaml must declare the
// same routes on the same functions (a test says so).
var Routes = []apigw.Route{
	{Pattern: routeCreate, Function: commandsFunction},
	{Pattern: routeRename, Function: commandsFunction},
	{Pattern: routeSetMember, Function: commandsFunction},
	{Pattern: routeRemoveMember, Function: commandsFunction},

	{Pattern: routeTeam, Function: queriesFunction},
	{Pattern: routeHistory, Function: queriesFunction},
	{Pattern: routeUserTeams, Function: queriesFunction},
}
