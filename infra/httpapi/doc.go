// Package httpapi owns the HTTP edge of the User service: the Lambda handlers
// behind the API Gateway REST API (v1, proxy integrations) for the command
// routes (Commands) and the query routes (Queries) of the HTTP contract.
//
// It turns requests into commands and queries, checks who may do what,
// and turns every error into an RFC 9457 problem. The HTTP status of a
// problem is decided in one place, problemFor. No web framework: requests
// are events.APIGatewayProxyRequest and routing is on req.Resource (the
// template's path pattern) and req.HTTPMethod.
//
// Contract extension: the create, rename and change-email bodies accept an
// optional "reason" (at most 1000 characters) besides the fields of the contract,
// so that every event in a history can say why it happened. It is recorded
// in the events' metadata only.
package httpapi
