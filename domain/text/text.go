// Package text holds the checks of human-written text fields that every
// aggregate applies alike: names shown to other people, and reasons kept
// in the audit trail. They live apart from any one aggregate so that a
// team's name and a user's name are held to the same rules.
package text

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckName returns what is wrong with a trimmed name, or "": a name is 1
// to max characters of printable text. Bidirectional embedding, override
// and isolate controls (U+202A..U+202E, U+2066..U+2069) are refused: they
// make a name display as another (the "Trojan Source" trick), and no script
// needs them in a plain name; the implicit bidi algorithm orders Arabic and
// Hebrew by itself. U+FFFD is refused too: it is what invalid UTF-8 becomes
// on the way in (Lambda's JSON decoding), so storing it would keep a
// mangled name. It checks in one pass over the name: every command that
// carries a name goes through it.
func CheckName(name string, max int) string {
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
			bidi = bidi || IsBidiControl(r)
		}
	}
	switch {
	case invalid:
		return "must be valid UTF-8"
	case n == 0:
		return "must not be empty"
	case n > max:
		return "must be at most " + strconv.Itoa(max) + " characters"
	case control:
		return "must not contain control characters"
	case bidi:
		return "must not contain bidirectional override or isolate characters"
	case replacement:
		return "must be valid UTF-8 (contains U+FFFD)"
	}
	return ""
}

// IsBidiControl reports whether r is an explicit bidirectional embedding,
// override or isolate control (the marks U+200E/U+200F stay allowed).
func IsBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// MaxReasonLength bounds a reason, in characters.
const MaxReasonLength = 1000

// CheckReason trims a reason and returns it with what is wrong with it, or
// "": at most MaxReasonLength characters of valid UTF-8, and not empty when
// required.
func CheckReason(reason string, required bool) (string, string) {
	reason = strings.TrimSpace(reason)
	switch {
	case required && reason == "":
		return reason, "must not be empty"
	case !utf8.ValidString(reason):
		return reason, "must be valid UTF-8"
	case utf8.RuneCountInString(reason) > MaxReasonLength:
		return reason, "must be at most 1000 characters"
	}
	return reason, ""
}
