package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// FeedReader reads the feed of every event: *dynamo.Store is one.
type FeedReader interface {
	ReadFeed(ctx context.Context, after dynamo.FeedCursor, limit int) (dynamo.FeedPage, error)
}

// feedEventAnswer is one event of GET /events: a history event with the
// aggregate it belongs to.
type feedEventAnswer struct {
	eventAnswer
	AggregateType string `json:"aggregateType"`
}

type feedAnswer struct {
	Events []feedEventAnswer `json:"events"`
	// NextCursor is always present: an empty page means caught up, and the
	// reader polls again with the same cursor.
	NextCursor string `json:"nextCursor"`
}

// errNoFeed: the queries function was built without a feed reader.
var errNoFeed = errors.New("httpapi: GET /events: no feed reader configured")

// GET /events?after=&limit=: admin only, every event in feed order.
func (q *Queries) feed(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	p, err := c.Principal()
	if err != nil {
		return apigw.Reply{}, err
	}
	if !p.IsAdmin() {
		return apigw.Reply{}, apigw.Deny("Only an admin may read the feed of every event.")
	}
	limit, err := apigw.QueryInt(c.Req, "limit", 1, maxLimit, defaultLimit)
	if err != nil {
		return apigw.Reply{}, err
	}
	raw, _, err := apigw.QueryValue(c.Req, "after")
	if err != nil {
		return apigw.Reply{}, err
	}
	after, err := dynamo.ParseFeedCursor(raw)
	if err != nil {
		return apigw.Reply{}, apigw.BadField("after", "must be a nextCursor of GET /events")
	}
	if q.deps.Feed == nil {
		return apigw.Reply{}, errNoFeed
	}
	page, err := q.deps.Feed.ReadFeed(ctx, after, int(limit))
	if err != nil {
		return apigw.Reply{}, err
	}
	ans := feedAnswer{Events: make([]feedEventAnswer, 0, len(page.Events)), NextCursor: page.Next.String()}
	for _, e := range page.Events {
		ans.Events = append(ans.Events, feedEventAnswer{eventAnswer: eventOf(e.Record, true), AggregateType: e.Record.AggregateType})
	}
	return apigw.Reply{Status: http.StatusOK, Body: ans}, nil
}
