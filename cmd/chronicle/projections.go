package main

import (
	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/teamviews"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// serviceProjections are the projections rebuild and audit run: the User
// service's and the Team service's, as the projector runs them.
func serviceProjections() []projection.Projection {
	return append(userviews.Projections(), teamviews.Projections()...)
}

// readRegistry decodes every event of the events table: users' and teams'.
func readRegistry() *es.Registry {
	r := user.NewRegistry()
	team.Register(r)
	return r
}
