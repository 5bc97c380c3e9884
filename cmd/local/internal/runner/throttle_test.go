package runner

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/infra/template"
)

// TestStageThrottle: the gateway applies the template's stage throttle as
// API Gateway does, a token bucket per method: a burst passes, the next
// request is a 429 problem+json with Retry-After (the THROTTLED gateway
// response) that never reaches the function, another method has a bucket
// of its own, and the bucket refills at the rate.
func TestStageThrottle(t *testing.T) {
	calls := 0
	fn := &function{id: "Fn", handler: func(_ context.Context, _ events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		calls++
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "{}"}, nil
	}}
	r := testRunner(fn)
	g := testGateway(t, r, route{method: "GET", path: "/a", function: "Fn"}, route{method: "GET", path: "/b", function: "Fn"})
	now := time.Unix(1000, 0)
	g.limit = newThrottle(template.Throttle{RateLimit: 2, BurstLimit: 3}, func() time.Time { return now })

	for i := range 3 {
		if w := serve(g, "GET", "/a", nil, ""); w.Code != 200 {
			t.Fatalf("request %d of the burst: %d", i, w.Code)
		}
	}
	w := serve(g, "GET", "/a", nil, "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("over the burst: %d %v %s", w.Code, w.Header(), w.Body)
	}
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != 429 {
		t.Errorf("body %s: %v", w.Body, err)
	}
	if calls != 3 {
		t.Errorf("the function ran %d times, want 3: a throttled request never reaches it", calls)
	}
	if w := serve(g, "GET", "/b", nil, ""); w.Code != 200 {
		t.Errorf("another method: %d, want its own bucket", w.Code)
	}
	now = now.Add(500 * time.Millisecond) // one token at 2/s
	if w := serve(g, "GET", "/a", nil, ""); w.Code != 200 {
		t.Errorf("after a refill of one token: %d", w.Code)
	}
	if w := serve(g, "GET", "/a", nil, ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("the refilled token spent: %d, want 429", w.Code)
	}
}

// TestStageThrottleFromTemplate: the template's parameters reach the
// gateway's bucket.
func TestStageThrottleFromTemplate(t *testing.T) {
	_, p, err := load(Config{Template: templatePath, Parameters: map[string]string{
		"JwtIssuer": "x", "EmailSender": "a@b.example", "ApiThrottlingRateLimit": "7", "ApiThrottlingBurstLimit": "9"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.throttle != (template.Throttle{RateLimit: 7, BurstLimit: 9}) {
		t.Errorf("throttle %+v", p.throttle)
	}
}
