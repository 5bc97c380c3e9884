package lambdafn

import (
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/teamviews"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// readProjections are the service's projections, the User service's and
// the Team service's, in the order the projector applies them: what the
// projector runs and the replay rebuilds. Each takes only the streams of
// its own kind of aggregate (projection.Takes).
func readProjections() []projection.Projection {
	return append(userviews.Projections(), teamviews.Projections()...)
}

// readRegistry decodes every event the read side is handed: the relay
// routes every event type to the projections queue, users' and teams'.
func readRegistry() *es.Registry {
	r := user.NewRegistry()
	team.Register(r)
	return r
}

// projectionNames are the names of prs, in order.
func projectionNames(prs []projection.Projection) []string {
	names := make([]string, len(prs))
	for i, pr := range prs {
		names[i] = pr.Name()
	}
	return names
}
