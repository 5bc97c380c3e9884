package httpapi_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// hostileCase is one hostile request and the status it must get, through
// the gateway (the real authorizer) and the handler.
type hostileCase struct {
	name string
	req  httpRequest
	want int
	// wantDecoded, when set, is the status when API Gateway hands the
	// path parameters percent-decoded: whether it does is not documented
	// clearly, so the table runs both ways.
	wantDecoded int
	check       func(t *testing.T, a httpAnswer) // more than the status, when set
}

// TestHostileInputs sends what an attacker or a broken client would, as
// API Gateway would hand it to the functions, and checks each answer: the
// status of the row, and what every answer must be (checkAnswer).
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	for _, decode := range []bool{false, true} {
		name := "path parameters as sent"
		if decode {
			name = "path parameters decoded"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newMemoryService(t)
			g := newGateway(t, s)
			g.decodeParams = decode
			for _, tc := range hostileCases(t, g, s) {
				t.Run(tc.name, func(t *testing.T) {
					want := tc.want
					if decode && tc.wantDecoded != 0 {
						want = tc.wantDecoded
					}
					a := g.do(t.Context(), t, tc.req)
					if a.status != want {
						t.Errorf("status %d, want %d: %v", a.status, want, a)
					}
					checkAnswer(t, a)
					if tc.check != nil && a.status == want {
						tc.check(t, a)
					}
					t.Logf("-> %v", a)
				})
			}
		})
	}
}

// hostileCases are the rows of the table, against s: each run makes its
// own users.
func hostileCases(t *testing.T, g *gateway, s *memoryService) []hostileCase {
	ctx := t.Context()

	// Alice and Bob each created their own user; the admin is nobody's.
	alice, bob := "alice-"+newSub("h"), "bob-"+newSub("h")
	create := func(sub string) string {
		a := g.do(ctx, t, jsonRequest(http.MethodPost, "/users", fmt.Sprintf(`{"name":"%s","email":"%s@example.com"}`, sub, sub), bearer(t, sub)))
		if a.status != http.StatusCreated {
			t.Fatalf("create user of %s: %v", sub, a)
		}
		var w writeBody
		if err := json.Unmarshal([]byte(a.body), &w); err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
	aliceID, _ := create(alice), create(bob)
	carol := "carol-" + newSub("h") // has no user yet
	asAlice, asAdmin := bearer(t, alice), bearer(t, "root-"+newSub("h"), "admin")
	ct := [2]string{"Content-Type", "application/json"}
	// adminCreate is a create by the admin with email addr: one row each,
	// so that no address is taken by an earlier row.
	n := 0
	adminCreate := func(email string, headers ...[2]string) httpRequest {
		n++
		body, _ := json.Marshal(map[string]string{"name": fmt.Sprint("Row ", n), "email": email})
		return jsonRequest(http.MethodPost, "/users", string(body), append([]([2]string){asAdmin}, headers...)...)
	}
	unique := func(local string) string { return local + "-" + newSub("u") + "@example.com" }
	rename := func(body string, headers ...[2]string) httpRequest {
		return jsonRequest(http.MethodPut, "/users/"+aliceID+"/name", body, append([]([2]string){asAlice}, headers...)...)
	}
	getAlice := func(headers ...[2]string) httpRequest {
		return httpRequest{method: http.MethodGet, target: "/users/" + aliceID, headers: append([]([2]string){asAlice}, headers...)}
	}
	get := func(target string, headers ...[2]string) httpRequest {
		return httpRequest{method: http.MethodGet, target: target, headers: headers}
	}
	withToken := func(tok string) [2]string { return [2]string{"Authorization", "Bearer " + tok} }
	nested := func(open, close string, depth int) string {
		return `{"name":` + strings.Repeat(open, depth) + strings.Repeat(close, depth) + `,"email":"deep@example.com"}`
	}
	echoed := func(want bool) func(t *testing.T, a httpAnswer) {
		return func(t *testing.T, a httpAnswer) {
			id := a.headers["X-Request-Id"]
			if got := !isUUID(id); got != want {
				t.Errorf("X-Request-Id %q: echoed %v, want %v", id, got, want)
			}
		}
	}
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": jwtIssuer, "aud": jwtAudience, "sub": alice, "roles": []string{"admin"},
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	signed := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	unsigned := func(alg string, c jwt.MapClaims) string {
		h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
		p, _ := json.Marshal(c)
		return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	// An RS256 header over an HMAC made with the HS256 secret: the old
	// algorithm-confusion attack.
	confused := func() string {
		h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
		p, _ := json.Marshal(claims(nil))
		in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
		mac := hmac.New(sha256.New, []byte(jwtSecret))
		mac.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	suspendAlice := func(auth [2]string) httpRequest {
		return jsonRequest(http.MethodPost, "/users/"+aliceID+"/suspend", `{"reason":"hostile"}`, auth)
	}
	bigName := strings.Repeat("a", 70<<10)

	return []hostileCase{
		// Bodies.
		{name: "body of 70 KiB, valid JSON", req: jsonRequest(http.MethodPost, "/users", `{"name":"`+bigName+`","email":"big@example.com"}`, asAdmin), want: 413},
		{name: "body of 64 KiB exactly, all spaces around an object", req: jsonRequest(http.MethodPost, "/users", `{"name":"Pad","email":"`+unique("pad")+`"}`+strings.Repeat(" ", 64<<10-70), asAdmin), want: 201},
		{name: "body of 11 MiB (API Gateway's limit is 10 MB)", req: jsonRequest(http.MethodPost, "/users", strings.Repeat(" ", 11<<20), asAdmin), want: 413},
		{name: "base64 body over 64 KiB once decoded", req: httpRequest{method: http.MethodPost, target: "/users", headers: [][2]string{asAdmin, ct}, body: []byte(`{"name":"` + bigName + `"}`), binary: true}, want: 413},
		{name: "deep JSON: 100k nested arrays (200 KB)", req: jsonRequest(http.MethodPost, "/users", nested("[", "]", 100_000), asAdmin), want: 413},
		{name: "deep JSON: 30k nested arrays under 64 KiB", req: jsonRequest(http.MethodPost, "/users", nested("[", "]", 30_000), asAdmin), want: 400},
		{name: "deep JSON: 6k nested objects under 64 KiB", req: jsonRequest(http.MethodPost, "/users", nested(`{"a":`, "}", 6_000), asAdmin), want: 400},
		{name: "deep JSON: 30k nested arrays in an unknown member", req: jsonRequest(http.MethodPut, "/users/"+aliceID+"/name", `{"x":`+strings.Repeat("[", 30_000)+strings.Repeat("]", 30_000)+`}`, asAlice), want: 400},
		{name: "invalid UTF-8 in the body (binary delivery)", req: httpRequest{method: http.MethodPut, target: "/users/" + aliceID + "/name", headers: [][2]string{asAlice, ct}, body: []byte("{\"name\":\"Ad\xffa\"}"), binary: true}, want: 400},
		{name: "overlong UTF-8 encoding of '/' (binary delivery)", req: httpRequest{method: http.MethodPut, target: "/users/" + aliceID + "/name", headers: [][2]string{asAlice, ct}, body: []byte("{\"name\":\"a\xc0\xafb\"}"), binary: true}, want: 400},
		{name: "invalid UTF-8 as text (Lambda's JSON makes it U+FFFD, refused)", req: rename("{\"name\":\"Ad\xffa\"}"), want: 400},
		{name: "NUL in a name (\\u0000)", req: rename(`{"name":"Ada\u0000Lovelace"}`), want: 400},
		{name: "bidi override in a name", req: rename(`{"name":"Ada \u202eecalevoL"}`), want: 400},
		{name: "bidi isolate in a name", req: rename(`{"name":"Ada \u2067x\u2069"}`), want: 400},
		{name: "right-to-left mark in a name (allowed: no override)", req: rename(`{"name":"Ada \u200fLovelace"}`), want: 200},
		{name: "lone surrogate escape in a name (decodes to U+FFFD, refused)", req: rename(`{"name":"\ud800"}`), want: 400},
		{name: "201 characters of name", req: rename(`{"name":"` + strings.Repeat("é", 201) + `"}`), want: 400},
		{name: "name as a number", req: rename(`{"name":42}`), want: 400},
		{name: "name given twice", req: rename(`{"name":"A","name":"B"}`), want: 400},
		{name: "member name in another case (NAME)", req: rename(`{"NAME":"A"}`), want: 400},
		{name: "unknown member (__proto__)", req: rename(`{"name":"A","__proto__":{"admin":true}}`), want: 400},
		{name: "data after the object", req: rename(`{"name":"A"}{"name":"B"}`), want: 400},
		{name: "a JSON array, not an object", req: rename(`[{"name":"A"}]`), want: 400},
		{name: "Content-Type text/plain", req: httpRequest{method: http.MethodPut, target: "/users/" + aliceID + "/name", headers: [][2]string{asAlice, {"Content-Type", "text/plain"}}, body: []byte(`{"name":"A"}`)}, want: 415},
		{name: "Content-Type with charset latin1", req: httpRequest{method: http.MethodPut, target: "/users/" + aliceID + "/name", headers: [][2]string{asAlice, {"Content-Type", "application/json; charset=latin1"}}, body: []byte(`{"name":"A"}`)}, want: 415},

		// Unicode tricks in emails: only printable ASCII addr-specs pass.
		{name: "email with a Cyrillic а (homoglyph)", req: adminCreate("\u0430lice@example.com"), want: 400},
		{name: "email with a right-to-left override", req: adminCreate("alice\u202e@example.com"), want: 400},
		{name: "email with a zero-width space", req: adminCreate("ali\u200bce@example.com"), want: 400},
		{name: "email with a zero-width joiner in the domain", req: adminCreate("alice@exa\u200dmple.com"), want: 400},
		{name: "email with a fullwidth @", req: adminCreate("alice\uff20example.com"), want: 400},
		{name: "email with a fullwidth latin letter", req: adminCreate("\uff41lice@example.com"), want: 400},
		{name: "email with an IDN domain (Unicode)", req: adminCreate("alice@exämple.com"), want: 400},
		{name: "email with an IDN domain (punycode)", req: adminCreate("idn-" + newSub("u") + "@xn--exmple-cua.com"), want: 201},
		{name: "email with upper case is stored lower-cased", req: adminCreate("MiXeD-" + strings.ToUpper(newSub("c")) + "@Example.COM"), want: 201, check: func(t *testing.T, a httpAnswer) {
			var w writeBody
			_ = json.Unmarshal([]byte(a.body), &w)
			v, _, _ := s.store.UserView(ctx, w.ID)
			if v.Email != strings.ToLower(v.Email) {
				t.Errorf("stored email %q is not lower case", v.Email)
			}
		}},
		{name: "email with a display name", req: adminCreate("Alice <alice@example.com>"), want: 400},
		{name: "email with a comment", req: adminCreate("alice(admin)@example.com"), want: 400},
		{name: "email with a quoted local part", req: adminCreate(`"alice"@example.com`), want: 400},
		{name: "email with an IP literal", req: adminCreate("alice@[127.0.0.1]"), want: 400},
		{name: "email with CR LF and a Bcc header", req: adminCreate("alice@example.com\r\nBcc: all@example.com"), want: 400},
		{name: "email with a trailing newline (trimmed)", req: adminCreate(unique("nl") + "\n"), want: 201},
		{name: "email of 255 characters", req: adminCreate(strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com"), want: 400},
		{name: "email with a 65-character local part", req: adminCreate(strings.Repeat("a", 65) + "@example.com"), want: 400},
		{name: "email two @", req: adminCreate("alice@evil.com@example.com"), want: 400},
		{name: "lookup by a homoglyph email", req: get("/users?email="+urlEscape("\u0430lice@example.com"), asAdmin), want: 400},
		{name: "lookup by an email with upper case", req: get("/users?email="+urlEscape(strings.ToUpper(alice)+"@EXAMPLE.COM"), asAlice), want: 200},

		// Path traversal in ids.
		{name: "GET /users/..", req: get("/users/..", asAdmin), want: 400},
		{name: "GET /users/%2e%2e", req: get("/users/%2e%2e", asAdmin), want: 400},
		{name: "GET /users/..%2f..%2fhealthz", req: get("/users/..%2f..%2fhealthz", asAdmin), want: 400},
		{name: "GET /users/%2F", req: get("/users/%2F", asAdmin), want: 400},
		{name: "GET /users/<id>%2F..%2Fhistory", req: get("/users/"+aliceID+"%2F..%2Fhistory", asAdmin), want: 400},
		{name: "GET /users/../healthz (no such route)", req: get("/users/../healthz", asAdmin), want: 404},
		{name: "GET /users/<id>/../<id> (no such route)", req: get("/users/"+aliceID+"/../"+aliceID, asAdmin), want: 404},
		{name: "GET /users/%00", req: get("/users/%00", asAdmin), want: 400},
		{name: "GET /users/<id>%00", req: get("/users/"+aliceID+"%00", asAlice), want: 400},
		{name: "DELETE /users/%2e%2e", req: jsonRequest(http.MethodDelete, "/users/%2e%2e", "", asAdmin), want: 400},
		{name: "PUT /users/..%2f<id>/name", req: jsonRequest(http.MethodPut, "/users/..%2f"+aliceID+"/name", `{"name":"X"}`, asAlice), want: 400},
		{name: "GET /users/<id in upper case> is the same user", req: get("/users/"+strings.ToUpper(aliceID), asAlice), want: 200},
		{name: "GET /users/<id with braces> ({uuid} form)", req: get("/users/%7B"+aliceID+"%7D", asAlice), want: 400},
		{name: "GET /users/<urn:uuid:id>", req: get("/users/urn:uuid:"+aliceID, asAlice), want: 400},
		{name: "GET /actors/..%2F<other>/activity as a user", req: get("/actors/..%2F"+alice+"/activity", asAlice), want: 403},
		{name: "GET /actors/%2e%2e/activity as a user", req: get("/actors/%2e%2e/activity", asAlice), want: 403},
		{name: "GET /actors/a%20b/activity (a space, encoded)", req: get("/actors/a%20b/activity", asAdmin), want: 200, wantDecoded: 400},
		{name: "GET /users/<id>/history?cursor=../../", req: get("/users/"+aliceID+"/history?cursor=..%2F..%2F", asAlice), want: 400},

		// Header injection and odd headers.
		{name: "X-Request-Id with CR LF", req: getAlice([2]string{"X-Request-Id", "abc\r\nSet-Cookie: admin=1"}), want: 200, check: echoed(false)},
		{name: "X-Request-Id with a NUL", req: getAlice([2]string{"X-Request-Id", "abc\x00def"}), want: 200, check: echoed(false)},
		{name: "X-Request-Id with Unicode", req: getAlice([2]string{"X-Request-Id", "req-✓"}), want: 200, check: echoed(false)},
		{name: "X-Request-Id of 128 characters is echoed", req: getAlice([2]string{"X-Request-Id", strings.Repeat("r", 128)}), want: 200, check: echoed(true)},
		{name: "X-Request-Id of 8 KiB", req: getAlice([2]string{"X-Request-Id", strings.Repeat("r", 8<<10)}), want: 200, check: echoed(false)},
		{name: "two different X-Request-Ids", req: getAlice([2]string{"X-Request-Id", "one"}, [2]string{"X-Request-Id", "two"}), want: 200, check: echoed(false)},
		{name: "Idempotency-Key with CR LF", req: rename(`{"name":"Idem"}`, [2]string{"Idempotency-Key", "k\r\nX-Admin: 1"}), want: 400},
		{name: "Idempotency-Key of 129 characters", req: rename(`{"name":"Idem"}`, [2]string{"Idempotency-Key", strings.Repeat("k", 129)}), want: 400},
		{name: "Idempotency-Key of 8 KiB", req: rename(`{"name":"Idem"}`, [2]string{"Idempotency-Key", strings.Repeat("k", 8<<10)}), want: 400},
		{name: "two different Idempotency-Keys", req: rename(`{"name":"Idem"}`, [2]string{"Idempotency-Key", "a"}, [2]string{"Idempotency-Key", "b"}), want: 400},
		{name: "If-Match with CR LF", req: rename(`{"name":"Idem"}`, [2]string{"If-Match", "\"1\"\r\nX-Admin: 1"}), want: 400},
		{name: "If-Match of 19 digits", req: rename(`{"name":"Idem"}`, [2]string{"If-Match", `"9999999999999999999"`}), want: 400},
		{name: "If-Match weak tag", req: rename(`{"name":"Idem"}`, [2]string{"If-Match", `W/"1"`}), want: 400},
		{name: "Content-Type with CR LF", req: httpRequest{method: http.MethodPut, target: "/users/" + aliceID + "/name", headers: [][2]string{asAlice, {"Content-Type", "application/json\r\nX-Admin: 1"}}, body: []byte(`{"name":"A"}`)}, want: 415},
		{name: "X-Min-Version of -1", req: getAlice([2]string{"X-Min-Version", "-1"}), want: 400},
		{name: "X-Min-Version beyond int64", req: getAlice([2]string{"X-Min-Version", "99999999999999999999"}), want: 400},
		{name: "100 headers of 100 bytes", req: getAlice(manyHeaders(100, 100)...), want: 200},

		// Query parameters.
		{name: "limit of a billion", req: get("/users/"+aliceID+"/history?limit=1000000000", asAlice), want: 400},
		{name: "limit given twice, differently", req: get("/users/"+aliceID+"/history?limit=1&limit=2", asAlice), want: 400},
		{name: "at that is not a time", req: get("/users/"+aliceID+"/state?at=yesterday%00", asAlice), want: 400},
		{name: "version and at together", req: get("/users/"+aliceID+"/state?version=1&at=2025-01-01T00:00:00Z", asAlice), want: 400},
		{name: "activity cursor forged", req: get("/actors/"+alice+"/activity?cursor="+base64.RawURLEncoding.EncodeToString([]byte(bob+"\x001")), asAlice), want: 400},

		// Tokens.
		{name: "no Authorization header", req: get("/users/" + aliceID), want: 401},
		{name: "Bearer with no token", req: get("/users/"+aliceID, [2]string{"Authorization", "Bearer "}), want: 401},
		{name: "Basic credentials", req: get("/users/"+aliceID, [2]string{"Authorization", "Basic YWRtaW46YWRtaW4="}), want: 401},
		{name: "token signed with another secret (forged)", req: suspendAlice(withToken(signed(jwt.SigningMethodHS256, []byte("not-the-secret"), claims(nil)))), want: 401},
		{name: "expired token", req: get("/users/"+aliceID, withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) {
			c["exp"] = now.Add(-time.Hour).Unix()
		})))), want: 401},
		{name: "token not valid yet (nbf)", req: get("/users/"+aliceID, withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) {
			c["nbf"] = now.Add(30 * time.Minute).Unix()
		})))), want: 401},
		{name: "token without exp", req: get("/users/"+aliceID, withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) { delete(c, "exp") })))), want: 401},
		{name: "token without sub", req: get("/users/"+aliceID, withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) { delete(c, "sub") })))), want: 401},
		{name: "token of another issuer", req: get("/users/"+aliceID, withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) { c["iss"] = "evil" })))), want: 401},
		{name: "token for another audience", req: get("/users/"+aliceID, withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) { c["aud"] = "other-api" })))), want: 401},
		{name: "alg none token claiming admin", req: suspendAlice(withToken(unsigned("none", claims(nil)))), want: 401},
		{name: "alg None token (mixed case)", req: suspendAlice(withToken(unsigned("None", claims(nil)))), want: 401},
		{name: "alg none token with a signature", req: suspendAlice(withToken(unsigned("none", claims(nil)) + "c2ln")), want: 401},
		{name: "HS512 token with the right secret", req: suspendAlice(withToken(signed(jwt.SigningMethodHS512, []byte(jwtSecret), claims(nil)))), want: 401},
		{name: "RS256 header over an HMAC (algorithm confusion)", req: suspendAlice(withToken(confused())), want: 401},
		{name: "token with CR LF and a header after it", req: get("/users/"+aliceID, [2]string{"Authorization", "Bearer " + token(t, alice) + "\r\nX-Admin: 1"}), want: 401},
		{name: "16 KiB of token", req: get("/users/"+aliceID, withToken(strings.Repeat("A", 16<<10))), want: 401},
		{name: "three dots", req: get("/users/"+aliceID, withToken("...")), want: 401},
		{name: "bearer scheme in lower case", req: get("/users/"+aliceID, [2]string{"Authorization", "bearer " + token(t, alice)}), want: 200},
		{name: "roles claim as a string, not a list", req: suspendAlice(withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) { c["roles"] = "admin" })))), want: 401},
		{name: "admin in a space-separated scope", req: get("/ops/projections", withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) {
			delete(c, "roles")
			c["scope"] = "read admin"
		})))), want: 200},
		{name: "role 'Admin' is not admin", req: get("/ops/projections", withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) { c["roles"] = []string{"Admin"} })))), want: 403},
		{name: "sub with a space claims another user's activity", req: get("/actors/"+alice+"/activity", withToken(signed(jwt.SigningMethodHS256, []byte(jwtSecret), claims(func(c jwt.MapClaims) {
			c["sub"], c["roles"] = alice+" ", []string{}
		})))), want: 403},

		{name: "sub with a trailing space cannot take another identity's user", req: jsonRequest(http.MethodPost, "/users", `{"name":"Squatter","email":"`+unique("squat")+`"}`, bearer(t, carol+" ")), want: 403,
			check: func(t *testing.T, _ httpAnswer) {
				if a := g.do(ctx, t, jsonRequest(http.MethodPost, "/users", `{"name":"Carol","email":"`+unique("carol")+`"}`, bearer(t, carol))); a.status != http.StatusCreated {
					t.Errorf("carol's own create after the attempt: %v", a)
				}
			}},
		{name: "sub of one space creates a user", req: jsonRequest(http.MethodPost, "/users", `{"name":"Nobody","email":"`+unique("blank")+`"}`, bearer(t, " ")), want: 403},
		{name: "sub with a # creates a user", req: jsonRequest(http.MethodPost, "/users", `{"name":"Hash","email":"`+unique("hash")+`"}`, bearer(t, "email#"+alice)), want: 403},

		// Methods and routes.
		{name: "method in lower case", req: httpRequest{method: "get", target: "/users/" + aliceID, headers: [][2]string{asAlice}}, want: 404},
		{name: "TRACE", req: httpRequest{method: "TRACE", target: "/users/" + aliceID, headers: [][2]string{asAlice}}, want: 404},
		{name: "trailing slash", req: get("/users/"+aliceID+"/", asAlice), want: 404},
		{name: "double slash", req: get("//users/"+aliceID, asAlice), want: 404},
	}
}

// jsonRequest is a request with a JSON body (none when body is "").
func jsonRequest(method, target, body string, headers ...[2]string) httpRequest {
	r := httpRequest{method: method, target: target, headers: headers}
	if body != "" {
		r.headers = append(r.headers, [2]string{"Content-Type", "application/json"})
		r.body = []byte(body)
	}
	return r
}

func manyHeaders(n, size int) [][2]string {
	var out [][2]string
	for i := range n {
		out = append(out, [2]string{fmt.Sprintf("X-Filler-%d", i), strings.Repeat("f", size)})
	}
	return out
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func isUUID(s string) bool {
	return len(s) == 36 && strings.Count(s, "-") == 4
}
