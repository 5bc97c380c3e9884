package text_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/domain/text"
)

func TestCheckName(t *testing.T) {
	for name, want := range map[string]string{
		"Ada":                   "",
		"":                      "must not be empty",
		strings.Repeat("a", 11): "must be at most 10 characters",
		"a\u202Eb":              "must not contain bidirectional override or isolate characters",
		"a\tb":                  "must not contain control characters",
		"a\xffb":                "must be valid UTF-8",
		"a\uFFFDb":              "must be valid UTF-8 (contains U+FFFD)",
		strings.Repeat("é", 10): "",
	} {
		if got := text.CheckName(name, 10); got != want {
			t.Errorf("CheckName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestCheckReason(t *testing.T) {
	if r, msg := text.CheckReason("  why  ", true); r != "why" || msg != "" {
		t.Errorf("%q %q", r, msg)
	}
	if _, msg := text.CheckReason(" ", true); msg != "must not be empty" {
		t.Errorf("required: %q", msg)
	}
	if _, msg := text.CheckReason(" ", false); msg != "" {
		t.Errorf("optional: %q", msg)
	}
	if _, msg := text.CheckReason(strings.Repeat("x", text.MaxReasonLength+1), false); msg == "" {
		t.Error("a reason over the limit passed")
	}
}

func TestFields(t *testing.T) {
	var v text.Fields
	if v.Err() != nil {
		t.Fatal("no field, yet an error")
	}
	v.Add("name", "must not be empty")
	v.Add("role", "is unknown")
	var ve *text.ValidationError
	if err := v.Err(); !errors.As(err, &ve) || len(ve.Fields) != 2 || err.Error() != "invalid command: name: must not be empty; role: is unknown" {
		t.Fatalf("%v", err)
	}
}
