package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/metrics"
)

// Option tunes Commands and Queries.
type Option func(*settings)

type settings struct {
	newID   func() string
	now     func() time.Time
	metrics *metrics.Recorder // nil: none
	keys    KeyShredder       // nil: POST /users/{id}/forget answers 500
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
		newID: func() string { return uuid.Must(uuid.NewV7()).String() },
		now:   time.Now,
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// handlerFunc serves one route.
type handlerFunc func(ctx context.Context, c *call) (reply, error)

// edge is what Commands and Queries share: routing, the recovery of panics,
// problem answers and the logging of server errors.
type edge struct {
	side     side
	logger   *slog.Logger
	set      settings
	handlers map[string]handlerFunc // by route.key()
}

// call is one request on its way through a handler.
type call struct {
	req       *events.APIGatewayProxyRequest
	requestID string // X-Request-Id: echoed, or new
	route     route
	params    map[string]string
}

// reply is a successful answer (or a 410, which is an answer, not an error).
type reply struct {
	status  int
	body    any // encoded as JSON
	headers map[string]string
	// raw, when set, is the body as is, instead of body encoded as JSON;
	// headers then carry its Content-Type (the console's assets).
	raw []byte
}

// serve answers req. It never returns an error: every failure is a problem
// answer, so that API Gateway never turns it into a bare 502.
func (e *edge) serve(ctx context.Context, req events.APIGatewayProxyRequest) (resp events.APIGatewayProxyResponse, err error) {
	c := &call{req: &req}
	defer func() {
		if v := recover(); v != nil {
			if c.requestID == "" { // the id source itself panicked
				c.requestID = uuid.NewString()
			}
			e.logger.ErrorContext(ctx, "handler panicked", append(e.logAttrs(ctx, c, 500),
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))...)
			resp, err = c.problemResponse(internalProblem()), nil
		}
	}()
	c.requestID = requestID(&req, e.set.newID)
	rep, herr := e.dispatch(ctx, c)
	if herr != nil {
		p := problemFor(herr)
		if p.Status >= 500 {
			e.logger.ErrorContext(ctx, "request failed", append(e.logAttrs(ctx, c, p.Status), slog.Any("error", herr))...)
		}
		return c.problemResponse(p), nil
	}
	resp, err = c.response(rep)
	if err != nil {
		e.logger.ErrorContext(ctx, "encode answer", append(e.logAttrs(ctx, c, 500), slog.Any("error", err))...)
		return c.problemResponse(internalProblem()), nil
	}
	return resp, nil
}

func (e *edge) dispatch(ctx context.Context, c *call) (reply, error) {
	r, params, err := match(c.req, e.side)
	if err != nil {
		return reply{}, err
	}
	c.route, c.params = r, maps.Clone(params) // userID writes the canonical id
	if c.params == nil {
		c.params = map[string]string{}
	}
	h, ok := e.handlers[r.key()]
	if !ok {
		return reply{}, fmt.Errorf("no handler for %s", r.key())
	}
	return h(ctx, c)
}

// logAttrs are the attributes of a log line about c.
func (e *edge) logAttrs(ctx context.Context, c *call, status int) []any {
	attrs := []any{
		slog.String("request_id", c.requestID),
		slog.String("api_request_id", c.req.RequestContext.RequestID),
		slog.String("method", c.req.HTTPMethod),
		slog.String("resource", c.req.Resource),
		slog.String("path", c.req.Path),
		slog.Int("status", status),
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("aws_request_id", lc.AwsRequestID))
	}
	return attrs
}

// principal is the caller the authorizer verified; without one, 401.
func (c *call) principal() (auth.Principal, error) {
	p, ok := auth.PrincipalFromContext(c.req.RequestContext.Authorizer)
	if !ok {
		return auth.Principal{}, &edgeError{kind: errUnauthenticated, detail: "This route needs a valid bearer token."}
	}
	return p, nil
}

// userID is the {id} path parameter, checked and in canonical form.
func (c *call) userID() (string, error) {
	id, err := parseID(c.params[paramID])
	if err != nil {
		return "", err
	}
	c.params[paramID] = id
	return id, nil
}

func (c *call) response(r reply) (events.APIGatewayProxyResponse, error) {
	if r.raw != nil {
		h := maps.Clone(r.headers)
		h[headerRequestID] = c.requestID
		return events.APIGatewayProxyResponse{StatusCode: r.status, Headers: h, Body: string(r.raw)}, nil
	}
	b, err := json.Marshal(r.body)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	h := map[string]string{}
	maps.Copy(h, r.headers)
	h[headerContentType] = jsonContentType
	h[headerRequestID] = c.requestID
	return events.APIGatewayProxyResponse{StatusCode: r.status, Headers: h, Body: string(b)}, nil
}

func (c *call) problemResponse(p problem) events.APIGatewayProxyResponse {
	b, err := json.Marshal(p)
	if err != nil { // a problem holds only strings and numbers
		b = []byte(`{"title":"Internal server error","status":500}`)
	}
	h := map[string]string{}
	maps.Copy(h, p.headers)
	h[headerContentType] = problemContentType
	h[headerRequestID] = c.requestID
	return events.APIGatewayProxyResponse{StatusCode: p.Status, Headers: h, Body: string(b)}
}

// etag is the entity tag of a user version.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }
