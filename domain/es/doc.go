// Package es is Chronicle's event-sourcing kernel: the event record, the decider
// shape, the command loop with optimistic concurrency, the codec registry with
// upcasters, snapshots, time travel and what-if, and the small store ports that
// adapters (in memory, DynamoDB) implement.
//
// It is pure Go: it imports the standard library and google/uuid, never an AWS
// or Lambda package, so domain code and its tests run anywhere.
package es
