// Package auth owns who is calling: it verifies the bearer JWTs the API
// accepts (RS256 against the issuer's JWKS in AWS, HS256 with a shared secret
// locally), mints local tokens, and carries the resulting Principal from the
// Lambda TOKEN authorizer to the route functions through the API Gateway
// authorizer context.
//
// Deciding what a principal may do stays with the route handlers; this
// package only says who it is.
package auth
