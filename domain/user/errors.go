package user

import (
	"errors"
	"strings"
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
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a command.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid command: " + strings.Join(parts, "; ")
}

// validation collects field errors; err returns nil when there are none.
type validation []FieldError

func (v *validation) add(field, msg string) { *v = append(*v, FieldError{field, msg}) }

func (v validation) err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Fields: v}
}
