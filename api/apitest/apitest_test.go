package apitest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/api/apitest"
)

const (
	id      = "0190a5f0-7c3e-7d2a-9b1e-3f4a5b6c7d8e"
	eventID = "0190a5f0-7c3e-7d2a-9b1e-3f4a5b6c7d8f"
	user    = `{"id":"` + id + `","name":"Alice","email":"alice@example.com","status":"active","version":1,` +
		`"createdAt":"2025-01-02T15:04:05.123456789Z","updatedAt":"2025-01-02T15:04:05.123456789Z"}`
	event = `{"eventId":"` + eventID + `","version":1,"type":"user.created.v1","occurredAt":"2025-01-02T15:04:05Z",` +
		`"actor":"alice","reason":"","correlationId":"r1","causationId":"c1","data":{"name":"Alice","email":"alice@example.com"}`
)

func exchange(t *testing.T, method, target, reqBody string, status int, contentType, body string) apitest.Exchange {
	t.Helper()
	r, err := http.NewRequest(method, "http://api.test"+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer t")
	if reqBody != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	h := http.Header{}
	h.Set("Content-Type", contentType)
	h.Set("X-Request-Id", "r1")
	h.Set("ETag", `"1"`)
	h.Set("X-Source", "projection")
	h.Set("Location", "/users/"+id)
	return apitest.Exchange{Request: r, RequestBody: []byte(reqBody), Status: status, Header: h, Body: []byte(body)}
}

// Check takes what the document says and refuses what it does not, with
// the route, the status and the reason in the error.
func TestCheck(t *testing.T) {
	c, err := apitest.Shared()
	if err != nil {
		t.Fatal(err)
	}
	const json, problem = "application/json", "application/problem+json"
	for _, tc := range []struct {
		name string
		x    apitest.Exchange
		want string // "" valid, else a part of the error
	}{
		{"user", exchange(t, "GET", "/users/"+id, "", 200, json, user), ""},
		{"user with a renamed field", exchange(t, "GET", "/users/"+id, "", 200, json, strings.Replace(user, "createdAt", "created", 1)),
			`GET /users/` + id + ` (GET /users/{id}) answered 200`},
		{"user without ETag", func() apitest.Exchange {
			x := exchange(t, "GET", "/users/"+id, "", 200, json, user)
			x.Header.Del("ETag")
			return x
		}(), "ETag"},
		{"status not listed", exchange(t, "GET", "/users/"+id, "", 201, json, user), "status is not supported"},
		{"history", exchange(t, "GET", "/users/"+id+"/history", "", 200, json, `{"id":"`+id+`","events":[`+event+`}]}`), ""},
		{"history event with an aggregateId", exchange(t, "GET", "/users/"+id+"/history", "", 200, json,
			`{"id":"`+id+`","events":[`+event+`,"aggregateId":"`+id+`"}]}`), "aggregateId"},
		{"history event data of its type", exchange(t, "GET", "/users/"+id+"/history", "", 200, json,
			`{"id":"`+id+`","events":[`+strings.Replace(event, `"name":"Alice",`, "", 1)+`}]}`), "name"},
		{"activity", exchange(t, "GET", "/actors/alice/activity?limit=10", "", 200, json,
			`{"sub":"alice","events":[`+event+`,"aggregateId":"`+id+`"}],"nextCursor":"x"}`), ""},
		{"activity event without an aggregateId", exchange(t, "GET", "/actors/alice/activity", "", 200, json,
			`{"sub":"alice","events":[`+event+`}]}`), "aggregateId"},
		{"ops: null figures", exchange(t, "GET", "/ops/projections", "", 200, json,
			`{"projections":{"user-view":{"lastEventAt":null,"lastEventAgeSeconds":null,"processed":0,"queueDepth":null,"inFlight":null,"deadLetterDepth":null,"unavailable":["queueDepth","inFlight"]}}}`), ""},
		{"ops: a string figure", exchange(t, "GET", "/ops/projections", "", 200, json,
			`{"projections":{"user-view":{"lastEventAt":null,"lastEventAgeSeconds":null,"processed":"0","queueDepth":null,"inFlight":null,"deadLetterDepth":null}}}`), "processed"},
		{"created", exchange(t, "POST", "/users", `{"name":"Alice","email":"alice@example.com","sub":null}`, 201, json, `{"id":"`+id+`","version":1}`), ""},
		{"created from an unknown field", exchange(t, "POST", "/users", `{"name":"Alice","email":"a@b.c","nick":"al"}`, 201, json, `{"id":"`+id+`","version":1}`),
			"the request, which the service took"},
		{"refused unknown field: only the answer is checked", exchange(t, "POST", "/users", `{"name":"Alice","nick":"al"}`, 400, problem,
			`{"type":"urn:chronicle:problem:validation","title":"Invalid request","status":400,"detail":"d","errors":[{"field":"nick","message":"is not a known field"}]}`), ""},
		{"problem without detail", exchange(t, "POST", "/users", `{}`, 400, problem,
			`{"type":"urn:chronicle:problem:validation","title":"Invalid request","status":400}`), "detail"},
		{"gateway problem", exchange(t, "GET", "/users/"+id, "", 401, problem, `{"type":"about:blank","title":"Unauthorized","status":401}`), ""},
		{"412", exchange(t, "PUT", "/users/"+id+"/name", `{"name":"B"}`, 412, problem,
			`{"type":"urn:chronicle:problem:precondition-failed","title":"Precondition failed","status":412,"detail":"d","currentVersion":3}`), ""},
		{"412 without the version", exchange(t, "PUT", "/users/"+id+"/name", `{"name":"B"}`, 412, problem,
			`{"type":"urn:chronicle:problem:precondition-failed","title":"Precondition failed","status":412,"detail":"d"}`), "currentVersion"},
		{"malformed id taken", exchange(t, "GET", "/users/nope", "", 200, json, user), `parameter "id"`},
		{"bad time taken", exchange(t, "GET", "/users/"+id+"/state?at=yesterday", "", 200, json,
			`{"id":"`+id+`","version":1,"asOf":"2025-01-02T15:04:05Z","state":{"name":"A","email":"a@b.c","status":"active","createdAt":"2025-01-02T15:04:05Z"}}`), `parameter "at"`},
		{"limit over 1000 taken", exchange(t, "GET", "/actors/alice/activity?limit=1001", "", 200, json, `{"sub":"alice","events":[]}`), `parameter "limit"`},
		{"no token taken", func() apitest.Exchange {
			x := exchange(t, "GET", "/users/"+id, "", 200, json, user)
			x.Request.Header.Del("Authorization")
			return x
		}(), "security requirements failed"},
		{"healthz without a token", func() apitest.Exchange {
			x := exchange(t, "GET", "/healthz", "", 200, json, `{"status":"ok"}`)
			x.Request.Header.Del("Authorization")
			return x
		}(), ""},
		{"unknown route, problem", exchange(t, "GET", "/teams", "", 404, problem, `{"type":"about:blank","title":"Not Found","status":404}`), ""},
		{"unknown route, taken", exchange(t, "GET", "/teams", "", 200, json, `{}`), "no such operation in the document"},
		{"unknown route, not a problem", exchange(t, "GET", "/teams", "", 404, json, `{"message":"Not Found"}`), "problem+json"},
		{"a command route answered by the queries function", exchange(t, "POST", "/users", "", 404, problem,
			`{"type":"urn:chronicle:problem:no-route","title":"Not found","status":404,"detail":"This function does not serve POST /users."}`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Check(t.Context(), tc.x)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("taken, want an error about %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %v\nwant it to name %q", err, tc.want)
			}
		})
	}
}

// A proxy event is checked as the request API Gateway routed: by its
// resource and path parameters.
func TestProxyExchange(t *testing.T) {
	req := events.APIGatewayProxyRequest{
		Resource: "/users/{id}", Path: "/users/{id}", HTTPMethod: "GET",
		PathParameters: map[string]string{"id": id},
		RequestContext: events.APIGatewayProxyRequestContext{Authorizer: map[string]any{"principalId": "alice"}},
	}
	resp := events.APIGatewayProxyResponse{StatusCode: 200, Body: user,
		Headers: map[string]string{"Content-Type": "application/json", "ETag": `"1"`, "X-Source": "projection"}}
	x, err := apitest.ProxyExchange(req, resp)
	if err != nil {
		t.Fatal(err)
	}
	c, err := apitest.Shared()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(t.Context(), x); err != nil {
		t.Error(err)
	}
	req.PathParameters["id"] = "not/a uuid"
	if x, err = apitest.ProxyExchange(req, resp); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(t.Context(), x); err == nil || !strings.Contains(err.Error(), `parameter "id"`) {
		t.Errorf("a malformed id taken: %v", err)
	}
}

// BenchmarkCheck is the cost of checking one exchange: a history page.
func BenchmarkCheck(b *testing.B) {
	c, err := apitest.Shared()
	if err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "http://api.test/users/"+id+"/history?limit=10", nil)
	r.Header.Set("Authorization", "Bearer t")
	h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r1"}}
	body := []byte(`{"id":"` + id + `","events":[` + event + `},` + event + `}],"nextCursor":"x"}`)
	x := apitest.Exchange{Request: r, Status: 200, Header: h, Body: body}
	for b.Loop() {
		if err := c.Check(b.Context(), x); err != nil {
			b.Fatal(err)
		}
	}
}
