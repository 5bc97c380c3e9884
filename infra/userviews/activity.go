package userviews

import (
	"context"
	"fmt"
	"strings"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// activity is the actor-activity projection: each event, as stored (its
// personal fields sealed), in the list of the actor that caused it. It has
// no state: its applied version is all it reads.
type activity struct{}

func (activity) Name() string         { return ProjectionActorActivity }
func (activity) EventTypes() []string { return nil }
func (activity) Decodes() bool        { return false }

func (activity) Owns(logicalPK, sk string) bool {
	return strings.HasPrefix(logicalPK, "actor#") ||
		(strings.HasPrefix(logicalPK, "user#") && sk == "applied#"+ProjectionActorActivity)
}

func (activity) Read(ctx context.Context, rm *readmodel.Store, id string) (projection.State, int64, error) {
	v, err := New(rm).ActivityApplied(ctx, id)
	return nil, v, err
}

func (activity) Write(ctx context.Context, rm *readmodel.Store, _ projection.State, applied int64, run []es.Record) error {
	return New(rm).SaveActivityRun(ctx, applied, run)
}

func (activity) Put(ctx context.Context, rm *readmodel.Store, stream []es.Record, _ bool) error {
	return New(rm).PutActivity(ctx, stream)
}

// Audit compares the actor-activity applied version with the stream's.
func (activity) Audit(ctx context.Context, rm *readmodel.Store, recs []es.Record) ([]projection.Difference, error) {
	id, version := recs[0].AggregateID, recs[len(recs)-1].Version
	act, err := New(rm).ActivityApplied(ctx, id)
	if err != nil {
		return nil, err
	}
	if act == version {
		return nil, nil
	}
	return []projection.Difference{{AggregateID: id, Kind: DiffActivity, StoreVersion: version, ViewVersion: act,
		Detail: fmt.Sprintf("actor activity at v%d, event store at v%d", act, version)}}, nil
}
