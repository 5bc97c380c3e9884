package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/apigw"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// DependencyTimeout bounds each call that GET /ops/projections makes to the
// read model or a queue, and GET /healthz's queue probe, well under the
// function's 10 s timeout: a service that does not answer then costs the
// answer the figures it holds, not the whole answer (API Gateway's 504 after
// 10 s). The calls run concurrently, so an answer takes about this long at
// most.
const DependencyTimeout = 2 * time.Second

// projectionAnswer is how far one projection has got and what waits for it.
// The queue figures are SQS's approximate counts; they are null for a
// projection with no configured queue. A figure that could not be read in
// time is null (or absent) and named in Unavailable.
type projectionAnswer struct {
	LastEventID         string     `json:"lastEventId,omitempty"`
	LastEventAt         *time.Time `json:"lastEventAt"`         // null: nothing processed yet
	LastEventAgeSeconds *float64   `json:"lastEventAgeSeconds"` // now - lastEventAt
	ProcessedAt         *time.Time `json:"processedAt,omitempty"`
	Processed           *int64     `json:"processed"`       // null: a projection that keeps no checkpoint
	QueueDepth          *int64     `json:"queueDepth"`      // waiting
	InFlight            *int64     `json:"inFlight"`        // received, not yet deleted
	DeadLetterDepth     *int64     `json:"deadLetterDepth"` // given up on
	// Generation is the read model's generation readers use, and
	// RebuildingGeneration the one a rebuild is filling, if any.
	Generation           *int64 `json:"generation,omitempty"`
	RebuildingGeneration *int64 `json:"rebuildingGeneration,omitempty"`
	// Unavailable names the figures above that could not be read: their
	// source failed or did not answer within DependencyTimeout.
	Unavailable []string `json:"unavailable,omitempty"`
}

// Figures of a projectionAnswer, as Unavailable names them.
var (
	checkpointFigures = []string{"lastEventAt", "lastEventAgeSeconds", "processedAt", "processed"}
	queueFigures      = []string{"queueDepth", "inFlight"}
	deadLetterFigures = []string{"deadLetterDepth"}
	generationFigures = []string{"generation"}
)

// generations is what a read model with generations (*readmodel.Store)
// adds to GET /ops/projections.
type generations interface {
	GenerationsOf(ctx context.Context, projections []string) ([]readmodel.Generation, error)
}

type projectionsAnswer struct {
	Projections map[string]projectionAnswer `json:"projections"`
	// Errors says, in words, which sources could not be read; absent when
	// the answer is complete.
	Errors []string `json:"errors,omitempty"`
}

// opsReads is what GET /ops/projections read, each source with its error.
type opsReads struct {
	checkpoints    []readmodel.Checkpoint
	checkpointsErr error
	generations    []readmodel.Generation
	generationsErr error
	hasGenerations bool
	mu             sync.Mutex
	depths         map[string]queueDepth // by queue URL
	depthErrs      map[string]error      // by queue URL
}

// readOps reads every source of GET /ops/projections concurrently, each call
// under its own DependencyTimeout. Projections may share a queue: each URL
// is read once.
func (q *Queries) readOps(ctx context.Context) *opsReads {
	r := &opsReads{depths: map[string]queueDepth{}, depthErrs: map[string]error{}}
	bounded := func(f func(ctx context.Context)) func() {
		return func() {
			ctx, cancel := context.WithTimeout(ctx, DependencyTimeout)
			defer cancel()
			f(ctx)
		}
	}
	var wg sync.WaitGroup
	wg.Go(bounded(func(ctx context.Context) {
		r.checkpoints, r.checkpointsErr = q.deps.ReadModel.CheckpointsOf(ctx, q.set.checkpointed)
	}))
	if g, ok := q.deps.ReadModel.(generations); ok {
		r.hasGenerations = true
		wg.Go(bounded(func(ctx context.Context) {
			r.generations, r.generationsErr = g.GenerationsOf(ctx, q.set.checkpointed)
		}))
	}
	seen := map[string]bool{}
	for _, pr := range q.deps.Projections {
		for _, url := range []string{pr.QueueURL, pr.DLQURL} {
			if url == "" || seen[url] {
				continue
			}
			seen[url] = true
			wg.Go(bounded(func(ctx context.Context) {
				d, err := q.queueDepth(ctx, url)
				r.mu.Lock()
				defer r.mu.Unlock()
				if err != nil {
					r.depthErrs[url] = err
					return
				}
				r.depths[url] = d
			}))
		}
	}
	wg.Wait()
	return r
}

// GET /ops/projections (admin): what is known, within DependencyTimeout per
// source. A source that fails or does not answer leaves its figures null and
// named in each projection's "unavailable", says so in "errors", and is
// logged; the answer is 200 as long as one source answered, else 503.
func (q *Queries) projections(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	if err := adminOnly(c, "read the operations routes"); err != nil {
		return apigw.Reply{}, err
	}
	r := q.readOps(ctx)
	now := q.set.now().UTC()
	ans := projectionsAnswer{Projections: map[string]projectionAnswer{}}
	answered := false
	unknown := func(name string, figures []string) {
		a := ans.Projections[name]
		a.Unavailable = append(a.Unavailable, figures...)
		ans.Projections[name] = a
	}
	failed := func(what string, err error) {
		reason := "failed; the function's log has the cause"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "did not answer within " + DependencyTimeout.String()
		}
		ans.Errors = append(ans.Errors, what+" "+reason)
		q.deps.Logger.ErrorContext(ctx, "ops/projections: "+what+" could not be read", "error", err)
	}

	// Every projection named anywhere is listed, whatever failed.
	for _, pr := range q.deps.Projections {
		ans.Projections[pr.Name] = projectionAnswer{}
	}
	if r.checkpointsErr != nil {
		failed("the checkpoints", r.checkpointsErr)
		for _, name := range q.set.checkpointed { // the projections that keep checkpoints
			unknown(name, checkpointFigures)
		}
	} else {
		answered = true
		for _, name := range q.set.checkpointed {
			a := ans.Projections[name]
			a.Processed = new(int64) // no checkpoint yet: nothing processed
			ans.Projections[name] = a
		}
		for _, cp := range r.checkpoints {
			a := ans.Projections[cp.Projection]
			a.LastEventID, a.Processed = cp.LastEventID, &cp.Processed
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
	}
	if r.hasGenerations {
		if r.generationsErr != nil {
			failed("the generations", r.generationsErr)
			for _, name := range q.set.checkpointed {
				unknown(name, generationFigures)
			}
		} else {
			answered = true
			for _, gen := range r.generations {
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
	}

	// Queues, reported once each by the projections they feed.
	feeds := map[string][]string{}
	var urls []string
	for _, pr := range q.deps.Projections {
		for _, url := range []string{pr.QueueURL, pr.DLQURL} {
			if url == "" {
				continue
			}
			if feeds[url] == nil {
				urls = append(urls, url)
			}
			feeds[url] = append(feeds[url], pr.Name)
		}
	}
	for _, url := range urls {
		if err := r.depthErrs[url]; err != nil {
			failed("the queue of "+strings.Join(feeds[url], ", "), err)
		} else {
			answered = true
		}
	}
	for _, pr := range q.deps.Projections {
		a := ans.Projections[pr.Name]
		if pr.QueueURL != "" {
			if d, ok := r.depths[pr.QueueURL]; ok {
				a.QueueDepth, a.InFlight = &d.visible, &d.inFlight
			} else {
				a.Unavailable = append(a.Unavailable, queueFigures...)
			}
		}
		if pr.DLQURL != "" {
			if d, ok := r.depths[pr.DLQURL]; ok {
				dead := d.visible + d.inFlight
				a.DeadLetterDepth = &dead
			} else {
				a.Unavailable = append(a.Unavailable, deadLetterFigures...)
			}
		}
		ans.Projections[pr.Name] = a
	}
	if !answered {
		return apigw.Reply{}, &apigw.Error{Kind: apigw.Unavailable, Detail: "Neither the read model nor the queues answer."}
	}
	return apigw.Reply{Status: http.StatusOK, Body: ans}, nil
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
		return queueDepth{}, fmt.Errorf("queue attributes of %s: %w", url, err)
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
// and in each projection that keeps a per-user version (userviews.Names());
// one that has not seen the user is at 0. Projections without one, such as
// the welcome mail (a sent-record per created event, no version), are not
// listed: a 0 that never moves would keep a client that polls until every
// projection reaches the event store's version waiting forever.
func (q *Queries) consistency(ctx context.Context, c *apigw.Call) (apigw.Reply, error) {
	if err := adminOnly(c, "read the consistency of users"); err != nil {
		return apigw.Reply{}, err
	}
	id, err := userID(c)
	if err != nil {
		return apigw.Reply{}, err
	}
	agg, err := q.deps.Users.Load(ctx, id)
	if err != nil {
		return apigw.Reply{}, err
	}
	applied, err := q.deps.ReadModel.AppliedVersions(ctx, id)
	if err != nil {
		return apigw.Reply{}, err
	}
	if agg.Version == 0 && len(applied) == 0 {
		return apigw.Reply{}, user.ErrNotFound
	}
	ans := consistencyAnswer{EventStoreVersion: agg.Version, Projections: map[string]int64{}}
	for _, name := range userviews.Names() {
		ans.Projections[name] = 0
	}
	for name, v := range applied {
		ans.Projections[name] = v
	}
	return apigw.Reply{Status: http.StatusOK, Body: ans}, nil
}

// adminOnly lets only an admin through (401 without a principal).
func adminOnly(c *apigw.Call, what string) error {
	p, err := c.Principal()
	if err != nil {
		return err
	}
	if !p.IsAdmin() {
		return apigw.Deny("Only an admin may " + what + ".")
	}
	return nil
}

type healthAnswer struct {
	Status string `json:"status"`           // "ok", or "degraded": serving, but views fall behind
	Detail string `json:"detail,omitempty"` // what is degraded
}

// GET /healthz (no principal needed): 503 when a store does not answer
// within HealthTimeout, else 200. It stays cheap, being public and polled:
// the stores' probe (deps.Health) and, concurrently, the attributes of one
// projection queue under DependencyTimeout. The API serves reads and writes
// without SQS, so a queue that does not answer is 200 with status
// "degraded" (events are not delivered: views fall behind) rather than a
// 503 that would take a healthy API out of service. GET /ops/projections
// says which queue.
func (q *Queries) healthz(ctx context.Context, _ *apigw.Call) (apigw.Reply, error) {
	var storesErr, queueErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, HealthTimeout)
		defer cancel()
		storesErr = q.deps.Health(ctx)
	})
	if url := q.probeQueue(); url != "" {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, DependencyTimeout)
			defer cancel()
			_, queueErr = q.queueDepth(ctx, url)
		})
	}
	wg.Wait()
	if storesErr != nil {
		return apigw.Reply{}, &apigw.Error{Kind: apigw.Unavailable, Detail: "A store the service needs does not answer.", Cause: storesErr}
	}
	if queueErr != nil {
		q.deps.Logger.WarnContext(ctx, "healthz: degraded: a projection queue does not answer", "error", queueErr)
		return apigw.Reply{Status: http.StatusOK, Body: healthAnswer{Status: "degraded",
			Detail: "The stores answer, but the projection queues do not: views may fall behind the event store."}}, nil
	}
	return apigw.Reply{Status: http.StatusOK, Body: healthAnswer{Status: "ok"}}, nil
}

// probeQueue is the queue /healthz probes: the first configured one.
func (q *Queries) probeQueue() string {
	for _, pr := range q.deps.Projections {
		if pr.QueueURL != "" {
			return pr.QueueURL
		}
	}
	return ""
}
