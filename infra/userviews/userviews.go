// Package userviews holds the User service's projections: the user view
// (with its email lookup and the user list's index keys) and the actor
// activity, each a projection.Projection over the read-model table, and
// the store of their rows (Store): what the projections write, what the
// User API's queries read (the view, the email lookup, the user list, an
// actor's activity, the applied versions). The projector, the rebuild and
// the audit run the projections because the service registers them
// (Projections), not because they know them.
//
// They live here, apart from both the framework (infra/projection,
// infra/readmodel's table core) and the domain (domain/user keeps the pure
// fold, user.ApplyView): this is the one place that knows how a user's
// rows are laid out (Store), written live, put by a rebuild and audited.
package userviews

import (
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/projection"
)

// The projections of the User service.
var (
	// View is the user view: GET /users/{id}, the email lookup, GET /users.
	View projection.Projection = userView{}
	// Activity is the actor activity: the events each actor caused.
	Activity projection.Projection = activity{}
)

// Projections are the User service's projections, in the order the
// projector applies them: a message is applied once both are.
func Projections() []projection.Projection { return []projection.Projection{View, Activity} }

// Kinds of projection.Difference only these projections report.
const (
	DiffLookup   = "lookup"   // the email lookup does not name the user holding the address
	DiffActivity = "activity" // the actor-activity projection is not at the stream's version
	DiffIndex    = "index"    // the view's user-list index keys do not match the view
)

// userEvents are the events of a user's stream, all of which the view folds.
var userEvents = []string{
	user.Created{}.EventType(), user.Renamed{}.EventType(), user.EmailChanged{}.EventType(),
	user.Suspended{}.EventType(), user.Reactivated{}.EventType(), user.Deleted{}.EventType(),
	user.Forgotten{}.EventType(),
}
