package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
	"github.com/chronicle-go/chronicle/infra/pii"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// problemContentType is the media type of every error answer (RFC 9457).
const problemContentType = "application/problem+json"

// problemTypePrefix starts the type URI of every problem. The URIs name the
// kind of problem; they are not meant to be dereferenced.
const problemTypePrefix = "urn:chronicle:problem:"

// problem is an RFC 9457 problem details object. CurrentVersion is the
// extension member of a 412.
type problem struct {
	Type           string            `json:"type"`
	Title          string            `json:"title"`
	Status         int               `json:"status"`
	Detail         string            `json:"detail,omitempty"`
	Errors         []user.FieldError `json:"errors,omitempty"`
	CurrentVersion *int64            `json:"currentVersion,omitempty"`

	headers map[string]string // Allow, WWW-Authenticate, ETag
}

// Kinds of edge errors: problems with the request itself, found before any
// command or query runs. problemFor gives each its status.
var (
	errBadRequest       = errors.New("bad request")
	errUnauthenticated  = errors.New("unauthenticated")
	errForbidden        = errors.New("forbidden")
	errNoRoute          = errors.New("no such route")
	errMethodNotAllowed = errors.New("method not allowed")
	errBodyTooLarge     = errors.New("body too large")
	errUnsupportedMedia = errors.New("unsupported media type")
	errUnavailable      = errors.New("service unavailable")
)

// edgeError is an edge error with what the client needs to fix its request.
type edgeError struct {
	kind   error
	detail string
	fields []user.FieldError
	allow  []string // methods of the resource, for a 405
	cause  error    // for the log only
}

func (e *edgeError) Error() string {
	if e.cause != nil {
		return e.kind.Error() + ": " + e.detail + ": " + e.cause.Error()
	}
	return e.kind.Error() + ": " + e.detail
}
func (e *edgeError) Unwrap() error { return e.kind }

func badRequest(detail string, fields ...user.FieldError) error {
	return &edgeError{kind: errBadRequest, detail: detail, fields: fields}
}

// badField is a 400 about one field (a body field, query parameter or header).
func badField(field, message string) error {
	return badRequest("The request has an invalid field.", user.FieldError{Field: field, Message: message})
}

func forbidden(detail string) error { return &edgeError{kind: errForbidden, detail: detail} }

// problemFor decides the HTTP status of every error the handlers return: the
// one place where errors become statuses. An error it does not know is a 500
// whose detail says nothing about its cause; the caller logs it.
func problemFor(err error) problem {
	var (
		edge    *edgeError
		inval   *user.ValidationError
		dup     *es.DuplicateError
		pre     *es.PreconditionError
		release *es.ReleaseError
	)
	switch {
	case errors.As(err, &edge):
		return edgeProblem(edge)

	case errors.As(err, &inval):
		return problem{Type: problemTypePrefix + "validation", Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: "One or more fields are invalid.", Errors: inval.Fields}

	case errors.Is(err, readmodel.ErrBadCursor):
		return problem{Type: problemTypePrefix + "validation", Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: "The cursor is not one this query handed out.",
			Errors: []user.FieldError{{Field: "cursor", Message: "must be a nextCursor of the same query"}}}

	case errors.Is(err, user.ErrNotFound):
		return problem{Type: problemTypePrefix + "not-found", Title: "Not found", Status: http.StatusNotFound,
			Detail: "There is no such user."}

	case errors.Is(err, user.ErrForgotten), errors.Is(err, pii.ErrForgotten):
		return ruleProblem("The user is forgotten: its personal data is erased and it accepts no further command.")
	case errors.Is(err, user.ErrDeleted):
		return ruleProblem("The user is deleted and accepts no further command.")
	case errors.Is(err, user.ErrAlreadySuspended):
		return ruleProblem("The user is already suspended.")
	case errors.Is(err, user.ErrNotSuspended):
		return ruleProblem("The user is not suspended, so it cannot be reactivated.")
	case errors.Is(err, user.ErrAlreadyExists):
		return ruleProblem("A user with this id already exists.")

	case errors.As(err, &dup):
		field, msg := dup.Field(), "is already taken by another user"
		detail := "The " + field + " is already taken by another user."
		if field == "sub" {
			msg, detail = "is already linked to a user", "This identity is already linked to a user: one user per identity."
		}
		return problem{Type: problemTypePrefix + "duplicate", Title: "Conflict", Status: http.StatusConflict,
			Detail: detail, Errors: []user.FieldError{{Field: field, Message: msg}}}

	case errors.As(err, &pre):
		cur := pre.Current
		return problem{Type: problemTypePrefix + "precondition-failed", Title: "Precondition failed",
			Status: http.StatusPreconditionFailed, CurrentVersion: &cur,
			Detail:  "If-Match names version " + strconv.FormatInt(pre.Expected, 10) + " but the user is at version " + strconv.FormatInt(cur, 10) + "; nothing was written.",
			headers: map[string]string{"ETag": etag(cur)}}

	case errors.Is(err, es.ErrIdempotencyMismatch):
		return problem{Type: problemTypePrefix + "idempotency-key-reused", Title: "Idempotency key reused",
			Status: http.StatusUnprocessableEntity,
			Detail: "This Idempotency-Key was first used with another route or body; use a new key for a new request."}

	case errors.Is(err, es.ErrTooLarge):
		return problem{Type: problemTypePrefix + "too-large", Title: "Content too large", Status: http.StatusRequestEntityTooLarge,
			Detail: "The change is larger than the event store accepts."}

	case errors.As(err, &release):
		// Before ErrConflict, which it wraps: the unique values disagree
		// with the user's history, which the client can neither cause nor
		// fix by retrying. An operator reads the log.
		return internalProblem()

	case throttled(err):
		// DynamoDB refused the call for its throughput (a hot partition,
		// or on-demand scaling behind a burst) and the SDK's own retries
		// ran out: back-pressure, not a failure of the service.
		return problem{Type: problemTypePrefix + "throttled", Title: "Service unavailable", Status: http.StatusServiceUnavailable,
			Detail:  "The store is taking more writes for this user (or this table) than it accepts right now. Retry after Retry-After seconds, with the same Idempotency-Key if the request had one.",
			headers: map[string]string{"Retry-After": retryAfterSeconds}}

	case errors.Is(err, es.ErrBusy):
		// Still busy when the retry budget ran out. Never a 412: the
		// version is not known to differ from If-Match.
		return problem{Type: problemTypePrefix + "conflict", Title: "Conflict", Status: http.StatusConflict,
			Detail:  "Concurrent requests kept holding this user's records; nothing was written. Retry the request.",
			headers: map[string]string{"Retry-After": retryAfterSeconds}}

	case errors.Is(err, es.ErrConflict), errors.Is(err, es.ErrIdempotencyReplay):
		return problem{Type: problemTypePrefix + "conflict", Title: "Conflict", Status: http.StatusConflict,
			Detail:  "The user kept changing concurrently; retry the request.",
			headers: map[string]string{"Retry-After": retryAfterSeconds}}

	default:
		return internalProblem()
	}
}

// retryAfterSeconds is the Retry-After of back-pressure answers: DynamoDB
// refills a partition's capacity every second, and a user's writers that
// kept colliding for the retry budget do better spread over the next one.
const retryAfterSeconds = "1"

// throttleCodes are the error codes DynamoDB throttles with.
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
}

// throttled reports DynamoDB throttling: an error code of throttleCodes, or
// a transaction cancelled because one of its items was throttled.
func throttled(err error) bool {
	if canceled, ok := attr.Canceled(err); ok {
		return canceled.Throttled > 0
	}
	var api smithy.APIError
	return errors.As(err, &api) && throttleCodes[api.ErrorCode()]
}

func internalProblem() problem {
	return problem{Type: problemTypePrefix + "internal", Title: "Internal server error", Status: http.StatusInternalServerError,
		Detail: "The request could not be completed. The X-Request-Id of this answer identifies it in the logs."}
}

func ruleProblem(detail string) problem {
	return problem{Type: problemTypePrefix + "rule-violated", Title: "Conflict", Status: http.StatusConflict, Detail: detail}
}

func edgeProblem(e *edgeError) problem {
	p := problem{Detail: e.detail, Errors: e.fields}
	switch {
	case errors.Is(e.kind, errBadRequest):
		p.Type, p.Title, p.Status = problemTypePrefix+"validation", "Invalid request", http.StatusBadRequest
	case errors.Is(e.kind, errUnauthenticated):
		p.Type, p.Title, p.Status = problemTypePrefix+"unauthenticated", "Unauthorized", http.StatusUnauthorized
		p.headers = map[string]string{"WWW-Authenticate": "Bearer"}
	case errors.Is(e.kind, errForbidden):
		p.Type, p.Title, p.Status = problemTypePrefix+"forbidden", "Forbidden", http.StatusForbidden
	case errors.Is(e.kind, errNoRoute):
		p.Type, p.Title, p.Status = problemTypePrefix+"no-route", "Not found", http.StatusNotFound
	case errors.Is(e.kind, errMethodNotAllowed):
		p.Type, p.Title, p.Status = problemTypePrefix+"method-not-allowed", "Method not allowed", http.StatusMethodNotAllowed
		p.headers = map[string]string{"Allow": strings.Join(e.allow, ", ")}
	case errors.Is(e.kind, errBodyTooLarge):
		p.Type, p.Title, p.Status = problemTypePrefix+"too-large", "Content too large", http.StatusRequestEntityTooLarge
	case errors.Is(e.kind, errUnsupportedMedia):
		p.Type, p.Title, p.Status = problemTypePrefix+"unsupported-media-type", "Unsupported media type", http.StatusUnsupportedMediaType
		p.headers = map[string]string{"Accept": jsonContentType}
	case errors.Is(e.kind, errUnavailable):
		p.Type, p.Title, p.Status = problemTypePrefix+"unavailable", "Service unavailable", http.StatusServiceUnavailable
	default:
		return internalProblem()
	}
	return p
}
