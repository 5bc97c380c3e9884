// Package apigw is the generic HTTP edge of a Chronicle API behind API
// Gateway (REST API, Lambda proxy integrations): it routes a proxy request
// to a handler by a route table declared once (http.ServeMux patterns such
// as "PUT /users/{id}/name"), reads headers, query parameters and JSON
// bodies strictly into typed structs, recovers panics, logs server errors,
// and answers every error as an RFC 9457 problem.
//
// It knows no aggregate. Errors become statuses by kind (Kind: validation,
// not found, conflict, forbidden, throttled...): the edge's own errors and
// an API's are *Error values carrying a Kind, an API maps its domain's
// errors to them with Errors.Classify, and the kernel's errors (package es:
// duplicates, preconditions, conflicts, busy streams, idempotency) and
// DynamoDB's throttling are mapped here, worded with the API's Noun. An API
// (infra/httpapi for the User service) declares its routes and handlers and
// gives one Edge per function.
package apigw
