package teamviews

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// teamView is the team-view projection: one item per team holding its
// team.View, its version and the event at that version. The view is the
// whole of what the projection keeps of a team, so a write is one
// conditional PutItem: atomic by itself, whatever the team's size (up to
// DynamoDB's 400 KB per item: some thousands of members).
type teamView struct{}

func (teamView) Name() string         { return ProjectionTeam }
func (teamView) EventTypes() []string { return teamEvents() }
func (teamView) Decodes() bool        { return true }

func (teamView) Owns(logicalPK, sk string) bool {
	return strings.HasPrefix(logicalPK, "team#") && sk == skView
}

func (teamView) Read(ctx context.Context, rm *readmodel.Store, id string) (projection.State, int64, error) {
	v, ok, err := readView(ctx, rm, id, true)
	if err != nil || !ok {
		return team.View{}, 0, err
	}
	return v, v.Version, nil
}

// Write folds run into before and puts the view, on condition that the
// item is still at applied (absent for 0).
func (teamView) Write(ctx context.Context, rm *readmodel.Store, before projection.State, applied int64, run []es.Record) error {
	v, ok := before.(team.View)
	if !ok {
		return fmt.Errorf("team view: state %T, want team.View", before)
	}
	if err := checkRun(run, applied); err != nil {
		return fmt.Errorf("team view: %w", err)
	}
	for _, r := range run {
		v = team.ApplyView(v, r)
	}
	cond := "attribute_not_exists(pk)"
	vals := map[string]types.AttributeValue{}
	if applied > 0 {
		cond = "#v = :prev"
		vals[":prev"] = readmodel.N(applied)
	}
	err := putView(ctx, rm, v, run[len(run)-1], cond, vals)
	return readmodel.AppliedWrite(err, run[len(run)-1], "team view of")
}

// Put writes the fold of stream unless the item is at or past its last
// version (with force: past it). The view is a pure function of its
// version, so the condition alone decides: no read first.
func (teamView) Put(ctx context.Context, rm *readmodel.Store, stream []es.Record, force bool) error {
	if len(stream) == 0 {
		return nil
	}
	var v team.View
	for _, r := range stream {
		v = team.ApplyView(v, r)
	}
	cond := "attribute_not_exists(pk) OR #v < :v"
	if force {
		cond = "attribute_not_exists(pk) OR #v <= :v"
	}
	err := putView(ctx, rm, v, stream[len(stream)-1], cond, map[string]types.AttributeValue{":v": readmodel.N(v.Version)})
	if readmodel.ConditionFailed(err) {
		return nil // already there, or further on
	}
	return err
}

// Audit compares the team's view with the fold of stream.
func (teamView) Audit(ctx context.Context, rm *readmodel.Store, stream []es.Record) ([]projection.Difference, error) {
	var want team.View
	for _, r := range stream {
		want = team.ApplyView(want, r)
	}
	id, version := stream[0].AggregateID, stream[len(stream)-1].Version
	got, ok, err := readView(ctx, rm, id, true)
	if err != nil {
		return nil, err
	}
	d := projection.Difference{AggregateID: id, StoreVersion: version, ViewVersion: got.Version}
	switch {
	case !ok:
		d.Kind, d.Detail = projection.DiffMissing, "no team view"
	case got.Version < version:
		d.Kind, d.Detail = projection.DiffBehind, fmt.Sprintf("team view at v%d, event store at v%d", got.Version, version)
	case got.Version > version:
		d.Kind, d.Detail = projection.DiffAhead, fmt.Sprintf("team view at v%d, event store at v%d", got.Version, version)
	default:
		fields := projection.FieldDiffs(normalView(want), normalView(got))
		if len(fields) == 0 {
			return nil, nil
		}
		d.Kind, d.Fields = projection.DiffFields, fields
	}
	return []projection.Difference{d}, nil
}

// putView puts v (last is the event at its version) on condition cond
// (its #v is the version), asking for the old item when it fails.
func putView(ctx context.Context, rm *readmodel.Store, v team.View, last es.Record, cond string, vals map[string]types.AttributeValue) error {
	g, err := rm.GenerationOf(ctx, ProjectionTeam)
	if err != nil {
		return err
	}
	if v.Members == nil {
		v.Members = []team.MemberView{}
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("team view of %s: %w", v.ID, err)
	}
	item := readmodel.Key(readmodel.GenerationPK(g, teamPK(last.AggregateID)), skView)
	item[attrView] = readmodel.S(string(body))
	item[attrVersion] = readmodel.N(v.Version)
	item[attrEventID] = readmodel.S(last.ID)
	in := &dynamodb.PutItemInput{
		TableName: aws.String(rm.Table()), Item: item,
		ConditionExpression:                 aws.String(cond),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if strings.Contains(cond, "#v") {
		in.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
	}
	if len(vals) > 0 {
		in.ExpressionAttributeValues = vals
	}
	_, err = rm.Client().PutItem(ctx, in)
	if err != nil {
		return fmt.Errorf("put team view of %s v%d: %w", last.AggregateID, v.Version, err)
	}
	return nil
}

// readView reads the team view of id in rm's generation of the projection.
func readView(ctx context.Context, rm *readmodel.Store, id string, consistent bool) (team.View, bool, error) {
	g, err := rm.GenerationOf(ctx, ProjectionTeam)
	if err != nil {
		return team.View{}, false, err
	}
	out, err := rm.Client().GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(rm.Table()),
		Key:            readmodel.Key(readmodel.GenerationPK(g, teamPK(id)), skView),
		ConsistentRead: aws.Bool(consistent),
	})
	if err != nil {
		return team.View{}, false, fmt.Errorf("get team view of %s: %w", id, err)
	}
	if out.Item == nil {
		return team.View{}, false, nil
	}
	body, err := attr.String(out.Item, attrView)
	if err != nil {
		return team.View{}, false, fmt.Errorf("team view of %s: %w", id, err)
	}
	var v team.View
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return team.View{}, false, fmt.Errorf("team view of %s: decode: %w", id, err)
	}
	if v.Members == nil {
		v.Members = []team.MemberView{}
	}
	return v, true, nil
}

// checkRun checks that run follows applied without a gap.
func checkRun(run []es.Record, applied int64) error {
	if len(run) == 0 {
		return errors.New("empty run")
	}
	last := run[len(run)-1]
	if run[0].Version != applied+1 || last.Version != applied+int64(len(run)) {
		return fmt.Errorf("run of %s v%d..v%d does not follow v%d", last.AggregateID, run[0].Version, last.Version, applied)
	}
	return nil
}

// normalView makes views comparable: times in UTC, members never nil.
func normalView(v team.View) team.View {
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	members := make([]team.MemberView, len(v.Members))
	for i, m := range v.Members {
		m.Since = m.Since.UTC()
		members[i] = m
	}
	v.Members = members
	return v
}
