package user

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the HTTP contract.
const (
	MaxNameLength   = 200  // characters, after trimming
	MaxEmailLength  = 254  // RFC 5321 path limit
	MaxReasonLength = 1000 // characters
	MaxSubLength    = 256
)

// normalizeName trims a name; it is valid when 1..200 characters of
// printable text. Bidirectional embedding, override and isolate controls
// (U+202A..U+202E, U+2066..U+2069) are refused: they make a name display as
// another (the "Trojan Source" trick), and no script needs them in a plain
// name, the implicit bidi algorithm orders Arabic and Hebrew by itself.
// U+FFFD is refused too: it is what invalid UTF-8 becomes on the way in
// (Lambda's JSON decoding), so storing it would keep a mangled name.
func normalizeName(v *validation, field, name string) string {
	name = strings.TrimSpace(name)
	if msg := checkName(name); msg != "" {
		v.add(field, msg)
	}
	return name
}

// checkName returns what is wrong with a trimmed name, or "": the rules
// above, checked in one pass over the name (every command goes through it).
func checkName(name string) string {
	n := 0
	var invalid, control, bidi, replacement bool
	for i, r := range name {
		n++
		switch {
		case r < utf8.RuneSelf:
			control = control || unicode.IsControl(r)
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(name[i:]); size == 1 {
				invalid = true
			} else {
				replacement = true // U+FFFD itself
			}
		default:
			control = control || unicode.IsControl(r)
			bidi = bidi || isBidiControl(r)
		}
	}
	switch {
	case invalid:
		return "must be valid UTF-8"
	case n == 0:
		return "must not be empty"
	case n > MaxNameLength:
		return "must be at most 200 characters"
	case control:
		return "must not contain control characters"
	case bidi:
		return "must not contain bidirectional override or isolate characters"
	case replacement:
		return "must be valid UTF-8 (contains U+FFFD)"
	}
	return ""
}

// isBidiControl reports whether r is an explicit bidirectional embedding,
// override or isolate control (the marks U+200E/U+200F stay allowed).
func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// normalizeEmail lower-cases an email and checks it is a bare RFC 5322
// addr-spec of printable ASCII (no display name, no comments, no look-alike
// Unicode), at most 254 characters with a local part of at most 64.
func normalizeEmail(v *validation, field, email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	if !validEmail(email) {
		v.add(field, "must be a valid email address, like alice@example.com")
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
	reason = strings.TrimSpace(reason)
	switch {
	case required && reason == "":
		v.add("reason", "must not be empty")
	case !utf8.ValidString(reason):
		v.add("reason", "must be valid UTF-8")
	case utf8.RuneCountInString(reason) > MaxReasonLength:
		v.add("reason", "must be at most 1000 characters")
	}
	return reason
}

func normalizeSub(v *validation, sub string) string {
	sub = strings.TrimSpace(sub)
	if len(sub) > MaxSubLength || strings.IndexFunc(sub, func(r rune) bool { return r <= ' ' || r == '#' || r > '~' }) >= 0 {
		v.add("sub", "must be at most 256 printable ASCII characters without spaces or '#'")
	}
	return sub
}
