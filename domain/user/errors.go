package user

import (
	"errors"

	"github.com/chronicle-go/chronicle/domain/text"
)

// Rule violations. The HTTP edge maps ErrNotFound to 404 and the others to 409.
var (
	ErrNotFound         = errors.New("user not found")
	ErrAlreadyExists    = errors.New("user already exists")
	ErrDeleted          = errors.New("user is deleted")
	ErrAlreadySuspended = errors.New("user is already suspended")
	ErrNotSuspended     = errors.New("user is not suspended")
	ErrForgotten        = errors.New("user is forgotten")
)

// FieldError is one invalid field of a command.
type FieldError = text.FieldError

// ValidationError lists every invalid field of a command.
type ValidationError = text.ValidationError

// validation collects field errors; Err returns nil when there are none.
type validation = text.Fields
