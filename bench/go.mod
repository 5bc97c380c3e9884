// The benchmarks' own module: what Chronicle is compared with, kept out of
// the product's module so that the product never depends on it. cmd/bench
// (make bench) runs it with GOFLAGS=-mod=mod.
module github.com/chronicle-go/chronicle/bench

go 1.26.0

require (
	github.com/aws/aws-lambda-go v1.55.1
	github.com/chronicle-go/chronicle v0.0.0
	github.com/hallgren/eventsourcing v0.9.1
)

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/hallgren/eventsourcing/core v0.5.2 // indirect
)

replace github.com/chronicle-go/chronicle => ../
