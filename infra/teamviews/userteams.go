package teamviews

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/team"
	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
	"github.com/chronicle-go/chronicle/infra/projection"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// userTeams is the user-teams projection: a row per (user, team) under the
// user's partition, so that a user's teams are one Query, and, per team,
// the team's state as this projection folded it (name, members) with its
// applied version: what tells a write which rows a run changes.
//
// A run of a team's events touches the rows of every user its events name
// (an owner created, a member added, given a role or removed) and, when it
// renames the team, of every member. Each touched row is put (member) or
// deleted (not a member), on condition that it is not at a later team
// version than the write's (attribute_not_exists OR version <= v): a row
// never moves back.
//
// Atomic per team: up to 99 touched rows, the rows and the team's state
// item (version moved to the run's last, on condition that it is still the
// version read) go in one TransactWriteItems: all or nothing, and a second
// writer of the same run (a redelivery while the first still runs, a
// rebuild next to the live projector) loses on the state item and writes
// nothing. A lost reply's retry finds its own write on the state item.
//
// More than 99 rows (a rename of a team of 100 members or more): DynamoDB
// takes at most 100 items in a transaction, so the rows go in chunks of
// 99, each with a ConditionCheck that the state item is still at the
// version read, and the last chunk moves the state item. Once it has
// moved, no other writer from that version can write a row. Before it has,
// two writers from the same version may interleave chunks; their runs are
// the same stream from the same version, so the longer one's touched rows
// include the shorter one's, and the row condition (never back) lets each
// row end at the longer run's content. A departure in a chunked write is a
// tombstone row (gone, at the write's version) rather than a delete, so
// that the shorter writer cannot put the row back; the tombstones are
// deleted once the state item has moved, and readers skip any left (a
// crash in between). A chunked write sent again after it applied (a lost
// reply retried with a new request token) finds its own last event in the
// state item at its first ConditionCheck and stops there: the state item
// moves only once every row is written. A row whose condition fails is
// at a later version than the write (the longer run's): the write leaves
// it and sends the rest again. Such a row shows the later content until the state item
// reaches that version, which it does when the longer run's events are
// delivered again (they are committed events).
type userTeams struct {
	chunk int // member rows per transaction; 0: chunkRows (a test makes it small)
}

// teamState is what user-teams keeps of a team: its state at Version.
type teamState struct {
	State   team.State
	Version int64
}

func (userTeams) Name() string         { return ProjectionUserTeams }
func (userTeams) EventTypes() []string { return teamEvents() }
func (userTeams) Decodes() bool        { return true }

func (userTeams) Owns(logicalPK, sk string) bool {
	return strings.HasPrefix(logicalPK, "userteams#") || (strings.HasPrefix(logicalPK, "team#") && sk == skUserTeams)
}

func (userTeams) Read(ctx context.Context, rm *readmodel.Store, id string) (projection.State, int64, error) {
	st, err := readState(ctx, rm, id)
	return st, st.Version, err
}

// Write folds run into before and writes the rows the run touches with the
// team's state (see userTeams).
func (u userTeams) Write(ctx context.Context, rm *readmodel.Store, before projection.State, applied int64, run []es.Record) error {
	st, ok := before.(teamState)
	if !ok {
		return fmt.Errorf("user-teams: state %T, want teamState", before)
	}
	if err := checkRun(run, applied); err != nil {
		return fmt.Errorf("user-teams: %w", err)
	}
	s := st.State
	touched := map[string]bool{}
	renamed := false
	for _, r := range run {
		renamed = touch(touched, r) || renamed
		s = team.Evolve(s, r)
	}
	if renamed {
		for u := range s.Members {
			touched[u] = true
		}
	}
	return write(ctx, rm, u.rows(), applied, s, run[len(run)-1], touched)
}

// touch adds the users r names to touched and reports whether r renames
// the team (which touches every member).
func touch(touched map[string]bool, r es.Record) bool {
	switch e := r.Event.(type) {
	case team.Created:
		touched[e.Owner] = true
	case team.Renamed:
		return true
	case team.MemberAdded:
		touched[e.UserID] = true
	case team.MemberRoleChanged:
		touched[e.UserID] = true
	case team.MemberRemoved:
		touched[e.UserID] = true
	}
	return false
}

// maxPutAttempts bounds the read-write rounds of Put against the live
// projector.
const maxPutAttempts = 5

// Put writes the fold of stream, touching every user the stream ever
// named (so a repair deletes the rows of those who left), unless the
// state item is at or past its last version (with force: past it).
func (u userTeams) Put(ctx context.Context, rm *readmodel.Store, stream []es.Record, force bool) error {
	if len(stream) == 0 {
		return nil
	}
	last := stream[len(stream)-1]
	var after team.State
	touched := map[string]bool{}
	for _, r := range stream {
		touch(touched, r)
		after = team.Evolve(after, r)
	}
	var err error
	for range maxPutAttempts {
		st, rerr := readState(ctx, rm, last.AggregateID)
		if rerr != nil {
			return rerr
		}
		if st.Version > last.Version || (st.Version == last.Version && !force) {
			return nil
		}
		for m := range st.State.Members {
			touched[m] = true
		}
		err = write(ctx, rm, u.rows(), st.Version, after, last, touched)
		if !errors.Is(err, readmodel.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("put user-teams of %s v%d: gave up after %d attempts: %w", last.AggregateID, last.Version, maxPutAttempts, err)
}

// Audit compares the team's state item with the fold of stream and, when
// both are at the stream's version, the row of every user the stream
// names with the place the fold gives it.
func (userTeams) Audit(ctx context.Context, rm *readmodel.Store, stream []es.Record) ([]projection.Difference, error) {
	id, version := stream[0].AggregateID, stream[len(stream)-1].Version
	var want team.State
	touched := map[string]bool{}
	for _, r := range stream {
		touch(touched, r)
		want = team.Evolve(want, r)
	}
	got, err := readState(ctx, rm, id)
	if err != nil {
		return nil, err
	}
	base := projection.Difference{AggregateID: id, StoreVersion: version, ViewVersion: got.Version}
	d := base
	switch {
	case got.Version == 0:
		d.Kind, d.Detail = projection.DiffMissing, "no user-teams state"
	case got.Version < version:
		d.Kind, d.Detail = projection.DiffBehind, fmt.Sprintf("user-teams at v%d, event store at v%d", got.Version, version)
	case got.Version > version:
		d.Kind, d.Detail = projection.DiffAhead, fmt.Sprintf("user-teams at v%d, event store at v%d", got.Version, version)
	}
	if d.Kind != "" {
		return []projection.Difference{d}, nil
	}
	var diffs []projection.Difference
	if f := projection.FieldDiffs(normalState(want), normalState(got.State)); len(f) > 0 {
		d.Kind, d.Fields = projection.DiffFields, f
		diffs = append(diffs, d)
	}
	wantRows := team.Memberships(id, want)
	for _, u := range slices.Sorted(maps.Keys(touched)) {
		row, ok, err := readRow(ctx, rm, u, id, true)
		if err != nil {
			return nil, err
		}
		w, member := wantRows[u]
		if ok == member && (!ok || sameMembership(w, row)) {
			continue
		}
		d := base
		d.Kind = DiffMembership
		switch {
		case !ok:
			d.Detail = fmt.Sprintf("user %s: no row, want %s", u, describe(w))
		case !member:
			d.Detail = fmt.Sprintf("user %s: row %s left behind, not a member", u, describe(row))
		default:
			d.Detail = fmt.Sprintf("user %s: row %s, want %s", u, describe(row), describe(w))
		}
		diffs = append(diffs, d)
	}
	return diffs, nil
}

func sameMembership(a, b team.Membership) bool {
	return a.TeamID == b.TeamID && a.Name == b.Name && a.Role == b.Role && a.Since.Equal(b.Since)
}

func describe(m team.Membership) string {
	return fmt.Sprintf("%q %s since %s", m.Name, m.Role, m.Since.UTC().Format(time.RFC3339Nano))
}

// normalState makes states comparable: times in UTC, no nil map.
func normalState(s team.State) team.State {
	out := team.State{Name: s.Name, CreatedAt: s.CreatedAt.UTC(), Members: map[string]team.Member{}}
	for u, m := range s.Members {
		m.Since = m.Since.UTC()
		out.Members[u] = m
	}
	return out
}

// maxTransactItems is DynamoDB's limit on the items of one
// TransactWriteItems.
const maxTransactItems = 100

// chunkRows is how many member rows go in one transaction with the state
// item (or its ConditionCheck).
const chunkRows = maxTransactItems - 1

func (u userTeams) rows() int {
	if u.chunk > 0 {
		return min(u.chunk, chunkRows)
	}
	return chunkRows
}

// write writes the rows of touched users for a team going to state after
// at last's version, with the state item, on condition that it is still
// at prev, chunk rows per transaction at most (see userTeams).
func write(ctx context.Context, rm *readmodel.Store, chunk int, prev int64, after team.State, last es.Record, touched map[string]bool) error {
	g, err := rm.GenerationOf(ctx, ProjectionUserTeams)
	if err != nil {
		return err
	}
	w := writer{rm: rm, g: g, id: last.AggregateID, last: last, prev: prev}
	users := slices.Sorted(maps.Keys(touched))
	rows := team.Memberships(w.id, after)
	head, err := w.stateItem(after)
	if err != nil {
		return err
	}
	if len(users) <= chunk {
		items := []types.TransactWriteItem{head}
		for _, u := range users {
			if m, ok := rows[u]; ok {
				items = append(items, w.rowPut(u, m))
			} else {
				items = append(items, w.rowDelete(u))
			}
		}
		_, err := w.transact(ctx, items, true)
		return err
	}
	var gone []string
	var items []types.TransactWriteItem
	for _, u := range users {
		if m, ok := rows[u]; ok {
			items = append(items, w.rowPut(u, m))
		} else {
			items = append(items, w.tombstone(u))
			gone = append(gone, u)
		}
	}
	for start := 0; start < len(items); start += chunk {
		end := min(start+chunk, len(items))
		final := end == len(items)
		first := w.check()
		if final {
			first = head // the state item moves with the last chunk
		}
		done, err := w.transact(ctx, append([]types.TransactWriteItem{first}, items[start:end]...), final)
		if err != nil {
			return err
		}
		if done {
			break // the whole write was applied before (a resent write)
		}
	}
	w.sweep(ctx, gone)
	return nil
}

// writer writes one team's user-teams items in generation g for the run
// ending with last, from the state item at prev.
type writer struct {
	rm   *readmodel.Store
	g    int64
	id   string
	last es.Record
	prev int64
}

// stateCond is the condition that the state item is still at w.prev.
func (w writer) stateCond() (*string, map[string]string, map[string]types.AttributeValue) {
	if w.prev == 0 {
		return aws.String("attribute_not_exists(pk)"), nil, nil
	}
	return aws.String("#v = :prev"), map[string]string{"#v": attrVersion},
		map[string]types.AttributeValue{":prev": readmodel.N(w.prev)}
}

func (w writer) stateKey() map[string]types.AttributeValue {
	return readmodel.Key(readmodel.GenerationPK(w.g, teamPK(w.id)), skUserTeams)
}

// stateItem puts the team's state at the run's last version.
func (w writer) stateItem(s team.State) (types.TransactWriteItem, error) {
	body, err := json.Marshal(s)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("user-teams of %s: %w", w.id, err)
	}
	item := w.stateKey()
	item[attrState] = readmodel.S(string(body))
	item[attrVersion] = readmodel.N(w.last.Version)
	item[attrEventID] = readmodel.S(w.last.ID)
	cond, names, vals := w.stateCond()
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(w.rm.Table()), Item: item,
		ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
		// The old item tells a lost reply's retry from a conflict: ownWrite.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}, nil
}

// check is the ConditionCheck of a chunk before the last.
func (w writer) check() types.TransactWriteItem {
	cond, names, vals := w.stateCond()
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName: aws.String(w.rm.Table()), Key: w.stateKey(),
		ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
		// The old item tells a resent write already applied: ownWrite.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}
}

func (w writer) rowKey(user string) map[string]types.AttributeValue {
	return readmodel.Key(readmodel.GenerationPK(w.g, userTeamsPK(user)), membershipSK(w.id))
}

// notAhead is the condition of every row write: the row is absent or not
// at a later team version than this write's.
func (w writer) notAhead() (*string, map[string]string, map[string]types.AttributeValue) {
	return aws.String("attribute_not_exists(pk) OR #v <= :v"), map[string]string{"#v": attrVersion},
		map[string]types.AttributeValue{":v": readmodel.N(w.last.Version)}
}

func (w writer) rowPut(user string, m team.Membership) types.TransactWriteItem {
	item := w.rowKey(user)
	item[attrTeamID] = readmodel.S(m.TeamID)
	item[attrName] = readmodel.S(m.Name)
	item[attrRole] = readmodel.S(string(m.Role))
	item[attrSince] = readmodel.S(readmodel.Stamp(m.Since))
	item[attrVersion] = readmodel.N(w.last.Version)
	cond, names, vals := w.notAhead()
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(w.rm.Table()), Item: item,
		ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
	}}
}

func (w writer) rowDelete(user string) types.TransactWriteItem {
	cond, names, vals := w.notAhead()
	return types.TransactWriteItem{Delete: &types.Delete{
		TableName: aws.String(w.rm.Table()), Key: w.rowKey(user),
		ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
	}}
}

func (w writer) tombstone(user string) types.TransactWriteItem {
	item := w.rowKey(user)
	item[attrTeamID] = readmodel.S(w.id)
	item[attrVersion] = readmodel.N(w.last.Version)
	item[attrGone] = &types.AttributeValueMemberBOOL{Value: true}
	cond, names, vals := w.notAhead()
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(w.rm.Table()), Item: item,
		ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
	}}
}

// transact writes items (items[0] is the state item or its
// ConditionCheck) in one transaction, and reports whether the whole write
// is found applied already. The state item's condition failing is
// ErrConflict, unless the old item holds this run's last event: the write
// was sent before (a lost reply's retry with a new request token) and
// applied in full, since the state item moves only with the last chunk.
// Rows whose condition fails are ahead of this write (see userTeams): they
// are left, and the rest sent again.
func (w writer) transact(ctx context.Context, items []types.TransactWriteItem, final bool) (bool, error) {
	for {
		if !final && len(items) == 1 {
			return false, nil // every row of the chunk is ahead
		}
		_, err := w.rm.Client().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return final, nil
		}
		if readmodel.OwnApplied(err, w.last) {
			return true, nil
		}
		c, canceled := attr.Canceled(err)
		switch {
		case !canceled || !c.ConditionsOrConflicts():
			return false, fmt.Errorf("write user-teams of %s v%d: %w", w.id, w.last.Version, err)
		case c.Conflicts > 0 || c.Code(0) == attr.ReasonConditionalCheckFailed:
			return false, fmt.Errorf("write user-teams of %s v%d: %w", w.id, w.last.Version, readmodel.ErrConflict)
		}
		kept := items[:1:1]
		for i, it := range items[1:] {
			if c.Code(i+1) != attr.ReasonConditionalCheckFailed {
				kept = append(kept, it)
			}
		}
		items = kept
	}
}

// sweep deletes the tombstones of users, once the state item is at the
// write's version: no writer from an earlier version can put their rows
// back. A tombstone already gone (a lost reply's retry) or overwritten by
// a later write is left; one left by a failure is skipped by readers and
// taken over by the next write of its row.
func (w writer) sweep(ctx context.Context, users []string) {
	del := func(u string) types.TransactWriteItem {
		return types.TransactWriteItem{Delete: &types.Delete{
			TableName: aws.String(w.rm.Table()), Key: w.rowKey(u),
			ConditionExpression:      aws.String("#v = :v AND #g = :gone"),
			ExpressionAttributeNames: map[string]string{"#v": attrVersion, "#g": attrGone},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":v": readmodel.N(w.last.Version), ":gone": &types.AttributeValueMemberBOOL{Value: true}},
		}}
	}
	for chunk := range slices.Chunk(users, maxTransactItems) {
		items := make([]types.TransactWriteItem, len(chunk))
		for i, u := range chunk {
			items[i] = del(u)
		}
		_, err := w.rm.Client().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil || !readmodel.ConditionFailed(err) {
			continue
		}
		for _, it := range items { // one by one: some were not tombstones of this write
			_, _ = w.rm.Client().TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{it}})
		}
	}
}

// readState reads the user-teams state item of team id, consistently.
func readState(ctx context.Context, rm *readmodel.Store, id string) (teamState, error) {
	g, err := rm.GenerationOf(ctx, ProjectionUserTeams)
	if err != nil {
		return teamState{}, err
	}
	out, err := rm.Client().GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(rm.Table()),
		Key:            readmodel.Key(readmodel.GenerationPK(g, teamPK(id)), skUserTeams),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return teamState{}, fmt.Errorf("get user-teams state of %s: %w", id, err)
	}
	if out.Item == nil {
		return teamState{}, nil
	}
	var st teamState
	body, errB := attr.String(out.Item, attrState)
	v, errV := attr.Int(out.Item, attrVersion)
	if err := errors.Join(errB, errV); err != nil {
		return teamState{}, fmt.Errorf("user-teams state of %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(body), &st.State); err != nil {
		return teamState{}, fmt.Errorf("user-teams state of %s: decode: %w", id, err)
	}
	st.Version = v
	return st, nil
}

// readRow reads user's row of team id; a tombstone is no row.
func readRow(ctx context.Context, rm *readmodel.Store, user, id string, consistent bool) (team.Membership, bool, error) {
	g, err := rm.GenerationOf(ctx, ProjectionUserTeams)
	if err != nil {
		return team.Membership{}, false, err
	}
	out, err := rm.Client().GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(rm.Table()),
		Key:            readmodel.Key(readmodel.GenerationPK(g, userTeamsPK(user)), membershipSK(id)),
		ConsistentRead: aws.Bool(consistent),
	})
	if err != nil {
		return team.Membership{}, false, fmt.Errorf("get team %s of user %s: %w", id, user, err)
	}
	return membershipFrom(out.Item)
}

// membershipFrom reads a membership row; nil or a tombstone is none.
func membershipFrom(item map[string]types.AttributeValue) (team.Membership, bool, error) {
	if item == nil {
		return team.Membership{}, false, nil
	}
	if g, ok := item[attrGone].(*types.AttributeValueMemberBOOL); ok && g.Value {
		return team.Membership{}, false, nil
	}
	var m team.Membership
	var role string
	var errs [4]error
	m.TeamID, errs[0] = attr.String(item, attrTeamID)
	m.Name, errs[1] = attr.String(item, attrName)
	role, errs[2] = attr.String(item, attrRole)
	m.Since, errs[3] = attr.Time(item, attrSince)
	if err := errors.Join(errs[:]...); err != nil {
		return team.Membership{}, false, fmt.Errorf("membership row: %w", err)
	}
	m.Role = team.Role(role)
	return m, true, nil
}
