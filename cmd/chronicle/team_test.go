package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
)

// TestTeamHistoryAndState: history and state take a team's id, told from
// a user's by the aggregate type its stored records name: the events with
// their actors and reasons, the state at a time, at a version (from a
// snapshot and the events after it), and a diff.
func TestTeamHistoryAndState(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	teams := team.NewService(s.events, es.Options{SnapshotEvery: 2})
	id, alice, bob := newID(), newID(), newID()
	for _, c := range []struct {
		cmd           team.Command
		actor, reason string
	}{
		{team.Create{Name: "Platform", Owner: alice, OwnerActive: true}, "sub-alice", ""},
		{team.SetMember{UserID: bob, Role: team.RoleMember, UserActive: true}, "sub-alice", ""},
		{team.Rename{Name: "Infra"}, "admin-carol", "reorg"},
	} {
		if _, err := teams.Execute(t.Context(), id, c.cmd, es.ExecOptions{Metadata: es.Metadata{Actor: c.actor, Reason: c.reason}}); err != nil {
			t.Fatalf("%T: %v", c.cmd, err)
		}
	}
	beforeRemoval := time.Now().UTC()
	if _, err := teams.Execute(t.Context(), id, team.RemoveMember{UserID: bob, Reason: "moved"},
		es.ExecOptions{Metadata: es.Metadata{Actor: "sub-alice", Reason: "moved"}}); err != nil {
		t.Fatal(err)
	}

	out, _, code := s.chronicle(t, "history", id)
	if code != 0 || !strings.Contains(out, "team "+id+": 4 event(s)") || !strings.Contains(out, "team.renamed") ||
		!strings.Contains(out, "admin-carol") || !strings.Contains(out, "team.member_removed") {
		t.Fatalf("history: %d\n%s", code, out)
	}
	out, _, code = s.chronicle(t, "state", id, "--version", "3", "--json")
	st := decode[stateOf[team.State]](t, out)
	if code != 0 || st.Version != 3 || st.State.Name != "Infra" || len(st.State.Members) != 2 {
		t.Fatalf("state --version 3: %d %+v", code, st)
	}
	out, _, code = s.chronicle(t, "state", id, "--at", beforeRemoval.Format(time.RFC3339Nano))
	if code != 0 || !strings.Contains(out, "team "+id+" at v3") || !strings.Contains(out, `"Infra"`) {
		t.Fatalf("state --at: %d\n%s", code, out)
	}
	out, _, code = s.chronicle(t, "state", id)
	if code != 0 || !strings.Contains(out, "at v4") || strings.Contains(out, bob) {
		t.Fatalf("state: %d\n%s", code, out)
	}
	out, _, code = s.chronicle(t, "state", id, "--diff", "1..3")
	if code != 0 || !strings.Contains(out, `"Platform" → "Infra"`) || !strings.Contains(out, "team.member_added") {
		t.Fatalf("state --diff: %d\n%s", code, out)
	}
	if _, _, code = s.chronicle(t, "state", id, "--at", "2000-01-01T00:00:00Z"); code != exitFail {
		t.Fatalf("state before the team existed: exit %d", code)
	}
}
