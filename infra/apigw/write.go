package apigw

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Preconditions are the write headers: If-Match and Idempotency-Key.
type Preconditions struct {
	IfMatch        *int64 // the version the command expects
	IdempotencyKey string // as the client sent it; IdempotencyScope scopes it
}

// Command reads a command request: its write headers, then its body into
// dst (DecodeBody; required says whether it may be empty). It returns the
// preconditions and the body's bytes, which the idempotency record hashes.
func (c *Call) Command(required bool, dst any) (Preconditions, []byte, error) {
	pre, err := WriteHeaders(c.Req)
	if err != nil {
		return pre, nil, err
	}
	b, err := DecodeBody(c.Req, required, dst)
	return pre, b, err
}

// WriteHeaders reads the write headers of a command request.
func WriteHeaders(req *events.APIGatewayProxyRequest) (Preconditions, error) {
	var pre Preconditions
	if v, ok, err := SingleHeader(req, HeaderIfMatch); err != nil {
		return pre, err
	} else if ok {
		n, err := parseIfMatch(v)
		if err != nil {
			return pre, err
		}
		pre.IfMatch = &n
	}
	if v, ok, err := SingleHeader(req, HeaderIdempotencyKey); err != nil {
		return pre, err
	} else if ok {
		if !Printable(v, MaxTokenLength) {
			return pre, BadField(HeaderIdempotencyKey, "must be 1..128 printable ASCII characters")
		}
		pre.IdempotencyKey = v
	}
	return pre, nil
}

// parseIfMatch reads one strong entity tag holding a version: "3" (the
// quotes may be left out). Weak tags, lists and * are refused.
func parseIfMatch(v string) (int64, error) {
	bad := BadField(HeaderIfMatch, `must be one strong version tag such as "3"`)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || len(v) > 18 || strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, bad
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, bad
	}
	return n, nil
}

// IdempotencyScope is the record key of a caller's Idempotency-Key: keys
// are scoped to the caller's sub. The sub's length comes first, so that no
// two (sub, key) pairs share a record key, whatever either holds: joined
// with a bare separator, sub "a#b" with key "c" and sub "a" with key "b#c"
// were one record.
func IdempotencyScope(sub, key string) string {
	return strconv.Itoa(len(sub)) + ":" + sub + "#" + key
}

// RequestHash identifies an idempotent request: its method, its canonical
// path and its body bytes.
func RequestHash(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method + "\n" + path + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
