package user

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/chronicle-go/chronicle/domain/text"
)

// checkNameByRule is checkName as the rules read, one pass per rule: the
// reference the one-pass checkName must agree with.
func checkNameByRule(name string) string {
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		return "must be valid UTF-8"
	case n == 0:
		return "must not be empty"
	case n > MaxNameLength:
		return "must be at most 200 characters"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "must not contain control characters"
	case strings.IndexFunc(name, text.IsBidiControl) >= 0:
		return "must not contain bidirectional override or isolate characters"
	case strings.ContainsRune(name, utf8.RuneError):
		return "must be valid UTF-8 (contains U+FFFD)"
	}
	return ""
}

var nameSeeds = []string{
	"", "Ada", "Ada Lovelace", "é", strings.Repeat("é", 200), strings.Repeat("é", 201), strings.Repeat("a", 201),
	"a\x00b", "a\tb", "a\x7fb", "a\u0085b", "a\u009fb", "a\u00a0b", "a\u202eb", "a\u2066b", "a\u2069b", "a\u200eb",
	"a\ufffdb", "a\xffb", "\xc3", "\xed\xa0\x80", "a\u202e\x01", "\ufffd\u202e", "\xff\u202e", strings.Repeat("é", 201) + "\x01",
	"日本語", "😀", "\U0010FFFF",
}

func TestCheckNameAgreesWithTheRules(t *testing.T) {
	for _, name := range nameSeeds {
		if got, want := checkName(name), checkNameByRule(name); got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
}

func FuzzCheckName(f *testing.F) {
	for _, name := range nameSeeds {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := checkName(name), checkNameByRule(name); got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	})
}
