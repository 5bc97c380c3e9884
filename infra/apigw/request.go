package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Limits of the HTTP contract.
const (
	// MaxBodyBytes bounds a request body, after base64 decoding: 64 KiB.
	MaxBodyBytes = 64 << 10
	// MaxTokenLength bounds Idempotency-Key and X-Request-Id.
	MaxTokenLength = 128
	// MaxInt is the largest int64: the upper bound of an unbounded
	// QueryInt.
	MaxInt = int64(^uint64(0) >> 1)
)

// JSONContentType is the media type of request bodies and answers.
const JSONContentType = "application/json"

// Header names.
const (
	HeaderContentType    = "Content-Type"
	HeaderRequestID      = "X-Request-Id"
	HeaderIfMatch        = "If-Match"
	HeaderIdempotencyKey = "Idempotency-Key"
)

// HeaderValues returns every value of header name, matched without regard to
// case: those of MultiValueHeaders when it has any, else those of Headers
// (API Gateway fills both; Headers holds the last of each).
func HeaderValues(req *events.APIGatewayProxyRequest, name string) []string {
	var vals []string
	for k, vs := range req.MultiValueHeaders {
		if strings.EqualFold(k, name) {
			vals = append(vals, vs...)
		}
	}
	if len(vals) > 0 {
		return vals
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			vals = append(vals, v)
		}
	}
	return vals
}

// SingleHeader returns the value of a header that may be given once. The same
// value repeated counts as once; two different values are a 400.
func SingleHeader(req *events.APIGatewayProxyRequest, name string) (string, bool, error) {
	return single(name, HeaderValues(req, name))
}

// QueryValue returns the value of a query parameter (names are case sensitive).
func QueryValue(req *events.APIGatewayProxyRequest, name string) (string, bool, error) {
	vals := slices.Clone(req.MultiValueQueryStringParameters[name])
	if len(vals) == 0 {
		if v, ok := req.QueryStringParameters[name]; ok {
			vals = []string{v}
		}
	}
	return single(name, vals)
}

func single(name string, vals []string) (string, bool, error) {
	if len(vals) == 0 {
		return "", false, nil
	}
	v := strings.TrimSpace(vals[0])
	for _, o := range vals[1:] {
		if strings.TrimSpace(o) != v {
			return "", false, BadField(name, "must be given once")
		}
	}
	return v, true, nil
}

// requestID is the request's X-Request-Id when it is a usable one (1..128
// printable ASCII characters), else a new one.
func requestID(req *events.APIGatewayProxyRequest, newID func() string) string {
	if v, ok, err := SingleHeader(req, HeaderRequestID); err == nil && ok && Printable(v, MaxTokenLength) {
		return v
	}
	return newID()
}

// Printable reports whether s is 1..maxLen printable ASCII characters.
func Printable(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// QueryInt reads an integer query parameter in [lo, hi], def when absent.
func QueryInt(req *events.APIGatewayProxyRequest, name string, lo, hi, def int64) (int64, error) {
	v, ok, err := QueryValue(req, name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		if hi == MaxInt {
			return 0, BadField(name, "must be an integer of at least "+strconv.FormatInt(lo, 10))
		}
		return 0, BadField(name, "must be an integer from "+strconv.FormatInt(lo, 10)+" to "+strconv.FormatInt(hi, 10))
	}
	return n, nil
}

// QueryTime reads an RFC 3339 time query parameter.
func QueryTime(req *events.APIGatewayProxyRequest, name string) (time.Time, bool, error) {
	v, ok, err := QueryValue(req, name)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false, BadField(name, "must be an RFC 3339 time such as 2025-01-02T15:04:05.123456789Z")
	}
	return t.UTC(), true, nil
}

// QueryBool reads a true/false query parameter.
func QueryBool(req *events.APIGatewayProxyRequest, name string) (bool, error) {
	v, ok, err := QueryValue(req, name)
	switch {
	case err != nil:
		return false, err
	case !ok:
		return false, nil
	case v == "true":
		return true, nil
	case v == "false":
		return false, nil
	}
	return false, BadField(name, "must be true or false")
}

// Body returns the request body, base64-decoded when API Gateway encoded it,
// and refuses one over MaxBodyBytes.
func Body(req *events.APIGatewayProxyRequest) ([]byte, error) {
	b := []byte(req.Body)
	if req.IsBase64Encoded {
		// Lambda bounds the event at 6 MB, so decoding before the size check
		// costs little, and base64 with line breaks has no exact length bound.
		var err error
		if b, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return nil, BadRequest("The body is not valid base64, although isBase64Encoded is set.")
		}
	}
	if len(b) > MaxBodyBytes {
		return nil, &Error{Kind: TooLarge, Detail: "The body is larger than " + strconv.Itoa(MaxBodyBytes) + " bytes."}
	}
	return b, nil
}

// checkJSON refuses a body that is not declared as JSON (a charset other
// than UTF-8 included).
func checkJSON(req *events.APIGatewayProxyRequest) error {
	unsupported := &Error{Kind: UnsupportedMedia, Detail: "A request body must be sent with Content-Type: application/json."}
	v, ok, err := SingleHeader(req, HeaderContentType)
	if err != nil || !ok {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != JSONContentType {
		return unsupported
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return unsupported
	}
	return nil
}

// decodeObject decodes a JSON object whose members are strings into fields,
// strictly: names match exactly (encoding/json would match "NAME" to name),
// and every unknown, repeated or non-string member is listed. null counts
// as absent. Trailing data after the object is refused.
func decodeObject(b []byte, fields map[string]*String) error {
	if !utf8.Valid(b) {
		return BadRequest("The body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	malformed := func(err error) error {
		offset := dec.InputOffset()
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			offset = se.Offset
		}
		return BadRequest("The body is not valid JSON (at byte " + strconv.FormatInt(offset, 10) + ").")
	}
	tok, err := dec.Token()
	if err != nil {
		return malformed(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return BadRequest("The body must be a JSON object.")
	}
	var errs []FieldError
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return malformed(err)
		}
		name, _ := tok.(string) // the decoder only yields strings as keys
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return malformed(err)
		}
		f, known := fields[name]
		switch {
		case seen[name]:
			if known {
				errs = append(errs, FieldError{Field: name, Message: "must be given once"})
			}
		case !known:
			errs = append(errs, FieldError{Field: name, Message: "is not a known field"})
		case string(raw) == "null":
		default:
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				errs = append(errs, FieldError{Field: name, Message: "must be a string"})
				break
			}
			f.Value, f.Set = s, true
		}
		seen[name] = true
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadRequest("The body has data after the JSON object.")
	}
	if len(errs) > 0 {
		return BadRequest("One or more fields are invalid.", errs...)
	}
	return nil
}
