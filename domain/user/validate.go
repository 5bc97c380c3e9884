package user

import (
	"net/mail"
	"strings"

	"github.com/chronicle-go/chronicle/domain/text"
)

// Limits of the HTTP contract.
const (
	MaxNameLength   = 200                  // characters, after trimming
	MaxEmailLength  = 254                  // RFC 5321 path limit
	MaxReasonLength = text.MaxReasonLength // characters
	MaxSubLength    = 256
)

// normalizeName trims a name; it is valid when 1..200 characters of
// printable text, without the controls text.CheckName refuses.
func normalizeName(v *validation, field, name string) string {
	name = strings.TrimSpace(name)
	if msg := checkName(name); msg != "" {
		v.Add(field, msg)
	}
	return name
}

// checkName returns what is wrong with a trimmed name, or "": the rules
// every name of the service follows (text.CheckName).
func checkName(name string) string { return text.CheckName(name, MaxNameLength) }

// normalizeEmail lower-cases an email and checks it is a bare RFC 5322
// addr-spec of printable ASCII (no display name, no comments, no look-alike
// Unicode), at most 254 characters with a local part of at most 64.
func normalizeEmail(v *validation, field, email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	if !validEmail(email) {
		v.Add(field, "must be a valid email address, like alice@example.com")
	}
	return email
}

func validEmail(email string) bool {
	if email == "" || len(email) > MaxEmailLength {
		return false
	}
	for i := 0; i < len(email); i++ {
		if email[i] <= ' ' || email[i] > '~' {
			return false
		}
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return false
	}
	local, domain, ok := strings.Cut(email, "@")
	return ok && len(local) <= 64 && domain != "" && !strings.HasPrefix(domain, "[")
}

func normalizeReason(v *validation, reason string, required bool) string {
	reason, msg := text.CheckReason(reason, required)
	if msg != "" {
		v.Add("reason", msg)
	}
	return reason
}

func normalizeSub(v *validation, sub string) string {
	sub = strings.TrimSpace(sub)
	if len(sub) > MaxSubLength || strings.IndexFunc(sub, func(r rune) bool { return r <= ' ' || r == '#' || r > '~' }) >= 0 {
		v.Add("sub", "must be at most 256 printable ASCII characters without spaces or '#'")
	}
	return sub
}
