package team

import (
	"errors"

	"github.com/chronicle-go/chronicle/domain/text"
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
type FieldError = text.FieldError

// ValidationError lists every invalid field of a command.
type ValidationError = text.ValidationError

// validation collects field errors; Err returns nil when there are none.
type validation = text.Fields
