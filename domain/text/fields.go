package text

import "strings"

// FieldError is one invalid field of a command.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a command: the edge
// answers it as a 400 naming each field.
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

// Fields collects the invalid fields of one command.
type Fields []FieldError

// Add records that field is invalid, and why.
func (v *Fields) Add(field, msg string) { *v = append(*v, FieldError{field, msg}) }

// Err returns the ValidationError of the fields collected, or nil when
// there are none.
func (v Fields) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Fields: v}
}
