// Package e2e holds the end-to-end tests of the service, over HTTP: every
// route and status of the HTTP contract, and the stories of the talk (who deleted my
// user?, read your writes, one welcome mail per user, a poisoned aggregate
// in the dead-letter queue while others flow).
//
// By default (make test) they start the local runner in process on a free
// port, against the emulators cmd/emulators started, with a stack of its own
// (e2e-<random>), deleted afterwards. Given CHRONICLE_E2E_BASE_URL they run
// against that deployment instead; see the README for the variables.
package e2e
