package userviews

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// Store is the read-model table as the User service sees it: the table's
// core (generations, checkpoints, builds, Prune: the embedded
// *readmodel.Store) and the rows of the user projections, read by the
// queries and written by the projections. Its reads are eventually
// consistent unless said otherwise. It is safe for concurrent use.
//
// Layout (generation prefixes as readmodel's, per projection):
//
//	user view        pk "user#<id>"      sk "view"                 attributes view (user.View JSON), version[, listPk, listSk]
//	applied version  pk "user#<id>"      sk "applied#<projection>" attributes version, eventId
//	email lookup     pk "email#<email>"  sk "lookup"               attributes userId, since, version
//	actor activity   pk "actor#<sub>"    sk "<occurredAt, fixed width>#<eventId>" attributes record (es.Record JSON)
//
// A live user's view also carries the keys of the user list's index,
// UsersIndex: listPk "users#<status>#<shard>", listSk "<createdAt>#<id>"
// (list.go).
type Store struct {
	*readmodel.Store
}

// New returns the User service's store over rm: the generations rm reads
// (the active ones, or those it is pinned to with At).
func New(rm *readmodel.Store) *Store { return &Store{Store: rm} }

// Projection names: the suffix of the applied-version and checkpoint keys.
const (
	ProjectionUserView      = "user-view"      // the user view and the email lookup
	ProjectionActorActivity = "actor-activity" // the events each actor caused
)

// Names are the names of Projections, in that order: the projections
// whose checkpoints, generations and applied versions the User API reports.
func Names() []string { return projection.Names(Projections()) }

// Checkpoints returns the checkpoints of the User service's projections
// (Names) that have applied anything, in that order.
func (s *Store) Checkpoints(ctx context.Context) ([]readmodel.Checkpoint, error) {
	return s.CheckpointsOf(ctx, Names())
}

// ListIndex is the user list's index (UsersIndex) as the table declares it.
var ListIndex = readmodel.Index{Name: UsersIndex, PK: AttrListPK, SK: AttrListSK}

// CreateTable creates the read-model table as template.yaml declares it:
// the core's table with the user list's index (ListIndex). See
// readmodel.CreateTable.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	return readmodel.CreateTable(ctx, client, table, ListIndex)
}

// Key layout.
const (
	attrPK      = readmodel.AttrPK
	attrSK      = readmodel.AttrSK
	attrVersion = readmodel.AttrVersion // view, applied version, lookup: a user version
	attrEventID = readmodel.AttrEventID // applied version: the event that set it

	skView   = "view"
	skLookup = "lookup"

	appliedPrefix = "applied#"
)

func userPK(id string) string     { return "user#" + id }
func emailPK(email string) string { return "email#" + email }
func actorPK(sub string) string   { return "actor#" + sub }
