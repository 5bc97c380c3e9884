// Package loadtest measures the whole service as the local runner serves it
// (template.yaml, in process, on the emulators), each figure against a raw
// floor on the same emulators: command throughput over HTTP at 1, 8 and 32
// concurrent clients, and the projection lag from an accepted write to the
// read model at a steady rate of commands.
//
// It holds benchmarks only, which need the emulators: cmd/bench (make bench)
// runs them, each group on emulators of its own, and writes BENCHMARKS.md.
//
//	go run ./cmd/emulators -- go test -run '^$' -bench . -benchtime 1x ./cmd/local/loadtest
package loadtest
