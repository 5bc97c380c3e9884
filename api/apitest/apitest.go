// Package apitest holds the tests to the OpenAPI document of package api:
// it loads the document, validates it, and checks a request and its answer
// against it, so that a handler whose answers drift from the document fails
// the test that saw the drift.
//
// The rules, the same for the handler tests and the end-to-end suite:
//
//   - Every answer is checked: its status must be one the operation lists,
//     its headers and body must match that answer's schemas. That holds for
//     the answers to deliberately malformed requests too (hostile and fuzz
//     tests): their problem+json is part of the contract.
//   - A request is checked only when its answer says the service took it (a
//     2xx, or the 410 of a deleted user): a request the service refused may be
//     malformed on purpose, and the refusal itself is checked as an answer.
//     A request the document forbids that the service takes is drift.
//   - A request to a method and path the document does not have must be
//     answered by a problem (404 no such route, 405 method not allowed, the
//     403 of API Gateway's default, or a 413 the gateway gives before routing).
//
// The library is github.com/getkin/kin-openapi: for an OpenAPI 3.1 document
// its openapi3filter validates with a JSON Schema 2020-12 validator
// (santhosh-tekuri/jsonschema), so type arrays such as ["string", "null"],
// const, if/then and unevaluatedProperties mean what the specification
// says. Formats are asserted: date-time (RFC 3339) by the library, uuid
// registered here.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/api"
)

// Contract is the loaded OpenAPI document, ready to check exchanges. It is
// safe for concurrent use.
type Contract struct {
	doc    *openapi3.T
	router routers.Router
	opts   []openapi3.SchemaValidationOption
	bodies *bodySchemas
}

// Load parses api.OpenAPI and validates it as an OpenAPI 3.1 document.
func Load(ctx context.Context) (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("the OpenAPI document is version %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	doc.SetStringFormatValidator("uuid", openapi3.NewCallbackValidator(func(s string) error {
		if len(s) != 36 {
			return errors.New("not a UUID in its 36-character form")
		}
		_, err := uuid.Parse(s)
		return err
	}))
	// Routing ignores the servers: the tests' hosts and ports are their own.
	routed := *doc
	routed.Servers = nil
	router, err := gorillamux.NewRouter(&routed)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI document: %w", err)
	}
	bodies, err := newBodySchemas(doc)
	if err != nil {
		return nil, err
	}
	return &Contract{doc: doc, router: router, opts: doc.GetSchemaValidationOptions(), bodies: bodies}, nil
}

var shared = sync.OnceValues(func() (*Contract, error) { return Load(context.Background()) })

// Shared is the contract loaded once for the whole test binary.
func Shared() (*Contract, error) { return shared() }

// Route is one operation of the document.
type Route struct {
	Method, Path string // "GET", "/users/{id}"
	// Public is set when the operation needs no bearer token.
	Public bool
}

func (r Route) String() string { return r.Method + " " + r.Path }

// Routes are the document's operations, sorted by path then method.
func (c *Contract) Routes() []Route {
	var out []Route
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			sec := c.doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			out = append(out, Route{Method: method, Path: path, Public: len(sec) == 0})
		}
	}
	slices.SortFunc(out, func(a, b Route) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return out
}

// Exchange is one request and its answer, as a test saw them.
type Exchange struct {
	Request *http.Request // its URL's path and query, method and headers
	// Resource is the path template API Gateway matched, when the test
	// knows it (a proxy event's resource), and PathParams its parameters,
	// decoded. Else the document's router matches the request's path.
	Resource    string
	PathParams  map[string]string
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// Check checks x against the document (see the package rules). The error
// names the method, the path, the status and what does not match.
func (c *Contract) Check(ctx context.Context, x Exchange) error {
	method, path := x.Request.Method, x.Request.URL.Path
	route, params, err := c.find(x)
	if err == nil && misrouted(x) {
		// A function handed a route of the other function (a test's
		// misrouting, which API Gateway does not do) says so.
		err = routers.ErrPathNotFound
	}
	if err != nil {
		if err := c.unrouted(x); err != nil {
			return fmt.Errorf("OpenAPI: %s %s (no such operation in the document) answered %d: %w", method, path, x.Status, err)
		}
		return nil
	}
	where := fmt.Sprintf("OpenAPI: %s %s (%s %s) answered %d", method, path, route.Method, route.Path, x.Status)
	// Bodies are checked by c.bodies, whose schemas are compiled once:
	// openapi3filter compiles a body's schema on every call, which made a
	// check cost tens of milliseconds.
	opts := &openapi3filter.Options{
		ExcludeRequestBody:      true,
		ExcludeResponseBody:     true,
		MultiError:              true,
		IncludeResponseStatus:   true,
		SchemaValidationOptions: c.opts,
		AuthenticationFunc:      bearer,
	}
	// openapi3filter reads the body of the request it is given.
	req := x.Request.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
	req.ContentLength = int64(len(x.RequestBody))
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	var errs []error
	if taken(x.Status) {
		err := openapi3filter.ValidateRequest(ctx, in)
		if err == nil {
			err = c.bodies.request(route, x)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("the request, which the service took, does not match the document: %w", err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: x.Status, Header: x.Header,
		Body: io.NopCloser(bytes.NewReader(x.Body)), Options: opts,
	}
	err = openapi3filter.ValidateResponse(ctx, out)
	if err == nil {
		err = c.bodies.response(route, x)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("the answer does not match the document: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", where, errors.Join(errs...))
	}
	return nil
}

// find finds the operation of x: by its resource when it has one, else by
// its path.
func (c *Contract) find(x Exchange) (*routers.Route, map[string]string, error) {
	if x.Resource == "" {
		return c.router.FindRoute(x.Request)
	}
	item := c.doc.Paths.Value(x.Resource)
	if item == nil {
		return nil, nil, routers.ErrPathNotFound
	}
	op := item.GetOperation(x.Request.Method)
	if op == nil {
		return nil, nil, routers.ErrMethodNotAllowed
	}
	return &routers.Route{Spec: c.doc, Path: x.Resource, PathItem: item, Method: x.Request.Method, Operation: op}, x.PathParams, nil
}

// misrouted reports whether x's answer is a function's "I do not serve
// this route" (a 404 of type no-route).
func misrouted(x Exchange) bool {
	if x.Status != http.StatusNotFound {
		return false
	}
	var p struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(x.Body, &p) == nil && p.Type == "urn:chronicle:problem:no-route"
}

// taken reports whether status says the service took the request.
func taken(status int) bool {
	return status/100 == 2 || status == http.StatusGone
}

// bearer is the bearer security scheme as a client sees it: an
// Authorization header with the Bearer scheme (the authorizer, not the
// document, says whether the token is good).
func bearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme.Type != "http" || !strings.EqualFold(in.SecurityScheme.Scheme, "bearer") {
		return fmt.Errorf("security scheme %q is not one the tests know", in.SecuritySchemeName)
	}
	scheme, token, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// unroutedStatuses are the answers to a method and path the document does
// not have: the handlers' 404 and 405, API Gateway's own 403
// (MissingAuthenticationToken) or the 404 the template maps it to, and its
// 413 for a request too large to route.
var unroutedStatuses = []int{http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge}

// unrouted checks the answer to a request the document has no operation for.
func (c *Contract) unrouted(x Exchange) error {
	if !slices.Contains(unroutedStatuses, x.Status) {
		return fmt.Errorf("want one of %v", unroutedStatuses)
	}
	return c.checkProblem(x)
}

// checkProblem checks that x's answer is a problem+json of the document's
// Problem schema.
func (c *Contract) checkProblem(x Exchange) error {
	mt, _, err := mime.ParseMediaType(x.Header.Get("Content-Type"))
	if err != nil || mt != "application/problem+json" {
		return fmt.Errorf("Content-Type %q, want application/problem+json", x.Header.Get("Content-Type"))
	}
	return c.bodies.check("#/components/schemas/Problem", x.Body)
}
