package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/auth/authtest"
)

const (
	issuer    = "chronicle-local"
	audience  = "chronicle-api"
	methodARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/local/GET/users/1"
)

var secret = []byte("dev-secret")

func newAuthorizer(t *testing.T) *auth.Authorizer {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Issuer: issuer, Audience: audience, LocalSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewAuthorizer(v, slog.New(slog.DiscardHandler))
}

// throughAPIGateway authorizes token with a and hands its answer to a route
// as API Gateway REST does: the authorizer's response as JSON (the Lambda
// runtime's encoding), its context values (strings, numbers and booleans
// only) as strings plus principalId in requestContext.authorizer of the proxy
// event, which the route decodes from JSON. It returns the principal the
// route sees, or false when the authorizer refused the token.
func throughAPIGateway(ctx context.Context, a *auth.Authorizer, token string) (auth.Principal, bool, error) {
	resp, err := a.Handle(ctx, events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: "Bearer " + token, MethodArn: methodARN})
	if err != nil {
		if err.Error() != "Unauthorized" {
			return auth.Principal{}, false, fmt.Errorf("refused with %q, which API Gateway answers 500, not 401", err)
		}
		return auth.Principal{}, false, nil
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return auth.Principal{}, false, err
	}
	var answer struct {
		PrincipalID string         `json:"principalId"`
		Context     map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &answer); err != nil {
		return auth.Principal{}, false, err
	}
	authorizer := map[string]any{"principalId": answer.PrincipalID, "integrationLatency": "3"}
	for k, v := range answer.Context {
		switch v := v.(type) {
		case string:
			authorizer[k] = v
		case float64:
			authorizer[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			authorizer[k] = strconv.FormatBool(v)
		default:
			return auth.Principal{}, false, fmt.Errorf("context %q is a %T, which API Gateway REST refuses", k, v)
		}
	}
	event, err := json.Marshal(map[string]any{"resource": "/users/{id}", "requestContext": map[string]any{"authorizer": authorizer}})
	if err != nil {
		return auth.Principal{}, false, err
	}
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(event, &req); err != nil {
		return auth.Principal{}, false, err
	}
	p, ok := auth.PrincipalFromContext(req.RequestContext.Authorizer)
	if !ok {
		return auth.Principal{}, false, fmt.Errorf("the authorizer allowed, the route sees no principal in %v", req.RequestContext.Authorizer)
	}
	return p, true, nil
}

// TestRoleWithASpaceIsNotAdmin: defect 1. The token's only role is
// "billing admin"; the route must see that role, not [billing admin].
func TestRoleWithASpaceIsNotAdmin(t *testing.T) {
	a := newAuthorizer(t)
	for _, roles := range [][]string{{"billing admin"}, {"admin,ops"}, {`["admin"]`}, {"\u00a0admin"}} {
		tok, err := authtest.Claims{Sub: "bob", Roles: roles}.Sign(secret, issuer, audience, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		p, ok, err := throughAPIGateway(t.Context(), a, tok)
		if err != nil || !ok {
			t.Fatalf("roles %q: %v, allowed %v", roles, err, ok)
		}
		if p.IsAdmin() || !authtest.Equal(p, auth.Principal{Sub: "bob", Roles: roles}) {
			t.Errorf("roles %q: the route sees %q (admin %v)", roles, p.Roles, p.IsAdmin())
		}
	}
}

// TestAuthorizerRouteContract: for any claims a token can carry, the route
// sees exactly the principal the token names, or the authorizer refuses the
// token with a 401 when it names one that cannot be carried exactly.
func TestAuthorizerRouteContract(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 10))
	a := newAuthorizer(t)
	allowed, refused := 0, 0
	for i := range 3000 {
		c := authtest.Random(r)
		tok, err := c.Sign(secret, issuer, audience, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want, wantOK := c.Want()
		got, ok, err := throughAPIGateway(t.Context(), a, tok)
		switch {
		case err != nil:
			t.Fatalf("case %d, claims %+q: %v", i, c, err)
		case ok != wantOK:
			t.Fatalf("case %d, claims %+q: allowed %v, want %v", i, c, ok, wantOK)
		case ok && !authtest.Equal(got, want):
			t.Fatalf("case %d, claims %+q: the route sees %+q, want %+q", i, c, got, want)
		case ok:
			allowed++
		default:
			refused++
		}
	}
	t.Logf("%d tokens allowed with their exact principal, %d refused", allowed, refused)
	if allowed < 1000 || refused < 100 {
		t.Errorf("the generator is off balance: %d allowed, %d refused", allowed, refused)
	}
}
