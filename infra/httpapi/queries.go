package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// UserLoader rebuilds users from the event store (snapshot + newer events):
// *user.Service is one.
type UserLoader interface {
	Load(ctx context.Context, id string) (es.Aggregate[user.State], error)
	LoadAt(ctx context.Context, id string, version int64) (es.Aggregate[user.State], error)
	LoadAsOf(ctx context.Context, id string, t time.Time) (es.Aggregate[user.State], error)
	// WhatIfCommand decides cmd on the state as of at; nothing is written.
	WhatIfCommand(ctx context.Context, id string, at time.Time, cmd user.Command, md es.Metadata) (es.WhatIf[user.State], error)
}

// EventLoader reads the records of a stream with from <= version <= to (to
// <= 0: no bound), in version order: *dynamo.Store is one.
type EventLoader = apigw.EventLoader

// ReadModel is what the queries read from the read-model table:
// *userviews.Store is one.
type ReadModel interface {
	UserView(ctx context.Context, id string) (user.View, bool, error)
	UserIDByEmail(ctx context.Context, email string) (string, bool, error)
	// ListUsers fails with readmodel.ErrBadCursor for a cursor it did not hand out.
	ListUsers(ctx context.Context, status user.Status, limit int, cursor string) (userviews.UserPage, error)
	// ActorActivity fails with readmodel.ErrBadCursor for a cursor it did not hand out.
	ActorActivity(ctx context.Context, sub string, limit int, cursor string) ([]es.Record, string, error)
	AppliedVersions(ctx context.Context, aggregateID string) (map[string]int64, error)
	// CheckpointsOf returns the checkpoints of the projections named that
	// have applied anything.
	CheckpointsOf(ctx context.Context, projections []string) ([]readmodel.Checkpoint, error)
}

// QueueAttributes reads queue depths: *sqs.Client is one.
type QueueAttributes interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// Projection names a projection and the queues that feed it, for GET
// /ops/projections. Projections fed by one queue name the same URLs.
type Projection struct {
	Name     string // as in the read model's checkpoints: "user-view", "actor-activity"
	QueueURL string
	DLQURL   string // its dead-letter queue
}

// QueriesDeps are what the query routes read.
type QueriesDeps struct {
	Users     UserLoader  // history-free rebuilds: state, read-your-writes, consistency
	Events    EventLoader // history
	Feed      FeedReader  // GET /events; optional, which then fails
	ReadModel ReadModel
	// Queues and Projections serve GET /ops/projections; Queues may be nil
	// when Projections is empty.
	Queues      QueueAttributes
	Projections []Projection
	// Health tells whether the stores answer; GET /healthz is 200 when it
	// returns nil within HealthTimeout, else 503.
	Health func(ctx context.Context) error
	Logger *slog.Logger
	// Open opens the personal fields of the activity's records, which the
	// read model keeps sealed as the events table holds them
	// (pii.Cipher.Open); nil when nothing is sealed.
	Open func(ctx context.Context, recs []es.Record) error
}

// HealthTimeout bounds the health check of GET /healthz.
const HealthTimeout = 3 * time.Second

// Queries serves the read side of the API: GET /users/{id}, GET
// /users?email=, GET /users?status=&limit=&cursor=, GET /users/{id}/history, GET /users/{id}/state, GET
// /actors/{sub}/activity, GET /ops/projections, GET /users/{id}/consistency
// and GET /healthz. It is safe for concurrent use.
type Queries struct {
	edge     *apigw.Edge
	handlers map[string]apigw.Handler // by pattern
	set      settings
	deps     QueriesDeps
}

// NewQueries returns the query handler over deps, or an error naming a
// missing dependency.
func NewQueries(deps QueriesDeps, opts ...Option) (*Queries, error) {
	var missing []string
	for _, d := range []struct {
		name string
		nil  bool
	}{
		{"Users", deps.Users == nil},
		{"Events", deps.Events == nil},
		{"ReadModel", deps.ReadModel == nil},
		{"Health", deps.Health == nil},
		{"Logger", deps.Logger == nil},
		{"Queues (needed by Projections)", deps.Queues == nil && len(deps.Projections) > 0},
	} {
		if d.nil {
			missing = append(missing, d.name)
		}
	}
	if len(missing) > 0 {
		return nil, errors.New("httpapi: NewQueries: missing " + strings.Join(missing, ", "))
	}
	q := &Queries{deps: deps, set: newSettings(opts)}
	q.handlers = q.routes()
	q.edge = newEdge(queriesFunction, q.handlers, deps.Logger, q.set)
	return q, nil
}

// routes are the handlers of the query routes, by pattern.
func (q *Queries) routes() map[string]apigw.Handler {
	return map[string]apigw.Handler{
		routeUser:         q.user,
		routeUsers:        q.users,
		routeHistory:      q.history,
		routeState:        q.state,
		routeActivity:     q.activity,
		routeProjections:  q.projections,
		routeConsistency:  q.consistency,
		routeHealthz:      q.healthz,
		routeEvents:       q.feed,
		routeConsole:      q.consolePage,
		routeConsoleAsset: q.consoleAsset,
		routeWhatIf:       q.whatIf,
	}
}

// Handle is the Lambda handler of the query routes.
func (q *Queries) Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return q.edge.Serve(ctx, req)
}

// Where a GET /users/{id} answer came from (X-Source).
const (
	sourceProjection = apigw.SourceProjection
	sourceEventStore = apigw.SourceEventStore
)

// userAnswer is a live user, as GET /users/{id} answers it.
type userAnswer struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Email     string      `json:"email"`
	Sub       string      `json:"sub,omitempty"`
	Status    user.Status `json:"status"`
	Version   int64       `json:"version"`
	CreatedAt time.Time   `json:"createdAt"`
	UpdatedAt time.Time   `json:"updatedAt"`
}

// deletedAnswer is the body of the 410 of a deleted user.
type deletedAnswer struct {
	ID        string      `json:"id"`
	Status    user.Status `json:"status"`
	Version   int64       `json:"version"`
	DeletedAt time.Time   `json:"deletedAt"`
	DeletedBy string      `json:"deletedBy"`
	Reason    string      `json:"reason"`
	// Forgotten, with the forget's time, actor and reason, once the user's
	// personal data is erased.
	Forgotten    bool       `json:"forgotten,omitempty"`
	ForgottenAt  *time.Time `json:"forgottenAt,omitempty"`
	ForgottenBy  string     `json:"forgottenBy,omitempty"`
	ForgetReason string     `json:"forgetReason,omitempty"`
}

// GET /users/{id}[?minVersion=N][&consistent=true], X-Min-Version: N
func (q *Queries) user(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	id, err := userID(c)
	if err != nil {
		return apigw.Reply{}, err
	}
	minVersion, err := minVersion(c.Req)
	if err != nil {
		return apigw.Reply{}, err
	}
	consistent, err := apigw.QueryBool(c.Req, "consistent")
	if err != nil {
		return apigw.Reply{}, err
	}
	v, source, found, err := q.view(ctx, id, minVersion, consistent)
	if err != nil {
		return apigw.Reply{}, err
	}
	if !p.IsAdmin() && (!found || v.Sub == "" || v.Sub != p.Sub) {
		return apigw.Reply{}, apigw.Deny("You may only read the user linked to your identity.")
	}
	if !found {
		return apigw.Reply{}, user.ErrNotFound
	}
	return viewReply(v, source), nil
}

// view is the current view of user id: from the read model when it is at
// minVersion or later, else rebuilt from the event store, as it is when
// consistent is set.
func (q *Queries) view(ctx context.Context, id string, minVersion int64, consistent bool) (user.View, string, bool, error) {
	if !consistent {
		v, ok, err := q.deps.ReadModel.UserView(ctx, id)
		if err != nil {
			return user.View{}, "", false, err
		}
		if ok && v.Version >= minVersion {
			return v, sourceProjection, true, nil
		}
	}
	agg, err := q.deps.Users.Load(ctx, id)
	if err != nil {
		return user.View{}, "", false, err
	}
	if agg.Version == 0 {
		return user.View{}, sourceEventStore, false, nil
	}
	return user.ViewOf(id, agg.Version, agg.UpdatedAt, agg.State), sourceEventStore, true, nil
}

// minVersion is the larger of ?minVersion and X-Min-Version (0: none).
func minVersion(req *events.APIGatewayProxyRequest) (int64, error) { return apigw.MinVersion(req) }

// viewReply answers a view: 200, or 410 for a deleted user.
func viewReply(v user.View, source string) apigw.Reply {
	headers := map[string]string{"ETag": apigw.ETag(v.Version), "X-Source": source}
	if v.Status == user.StatusDeleted {
		ans := deletedAnswer{
			ID: v.ID, Status: v.Status, Version: v.Version,
			DeletedAt: v.DeletedAt.UTC(), DeletedBy: v.DeletedBy, Reason: v.DeleteReason,
		}
		if v.Forgotten {
			at := v.ForgottenAt.UTC()
			ans.Forgotten, ans.ForgottenAt, ans.ForgottenBy, ans.ForgetReason = true, &at, v.ForgottenBy, v.ForgetReason
		}
		return apigw.Reply{Status: http.StatusGone, Headers: headers, Body: ans}
	}
	return apigw.Reply{Status: http.StatusOK, Headers: headers, Body: liveAnswer(v)}
}

// liveAnswer is a live user's view as GET /users/{id} answers it.
func liveAnswer(v user.View) userAnswer {
	return userAnswer{
		ID: v.ID, Name: v.Name, Email: v.Email, Sub: v.Sub, Status: v.Status, Version: v.Version,
		CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC(),
	}
}

// listParams are the query parameters of the user list.
var listParams = []string{"status", "limit", "cursor"}

// GET /users: with email, the user holding that address; else the list.
// The two are different questions (one user, by a key; a page of all), so
// email with any parameter of the list is a 400 rather than a filter.
func (q *Queries) users(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	email, ok, err := apigw.QueryValue(c.Req, "email")
	if err != nil {
		return apigw.Reply{}, err
	}
	if !ok {
		return q.listUsers(ctx, c)
	}
	for _, name := range listParams {
		if _, given, _ := apigw.QueryValue(c.Req, name); given {
			return apigw.Reply{}, apigw.BadField("email", "cannot be combined with "+strings.Join(listParams, ", ")+": GET /users?email= looks up one user")
		}
	}
	return q.userByEmail(ctx, c, email)
}

// usersAnswer is a page of the user list.
type usersAnswer struct {
	Users      []userAnswer `json:"users"`
	NextCursor string       `json:"nextCursor,omitempty"`
}

// GET /users?status=&limit=&cursor=: admin only, the live users from the
// read model, newest first.
func (q *Queries) listUsers(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	var fields []apigw.FieldError
	status, given, err := apigw.QueryValue(c.Req, "status")
	if err != nil {
		return apigw.Reply{}, err
	}
	if given && status != string(user.StatusActive) && status != string(user.StatusSuspended) {
		fields = append(fields, apigw.FieldError{Field: "status", Message: "must be active or suspended"})
	}
	limit, err := apigw.QueryInt(c.Req, "limit", 1, maxLimit, defaultLimit)
	var bad *apigw.Error
	if errors.As(err, &bad) && len(bad.Fields) > 0 {
		fields = append(fields, bad.Fields...)
	} else if err != nil {
		return apigw.Reply{}, err
	}
	cursor, given, err := apigw.QueryValue(c.Req, "cursor")
	if err != nil {
		return apigw.Reply{}, err
	}
	if given && cursor == "" {
		fields = append(fields, apigw.FieldError{Field: "cursor", Message: "must be a nextCursor of the same query"})
	}
	if len(fields) > 0 {
		return apigw.Reply{}, apigw.BadRequest("One or more query parameters are invalid.", fields...)
	}
	if !p.IsAdmin() {
		return apigw.Reply{}, apigw.Deny("Only an admin may list users.")
	}
	page, err := q.deps.ReadModel.ListUsers(ctx, user.Status(status), int(limit), cursor)
	if err != nil {
		return apigw.Reply{}, err
	}
	ans := usersAnswer{Users: make([]userAnswer, 0, len(page.Users)), NextCursor: page.Next}
	for _, v := range page.Users {
		ans.Users = append(ans.Users, liveAnswer(v))
	}
	return apigw.Reply{Status: http.StatusOK, Body: ans}, nil
}

// GET /users?email=a@b.c: the live user holding that address.
func (q *Queries) userByEmail(ctx context.Context, c *apigw.Call, raw string) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	valid, err := user.Validate(user.ChangeEmail{Email: raw})
	if err != nil {
		return apigw.Reply{}, err
	}
	email := valid.(user.ChangeEmail).Email
	v, source, found, err := q.holder(ctx, email)
	if err != nil {
		return apigw.Reply{}, err
	}
	if !p.IsAdmin() && (!found || v.Sub == "" || v.Sub != p.Sub) {
		return apigw.Reply{}, apigw.Deny("You may only read the user linked to your identity.")
	}
	if !found {
		return apigw.Reply{}, user.ErrNotFound
	}
	return viewReply(v, source), nil
}

// holder is the live user holding email, by the read model's lookup. A view
// the projection has not written yet is rebuilt from the event store; a
// lookup that disagrees with the view is stale and counts as absent.
func (q *Queries) holder(ctx context.Context, email string) (user.View, string, bool, error) {
	id, ok, err := q.deps.ReadModel.UserIDByEmail(ctx, email)
	if err != nil || !ok {
		return user.View{}, "", false, err
	}
	v, source, found, err := q.view(ctx, id, 0, false)
	if err != nil || !found || v.Status == user.StatusDeleted || v.Email != email {
		return user.View{}, "", false, err
	}
	return v, source, true, nil
}

// eventAnswer is one event of a history or of an actor's activity: the
// answer every API gives (apigw.EventAnswer).
type eventAnswer = apigw.EventAnswer

func eventOf(r es.Record, withAggregate bool) eventAnswer { return apigw.EventOf(r, withAggregate) }

// GET /users/{id}/history?fromVersion=&limit=&cursor=
func (q *Queries) history(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	id, err := userID(c)
	if err != nil {
		return apigw.Reply{}, err
	}
	hq, err := apigw.HistoryParams(c.Req, id)
	if err != nil {
		return apigw.Reply{}, err
	}
	if err := q.mayRead(ctx, p, id); err != nil {
		return apigw.Reply{}, err
	}
	ans, found, err := apigw.History(ctx, q.deps.Events, id, hq)
	if err != nil {
		return apigw.Reply{}, err
	}
	if !found {
		return apigw.Reply{}, user.ErrNotFound
	}
	return apigw.Reply{Status: http.StatusOK, Body: ans}, nil
}

// mayRead checks that p may read the history and past states of user id:
// an admin may; so may the identity the user was created for. A user that
// never existed is not one's own: 403, so that existence does not leak.
func (q *Queries) mayRead(ctx context.Context, p auth.Principal, id string) error {
	if p.IsAdmin() {
		return nil
	}
	first, err := q.deps.Users.LoadAt(ctx, id, 1) // the sub is set at creation, never changed
	if err != nil {
		return err
	}
	if !owns(p, first.State) {
		return apigw.Deny("You may only read the user linked to your identity.")
	}
	return nil
}

type stateAnswer struct {
	ID      string    `json:"id"`
	Version int64     `json:"version"`
	AsOf    time.Time `json:"asOf"`
	State   stateBody `json:"state"`
}

// stateBody is a user state as GET /users/{id}/state shows it: a name or
// an address that can no longer be read (the user is forgotten) is null,
// as in the history, not an empty string.
type stateBody struct {
	user.State
	Name  *string `json:"name"`
	Email *string `json:"email"`
}

func stateBodyOf(s user.State) stateBody {
	b := stateBody{State: s}
	if s.Name != "" {
		b.Name = &s.Name
	}
	if s.Email != "" {
		b.Email = &s.Email
	}
	return b
}

// GET /users/{id}/state[?version=N | ?at=<RFC 3339>]
func (q *Queries) state(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	id, err := userID(c)
	if err != nil {
		return apigw.Reply{}, err
	}
	version, err := apigw.QueryInt(c.Req, "version", 1, apigw.MaxInt, 0)
	if err != nil {
		return apigw.Reply{}, err
	}
	at, byTime, err := apigw.QueryTime(c.Req, "at")
	if err != nil {
		return apigw.Reply{}, err
	}
	if version > 0 && byTime {
		return apigw.Reply{}, apigw.BadRequest("Give version or at, not both.",
			apigw.FieldError{Field: "version", Message: "cannot be combined with at"},
			apigw.FieldError{Field: "at", Message: "cannot be combined with version"})
	}
	if err := q.mayRead(ctx, p, id); err != nil {
		return apigw.Reply{}, err
	}
	var agg es.Aggregate[user.State]
	switch {
	case version > 0:
		agg, err = q.deps.Users.LoadAt(ctx, id, version)
	case byTime:
		agg, err = q.deps.Users.LoadAsOf(ctx, id, at)
	default:
		agg, err = q.deps.Users.Load(ctx, id)
	}
	if err != nil {
		return apigw.Reply{}, err
	}
	if agg.Version == 0 { // no such user, or not yet at that time
		return apigw.Reply{}, user.ErrNotFound
	}
	asOf := agg.UpdatedAt.UTC()
	if byTime {
		asOf = at
	}
	return apigw.Reply{Status: http.StatusOK, Body: stateAnswer{ID: id, Version: agg.Version, AsOf: asOf, State: stateBodyOf(agg.State)},
		Headers: map[string]string{"ETag": apigw.ETag(agg.Version)}}, nil
}

type activityAnswer struct {
	Sub        string        `json:"sub"`
	Events     []eventAnswer `json:"events"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

// GET /actors/{sub}/activity?limit=&cursor=
func (q *Queries) activity(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	sub, err := parseSub(c.Params[paramSub])
	if err != nil {
		return apigw.Reply{}, err
	}
	if !p.IsAdmin() && p.Sub != sub {
		return apigw.Reply{}, apigw.Deny("You may only read your own activity.")
	}
	limit, err := apigw.QueryInt(c.Req, "limit", 1, maxLimit, defaultLimit)
	if err != nil {
		return apigw.Reply{}, err
	}
	cursor, _, err := apigw.QueryValue(c.Req, "cursor")
	if err != nil {
		return apigw.Reply{}, err
	}
	recs, next, err := q.deps.ReadModel.ActorActivity(ctx, sub, int(limit), cursor)
	if err != nil {
		return apigw.Reply{}, err
	}
	if q.deps.Open != nil {
		if err := q.deps.Open(ctx, recs); err != nil {
			return apigw.Reply{}, err
		}
	}
	ans := activityAnswer{Sub: sub, Events: make([]eventAnswer, 0, len(recs)), NextCursor: next}
	for _, r := range recs {
		ans.Events = append(ans.Events, eventOf(r, true))
	}
	return apigw.Reply{Status: http.StatusOK, Body: ans}, nil
}

// whatIfAnswer is what POST /users/{id}/what-if answers: the state at the
// moment, the events the command would have appended (or the rule that
// refuses it), and the state after. Nothing is written.
type whatIfAnswer struct {
	ID       string        `json:"id"`
	At       time.Time     `json:"at"`
	Command  string        `json:"command"`
	Before   stateAnswer   `json:"before"`
	Events   []eventAnswer `json:"events"`
	Rejected string        `json:"rejected,omitempty"`
	After    stateAnswer   `json:"after"`
	Written  bool          `json:"written"`
}

// whatIfBody is the body of POST /users/{id}/what-if.
type whatIfBody struct {
	Command apigw.String `json:"command"`
	Name    apigw.String `json:"name"`
	Email   apigw.String `json:"email"`
	Reason  apigw.String `json:"reason"`
	At      apigw.String `json:"at"`
}

// whatIfCommands are the commands a what-if may ask about, by their name in
// the body, and the body field each takes.
var whatIfCommands = map[string]struct {
	field string
	make  func(v string) user.Command
}{
	"rename":       {"name", func(v string) user.Command { return user.Rename{Name: v} }},
	"change-email": {"email", func(v string) user.Command { return user.ChangeEmail{Email: v} }},
	"suspend":      {"reason", func(v string) user.Command { return user.Suspend{Reason: v} }},
	"reactivate":   {"reason", func(v string) user.Command { return user.Reactivate{Reason: v} }},
	"delete":       {"reason", func(v string) user.Command { return user.Delete{Reason: v} }},
}

// POST /users/{id}/what-if {"command","name"|"email"|"reason","at"}: admin
// only. The command is decided on the state as of at (default: now), at
// that time, by the same rules as a real one; nothing is written and no
// unique value is claimed.
func (q *Queries) whatIf(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	id, err := userID(c)
	if err != nil {
		return apigw.Reply{}, err
	}
	var body whatIfBody
	if _, err := apigw.DecodeBody(c.Req, true, &body); err != nil {
		return apigw.Reply{}, err
	}
	if !p.IsAdmin() {
		return apigw.Reply{}, apigw.Deny("Only an admin may ask what if.")
	}
	command, reason, at := body.Command, body.Reason, body.At
	spec, known := whatIfCommands[command.Value]
	if !known {
		return apigw.Reply{}, apigw.BadField("command", "must be rename, change-email, suspend, reactivate or delete")
	}
	values := map[string]apigw.String{"name": body.Name, "email": body.Email, "reason": reason}
	for _, f := range []string{"name", "email"} { // reason is every command's
		if values[f].Set && f != spec.field {
			return apigw.Reply{}, apigw.BadField(f, "is not a field of "+command.Value)
		}
	}
	when := time.Now().UTC()
	if at.Set {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(at.Value))
		if err != nil {
			return apigw.Reply{}, apigw.BadField("at", "must be an RFC 3339 time such as 2025-01-02T15:04:05.123456789Z")
		}
		when = t.UTC()
	}
	metaReason := &reason // a reason that is only metadata; nil: the command carries it
	if spec.field == "reason" {
		metaReason = nil
	}
	cmd, why, err := validate(spec.make(values[spec.field].Value), metaReason)
	if err != nil {
		return apigw.Reply{}, err
	}
	md := es.Metadata{Actor: p.Sub, Reason: why, CorrelationID: c.RequestID, CausationID: c.RequestID}
	res, err := q.deps.Users.WhatIfCommand(ctx, id, when, cmd, md)
	if err != nil {
		return apigw.Reply{}, err
	}
	if res.Before.Version == 0 { // no such user, or not yet at that time
		return apigw.Reply{}, user.ErrNotFound
	}
	ans := whatIfAnswer{ID: id, At: when, Command: command.Value, Events: []eventAnswer{},
		Before: stateAnswer{ID: id, Version: res.Before.Version, AsOf: res.Before.UpdatedAt.UTC(), State: stateBodyOf(res.Before.State)},
		After:  stateAnswer{ID: id, Version: res.After.Version, AsOf: res.After.UpdatedAt.UTC(), State: stateBodyOf(res.After.State)}}
	for _, rec := range res.Records {
		ans.Events = append(ans.Events, eventOf(rec, false))
	}
	if res.Rejected != nil {
		var verr *user.ValidationError
		if errors.As(res.Rejected, &verr) {
			return apigw.Reply{}, res.Rejected
		}
		ans.Rejected = res.Rejected.Error()
	}
	return apigw.Reply{Status: http.StatusOK, Body: ans}, nil
}
