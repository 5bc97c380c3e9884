package user

// Command is one of the user commands below.
type Command interface{ isCommand() }

// Create makes a new user. Sub links it to an identity (optional).
type Create struct {
	Name  string
	Email string
	Sub   string
}

// Rename changes the name; the same name is a no-op.
type Rename struct{ Name string }

// ChangeEmail changes the email; the same email is a no-op.
type ChangeEmail struct{ Email string }

// Suspend stops an active user; the reason is required.
type Suspend struct{ Reason string }

// Reactivate restarts a suspended user.
type Reactivate struct{ Reason string }

// Delete removes a user for good.
type Delete struct{ Reason string }

// Forget erases the user's personal data for good (deleting it first when
// it is live); the reason is required.
type Forget struct{ Reason string }

func (Create) isCommand()      {}
func (Rename) isCommand()      {}
func (ChangeEmail) isCommand() {}
func (Suspend) isCommand()     {}
func (Reactivate) isCommand()  {}
func (Delete) isCommand()      {}
func (Forget) isCommand()      {}
