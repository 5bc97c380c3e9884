package team

import "github.com/chronicle-go/chronicle/domain/es"

// Service is the Team service: the kernel's service over the team's state
// and commands.
type Service = es.Service[State, Command]

// NewService wires the Team aggregate into the kernel: its decider and its
// registry of events over store, tuned by opts.
func NewService(store es.Store, opts es.Options) *Service {
	return es.NewService(Decider(), NewRegistry(), store, opts)
}
