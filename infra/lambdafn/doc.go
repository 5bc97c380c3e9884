// Package lambdafn builds the handler of each Lambda function of
// template.yaml from the function's environment: the wiring that the mains in
// functions/ and the local runner (cmd/local) share, so that the runner serves
// exactly what Lambda runs.
//
// Each builder reads every variable it needs, fails fast with a message that
// names what is missing or malformed, and does no I/O: clients are built from
// the aws.Config the caller loaded, whose endpoints come from the SDK's own
// AWS_ENDPOINT_URL[_<SERVICE>] variables.
package lambdafn
