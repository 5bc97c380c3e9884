package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// projectionAnswer is how far one projection has got and what waits for it.
// The queue figures are SQS's approximate counts; they are absent for a
// projection with no configured queue.
type projectionAnswer struct {
	LastEventID         string     `json:"lastEventId,omitempty"`
	LastEventAt         *time.Time `json:"lastEventAt"`         // null: nothing processed yet
	LastEventAgeSeconds *float64   `json:"lastEventAgeSeconds"` // now - lastEventAt
	ProcessedAt         *time.Time `json:"processedAt,omitempty"`
	Processed           int64      `json:"processed"`
	QueueDepth          *int64     `json:"queueDepth,omitempty"`      // waiting
	InFlight            *int64     `json:"inFlight,omitempty"`        // received, not yet deleted
	DeadLetterDepth     *int64     `json:"deadLetterDepth,omitempty"` // given up on
	// Generation is the read model's generation readers use, and
	// RebuildingGeneration the one a rebuild is filling, if any.
	Generation           *int64 `json:"generation,omitempty"`
	RebuildingGeneration *int64 `json:"rebuildingGeneration,omitempty"`
}

// generations is what a read model with generations (*readmodel.Store)
// adds to GET /ops/projections.
type generations interface {
	Generations(ctx context.Context) ([]readmodel.Generation, error)
}

type projectionsAnswer struct {
	Projections map[string]projectionAnswer `json:"projections"`
}

// GET /ops/projections (admin)
func (q *Queries) projections(ctx context.Context, c *call) (reply, error) {
	if err := adminOnly(c, "read the operations routes"); err != nil {
		return reply{}, err
	}
	cps, err := q.deps.ReadModel.Checkpoints(ctx)
	if err != nil {
		return reply{}, err
	}
	now := q.set.now().UTC()
	ans := projectionsAnswer{Projections: map[string]projectionAnswer{}}
	for _, cp := range cps {
		a := projectionAnswer{LastEventID: cp.LastEventID, Processed: cp.Processed}
		if !cp.LastEventAt.IsZero() {
			at := cp.LastEventAt.UTC()
			age := max(now.Sub(at).Seconds(), 0)
			a.LastEventAt, a.LastEventAgeSeconds = &at, &age
		}
		if !cp.ProcessedAt.IsZero() {
			pt := cp.ProcessedAt.UTC()
			a.ProcessedAt = &pt
		}
		ans.Projections[cp.Projection] = a
	}
	if g, ok := q.deps.ReadModel.(generations); ok {
		gens, err := g.Generations(ctx)
		if err != nil {
			return reply{}, err
		}
		for _, gen := range gens {
			a := ans.Projections[gen.Projection]
			active := gen.Active
			a.Generation = &active
			if gen.Building > 0 {
				building := gen.Building
				a.RebuildingGeneration = &building
			}
			ans.Projections[gen.Projection] = a
		}
	}
	depths := map[string]queueDepth{} // projections may share a queue
	depth := func(url string) (queueDepth, error) {
		if d, ok := depths[url]; ok {
			return d, nil
		}
		d, err := q.queueDepth(ctx, url)
		depths[url] = d
		return d, err
	}
	for _, pr := range q.deps.Projections {
		a := ans.Projections[pr.Name]
		if pr.QueueURL != "" {
			d, err := depth(pr.QueueURL)
			if err != nil {
				return reply{}, err
			}
			a.QueueDepth, a.InFlight = &d.visible, &d.inFlight
		}
		if pr.DLQURL != "" {
			d, err := depth(pr.DLQURL)
			if err != nil {
				return reply{}, err
			}
			dead := d.visible + d.inFlight
			a.DeadLetterDepth = &dead
		}
		ans.Projections[pr.Name] = a
	}
	return reply{status: http.StatusOK, body: ans}, nil
}

type queueDepth struct{ visible, inFlight int64 }

func (q *Queries) queueDepth(ctx context.Context, url string) (queueDepth, error) {
	out, err := q.deps.Queues.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return queueDepth{}, err
	}
	var d queueDepth
	d.visible, _ = strconv.ParseInt(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], 10, 64)
	d.inFlight, _ = strconv.ParseInt(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)], 10, 64)
	return d, nil
}

type consistencyAnswer struct {
	EventStoreVersion int64            `json:"eventStoreVersion"`
	Projections       map[string]int64 `json:"projections"`
}

// GET /users/{id}/consistency (admin): the user's version in the event store
// and in each projection that keeps a per-user version (readmodel.Projections);
// one that has not seen the user is at 0. Projections without one, such as
// the welcome mail (a sent-record per created event, no version), are not
// listed: a 0 that never moves would keep a client that polls until every
// projection reaches the event store's version waiting forever.
func (q *Queries) consistency(ctx context.Context, c *call) (reply, error) {
	if err := adminOnly(c, "read the consistency of users"); err != nil {
		return reply{}, err
	}
	id, err := c.userID()
	if err != nil {
		return reply{}, err
	}
	agg, err := q.deps.Users.Load(ctx, id)
	if err != nil {
		return reply{}, err
	}
	applied, err := q.deps.ReadModel.AppliedVersions(ctx, id)
	if err != nil {
		return reply{}, err
	}
	if agg.Version == 0 && len(applied) == 0 {
		return reply{}, user.ErrNotFound
	}
	ans := consistencyAnswer{EventStoreVersion: agg.Version, Projections: map[string]int64{}}
	for _, name := range readmodel.Projections {
		ans.Projections[name] = 0
	}
	for name, v := range applied {
		ans.Projections[name] = v
	}
	return reply{status: http.StatusOK, body: ans}, nil
}

// adminOnly lets only an admin through (401 without a principal).
func adminOnly(c *call, what string) error {
	p, err := c.principal()
	if err != nil {
		return err
	}
	if !p.IsAdmin() {
		return forbidden("Only an admin may " + what + ".")
	}
	return nil
}

type healthAnswer struct {
	Status string `json:"status"`
}

// GET /healthz (no principal needed): 200 when the stores answer, else 503.
func (q *Queries) healthz(ctx context.Context, _ *call) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, HealthTimeout)
	defer cancel()
	if err := q.deps.Health(ctx); err != nil {
		return reply{}, &edgeError{kind: errUnavailable, detail: "A store the service needs does not answer.", cause: err}
	}
	return reply{status: http.StatusOK, body: healthAnswer{Status: "ok"}}, nil
}
