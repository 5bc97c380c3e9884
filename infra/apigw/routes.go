package apigw

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Route is one method on one resource of an API: Pattern is an
// http.ServeMux pattern with a method ("PUT /users/{id}/name"), whose path
// is the resource as API Gateway reports it in req.Resource; Function is the
// logical id of the function that serves it in the template
// ("CommandsFunction").
type Route struct {
	Pattern  string
	Function string
}

// Method is the route's HTTP method.
func (r Route) Method() string { m, _, _ := strings.Cut(r.Pattern, " "); return m }

// Resource is the route's path template: "/users/{id}/name".
func (r Route) Resource() string { _, p, _ := strings.Cut(r.Pattern, " "); return p }

// CheckRoutes reports a route table that http.ServeMux would refuse (a
// malformed pattern, no method, two patterns that conflict) or that serves
// one pattern twice.
func CheckRoutes(routes []Route) (err error) {
	mux := http.NewServeMux()
	seen := map[string]bool{}
	for _, r := range routes {
		if seen[r.Pattern] {
			return fmt.Errorf("route %q is declared twice", r.Pattern)
		}
		seen[r.Pattern] = true
		if r.Method() == "" || r.Resource() == "" || r.Function == "" {
			return fmt.Errorf("route %q (%q): want \"METHOD /path\" and a function", r.Pattern, r.Function)
		}
		func() {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("route %q: %v", r.Pattern, v)
				}
			}()
			mux.Handle(r.Pattern, http.NotFoundHandler())
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// match finds the route of req among routes and its path parameters, and
// checks that function serves it. Resource is the template API Gateway
// matched; a caller that leaves it empty (a hand-made event) gets Path
// matched against the templates.
func match(req *events.APIGatewayProxyRequest, routes []Route, function string) (Route, map[string]string, error) {
	resource, params := req.Resource, req.PathParameters
	if resource == "" {
		resource, params = resourceOf(routes, req.Path)
	}
	var allow []string
	for _, r := range routes {
		if r.Resource() != resource {
			continue
		}
		if r.Method() == req.HTTPMethod {
			if r.Function != function {
				return Route{}, nil, &Error{Kind: NoRoute, Detail: "This function does not serve " + r.Pattern + "."}
			}
			return r, params, nil
		}
		allow = append(allow, r.Method())
	}
	if len(allow) == 0 {
		return Route{}, nil, &Error{Kind: NoRoute, Detail: "There is no such resource."}
	}
	slices.Sort(allow)
	return Route{}, nil, &Error{Kind: MethodNotAllowed, Allow: allow,
		Detail: "This resource allows " + strings.Join(allow, ", ") + "."}
}

// resourceOf matches a concrete path against the route templates.
func resourceOf(routes []Route, path string) (string, map[string]string) {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	segs := strings.Split(path, "/")
	for _, r := range routes {
		tmpl := strings.Split(r.Resource(), "/")
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
			return r.Resource(), params
		}
	}
	return path, nil
}

// PathOf fills a template with parameters: the canonical path of a request.
func PathOf(resource string, params map[string]string) string {
	segs := strings.Split(resource, "/")
	for i, t := range segs {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			segs[i] = params[t[1:len(t)-1]]
		}
	}
	return strings.Join(segs, "/")
}
