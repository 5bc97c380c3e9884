// Package esjson decodes the JSON of events whose fields are all strings
// without reflection, and exactly as encoding/json decodes it into a struct
// of string fields: what it accepts, what it refuses and what it produces.
// A replay decodes every event of a stream, and encoding/json's reflection
// was most of its cost.
//
// What "exactly" covers: one JSON value, optionally surrounded by
// whitespace; null leaves every field as it is; any other value but an
// object is an error. Members are matched to fields by name, exactly or
// else without regard to case (as bytes.EqualFold, the Kelvin sign and
// the long s included); the last of duplicate members wins; null leaves a
// field as it is; a number, boolean, object or array for a string field is
// an error; members of no field are checked and skipped. Strings are
// unescaped (a lone or broken surrogate becomes U+FFFD) and invalid UTF-8
// is replaced, byte by byte, with U+FFFD. Nesting deeper than 10,000 is an
// error. Only the errors' wording differs from encoding/json's.
package esjson

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Field is a string field of the decoded value: the member whose name
// matches Name is decoded into *Dst.
type Field struct {
	Name string
	Dst  *string
}

// maxDepth is encoding/json's bound on nesting.
const maxDepth = 10000

// DecodeStrings decodes data, one JSON object (or null), into fields.
func DecodeStrings(data []byte, fields ...Field) error {
	s := scanner{data: data}
	s.space()
	if s.pos == len(data) {
		return s.fail("unexpected end of JSON input")
	}
	switch data[s.pos] {
	case '{':
		if err := s.object(fields); err != nil {
			return err
		}
	case 'n':
		if err := s.literal("null"); err != nil {
			return err
		}
	default:
		if err := s.skip(1); err != nil {
			return err
		}
		return fmt.Errorf("esjson: cannot decode a JSON %s into an object", kind(data[s.start:s.pos]))
	}
	s.space()
	if s.pos != len(data) {
		return s.fail("data after the top-level value")
	}
	return nil
}

type scanner struct {
	data  []byte
	pos   int
	start int // where the last skipped value began
}

func (s *scanner) fail(what string) error {
	return fmt.Errorf("esjson: invalid JSON at offset %d: %s", s.pos, what)
}

func (s *scanner) space() {
	data, i := s.data, s.pos
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	s.pos = i
}

// plainByte tells the bytes a string holds as they are: printable ASCII
// but the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// expect consumes c, after whitespace.
func (s *scanner) expect(c byte) error {
	s.space()
	if s.pos == len(s.data) {
		return s.fail("unexpected end of JSON input")
	}
	if s.data[s.pos] != c {
		return s.fail(fmt.Sprintf("%q where %q was expected", s.data[s.pos], c))
	}
	s.pos++
	return nil
}

// object decodes the object at s.pos into fields.
func (s *scanner) object(fields []Field) error {
	s.pos++ // {
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	var keyBuf [64]byte
	for {
		if err := s.expect('"'); err != nil {
			return err
		}
		raw, plain, err := s.str()
		if err != nil {
			return err
		}
		key := raw
		if !plain {
			key = unquote(keyBuf[:0], raw)
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.space()
		if s.pos == len(s.data) {
			return s.fail("unexpected end of JSON input")
		}
		if f := match(fields, key); f == nil {
			if err := s.skip(2); err != nil {
				return err
			}
		} else {
			switch s.data[s.pos] {
			case '"':
				s.pos++
				raw, plain, err := s.str()
				if err != nil {
					return err
				}
				if plain {
					*f.Dst = string(raw)
				} else {
					*f.Dst = string(unquote(make([]byte, 0, len(raw)+utf8.UTFMax), raw))
				}
			case 'n':
				if err := s.literal("null"); err != nil {
					return err
				}
			default:
				if err := s.skip(2); err != nil {
					return err
				}
				// encoding/json goes on to the end and may report a
				// syntax error instead: either way the answer is an error.
				// A copy of the name: were f.Name itself to go into the error,
				// every Field, Dst included, would escape to the heap.
				name := string([]byte(f.Name))
				return fmt.Errorf("esjson: field %q: cannot decode a JSON %s into a string", name, kind(s.data[s.start:s.pos]))
			}
		}
		s.space()
		if s.pos == len(s.data) {
			return s.fail("unexpected end of JSON input")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.fail(fmt.Sprintf("%q after an object member", s.data[s.pos]))
		}
	}
}

// match returns the field key names: an exact match, else one without
// regard to case, as encoding/json matches a struct field.
func match(fields []Field, key []byte) *Field {
	for i := range fields {
		if string(key) == fields[i].Name {
			return &fields[i]
		}
	}
	for i := range fields {
		if equalFold(key, fields[i].Name) {
			return &fields[i]
		}
	}
	return nil
}

// equalFold is bytes.EqualFold(key, []byte(name)) without the conversion.
func equalFold(key []byte, name string) bool {
	if !isASCII(string(key)) || !isASCII(name) {
		return strings.EqualFold(string(key), name) // the Kelvin sign is "k"
	}
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		d := name[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d || c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// str reads a string whose opening quote is consumed: raw is what stands
// between the quotes, plain says it needs no unquoting (no escape, valid
// UTF-8).
func (s *scanner) str() (raw []byte, plain bool, err error) {
	start := s.pos
	// The common case first: printable ASCII up to the closing quote, one
	// table load per byte, the position in a local (a replay scans every
	// event's strings here).
	data, i := s.data, s.pos
	for i < len(data) && plainByte[data[i]] {
		i++
	}
	s.pos = i
	if s.pos < len(s.data) && s.data[s.pos] == '"' {
		s.pos++
		return s.data[start : s.pos-1], true, nil
	}
	plain = true
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			raw = s.data[start:s.pos]
			s.pos++
			return raw, plain, nil
		case c == '\\':
			plain = false
			s.pos++
			if s.pos == len(s.data) {
				return nil, false, s.fail("unexpected end of JSON input")
			}
			switch s.data[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				s.pos++
				for range 4 {
					if s.pos == len(s.data) {
						return nil, false, s.fail("unexpected end of JSON input")
					}
					if !isHex(s.data[s.pos]) {
						return nil, false, s.fail("invalid \\u escape")
					}
					s.pos++
				}
			default:
				return nil, false, s.fail(fmt.Sprintf("invalid escape \\%c", s.data[s.pos]))
			}
		case c < ' ':
			return nil, false, s.fail("control character in a string")
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, n := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && n == 1 {
				plain = false
			}
			s.pos += n
		}
	}
	return nil, false, s.fail("unexpected end of JSON input")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unquote appends the string raw stands for to b: escapes resolved, a
// surrogate that is not half of a pair and invalid UTF-8 replaced with
// U+FFFD. raw has passed str.
func unquote(b, raw []byte) []byte {
	for r := 0; r < len(raw); {
		c := raw[r]
		switch {
		case c == '\\':
			switch raw[r+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := hex4(raw[r+2:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(raw) && raw[r] == '\\' && raw[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(raw[r+2:])); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							r += 6
							continue
						}
					}
					rr = utf8.RuneError
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // " \ /
				b = append(b, raw[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, n := utf8.DecodeRune(raw[r:])
			b = utf8.AppendRune(b, rr) // U+FFFD for an invalid byte
			r += n
		}
	}
	return b
}

func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r*16 + rune(c)
	}
	return r
}

// skip checks and passes the value at s.pos, at nesting depth depth if it
// is an object or an array; s.start is where it began.
func (s *scanner) skip(depth int) error {
	start := s.pos
	defer func() { s.start = start }()
	return s.value(depth)
}

func (s *scanner) value(depth int) error {
	if s.pos == len(s.data) {
		return s.fail("unexpected end of JSON input")
	}
	switch c := s.data[s.pos]; {
	case c == '{' || c == '[':
		if depth > maxDepth {
			return s.fail("nested too deeply")
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.pos++
		s.space()
		if s.pos < len(s.data) && s.data[s.pos] == end {
			s.pos++
			return nil
		}
		for {
			if end == '}' {
				if err := s.expect('"'); err != nil {
					return err
				}
				if _, _, err := s.str(); err != nil {
					return err
				}
				if err := s.expect(':'); err != nil {
					return err
				}
			}
			s.space()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.space()
			if s.pos == len(s.data) {
				return s.fail("unexpected end of JSON input")
			}
			switch s.data[s.pos] {
			case ',':
				s.pos++
			case end:
				s.pos++
				return nil
			default:
				return s.fail(fmt.Sprintf("%q in an object or array", s.data[s.pos]))
			}
		}
	case c == '"':
		s.pos++
		_, _, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	default:
		return s.fail(fmt.Sprintf("%q looking for the beginning of a value", c))
	}
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return s.fail("invalid literal")
	}
	s.pos += len(word)
	return nil
}

// number passes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; what
// follows it is the caller's to check.
func (s *scanner) number() error {
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos == len(s.data):
		return s.fail("unexpected end of JSON input")
	case s.data[s.pos] == '0':
		s.pos++
	case '1' <= s.data[s.pos] && s.data[s.pos] <= '9':
		s.digits()
	default:
		return s.fail("invalid number")
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.fail("invalid number")
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return s.fail("invalid number")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

// kind names the JSON value v for an error.
func kind(v []byte) string {
	if len(v) == 0 {
		return "value"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
