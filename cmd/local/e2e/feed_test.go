package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestEventFeed: GET /events through the runner, as an admin polls it: a
// user's events show up once each, in version order, with the aggregate's
// id and type, after the feed's horizon (about 10 s behind live); the
// cursor is always there; a non-admin gets 403 and a forged cursor 400.
func TestEventFeed(t *testing.T) {
	t.Parallel()
	u := createUser(t, admin(), "Feed", uniqueEmail("feed"))
	do(t, req{method: "PUT", path: "/users/" + u.ID + "/name", token: s.admin, body: map[string]string{"name": "Feed 2"}}).want(t, http.StatusOK)

	type feedEvent struct {
		AggregateID   string `json:"aggregateId"`
		AggregateType string `json:"aggregateType"`
		Version       int64  `json:"version"`
		Type          string `json:"type"`
	}
	var (
		cursor string
		mine   []feedEvent
	)
	eventually(t, 45*time.Second, "the user's two events in the feed", func() (bool, string) {
		path := "/events?limit=1000"
		if cursor != "" {
			path += "&after=" + url.QueryEscape(cursor)
		}
		var page struct {
			Events     []feedEvent `json:"events"`
			NextCursor string      `json:"nextCursor"`
		}
		do(t, req{method: "GET", path: path, token: s.admin}).want(t, http.StatusOK).decode(t, &page)
		if page.NextCursor == "" {
			t.Fatalf("a page without nextCursor")
		}
		cursor = page.NextCursor
		for _, e := range page.Events {
			if e.AggregateID == u.ID {
				mine = append(mine, e)
			}
		}
		return len(mine) >= 2, fmt.Sprintf("%d of the user's events so far", len(mine))
	})
	if len(mine) != 2 || mine[0].Version != 1 || mine[1].Version != 2 || mine[0].AggregateType != "user" || mine[1].Type != "user.renamed.v1" {
		t.Errorf("the user's events in the feed: %+v", mine)
	}
	do(t, req{method: "GET", path: "/events", token: newIdentity(t).token}).wantProblem(t, http.StatusForbidden)
	do(t, req{method: "GET", path: "/events?after=forged", token: s.admin}).wantProblem(t, http.StatusBadRequest)
}
