package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// teamAnswer is a GET /teams/{id} answer.
type teamAnswer struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
	Members []struct {
		UserID string `json:"userId"`
		Role   string `json:"role"`
	} `json:"members"`
}

func (a teamAnswer) has(user string) bool {
	return slices.ContainsFunc(a.Members, func(m struct {
		UserID string `json:"userId"`
		Role   string `json:"role"`
	}) bool {
		return m.UserID == user
	})
}

type userTeamsAnswer struct {
	Teams []struct {
		TeamID string `json:"teamId"`
		Name   string `json:"name"`
		Role   string `json:"role"`
	} `json:"teams"`
}

// userIDOf is the userId a team event's data names.
func userIDOf(t *testing.T, data json.RawMessage) string {
	t.Helper()
	var d struct {
		UserID string `json:"userId"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("team event data %s: %v", data, err)
	}
	return d.UserID
}

// TestDeletedUserLeavesItsTeams is the process manager's end-to-end test
// over HTTP: a user joins three teams, an admin deletes it, and it is gone
// from the three teams' read models and from its own teams list; each
// team's history names the deleter, the reason, and the deletion as the
// cause. It measures, per deletion, from the DELETE sent to the last of
// those reads showing it gone (the target is 1 s at p99 on the local
// runner; CHRONICLE_E2E_TEAMS_P99 enforces one, CHRONICLE_E2E_TEAMS_USERS
// chooses how many users, 10 by default).
func TestDeletedUserLeavesItsTeams(t *testing.T) {
	t.Parallel()
	rounds := envInt(t, "CHRONICLE_E2E_TEAMS_USERS", 10)
	ownerIdentity := newIdentity(t)
	owner := createUser(t, ownerIdentity, "Team Owner", uniqueEmail("owner"))
	var teams []string
	for i := range 3 {
		var w written
		r := do(t, req{method: "POST", path: "/teams", token: ownerIdentity.token, body: map[string]string{"name": fmt.Sprintf("Team %d", i)}}).
			want(t, http.StatusCreated)
		r.decode(t, &w)
		if r.header.Get("Location") != "/teams/"+w.ID {
			t.Errorf("Location %q", r.header.Get("Location"))
		}
		teams = append(teams, w.ID)
	}

	var lags []time.Duration
	for round := range rounds {
		member := newIdentity(t)
		u := createUser(t, member, fmt.Sprintf("Member %d", round), uniqueEmail("member"))
		for _, id := range teams {
			do(t, req{method: "PUT", path: "/teams/" + id + "/members/" + u.ID, token: ownerIdentity.token,
				body: map[string]string{"role": "member"}}).want(t, http.StatusOK)
		}
		eventually(t, 20*time.Second, "the member's teams list shows its three teams", func() (bool, string) {
			var a userTeamsAnswer
			r := do(t, req{method: "GET", path: "/users/" + u.ID + "/teams", token: member.token}).want(t, http.StatusOK)
			r.decode(t, &a)
			return len(a.Teams) == 3, string(r.body)
		})

		reason := fmt.Sprintf("left the company (round %d)", round)
		sent := time.Now()
		do(t, req{method: "DELETE", path: "/users/" + u.ID, token: s.admin, body: map[string]string{"reason": reason}}).
			want(t, http.StatusOK)
		gone := func() (bool, string) {
			for _, id := range teams {
				var a teamAnswer
				r := do(t, req{method: "GET", path: "/teams/" + id, token: s.admin}).want(t, http.StatusOK)
				r.decode(t, &a)
				if a.has(u.ID) {
					return false, "team " + id + " still lists the user: " + string(r.body)
				}
			}
			var a userTeamsAnswer
			r := do(t, req{method: "GET", path: "/users/" + u.ID + "/teams", token: s.admin}).want(t, http.StatusOK)
			r.decode(t, &a)
			return len(a.Teams) == 0, "the user's teams: " + string(r.body)
		}
		eventually(t, 20*time.Second, "the deleted user is gone from its three teams", gone)
		lags = append(lags, time.Since(sent))

		// The deletion, as the user's history has it, is the cause of each
		// team's removal, which carries its actor and reason.
		var uh historyAnswer
		do(t, req{method: "GET", path: "/users/" + u.ID + "/history", token: s.admin}).want(t, http.StatusOK).decode(t, &uh)
		del := uh.Events[len(uh.Events)-1]
		if del.Type != "user.deleted.v1" {
			t.Fatalf("the user's last event is %s", del.Type)
		}
		for _, id := range teams {
			var th historyAnswer
			do(t, req{method: "GET", path: "/teams/" + id + "/history?limit=1000", token: s.admin}).want(t, http.StatusOK).decode(t, &th)
			n := 0
			for _, e := range th.Events {
				if e.Type != "team.member_removed" || userIDOf(t, e.Data) != u.ID {
					continue
				}
				n++
				if e.Actor != admin().sub || e.Reason != reason || e.CausationID != del.EventID || e.CorrelationID != del.CorrelationID {
					t.Errorf("team %s: the removal %+v does not carry the deletion's actor %q, reason %q, cause %s and correlation %s",
						id, e, admin().sub, reason, del.EventID, del.CorrelationID)
				}
			}
			if n != 1 {
				t.Errorf("team %s: %d removals of the deleted user, want exactly 1", id, n)
			}
		}
	}

	// The owner is still in every team.
	for _, id := range teams {
		var a teamAnswer
		do(t, req{method: "GET", path: "/teams/" + id, token: ownerIdentity.token}).want(t, http.StatusOK).decode(t, &a)
		if !a.has(owner.ID) || len(a.Members) != 1 {
			t.Errorf("team %s after the deletions: %+v, want its owner alone", id, a)
		}
	}
	slices.Sort(lags)
	p99 := lags[min(len(lags)-1, len(lags)*99/100)]
	t.Logf("deleted user gone from 3 teams and its list, from DELETE sent: p50 %s, p99 %s, max %s over %d deletions",
		lags[len(lags)/2].Round(time.Millisecond), p99.Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond), len(lags))
	if want := envDuration(t, "CHRONICLE_E2E_TEAMS_P99", 0); want > 0 && p99 > want {
		t.Errorf("p99 %s, want at most %s", p99, want)
	}
}
