package apigw

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// ProblemContentType is the media type of every error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// problemTypePrefix starts the type URI of every problem. The URIs name the
// kind of problem; they are not meant to be dereferenced.
const problemTypePrefix = "urn:chronicle:problem:"

// RetryAfterSeconds is the Retry-After of back-pressure answers (Throttled,
// Conflict, Unavailable): DynamoDB refills a partition's capacity every second, and an
// aggregate's writers that kept colliding for the retry budget do better
// spread over the next one.
const RetryAfterSeconds = "1"

// Kind is a class of error: what decides its status, its problem type and
// title, and the headers every answer of the kind carries.
type Kind struct {
	name   string // in Error's text, for the log
	slug   string // the problem type is problemTypePrefix + slug
	title  string
	status int
}

// Status is the HTTP status of the kind's answers.
func (k Kind) Status() int { return k.status }

// The kinds of errors, by what the client can do about them.
var (
	// Validation: a field, parameter or header is invalid (Error.Fields
	// names it), or the body is not the JSON object the route takes. 400.
	Validation = Kind{"bad request", "validation", "Invalid request", http.StatusBadRequest}
	// Unauthenticated: no verified caller. 401, WWW-Authenticate: Bearer.
	Unauthenticated = Kind{"unauthenticated", "unauthenticated", "Unauthorized", http.StatusUnauthorized}
	// Forbidden: the caller may not do this. 403.
	Forbidden = Kind{"forbidden", "forbidden", "Forbidden", http.StatusForbidden}
	// NotFound: the aggregate the request names does not exist. 404.
	NotFound = Kind{"not found", "not-found", "Not found", http.StatusNotFound}
	// NoRoute: the API has no such resource (or file). 404.
	NoRoute = Kind{"no such route", "no-route", "Not found", http.StatusNotFound}
	// MethodNotAllowed: the resource has no such method (Error.Allow
	// lists those it has). 405, Allow.
	MethodNotAllowed = Kind{"method not allowed", "method-not-allowed", "Method not allowed", http.StatusMethodNotAllowed}
	// RuleViolated: the aggregate's rules refuse the command in its
	// current state; retrying does not help. 409.
	RuleViolated = Kind{"rule violated", "rule-violated", "Conflict", http.StatusConflict}
	// Duplicate: a unique value (Error.Fields names it) is taken. 409.
	Duplicate = Kind{"duplicate", "duplicate", "Conflict", http.StatusConflict}
	// Conflict: concurrent writers won the retry budget; retrying may
	// help. 409, Retry-After.
	Conflict = Kind{"conflict", "conflict", "Conflict", http.StatusConflict}
	// PreconditionFailed: If-Match names another version
	// (Error.CurrentVersion is the current one). 412, ETag.
	PreconditionFailed = Kind{"precondition failed", "precondition-failed", "Precondition failed", http.StatusPreconditionFailed}
	// TooLarge: the body, or the change, is larger than accepted. 413.
	TooLarge = Kind{"body too large", "too-large", "Content too large", http.StatusRequestEntityTooLarge}
	// UnsupportedMedia: the body is not declared as JSON. 415, Accept.
	UnsupportedMedia = Kind{"unsupported media type", "unsupported-media-type", "Unsupported media type", http.StatusUnsupportedMediaType}
	// IdempotencyKeyReused: an Idempotency-Key came back with another
	// request. 422.
	IdempotencyKeyReused = Kind{"idempotency key reused", "idempotency-key-reused", "Idempotency key reused", http.StatusUnprocessableEntity}
	// Throttled: the store refused the calls for its throughput. 503,
	// Retry-After.
	Throttled = Kind{"throttled", "throttled", "Service unavailable", http.StatusServiceUnavailable}
	// Unavailable: a dependency does not answer, or fails on its side,
	// after the SDK's retries. 503, Retry-After.
	Unavailable = Kind{"service unavailable", "unavailable", "Service unavailable", http.StatusServiceUnavailable}
	// Internal: anything else; the detail says nothing about the cause,
	// which the log holds. 500.
	Internal = Kind{"internal", "internal", "Internal server error", http.StatusInternalServerError}
)

// FieldError names a field (a body member, query parameter or header) at
// fault and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error of a kind, with what the client needs to fix its
// request.
type Error struct {
	Kind           Kind
	Detail         string
	Fields         []FieldError
	Allow          []string // MethodNotAllowed: the resource's methods
	CurrentVersion *int64   // PreconditionFailed: the aggregate's version
	Cause          error    // for the log only
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Kind.name + ": " + e.Detail + ": " + e.Cause.Error()
	}
	return e.Kind.name + ": " + e.Detail
}

// BadRequest is a Validation error.
func BadRequest(detail string, fields ...FieldError) error {
	return &Error{Kind: Validation, Detail: detail, Fields: fields}
}

// BadField is a 400 about one field (a body field, query parameter or header).
func BadField(field, message string) error {
	return BadRequest("The request has an invalid field.", FieldError{Field: field, Message: message})
}

// Deny is a Forbidden error.
func Deny(detail string) error { return &Error{Kind: Forbidden, Detail: detail} }

// Problem is an RFC 9457 problem details object. CurrentVersion is the
// extension member of a 412.
type Problem struct {
	Type           string       `json:"type"`
	Title          string       `json:"title"`
	Status         int          `json:"status"`
	Detail         string       `json:"detail,omitempty"`
	Errors         []FieldError `json:"errors,omitempty"`
	CurrentVersion *int64       `json:"currentVersion,omitempty"`

	Headers map[string]string `json:"-"` // Allow, WWW-Authenticate, ETag, Retry-After, Accept
}

// Errors is how an API's errors become problems.
type Errors struct {
	// Noun names the API's aggregate in the details of the kernel's
	// errors: "user" gives "The user kept changing concurrently".
	Noun string
	// Classify gives the kind of an error of the API's own (its domain's
	// rules, its stores' errors), nil for one it does not know, which the
	// kernel's mapping then classifies. It runs before that mapping, so
	// that an API may word a kernel error its own way.
	Classify func(err error) *Error
}

// Problem decides the HTTP status of every error a handler returns: the one
// place where errors become statuses. An *Error carries its kind; then come
// the API's own errors (Classify), then the kernel's and the store's. An
// error none knows is a 500 whose detail says nothing about its cause; the
// caller logs it.
func (x Errors) Problem(err error) Problem {
	var e *Error
	if errors.As(err, &e) {
		return e.Problem()
	}
	if x.Classify != nil {
		if e := x.Classify(err); e != nil {
			return e.Problem()
		}
	}
	return x.kernelError(err).Problem()
}

// kernelError gives the kind of the kernel's errors and of DynamoDB's
// throttling; Internal for any other error.
func (x Errors) kernelError(err error) *Error {
	noun := x.Noun
	var (
		dup     *es.DuplicateError
		pre     *es.PreconditionError
		release *es.ReleaseError
	)
	switch {
	case errors.As(err, &dup):
		return &Error{Kind: Duplicate, Detail: "The " + dup.Field() + " is already taken by another " + noun + ".",
			Fields: []FieldError{{Field: dup.Field(), Message: "is already taken by another " + noun}}}

	case errors.As(err, &pre):
		cur := pre.Current
		return &Error{Kind: PreconditionFailed, CurrentVersion: &cur,
			Detail: "If-Match names version " + strconv.FormatInt(pre.Expected, 10) + " but the " + noun + " is at version " + strconv.FormatInt(cur, 10) + "; nothing was written."}

	case errors.Is(err, es.ErrIdempotencyMismatch):
		return &Error{Kind: IdempotencyKeyReused,
			Detail: "This Idempotency-Key was first used with another route or body; use a new key for a new request."}

	case errors.Is(err, es.ErrTooLarge):
		return &Error{Kind: TooLarge, Detail: "The change is larger than the event store accepts."}

	case errors.As(err, &release):
		// Before ErrConflict, which it wraps: the unique values disagree
		// with the aggregate's history, which the client can neither
		// cause nor fix by retrying. An operator reads the log.
		return &Error{Kind: Internal}

	case throttled(err):
		// DynamoDB refused the call for its throughput (a hot partition,
		// or on-demand scaling behind a burst) and the SDK's own retries
		// ran out: back-pressure, not a failure of the service.
		return &Error{Kind: Throttled,
			Detail: "The store is taking more writes for this " + noun + " (or this table) than it accepts right now. Retry after Retry-After seconds, with the same Idempotency-Key if the request had one."}

	case unavailable(err):
		// DynamoDB failed on its side (a 5xx) or did not answer, and the
		// SDK's retries ran out: the cloud's weather, not this request's
		// fault, so a 503 the client retries rather than a 500. A write's
		// outcome is then unknown: the retry's Idempotency-Key answers
		// it without applying the change twice.
		return &Error{Kind: Unavailable,
			Detail: "The store did not answer, or failed on its side; a change may or may not have been made. Retry after Retry-After seconds with the same Idempotency-Key (without one, read the " + noun + " first)."}

	case errors.Is(err, es.ErrBusy):
		// Still busy when the retry budget ran out. Never a 412: the
		// version is not known to differ from If-Match.
		return &Error{Kind: Conflict,
			Detail: "Concurrent requests kept holding this " + noun + "'s records; nothing was written. Retry the request."}

	case errors.Is(err, es.ErrConflict), errors.Is(err, es.ErrIdempotencyReplay):
		return &Error{Kind: Conflict, Detail: "The " + noun + " kept changing concurrently; retry the request."}
	}
	return &Error{Kind: Internal}
}

// Problem is the problem answer of e: its kind's type, title, status and
// headers, with e's detail and fields.
func (e *Error) Problem() Problem {
	k := e.Kind
	if k.slug == "" || k == Internal {
		return InternalProblem()
	}
	p := Problem{Type: problemTypePrefix + k.slug, Title: k.title, Status: k.status, Detail: e.Detail, Errors: e.Fields}
	switch k {
	case Unauthenticated:
		p.Headers = map[string]string{"WWW-Authenticate": "Bearer"}
	case MethodNotAllowed:
		p.Headers = map[string]string{"Allow": strings.Join(e.Allow, ", ")}
	case UnsupportedMedia:
		p.Headers = map[string]string{"Accept": JSONContentType}
	case Throttled, Conflict, Unavailable:
		p.Headers = map[string]string{"Retry-After": RetryAfterSeconds}
	case PreconditionFailed:
		if e.CurrentVersion != nil {
			cur := *e.CurrentVersion
			p.CurrentVersion = &cur
			p.Headers = map[string]string{"ETag": ETag(cur)}
		}
	}
	return p
}

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

// unavailableCodes are the error codes of a failure on the service's side
// (HTTP 5xx) that the SDK retried and gave up on.
var unavailableCodes = map[string]bool{
	"InternalServerError": true, // DynamoDB
	"ServiceUnavailable":  true,
	"InternalFailure":     true, // the AWS-wide code
}

// unavailable reports a dependency that failed on its side or did not
// answer: a 5xx code of unavailableCodes, a request the SDK could not send
// (a reset, a refused connection, DNS) or one cut by a deadline (the
// function's own, or the append window's).
func unavailable(err error) bool {
	var (
		api  smithy.APIError
		send *smithyhttp.RequestSendError
	)
	switch {
	case errors.As(err, &api):
		return unavailableCodes[api.ErrorCode()]
	case errors.As(err, &send), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

// InternalProblem is the answer of a server error.
func InternalProblem() Problem {
	return Problem{Type: problemTypePrefix + "internal", Title: "Internal server error", Status: http.StatusInternalServerError,
		Detail: "The request could not be completed. The X-Request-Id of this answer identifies it in the logs."}
}

// ETag is the entity tag of an aggregate's version.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }
