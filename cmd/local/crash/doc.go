// Package crash holds the crash test of the local runner: a process running
// the whole template (cmd/local/internal/runner) is killed with SIGKILL
// while a load is running and its consumers have messages in flight, then
// started again on the same stack and emulators. Afterwards every view must
// equal the fold of its events, every user must have exactly one welcome
// mail and every dead-letter queue must be empty, within the bound the
// template's timeouts promise (see crash_test.go).
//
// The test binary is its own consumer process: run with CHRONICLE_CRASH_CHILD
// set, TestMain serves the runner instead of running tests.
package crash
