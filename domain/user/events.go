package user

import "github.com/chronicle-go/chronicle/domain/es"

// Created: a user came into being, optionally linked to an identity (sub).
type Created struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Sub   string `json:"sub,omitempty"`
}

// Renamed: the user's name changed.
type Renamed struct {
	Name string `json:"name"`
}

// EmailChanged: the user's email changed; Previous was freed.
type EmailChanged struct {
	Email    string `json:"email"`
	Previous string `json:"previous"`
}

// Suspended: the user may no longer act until reactivated.
type Suspended struct {
	Reason string `json:"reason"`
}

// Reactivated: a suspended user is active again.
type Reactivated struct {
	Reason string `json:"reason,omitempty"`
}

// Deleted: the user is gone for good; it accepts no further command.
type Deleted struct {
	Reason string `json:"reason,omitempty"`
}

// Forgotten: the user's personal data was erased (the right to be
// forgotten): its data key is destroyed, so the personal fields of every
// earlier event read as null. It carries no personal data itself. A
// forgotten user is deleted.
type Forgotten struct {
	Reason string `json:"reason"`
}

func (Created) EventType() string      { return "user.created.v1" }
func (Renamed) EventType() string      { return "user.renamed.v1" }
func (EmailChanged) EventType() string { return "user.email_changed.v1" }
func (Suspended) EventType() string    { return "user.suspended.v1" }
func (Reactivated) EventType() string  { return "user.reactivated.v1" }
func (Deleted) EventType() string      { return "user.deleted.v1" }
func (Forgotten) EventType() string    { return "user.forgotten.v1" }

// ErasesPersonalData: after a forget, nothing personal of the user is read
// (es.Erasure).
func (Forgotten) ErasesPersonalData() {}

// The personal fields of each event (es.PersonalData): the stores keep them
// encrypted with the user's own data key, which forgetting destroys. The
// name and the addresses are personal; sub, the identity provider's
// subject, is a pseudonymous identifier that is also the actor of every
// event the person caused: the audit trail keeps it (docs/forget.md).
func (Created) PersonalFields() []string      { return []string{"name", "email"} }
func (Renamed) PersonalFields() []string      { return []string{"name"} }
func (EmailChanged) PersonalFields() []string { return []string{"email", "previous"} }

// PersonalFields are the personal fields of State, the snapshot shape.
func (State) PersonalFields() []string { return []string{"name", "email"} }

// Register adds the user events to r at their current schema versions, and
// the personal fields of the user state (what its snapshots hold).
func Register(r *es.Registry) {
	es.Register[Created](r, 1)
	es.Register[Renamed](r, 1)
	es.Register[EmailChanged](r, 1)
	es.Register[Suspended](r, 1)
	es.Register[Reactivated](r, 1)
	es.Register[Deleted](r, 1)
	es.Register[Forgotten](r, 1)
	es.RegisterState[State](r, AggregateType) // snapshots hold the name and email
}

// NewRegistry returns a registry holding the user events.
func NewRegistry() *es.Registry {
	r := es.NewRegistry()
	Register(r)
	return r
}
