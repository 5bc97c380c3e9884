// Package team is the Team aggregate, the service's second aggregate: a
// named group of users, each a member or an owner. It is written on the
// kernel exactly as package user is (a decider, its events, their registry
// and a service), so history, time travel, what-if, snapshots,
// idempotency and the read side come from the framework.
//
// Its rules: a team is created with one owner; only an active user may
// join or be given a role; the last owner can neither leave nor lose the
// role; adding a member with the role it has is a no-op. When a user is
// deleted or forgotten, the process manager removes it from every team
// with RemoveDeletedMember, which may take a team's last owner: the team
// is then left to admins (an owner is never made without consent).
//
// Whether a user is active is a fact of another aggregate: the caller
// reads it and hands it in with the command (UserActive), so the decision
// stays a pure function.
package team
