package es

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrConflict: another writer appended at the same version first, or a
	// guard release found the value held by someone else (*ReleaseError).
	ErrConflict = errors.New("version conflict")
	// ErrBusy: concurrent operations held some of the items of an append
	// (DynamoDB's TransactionConflict), which was cancelled. Nothing was
	// written and nothing is known about the versions: the same append may
	// succeed if sent again. It is not a version conflict.
	ErrBusy = errors.New("store busy")
	// ErrDuplicate: a unique value is already held by another aggregate.
	ErrDuplicate = errors.New("duplicate value")
	// ErrIdempotencyReplay: the store already holds a record for this key.
	ErrIdempotencyReplay = errors.New("idempotency key already used")
	// ErrIdempotencyMismatch: the key was first used for another request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused for another request")
	// ErrPreconditionFailed: the caller's expected version is not the current one.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrTooLarge: an append exceeds a store limit (item or transaction size, item count).
	ErrTooLarge = errors.New("append too large")
	// ErrUnknownEvent: a stored type name or schema version has no codec or upcaster.
	ErrUnknownEvent = errors.New("unknown event type")
	// ErrInvalidAppend: an append request is malformed (versions not contiguous, ids missing).
	ErrInvalidAppend = errors.New("invalid append")
)

// DuplicateError names the unique value that is taken.
type DuplicateError struct {
	Key string // "email#alice@example.com"
}

func (e *DuplicateError) Error() string { return fmt.Sprintf("duplicate value %q", e.Key) }

// Unwrap makes errors.Is(err, ErrDuplicate) hold.
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// Field is the kind of value that is taken: the key's prefix before '#'.
func (e *DuplicateError) Field() string {
	field, _, _ := strings.Cut(e.Key, "#")
	return field
}

// ReleaseError: an append gave up a unique value that another aggregate
// holds. The guards then disagree with the aggregate's own history (its
// state says it holds the value), which no retry resolves. It wraps
// ErrConflict, as the store contract has it.
type ReleaseError struct {
	Key string // "email#alice@example.com"
}

func (e *ReleaseError) Error() string {
	return fmt.Sprintf("release of %q held by another owner", e.Key)
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ReleaseError) Unwrap() error { return ErrConflict }

// PreconditionError carries the current version when an expected version did not match.
type PreconditionError struct {
	Expected, Current int64
}

func (e *PreconditionError) Error() string {
	return fmt.Sprintf("expected version %d, current is %d", e.Expected, e.Current)
}

// Unwrap makes errors.Is(err, ErrPreconditionFailed) hold.
func (e *PreconditionError) Unwrap() error { return ErrPreconditionFailed }

// LimitError says which store limit an append exceeds.
type LimitError struct {
	What        string // "item size", "transaction size", "transaction items"
	Size, Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s %d exceeds the limit of %d", e.What, e.Size, e.Limit)
}

// Unwrap makes errors.Is(err, ErrTooLarge) hold.
func (e *LimitError) Unwrap() error { return ErrTooLarge }
