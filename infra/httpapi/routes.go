package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// side is the function that serves a route: the API is two Lambda functions.
type side int

const (
	commandSide side = iota + 1
	querySide
)

// Route templates, as API Gateway reports them in req.Resource.
const (
	resUsers           = "/users"
	resUser            = "/users/{id}"
	resUserName        = "/users/{id}/name"
	resUserEmail       = "/users/{id}/email"
	resUserSuspend     = "/users/{id}/suspend"
	resUserReactivate  = "/users/{id}/reactivate"
	resUserForget      = "/users/{id}/forget"
	resUserHistory     = "/users/{id}/history"
	resUserState       = "/users/{id}/state"
	resUserConsistency = "/users/{id}/consistency"
	resActorActivity   = "/actors/{sub}/activity"
	resOpsProjections  = "/ops/projections"
	resHealthz         = "/healthz"
	resEvents          = "/events"
	resUserWhatIf      = "/users/{id}/what-if"
	resConsole         = "/console"
	resConsoleAsset    = "/console/{asset}"
)

// Path parameters of the templates.
const (
	paramID    = "id"
	paramSub   = "sub"
	paramAsset = "asset"
)

// route is one method on one resource of the API.
type route struct {
	method, resource string
	side             side
}

// key is how a side finds the handler of a route.
func (r route) key() string { return r.method + " " + r.resource }

// apiRoutes is the whole API of the HTTP contract: both sides need it to tell a
// method that is not allowed (405) from a path that does not exist (404).
var apiRoutes = []route{
	{http.MethodPost, resUsers, commandSide},
	{http.MethodPut, resUserName, commandSide},
	{http.MethodPut, resUserEmail, commandSide},
	{http.MethodPost, resUserSuspend, commandSide},
	{http.MethodPost, resUserReactivate, commandSide},
	{http.MethodDelete, resUser, commandSide},
	{http.MethodPost, resUserForget, commandSide},

	{http.MethodGet, resUser, querySide},
	{http.MethodGet, resUsers, querySide},
	{http.MethodGet, resUserHistory, querySide},
	{http.MethodGet, resUserState, querySide},
	{http.MethodGet, resActorActivity, querySide},
	{http.MethodGet, resOpsProjections, querySide},
	{http.MethodGet, resUserConsistency, querySide},
	{http.MethodGet, resHealthz, querySide},
	{http.MethodGet, resEvents, querySide},
	{http.MethodPost, resUserWhatIf, querySide},
	{http.MethodGet, resConsole, querySide},
	{http.MethodGet, resConsoleAsset, querySide},
}

// match finds the route of req among those of side s, and its path
// parameters. Resource is the template API Gateway matched; a caller that
// leaves it empty (a hand-made event) gets Path matched against the templates.
func match(req *events.APIGatewayProxyRequest, s side) (route, map[string]string, error) {
	resource, params := req.Resource, req.PathParameters
	if resource == "" {
		resource, params = resourceOf(req.Path)
	}
	var allow []string
	for _, r := range apiRoutes {
		if r.resource != resource {
			continue
		}
		if r.method == req.HTTPMethod {
			if r.side != s {
				return route{}, nil, &edgeError{kind: errNoRoute, detail: "This function does not serve " + r.key() + "."}
			}
			return r, params, nil
		}
		allow = append(allow, r.method)
	}
	if len(allow) == 0 {
		return route{}, nil, &edgeError{kind: errNoRoute, detail: "There is no such resource."}
	}
	slices.Sort(allow)
	return route{}, nil, &edgeError{kind: errMethodNotAllowed, allow: allow,
		detail: "This resource allows " + strings.Join(allow, ", ") + "."}
}

// resourceOf matches a concrete path against the route templates.
func resourceOf(path string) (string, map[string]string) {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	segs := strings.Split(path, "/")
	for _, r := range apiRoutes {
		tmpl := strings.Split(r.resource, "/")
		if len(tmpl) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, t := range tmpl {
			switch {
			case strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}"):
				v, err := url.PathUnescape(segs[i])
				if err != nil || v == "" {
					ok = false
				}
				params[t[1:len(t)-1]] = v
			case t != segs[i]:
				ok = false
			}
		}
		if ok {
			return r.resource, params
		}
	}
	return path, nil
}

// pathOf fills a template with parameters: the canonical path of a request.
func pathOf(resource string, params map[string]string) string {
	segs := strings.Split(resource, "/")
	for i, t := range segs {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			segs[i] = params[t[1:len(t)-1]]
		}
	}
	return strings.Join(segs, "/")
}
