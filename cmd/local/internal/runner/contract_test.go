package runner

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/auth/authtest"
	"github.com/chronicle-go/chronicle/infra/template"
)

// TestAuthorizerRouteContract: the real authorizer behind the local
// gateway, and a route that reads the principal as the route functions do.
// For any claims a token can carry, the route sees exactly the token's
// principal (through the JSON the runner, like API Gateway, passes it in),
// or the gateway answers 401.
func TestAuthorizerRouteContract(t *testing.T) {
	v, err := auth.NewVerifier(auth.Config{Issuer: auth.LocalIssuer, Audience: auth.LocalAudience, LocalSecret: []byte(auth.LocalSecret)})
	if err != nil {
		t.Fatal(err)
	}
	authorizer := &function{id: "Auth", handler: auth.NewAuthorizer(v, discard).Handle}
	var (
		mu   sync.Mutex
		seen auth.Principal
		ok   bool
	)
	fn := &function{id: "Fn", handler: func(_ context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		seen, ok = auth.PrincipalFromContext(req.RequestContext.Authorizer)
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "{}"}, nil
	}}
	g := testGateway(t, testRunner(authorizer, fn), route{method: "GET", path: "/users/{id}", function: "Fn",
		authorizer: &template.Authorizer{Function: "Auth", PayloadType: "TOKEN", Header: "Authorization"}})

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 10))
	for i := range 500 {
		c := authtest.Random(r)
		tok, err := c.Sign([]byte(auth.LocalSecret), auth.LocalIssuer, auth.LocalAudience, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want, wantOK := c.Want()
		mu.Lock()
		seen, ok = auth.Principal{}, false
		mu.Unlock()
		w := serve(g, "GET", "/users/1", map[string]string{"Authorization": "Bearer " + tok}, "")
		mu.Lock()
		got, gotOK := seen, ok
		mu.Unlock()
		switch {
		case !wantOK && w.Code != 401:
			t.Fatalf("case %d, claims %+q: status %d, want 401", i, c, w.Code)
		case wantOK && (w.Code != 200 || !gotOK):
			t.Fatalf("case %d, claims %+q: status %d, principal %v, want 200 with %+q: %s", i, c, w.Code, gotOK, want, w.Body)
		case wantOK && !authtest.Equal(got, want):
			t.Fatalf("case %d, claims %+q: the route sees %+q, want %+q", i, c, got, want)
		}
	}
}
