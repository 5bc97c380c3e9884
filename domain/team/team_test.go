package team_test

import (
	"errors"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
)

const (
	alice = "0190a6c1-0000-7000-8000-000000000001"
	bob   = "0190a6c1-0000-7000-8000-000000000002"
	carol = "0190a6c1-0000-7000-8000-000000000003"
)

var t0 = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)

// fold decides cmds one after the other from the empty state, failing the
// test on any error, and returns the state and version.
func fold(t *testing.T, cmds ...team.Command) (team.State, int64) {
	t.Helper()
	var s team.State
	var v int64
	for i, c := range cmds {
		evs, err := team.Decide(s, c, t0)
		if err != nil {
			t.Fatalf("command %d %T: %v", i, c, err)
		}
		for _, e := range evs {
			v++
			s = team.Evolve(s, es.Record{Version: v, OccurredAt: t0.Add(time.Duration(v) * time.Second), Event: e})
		}
	}
	return s, v
}

func TestDecide(t *testing.T) {
	create := team.Create{Name: "  Platform ", Owner: alice, OwnerActive: true}
	tests := []struct {
		name   string
		before []team.Command
		cmd    team.Command
		want   []es.Event
		err    error
	}{
		{"create", nil, create, []es.Event{team.Created{Name: "Platform", Owner: alice}}, nil},
		{"create twice", []team.Command{create}, create, nil, team.ErrAlreadyExists},
		{"create by an inactive owner", nil, team.Create{Name: "x", Owner: alice}, nil, team.ErrUserNotActive},
		{"rename", []team.Command{create}, team.Rename{Name: "Infra"}, []es.Event{team.Renamed{Name: "Infra"}}, nil},
		{"rename to the same name", []team.Command{create}, team.Rename{Name: "Platform"}, nil, nil},
		{"rename a team never created", nil, team.Rename{Name: "x"}, nil, team.ErrNotFound},
		{"join", []team.Command{create}, team.SetMember{UserID: bob, Role: team.RoleMember, UserActive: true},
			[]es.Event{team.MemberAdded{UserID: bob, Role: team.RoleMember}}, nil},
		{"an inactive user cannot join", []team.Command{create}, team.SetMember{UserID: bob, Role: team.RoleMember}, nil, team.ErrUserNotActive},
		{"join twice with the same role", []team.Command{create, team.SetMember{UserID: bob, Role: team.RoleMember, UserActive: true}},
			team.SetMember{UserID: bob, Role: team.RoleMember}, nil, nil},
		{"promote", []team.Command{create, team.SetMember{UserID: bob, Role: team.RoleMember, UserActive: true}},
			team.SetMember{UserID: bob, Role: team.RoleOwner, UserActive: true}, []es.Event{team.MemberRoleChanged{UserID: bob, Role: team.RoleOwner}}, nil},
		{"the last owner cannot step down", []team.Command{create}, team.SetMember{UserID: alice, Role: team.RoleMember, UserActive: true}, nil, team.ErrLastOwner},
		{"an owner steps down beside another", []team.Command{create, team.SetMember{UserID: bob, Role: team.RoleOwner, UserActive: true}},
			team.SetMember{UserID: alice, Role: team.RoleMember, UserActive: true}, []es.Event{team.MemberRoleChanged{UserID: alice, Role: team.RoleMember}}, nil},
		{"leave", []team.Command{create, team.SetMember{UserID: bob, Role: team.RoleMember, UserActive: true}},
			team.RemoveMember{UserID: bob, Reason: " moved "}, []es.Event{team.MemberRemoved{UserID: bob, Reason: "moved"}}, nil},
		{"the last owner cannot leave", []team.Command{create}, team.RemoveMember{UserID: alice}, nil, team.ErrLastOwner},
		{"remove a non-member", []team.Command{create}, team.RemoveMember{UserID: bob}, nil, team.ErrNotMember},
		{"a deleted user leaves, even the last owner", []team.Command{create}, team.RemoveDeletedMember{UserID: alice, Reason: "gone"},
			[]es.Event{team.MemberRemoved{UserID: alice, Reason: "gone", UserDeleted: true}}, nil},
		{"a deleted non-member is a no-op", []team.Command{create}, team.RemoveDeletedMember{UserID: bob}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := fold(t, tt.before...)
			got, err := team.Decide(s, tt.cmd, t0)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("events %#v, want %#v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d: %#v, want %#v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	_, err := team.Validate(team.Create{Name: " ", Owner: "nope"})
	var ve *team.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 2 || ve.Fields[0].Field != "name" || ve.Fields[1].Field != "owner" {
		t.Fatalf("create: %v, want name and owner invalid", err)
	}
	_, err = team.Validate(team.SetMember{UserID: bob, Role: "admin"})
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "role" {
		t.Fatalf("set member: %v, want role invalid", err)
	}
	cmd, err := team.Validate(team.SetMember{UserID: "0190A6C1-0000-7000-8000-000000000002", Role: team.RoleOwner})
	if err != nil || cmd.(team.SetMember).UserID != bob {
		t.Fatalf("set member: %v %v, want the canonical id", cmd, err)
	}
	if _, err := team.Decide(team.State{}, team.Rename{Name: "\u202Eevil"}, t0); !errors.As(err, &ve) {
		t.Fatalf("decide validates as Validate does: %v", err)
	}
}

// TestEvolveLeavesItsInputAlone: the kernel caches states, so a fold that
// wrote into the members of the state it was given would change a cached
// state behind the cache's back.
func TestEvolveLeavesItsInputAlone(t *testing.T) {
	s, v := fold(t, team.Create{Name: "T", Owner: alice, OwnerActive: true},
		team.SetMember{UserID: bob, Role: team.RoleMember, UserActive: true})
	for _, e := range []es.Event{
		team.MemberAdded{UserID: carol, Role: team.RoleMember},
		team.MemberRoleChanged{UserID: bob, Role: team.RoleOwner},
		team.MemberRemoved{UserID: bob},
	} {
		team.Evolve(s, es.Record{Version: v + 1, Event: e})
		if len(s.Members) != 2 || s.Members[bob].Role != team.RoleMember {
			t.Fatalf("after %T the input state changed: %+v", e, s.Members)
		}
	}
}

func TestViewIsTheFold(t *testing.T) {
	cmds := []team.Command{
		team.Create{Name: "T", Owner: alice, OwnerActive: true},
		team.SetMember{UserID: bob, Role: team.RoleMember, UserActive: true},
		team.SetMember{UserID: carol, Role: team.RoleOwner, UserActive: true},
		team.Rename{Name: "U"},
		team.RemoveMember{UserID: bob},
	}
	var s team.State
	var view team.View
	var v int64
	for _, c := range cmds {
		evs, err := team.Decide(s, c, t0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			v++
			rec := es.Record{AggregateID: "t1", Version: v, OccurredAt: t0.Add(time.Duration(v) * time.Second), Event: e}
			s = team.Evolve(s, rec)
			view = team.ApplyView(view, rec)
			view = team.ApplyView(view, rec) // a duplicate changes nothing
		}
	}
	if view.Name != "U" || view.Version != 5 || len(view.Members) != 2 ||
		view.Members[0].UserID != alice || view.Members[1].UserID != carol || view.Members[1].Role != team.RoleOwner {
		t.Fatalf("view %+v", view)
	}
	m := team.Memberships("t1", s)
	if len(m) != 2 || m[carol].Name != "U" || m[carol].Role != team.RoleOwner {
		t.Fatalf("memberships %+v", m)
	}
}

func TestAuthorize(t *testing.T) {
	s, _ := fold(t, team.Create{Name: "T", Owner: alice, OwnerActive: true},
		team.SetMember{UserID: bob, Role: team.RoleMember, UserActive: true})
	owner, member, outsider, admin := team.Actor{UserID: alice}, team.Actor{UserID: bob}, team.Actor{UserID: carol}, team.Actor{Admin: true}
	want := map[team.Action][4]bool{ // owner, member, outsider, admin
		team.ActionRead:         {true, true, false, true},
		team.ActionRename:       {true, false, false, true},
		team.ActionSetMember:    {true, false, false, true},
		team.ActionRemoveMember: {true, false, false, true},
		team.ActionLeave:        {true, true, false, true},
	}
	for action, w := range want {
		for i, a := range []team.Actor{owner, member, outsider, admin} {
			if got := team.Authorize(s, a, action) == nil; got != w[i] {
				t.Errorf("%s by %+v: allowed %v, want %v", action, a, got, w[i])
			}
		}
	}
	if team.ActionOf(team.RemoveMember{UserID: bob}, member) != team.ActionLeave ||
		team.ActionOf(team.RemoveMember{UserID: bob}, owner) != team.ActionRemoveMember {
		t.Fatal("removing one's own user is leaving")
	}
}
