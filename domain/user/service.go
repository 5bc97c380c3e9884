package user

import "github.com/chronicle-go/chronicle/domain/es"

// Service is the User service: the kernel's service over the user's state
// and commands.
type Service = es.Service[State, Command]

// NewService wires the User aggregate into the kernel: its decider and its
// registry of events over store, tuned by opts. It is the one place the
// aggregate is assembled, so that every function, tool and test that runs
// user commands or loads users decodes and decides alike.
func NewService(store es.Store, opts es.Options) *Service {
	return es.NewService(Decider(), NewRegistry(), store, opts)
}
