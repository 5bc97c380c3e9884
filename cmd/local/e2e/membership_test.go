package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// TestDeletedUserLeavesItsTeams: a user in three teams is deleted over
// HTTP; the membership process manager (MembershipFunction, on the queue
// the relay routes deletions and joins to) takes it out of all three, and
// each team's history names the deleter and the reason. The teams are
// written straight to the events table, as the Team service writes them:
// this checks the runner's wiring of the manager (template, routes,
// queue, function), not the teams' API.
func TestDeletedUserLeavesItsTeams(t *testing.T) {
	t.Parallel()
	if s.aws == nil || s.eventsTable == "" {
		t.Skip("needs the events table: set " + envEventsTable)
	}
	ctx := t.Context()
	u := createUser(t, admin(), "Ivan", uniqueEmail("ivan"))
	store := dynamo.New(dynamodb.NewFromConfig(*s.aws), dynamo.Tables{Events: s.eventsTable})
	registry := team.NewRegistry()
	var teams []string
	for i := range 3 {
		id, owner := uuid.NewString(), uuid.NewString()
		if i == 0 {
			owner = u.ID // its last owner
		}
		evs := []es.Event{team.Created{Name: "Team " + id[:8], Owner: owner}}
		if i > 0 {
			evs = append(evs, team.MemberAdded{UserID: u.ID, Role: team.RoleMember})
		}
		recs := make([]es.Record, len(evs))
		for j, e := range evs {
			typ, schema, data, err := registry.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			recs[j] = es.Record{ID: uuid.Must(uuid.NewV7()).String(), AggregateID: id, AggregateType: team.AggregateType,
				Version: int64(j + 1), Type: typ, SchemaVersion: schema, OccurredAt: time.Now().UTC(), Data: data,
				Metadata: es.Metadata{Actor: "e2e"}}
		}
		if err := store.Append(ctx, es.AppendRequest{AggregateID: id, Records: recs}); err != nil {
			t.Fatal(err)
		}
		teams = append(teams, id)
	}

	const reason = "left the company"
	deleted := time.Now()
	do(t, req{method: "DELETE", path: "/users/" + u.ID, token: s.admin, body: map[string]string{"reason": reason}}).want(t, http.StatusOK)
	for _, id := range teams {
		var removed es.Record
		eventually(t, 20*time.Second, "the deleted user leaves team "+id, func() (bool, string) {
			recs, err := store.Load(ctx, id, 1, 0)
			if err != nil {
				return false, err.Error()
			}
			if err := registry.DecodeAll(recs); err != nil {
				t.Fatal(err)
			}
			var st team.State
			for _, r := range recs {
				st = team.Evolve(st, r)
			}
			if _, member := st.RoleOf(u.ID); member {
				return false, "still a member"
			}
			i := slices.IndexFunc(recs, func(r es.Record) bool { return r.Type == team.MemberRemoved{}.EventType() })
			removed = recs[i]
			return true, ""
		})
		if md := removed.Metadata; md.Actor != s.adminSub || md.Reason != reason || md.CausationID == "" {
			t.Errorf("team %s: the removal's metadata %+v, want the deleter %s, the reason and the deletion as cause", id, md, s.adminSub)
		}
	}
	t.Logf("gone from %d teams %v after the deletion's answer", len(teams), time.Since(deleted).Round(time.Millisecond))
}
