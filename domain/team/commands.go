package team

// Command is one of the team commands below.
type Command interface{ isCommand() }

// Create makes a new team owned by Owner, a user id. OwnerActive is
// whether that user is active, as the caller read it.
type Create struct {
	Name        string
	Owner       string
	OwnerActive bool
}

// Rename changes the team's name; the same name is a no-op.
type Rename struct{ Name string }

// SetMember adds UserID to the team with Role, or gives a member another
// role; the same role is a no-op. UserActive is whether that user is
// active, as the caller read it: only an active user may join.
type SetMember struct {
	UserID     string
	Role       Role
	UserActive bool
}

// RemoveMember takes UserID out of the team (a member leaving, or an
// owner removing it). The last owner cannot leave.
type RemoveMember struct {
	UserID string
	Reason string
}

// RemoveDeletedMember takes a deleted or forgotten user out of the team:
// the process manager's command. It may take the last owner, and a user
// that is not a member is a no-op, so that a redelivered deletion changes
// nothing.
type RemoveDeletedMember struct {
	UserID string
	Reason string
}

func (Create) isCommand()              {}
func (Rename) isCommand()              {}
func (SetMember) isCommand()           {}
func (RemoveMember) isCommand()        {}
func (RemoveDeletedMember) isCommand() {}
