package team

import (
	"errors"
	"strings"
)

// Rule violations. The HTTP edge maps ErrNotFound and ErrNotMember to 404,
// ErrForbidden to 403 and the others to 409.
var (
	ErrNotFound      = errors.New("team not found")
	ErrAlreadyExists = errors.New("team already exists")
	ErrUserNotActive = errors.New("only an active user may join a team")
	ErrLastOwner     = errors.New("the last owner cannot leave the team or stop being an owner")
	ErrNotMember     = errors.New("the user is not a member of the team")
	ErrForbidden     = errors.New("not allowed on this team")
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
	return "invalid team command: " + strings.Join(parts, "; ")
}

type validation []FieldError

func (v *validation) add(field, msg string) { *v = append(*v, FieldError{field, msg}) }

func (v validation) err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Fields: v}
}
