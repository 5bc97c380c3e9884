package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/golang-jwt/jwt/v5"
)

// errUnauthorized is the one error text that makes API Gateway answer 401 to
// a Lambda TOKEN authorizer; any other error becomes a 500.
var errUnauthorized = errors.New("Unauthorized")

// Authorizer is the API Gateway REST (v1) TOKEN authorizer.
type Authorizer struct {
	verifier *Verifier
	logger   *slog.Logger
}

// NewAuthorizer returns an Authorizer that checks tokens with v and logs one
// line per call to logger.
func NewAuthorizer(v *Verifier, logger *slog.Logger) *Authorizer {
	return &Authorizer{verifier: v, logger: logger}
}

// Handle answers a TOKEN authorizer request, whose AuthorizationToken is the
// whole Authorization header. A valid bearer token gets an Allow policy on
// every route of the API and the principal in the context; anything else gets
// "Unauthorized" (401). An unreachable JWKS or a malformed method ARN is a
// server fault and returns another error, which API Gateway turns into a 500:
// the token may be fine, so a 401 would be a lie.
func (a *Authorizer) Handle(ctx context.Context, req events.APIGatewayCustomAuthorizerRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	attrs := make([]any, 0, 6)
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		attrs = append(attrs, "aws_request_id", lc.AwsRequestID)
	}

	token, reason := bearer(req.AuthorizationToken)
	if token == "" {
		a.logger.InfoContext(ctx, "authorizer denied", append(attrs, "reason", reason)...)
		return events.APIGatewayCustomAuthorizerResponse{}, errUnauthorized
	}

	p, err := a.verifier.Verify(ctx, token)
	if errors.Is(err, errKeysUnavailable) {
		a.logger.ErrorContext(ctx, "authorizer failed", append(attrs, "reason", "jwks_unavailable", "error", err)...)
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("authorizer: signing keys unavailable")
	}
	if err != nil {
		// Only the category: the error can quote the token's header.
		a.logger.InfoContext(ctx, "authorizer denied", append(attrs, "reason", denyReason(err))...)
		return events.APIGatewayCustomAuthorizerResponse{}, errUnauthorized
	}

	resource, err := apiResource(req.MethodArn)
	if err != nil {
		a.logger.ErrorContext(ctx, "authorizer failed", append(attrs, "reason", "bad_method_arn", "error", err)...)
		return events.APIGatewayCustomAuthorizerResponse{}, err
	}
	a.logger.InfoContext(ctx, "authorizer allowed", append(attrs, "sub", p.Sub)...)
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: p.Sub,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   "Allow",
				Resource: []string{resource},
			}},
		},
		Context: p.AuthorizerContext(),
	}, nil
}

// bearer extracts the token from an Authorization header value, or says why
// there is none. The scheme is case-insensitive (RFC 7235).
func bearer(header string) (token, reason string) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	switch {
	case scheme != "" && !strings.EqualFold(scheme, "Bearer"):
		return "", "not_bearer"
	case token == "":
		return "", "missing_token"
	}
	return token, ""
}

// apiResource turns the ARN of the method being called,
// arn:aws:execute-api:region:account:apiId/stage/VERB/path..., into one that
// covers every method of the stage. API Gateway caches the policy per token
// and reuses it on other routes, so a policy for one method would deny the next.
func apiResource(methodArn string) (string, error) {
	parts := strings.SplitN(methodArn, "/", 3)
	if len(parts) < 3 || !strings.HasPrefix(parts[0], "arn:") || !strings.Contains(parts[0], ":execute-api:") || parts[1] == "" {
		return "", fmt.Errorf("authorizer: method ARN %q is not arn:...:execute-api:...:apiId/stage/VERB/path", methodArn)
	}
	return parts[0] + "/" + parts[1] + "/*/*", nil
}

// denyReason names the category of a rejected token for the log.
func denyReason(err error) string {
	switch {
	case errors.Is(err, errNoKID), errors.Is(err, errUnknownKey):
		return "unknown_key"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad_signature" // also a disallowed algorithm, "none" included
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not_yet_valid"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong_issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong_audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing_claim"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "invalid_claim" // a sub or role that cannot be carried exactly
	default:
		return "invalid"
	}
}
