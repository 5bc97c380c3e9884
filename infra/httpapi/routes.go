package httpapi

import "github.com/chronicle-go/chronicle/infra/apigw"

// The functions of the API, by their logical ids in the template.
const (
	commandsFunction = "CommandsFunction"
	queriesFunction  = "QueriesFunction"
)

// The routes of the HTTP contract, as http.ServeMux patterns whose paths are
// the template's resources (API Gateway's req.Resource).
const (
	routeCreate      = "POST /users"
	routeRename      = "PUT /users/{id}/name"
	routeChangeEmail = "PUT /users/{id}/email"
	routeSuspend     = "POST /users/{id}/suspend"
	routeReactivate  = "POST /users/{id}/reactivate"
	routeDelete      = "DELETE /users/{id}"
	routeForget      = "POST /users/{id}/forget"

	routeUser         = "GET /users/{id}"
	routeUsers        = "GET /users"
	routeHistory      = "GET /users/{id}/history"
	routeState        = "GET /users/{id}/state"
	routeActivity     = "GET /actors/{sub}/activity"
	routeProjections  = "GET /ops/projections"
	routeConsistency  = "GET /users/{id}/consistency"
	routeHealthz      = "GET /healthz"
	routeEvents       = "GET /events"
	routeWhatIf       = "POST /users/{id}/what-if"
	routeConsole      = "GET /console"
	routeConsoleAsset = "GET /console/{asset}"
)

// Routes is the whole User API, each route with the function that serves
// it: the one declaration of the routes. Both functions' edges route by it
// (and tell a method that is not allowed, 405, from a path that does not
// exist, 404); template.yaml, which API Gateway and the local runner route
// by, must declare the same routes on the same functions (a test says so).
var Routes = []apigw.Route{
	{Pattern: routeCreate, Function: commandsFunction},
	{Pattern: routeRename, Function: commandsFunction},
	{Pattern: routeChangeEmail, Function: commandsFunction},
	{Pattern: routeSuspend, Function: commandsFunction},
	{Pattern: routeReactivate, Function: commandsFunction},
	{Pattern: routeDelete, Function: commandsFunction},
	{Pattern: routeForget, Function: commandsFunction},

	{Pattern: routeUser, Function: queriesFunction},
	{Pattern: routeUsers, Function: queriesFunction},
	{Pattern: routeHistory, Function: queriesFunction},
	{Pattern: routeState, Function: queriesFunction},
	{Pattern: routeActivity, Function: queriesFunction},
	{Pattern: routeProjections, Function: queriesFunction},
	{Pattern: routeConsistency, Function: queriesFunction},
	{Pattern: routeHealthz, Function: queriesFunction},
	{Pattern: routeEvents, Function: queriesFunction},
	{Pattern: routeWhatIf, Function: queriesFunction},
	{Pattern: routeConsole, Function: queriesFunction},
	{Pattern: routeConsoleAsset, Function: queriesFunction},
}
