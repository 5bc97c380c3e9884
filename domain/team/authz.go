package team

// Action is something a principal does to a team.
type Action string

// The actions on a team. Leave is RemoveMember of one's own user.
const (
	ActionRead         Action = "read"
	ActionRename       Action = "rename"
	ActionSetMember    Action = "set-member"
	ActionRemoveMember Action = "remove-member"
	ActionLeave        Action = "leave"
)

// Policy is who may do what to a team, as data: the roles of the team
// that may take each action. An admin may take every action; a principal
// whose user is not a member may take none (creating a team is not an
// action on one). The authorization matrix test reads it.
var Policy = map[Action][]Role{
	ActionRead:         {RoleOwner, RoleMember},
	ActionRename:       {RoleOwner},
	ActionSetMember:    {RoleOwner},
	ActionRemoveMember: {RoleOwner},
	ActionLeave:        {RoleOwner, RoleMember},
}

// Actor is a principal as a team sees it: the user linked to its identity
// ("" when none is), and whether it is an admin.
type Actor struct {
	UserID string
	Admin  bool
}

// Authorize returns ErrForbidden unless actor may take action on the team
// in state s. A team that does not exist answers as one the actor may not
// see, ErrForbidden, unless the actor is an admin (who is then told
// ErrNotFound by the command or the query).
func Authorize(s State, actor Actor, action Action) error {
	if actor.Admin {
		return nil
	}
	role, member := s.RoleOf(actor.UserID)
	if actor.UserID == "" || !member {
		return ErrForbidden
	}
	for _, r := range Policy[action] {
		if r == role {
			return nil
		}
	}
	return ErrForbidden
}

// ActionOf is the action a command is, for actor: removing one's own user
// is leaving.
func ActionOf(cmd Command, actor Actor) Action {
	switch c := cmd.(type) {
	case Rename:
		return ActionRename
	case SetMember:
		return ActionSetMember
	case RemoveMember:
		if c.UserID == actor.UserID {
			return ActionLeave
		}
		return ActionRemoveMember
	}
	return ActionRemoveMember // RemoveDeletedMember and Create are not a principal's actions on a team
}
