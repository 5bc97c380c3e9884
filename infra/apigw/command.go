package apigw

import (
	"context"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/tracing"
)

// Executor runs commands on one kind of aggregate: es.Service is one.
type Executor[S, C any] interface {
	Execute(ctx context.Context, id string, cmd C, x es.ExecOptions) (es.Result[S], error)
}

// Command is a valid command a write route runs, with what the request
// said about it.
type Command[C any] struct {
	Cmd  C
	Name string // in traces and metrics: "rename", "team.rename"
	ID   string // the aggregate's id: a new one for a create
	// Reason is recorded on the events.
	Reason string
	Pre    Preconditions // the write headers
	Body   []byte        // the raw body: with the route, what an idempotency key's request is
	// Created makes it a create: the id was made up a moment ago (nothing
	// to read; the append at version 0 checks it), and the answer is 201
	// with Location: LocationPrefix + id.
	Created        bool
	LocationPrefix string
	// Authorize, when set, is checked by the service on the state the
	// command is decided on (es.ExecOptions.Authorize).
	Authorize func(state any) error
	CommandID string // the command's own id, recorded on its events
}

// WriteAnswer is the body of every successful command.
type WriteAnswer struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// Execute runs cmd for the principal p's call c through svc, and answers
// {"id","version"} with its ETag (and Location for a create). The command
// gets a span of its own, whose context its events carry to the
// consumers; its events record the principal as the actor, the request id
// as the correlation id and API Gateway's request id as the causation. A
// replay of an idempotent request answers as the first one did. A failed
// snapshot never fails the command: it is logged. The result is returned
// with the answer, also on an error (its Attempts), for the caller's
// metrics.
func Execute[S, C any](ctx context.Context, c *Call, p auth.Principal, svc Executor[S, C], cmd Command[C], logger *slog.Logger) (Reply, es.Result[S], error) {
	ctx, span := tracing.Start(ctx, "command "+cmd.Name, trace.WithAttributes(tracing.AggregateID.String(cmd.ID)))
	defer span.End()
	tracing.Annotate(span, c.RequestID)
	causation := c.Req.RequestContext.RequestID
	if causation == "" {
		causation = c.RequestID
	}
	x := es.ExecOptions{
		Absent:          cmd.Created,
		Authorize:       cmd.Authorize,
		ExpectedVersion: cmd.Pre.IfMatch,
		Metadata: es.Metadata{
			Actor:         p.Sub,
			Reason:        cmd.Reason,
			CorrelationID: c.RequestID,
			CausationID:   causation,
			CommandID:     cmd.CommandID,
			RequestID:     c.Req.RequestContext.RequestID,
			TraceParent:   tracing.TraceParent(ctx),
		},
	}
	if cmd.Pre.IdempotencyKey != "" {
		x.Idempotency = &es.IdempotencyKey{
			Key:         IdempotencyScope(p.Sub, cmd.Pre.IdempotencyKey),
			RequestHash: RequestHash(c.Req.HTTPMethod, PathOf(c.Route.Resource(), c.Params), cmd.Body),
		}
	}
	res, err := svc.Execute(ctx, cmd.ID, cmd.Cmd, x)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return Reply{}, res, err
	}
	span.SetAttributes(tracing.Version.Int64(res.Version))
	status := http.StatusOK
	if cmd.Created {
		status = http.StatusCreated
	}
	if res.SnapshotErr != nil { // never fails the command; the next load replays more events
		logger.WarnContext(ctx, "snapshot failed", append(LogAttrs(ctx, c, status),
			slog.String("aggregate_id", res.ID), slog.Int64("version", res.Version), slog.Any("error", res.SnapshotErr))...)
	}
	headers := map[string]string{"ETag": ETag(res.Version)}
	if cmd.Created {
		headers["Location"] = cmd.LocationPrefix + res.ID
	}
	return Reply{Status: status, Body: WriteAnswer{ID: res.ID, Version: res.Version}, Headers: headers}, res, nil
}
