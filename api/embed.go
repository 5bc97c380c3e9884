// Package api carries the HTTP contract of the User service as an OpenAPI
// 3.1 document, openapi.yaml: every route the API serves, its parameters,
// bodies, answers and problem+json errors. It is embedded so that the tests
// (api/apitest checks every request and answer of the handler tests and the
// end-to-end suite against it) and, later, the service itself read the one
// copy that is in the repository.
package api

import _ "embed"

// OpenAPI is openapi.yaml, the OpenAPI 3.1 document of the HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte
