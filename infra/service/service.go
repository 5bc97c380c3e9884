// Package service says which aggregates and projections the service is
// made of, once: the User and the Team aggregates' events, and their
// projections. The functions (infra/lambdafn) and the operator's CLI
// (cmd/chronicle) wire the same lists, so that what the projector runs is
// what a rebuild rebuilds and an audit checks.
package service

import (
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/teamviews"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// Projections are the service's projections, the User service's and the
// Team service's, in the order the projector applies them. Each takes only
// the streams of its own kind of aggregate (projection.Takes).
func Projections() []projection.Projection {
	return append(userviews.Projections(), teamviews.Projections()...)
}

// Registry decodes every event of the events table, users' and teams': the
// relay routes every event type to the projections queue, and the
// operator's tools read every stream.
func Registry() *es.Registry {
	r := user.NewRegistry()
	team.Register(r)
	return r
}
