package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/api/apitest"
	"github.com/chronicle-go/chronicle/infra/console"
)

// TestConsole: the page and its assets answer without a token, under the
// console's policy, and the page has no inline script or style (the policy
// would block it: the page would break in the browser, silently).
func TestConsole(t *testing.T) {
	t.Parallel()
	s := newMemoryService(t)
	g := newGateway(t, s)
	ctx := t.Context()

	page := g.do(ctx, t, httpRequest{method: "GET", target: "/console"})
	if page.status != http.StatusOK || !strings.HasPrefix(page.headers["Content-Type"], "text/html") {
		t.Fatalf("GET /console: %v, Content-Type %q", page, page.headers["Content-Type"])
	}
	if page.headers["Content-Security-Policy"] != console.CSP || page.headers["X-Content-Type-Options"] != "nosniff" {
		t.Errorf("GET /console: headers %v", page.headers)
	}
	if inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle=|\son[a-z]+=|javascript:`).FindString(page.body); inline != "" {
		t.Errorf("the page has inline code the policy blocks: %q", inline)
	}
	for _, ref := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page.body, -1) {
		name := ref[1]
		if strings.HasPrefix(name, "#") || strings.HasPrefix(name, "data:") {
			continue
		}
		if strings.Contains(name, ":") || strings.HasPrefix(name, "/") {
			t.Errorf("the page refers to %q: assets must be relative to the page (no other origin, any stage)", name)
			continue
		}
		a := g.do(ctx, t, httpRequest{method: "GET", target: "/" + name}) // relative to /console
		if a.status != http.StatusOK || a.headers["Content-Security-Policy"] != console.CSP || a.body == "" {
			t.Errorf("GET /%s: %v, headers %v", name, a, a.headers)
		}
	}
	if js := g.do(ctx, t, httpRequest{method: "GET", target: "/console/app.js"}); js.headers["Content-Type"] != "text/javascript; charset=utf-8" {
		t.Errorf("app.js is served as %q: a module needs a JavaScript type", js.headers["Content-Type"])
	}

	t.Run("with a slash, a relative redirect", func(t *testing.T) {
		// API Gateway, and the local runner, may route /console/ to the
		// /console resource; the path keeps the slash.
		req := events.APIGatewayProxyRequest{HTTPMethod: "GET", Resource: "/console", Path: "/console/"}
		resp, err := s.qs.Handle(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		apitest.ValidateProxy(t, req, resp)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Headers["Location"] != "../console" {
			t.Errorf("GET /console/: %d, Location %q", resp.StatusCode, resp.Headers["Location"])
		}
	})
	t.Run("no such file", func(t *testing.T) {
		for _, name := range []string{"nope.js", ".hidden", "..%2Fconsole.go", "index.html%2F..%2F..%2Fgo.mod"} {
			a := g.do(ctx, t, httpRequest{method: "GET", target: "/console/" + name})
			if a.status != http.StatusNotFound {
				t.Errorf("GET /console/%s: %v, want 404", name, a)
			}
		}
	})
}

// whatIfBody is POST /users/{id}/what-if's answer.
type whatIfBody struct {
	At      time.Time `json:"at"`
	Command string    `json:"command"`
	Before  struct {
		Version int64 `json:"version"`
		State   struct {
			Name, Email, Status string
		} `json:"state"`
	} `json:"before"`
	Events []struct {
		Version int64  `json:"version"`
		Type    string `json:"type"`
		Actor   string `json:"actor"`
		Reason  string `json:"reason"`
	} `json:"events"`
	Rejected string `json:"rejected"`
	After    struct {
		Version int64 `json:"version"`
		State   struct {
			Name, Email, Status string
		} `json:"state"`
	} `json:"after"`
	Written bool `json:"written"`
}

// TestWhatIf: a command decided on a past state, by the real rules, with
// nothing written.
func TestWhatIf(t *testing.T) {
	t.Parallel()
	s := newMemoryService(t)
	g := newGateway(t, s)
	ctx := t.Context()
	admin := bearer(t, "admin-"+newSub("w"), "admin")
	carol := bearer(t, "carol", "admin")

	write := func(method, target, body string, who [2]string) writeBody {
		t.Helper()
		a := g.do(ctx, t, jsonRequest(method, target, body, who))
		var w writeBody
		if a.status/100 != 2 || json.Unmarshal([]byte(a.body), &w) != nil {
			t.Fatalf("%s %s: %v", method, target, a)
		}
		return w
	}
	email := newSub("ada") + "@example.com"
	id := write("POST", "/users", fmt.Sprintf(`{"name":"Ada","email":%q}`, email), admin).ID
	state := func(v int) time.Time {
		a := g.do(ctx, t, httpRequest{method: "GET", target: fmt.Sprintf("/users/%s/state?version=%d", id, v), headers: [][2]string{admin}})
		var st struct{ AsOf time.Time }
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &st) != nil {
			t.Fatalf("state v%d: %v", v, a)
		}
		return st.AsOf
	}
	v1 := state(1)
	write("PUT", "/users/"+id+"/name", `{"name":"Ada Lovelace"}`, admin)
	write("DELETE", "/users/"+id, `{"reason":"asked to be forgotten"}`, carol)

	whatIf := func(t *testing.T, body string, who [2]string, status int) whatIfBody {
		t.Helper()
		a := g.do(ctx, t, jsonRequest("POST", "/users/"+id+"/what-if", body, who))
		if a.status != status {
			t.Fatalf("what-if %s: %v, want %d", body, a, status)
		}
		var w whatIfBody
		if status == http.StatusOK {
			if err := json.Unmarshal([]byte(a.body), &w); err != nil {
				t.Fatal(err)
			}
		}
		return w
	}

	t.Run("a rename at v1", func(t *testing.T) {
		w := whatIf(t, fmt.Sprintf(`{"command":"rename","name":"Countess","reason":"why not","at":%q}`, v1.Format(time.RFC3339Nano)), admin, http.StatusOK)
		if w.Before.Version != 1 || w.Before.State.Name != "Ada" || len(w.Events) != 1 || w.Events[0].Type != "user.renamed.v1" ||
			w.Events[0].Version != 2 || w.Events[0].Reason != "why not" || w.After.State.Name != "Countess" || w.Rejected != "" || w.Written {
			t.Errorf("what-if rename at v1: %+v", w)
		}
	})
	t.Run("a suspend now, on the deleted user, is rejected", func(t *testing.T) {
		w := whatIf(t, `{"command":"suspend","reason":"spam"}`, admin, http.StatusOK)
		if w.Before.Version != 3 || w.Before.State.Status != "deleted" || w.Rejected == "" || len(w.Events) != 0 || w.After.Version != 3 {
			t.Errorf("what-if suspend now: %+v", w)
		}
	})
	t.Run("a delete at v1, as the asker", func(t *testing.T) {
		w := whatIf(t, fmt.Sprintf(`{"command":"delete","reason":"test","at":%q}`, v1.Format(time.RFC3339Nano)), carol, http.StatusOK)
		if len(w.Events) != 1 || w.Events[0].Type != "user.deleted.v1" || w.Events[0].Actor != "carol" || w.After.State.Status != "deleted" {
			t.Errorf("what-if delete at v1: %+v", w)
		}
	})
	t.Run("before the user existed", func(t *testing.T) {
		whatIf(t, fmt.Sprintf(`{"command":"rename","name":"X","at":%q}`, v1.Add(-time.Hour).Format(time.RFC3339Nano)), admin, http.StatusNotFound)
	})
	t.Run("bad input, each field named", func(t *testing.T) {
		for body, field := range map[string]string{
			`{"command":"explode"}`:                            "command",
			`{"command":"suspend","name":"x"}`:                 "name",
			`{"command":"rename","name":""}`:                   "name",
			`{"command":"rename","name":"x","at":1}`:           "at",
			`{"command":"rename","name":"x","at":"yesterday"}`: "at",
			`{"command":"change-email","email":"no-at-sign"}`:  "email",
			`{"command":"rename","name":"x","extra":"y"}`:      "extra",
		} {
			a := g.do(ctx, t, jsonRequest("POST", "/users/"+id+"/what-if", body, admin))
			var p problemBody
			_ = json.Unmarshal([]byte(a.body), &p)
			if a.status != http.StatusBadRequest || len(p.Errors) == 0 || p.Errors[0].Field != field {
				t.Errorf("what-if %s: %v, want 400 naming %s", body, a, field)
			}
		}
	})
	t.Run("admins only", func(t *testing.T) {
		whatIf(t, `{"command":"rename","name":"x"}`, bearer(t, "mallory"), http.StatusForbidden)
		a := g.do(ctx, t, jsonRequest("POST", "/users/"+id+"/what-if", `{"command":"rename","name":"x"}`))
		if a.status != http.StatusUnauthorized {
			t.Errorf("without a token: %v", a)
		}
	})
	t.Run("nothing written", func(t *testing.T) {
		a := g.do(ctx, t, httpRequest{method: "GET", target: "/users/" + id + "/history", headers: [][2]string{admin}})
		var h struct{ Events []json.RawMessage }
		if json.Unmarshal([]byte(a.body), &h) != nil || len(h.Events) != 3 {
			t.Errorf("history after the what-ifs: %v", a)
		}
	})
}
