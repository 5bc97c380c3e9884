package apigw

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/auth"
)

// Handler serves one route.
type Handler func(ctx context.Context, c *Call) (Reply, error)

// Call is one request on its way through a handler.
type Call struct {
	Req       *events.APIGatewayProxyRequest
	RequestID string // X-Request-Id: echoed, or new
	Route     Route
	// Params are the path parameters, by name; a handler may replace one
	// with its canonical form (PathOf then gives the canonical path).
	Params map[string]string
}

// Reply is a successful answer (or a 410, which is an answer, not an error).
type Reply struct {
	Status  int
	Body    any // encoded as JSON
	Headers map[string]string
	// Raw, when set, is the body as is, instead of Body encoded as JSON;
	// Headers then carry its Content-Type (the console's assets).
	Raw []byte
}

// Config is what an Edge serves and how.
type Config struct {
	// Function is the template's logical id of the function the edge
	// runs in: it serves the routes of Routes whose Function it is.
	Function string
	// Routes is the whole API: an edge needs it to tell a method that is
	// not allowed (405) from a path that does not exist (404).
	Routes []Route
	// Handlers are the handlers of the function's routes, by pattern.
	Handlers map[string]Handler
	// Errors turns errors into problems.
	Errors Errors
	// More are further APIs the function serves beside the one above (a
	// function serving the routes of several aggregates): their routes
	// join Routes, their handlers join Handlers, and the errors of their
	// routes become problems by their own Errors.
	More []API
	// NewID makes the request id of a request without a usable
	// X-Request-Id.
	NewID func() string
	// Logger receives one line per server error.
	Logger *slog.Logger
}

// API is one aggregate's API as an edge serves it beside another
// (Config.More): its whole route table, the handlers of the routes the
// edge's function serves, by pattern, and its errors.
type API struct {
	Routes   []Route
	Handlers map[string]Handler
	Errors   Errors
}

// Edge serves the routes of one function. It is safe for concurrent use.
type Edge struct {
	cfg Config
	// errorsOf are the errors of the routes of Config.More, by pattern;
	// the other routes' are Config.Errors.
	errorsOf map[string]Errors
}

// New returns the edge of cfg.Function. It panics when two of its APIs
// declare one pattern: a programming error, found at start-up.
func New(cfg Config) *Edge {
	e := &Edge{cfg: cfg}
	if len(cfg.More) == 0 {
		return e
	}
	e.cfg.Routes = slices.Clone(cfg.Routes)
	e.cfg.Handlers = maps.Clone(cfg.Handlers)
	e.errorsOf = map[string]Errors{}
	for _, api := range cfg.More {
		for _, r := range api.Routes {
			if slices.ContainsFunc(e.cfg.Routes, func(o Route) bool { return o.Pattern == r.Pattern }) {
				panic(fmt.Sprintf("apigw: route %q is declared by two APIs", r.Pattern))
			}
			e.cfg.Routes = append(e.cfg.Routes, r)
			e.errorsOf[r.Pattern] = api.Errors
		}
		maps.Copy(e.cfg.Handlers, api.Handlers)
	}
	return e
}

// Routes is the whole route table the edge routes by: its API's and
// those of Config.More.
func (e *Edge) Routes() []Route { return slices.Clone(e.cfg.Routes) }

// problem is the problem answer of err on the route of pattern: by the
// errors of the API that declares the route.
func (e *Edge) problem(pattern string, err error) Problem {
	if x, ok := e.errorsOf[pattern]; ok {
		return x.Problem(err)
	}
	return e.cfg.Errors.Problem(err)
}

// Problem is the problem answer of err (Errors.Problem).
func (e *Edge) Problem(err error) Problem { return e.cfg.Errors.Problem(err) }

// Serve answers req. It never returns an error: every failure is a problem
// answer, so that API Gateway never turns it into a bare 502.
func (e *Edge) Serve(ctx context.Context, req events.APIGatewayProxyRequest) (resp events.APIGatewayProxyResponse, err error) {
	c := &Call{Req: &req}
	defer func() {
		if v := recover(); v != nil {
			if c.RequestID == "" { // the id source itself panicked
				c.RequestID = uuid.NewString()
			}
			e.cfg.Logger.ErrorContext(ctx, "handler panicked", append(LogAttrs(ctx, c, 500),
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))...)
			resp, err = c.problemResponse(InternalProblem()), nil
		}
	}()
	c.RequestID = requestID(&req, e.cfg.NewID)
	rep, herr := e.dispatch(ctx, c)
	if herr != nil {
		p := e.problem(c.Route.Pattern, herr)
		if p.Status >= 500 {
			e.cfg.Logger.ErrorContext(ctx, "request failed", append(LogAttrs(ctx, c, p.Status), slog.Any("error", herr))...)
		}
		return c.problemResponse(p), nil
	}
	resp, err = c.response(rep)
	if err != nil {
		e.cfg.Logger.ErrorContext(ctx, "encode answer", append(LogAttrs(ctx, c, 500), slog.Any("error", err))...)
		return c.problemResponse(InternalProblem()), nil
	}
	return resp, nil
}

func (e *Edge) dispatch(ctx context.Context, c *Call) (Reply, error) {
	r, params, err := match(c.Req, e.cfg.Routes, e.cfg.Function)
	if err != nil {
		return Reply{}, err
	}
	c.Route, c.Params = r, maps.Clone(params) // a handler may write the canonical form of a parameter
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	h, ok := e.cfg.Handlers[r.Pattern]
	if !ok {
		return Reply{}, fmt.Errorf("no handler for %s", r.Pattern)
	}
	return h(ctx, c)
}

// LogAttrs are the attributes of a log line about c.
func LogAttrs(ctx context.Context, c *Call, status int) []any {
	attrs := []any{
		slog.String("request_id", c.RequestID),
		slog.String("api_request_id", c.Req.RequestContext.RequestID),
		slog.String("method", c.Req.HTTPMethod),
		slog.String("resource", c.Req.Resource),
		slog.String("path", c.Req.Path),
		slog.Int("status", status),
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("aws_request_id", lc.AwsRequestID))
	}
	return attrs
}

// Principal is the caller the authorizer verified; without one, 401.
func (c *Call) Principal() (auth.Principal, error) {
	p, ok := auth.PrincipalFromContext(c.Req.RequestContext.Authorizer)
	if !ok {
		return auth.Principal{}, &Error{Kind: Unauthenticated, Detail: "This route needs a valid bearer token."}
	}
	return p, nil
}

func (c *Call) response(r Reply) (events.APIGatewayProxyResponse, error) {
	if r.Raw != nil {
		h := maps.Clone(r.Headers)
		h[HeaderRequestID] = c.RequestID
		return events.APIGatewayProxyResponse{StatusCode: r.Status, Headers: h, Body: string(r.Raw)}, nil
	}
	b, err := json.Marshal(r.Body)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	h := map[string]string{}
	maps.Copy(h, r.Headers)
	h[HeaderContentType] = JSONContentType
	h[HeaderRequestID] = c.RequestID
	return events.APIGatewayProxyResponse{StatusCode: r.Status, Headers: h, Body: string(b)}, nil
}

func (c *Call) problemResponse(p Problem) events.APIGatewayProxyResponse {
	b, err := json.Marshal(p)
	if err != nil { // a problem holds only strings and numbers
		b = []byte(`{"title":"Internal server error","status":500}`)
	}
	h := map[string]string{}
	maps.Copy(h, p.Headers)
	h[HeaderContentType] = ProblemContentType
	h[HeaderRequestID] = c.RequestID
	return events.APIGatewayProxyResponse{StatusCode: p.Status, Headers: h, Body: string(b)}
}
