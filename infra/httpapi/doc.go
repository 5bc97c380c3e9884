// Package httpapi is the User API: the Lambda handlers of the User
// service's command routes (Commands) and query routes (Queries) of the HTTP
// contract, on the generic API Gateway edge of package apigw.
//
// It declares the routes once (Routes, http.ServeMux patterns that
// template.yaml must match), turns requests into user commands and queries,
// checks who may do what, and maps the User service's errors to the edge's
// kinds (classify); apigw turns those into RFC 9457 problems. No web
// framework: requests are events.APIGatewayProxyRequest, routed on
// req.Resource (the template's path pattern) and req.HTTPMethod.
//
// Contract extension: the create, rename and change-email bodies accept an
// optional "reason" (at most 1000 characters) besides the fields of the contract,
// so that every event in a history can say why it happened. It is recorded
// in the events' metadata only.
package httpapi
