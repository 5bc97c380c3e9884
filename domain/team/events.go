package team

import "github.com/chronicle-go/chronicle/domain/es"

// Created: a team came into being with its first owner.
type Created struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
}

// Renamed: the team's name changed.
type Renamed struct {
	Name string `json:"name"`
}

// MemberAdded: a user joined the team with a role.
type MemberAdded struct {
	UserID string `json:"userId"`
	Role   Role   `json:"role"`
}

// MemberRoleChanged: a member was given another role.
type MemberRoleChanged struct {
	UserID string `json:"userId"`
	Role   Role   `json:"role"`
}

// MemberRemoved: a user left the team, or was removed. UserDeleted says
// it was removed because the user was deleted or forgotten; the event's
// metadata then carries the deletion's actor, reason and ids.
type MemberRemoved struct {
	UserID      string `json:"userId"`
	Reason      string `json:"reason,omitempty"`
	UserDeleted bool   `json:"userDeleted,omitempty"`
}

// The team events' names carry no version: an event's version is its
// schema number, given to Register below and raised, with an upcaster from
// the previous shape, when the shape changes (docs/adding-an-aggregate.md).
// The user events keep the ".v1" their names were stored with: a stored
// name is never changed.
func (Created) EventType() string           { return "team.created" }
func (Renamed) EventType() string           { return "team.renamed" }
func (MemberAdded) EventType() string       { return "team.member_added" }
func (MemberRoleChanged) EventType() string { return "team.member_role_changed" }
func (MemberRemoved) EventType() string     { return "team.member_removed" }

// Register adds the team events to r at their current schema versions. No
// team event holds personal data: a team's name names a group, and its
// members are named by their pseudonymous user ids.
func Register(r *es.Registry) {
	es.Register[Created](r, 1)
	es.Register[Renamed](r, 1)
	es.Register[MemberAdded](r, 1)
	es.Register[MemberRoleChanged](r, 1)
	es.Register[MemberRemoved](r, 1)
}

// NewRegistry returns a registry holding the team events.
func NewRegistry() *es.Registry {
	r := es.NewRegistry()
	Register(r)
	return r
}

// EventTypes lists the names of the team events, for routing.
func EventTypes() []string {
	return []string{
		Created{}.EventType(), Renamed{}.EventType(), MemberAdded{}.EventType(),
		MemberRoleChanged{}.EventType(), MemberRemoved{}.EventType(),
	}
}
