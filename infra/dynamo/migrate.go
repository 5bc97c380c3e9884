package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// The migration of a stack written before encryption (chronicle pii
// migrate): its plain guard keys moved to hashed ones, the plain personal
// fields of its events and snapshots sealed in place. Each step is one
// conditional write that checks the item is still what was read, so a run
// again, a concurrent run, the service writing meanwhile or an SDK retry
// after a lost reply never loses or doubles anything: what a write skipped
// is found again by the next run, and a run that finds nothing left to do
// is the end of the migration.

// Migrator is the part of the cipher (pii.Cipher) the migration uses.
type Migrator interface {
	GuardKey(ctx context.Context, key string) (string, error)
	IsGuardHash(key string) bool
	SealStored(ctx context.Context, id, typ string, data json.RawMessage) (json.RawMessage, bool, error)
	SealStoredSnapshot(ctx context.Context, id, aggregateType string, state json.RawMessage) (json.RawMessage, bool, error)
}

// MigrateClient is the part of the DynamoDB client the migration uses.
type MigrateClient interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// MigratePage is what one Scan page of a migration did.
type MigratePage struct {
	Scanned int `json:"scanned"` // items the page read
	Done    int `json:"done"`    // guards moved, or items sealed
	// Skipped: items changed (or moved) by someone else between the read
	// and the write; the next run looks at them again.
	Skipped int `json:"skipped"`
	// Conflicts: plain guards whose hashed key another owner holds (it
	// claimed the value after the upgrade, while the plain claim was not
	// seen). Both items are left as they are; an operator decides.
	Conflicts int `json:"conflicts"`
	// Stale: plain claims of values their owner no longer holds (it
	// changed its email, or was deleted, after the upgrade: its release
	// looked for the hashed key). Deleted, not moved, so that the value is
	// free.
	Stale int `json:"stale"`
	// Conflicting are the owners of the plain claims in conflict.
	Conflicting []string `json:"conflicting,omitempty"`
}

// Add adds p to m.
func (m *MigratePage) Add(p MigratePage) {
	m.Scanned += p.Scanned
	m.Done += p.Done
	m.Skipped += p.Skipped
	m.Conflicts += p.Conflicts
	m.Stale += p.Stale
	m.Conflicting = append(m.Conflicting, p.Conflicting...)
}

// scanSegment calls each for every item of one Scan segment of in.
func scanSegment(ctx context.Context, client MigrateClient, in *dynamodb.ScanInput, segment, segments int,
	each func(map[string]types.AttributeValue, *MigratePage) error, onPage func(MigratePage) error) error {
	if segments > 1 {
		in.Segment, in.TotalSegments = aws.Int32(int32(segment)), aws.Int32(int32(segments))
	}
	for {
		out, err := client.Scan(ctx, in)
		if err != nil {
			return fmt.Errorf("scan segment %d/%d of %s: %w", segment, segments, aws.ToString(in.TableName), err)
		}
		p := MigratePage{Scanned: int(out.ScannedCount)}
		for _, item := range out.Items {
			if err := each(item, &p); err != nil {
				return err
			}
		}
		if err := onPage(p); err != nil {
			return err
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Holder reports whether owner still holds the unique value of guard key
// key (for a user: user.Unique of its current state lists it), reading
// the owner's stream consistently.
type Holder func(ctx context.Context, owner, key string) (bool, error)

// MigrateGuards moves the unique-value claims of one Scan segment of the
// guards table whose key is the plain value ("email#ada@example.com") to
// the key m hashes it to, with the same owner: one transaction puts the
// hashed item (if absent or already this owner's: a retry after a lost
// reply) and deletes the plain one (if still this owner's). Idempotency
// records and hashed keys are left alone.
//
// A plain claim whose owner no longer holds the value (holds says so) is
// deleted instead: moving it would keep the value taken for ever. The
// check is made again after a move, so that an owner that let the value go
// between the two (its release found no hashed key) does not keep it
// either; an owner that still holds it after the move releases the hashed
// key when it lets go. holds nil: every claim is taken as held.
func MigrateGuards(ctx context.Context, client MigrateClient, table string, m Migrator, holds Holder, segment, segments int, onPage func(MigratePage) error) error {
	in := &dynamodb.ScanInput{
		TableName:                aws.String(table),
		FilterExpression:         aws.String("attribute_exists(#owner) AND NOT begins_with(#pk, :idem)"),
		ExpressionAttributeNames: map[string]string{"#owner": attrOwner, "#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":idem": &types.AttributeValueMemberS{Value: idemPrefix},
		},
	}
	err := scanSegment(ctx, client, in, segment, segments, func(item map[string]types.AttributeValue, p *MigratePage) error {
		key, err1 := attr.String(item, attrPK)
		owner, err2 := attr.String(item, attrOwner)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("decode guard item: %w", err)
		}
		if m.IsGuardHash(key) {
			return nil
		}
		return moveGuard(ctx, client, table, m, holds, key, owner, item, p)
	}, onPage)
	if err != nil {
		return fmt.Errorf("migrate guards: %w", err)
	}
	return nil
}

func moveGuard(ctx context.Context, client MigrateClient, table string, m Migrator, holds Holder, key, owner string,
	item map[string]types.AttributeValue, p *MigratePage) error {
	held := func() (bool, error) {
		if holds == nil {
			return true, nil
		}
		ok, err := holds(ctx, owner, key)
		if err != nil {
			return false, fmt.Errorf("does %s still hold its claim: %w", owner, err)
		}
		return ok, nil
	}
	if ok, err := held(); err != nil || !ok {
		if err != nil {
			return err
		}
		return dropGuard(ctx, client, table, key, owner, p)
	}
	hashed, err := m.GuardKey(ctx, key)
	if err != nil {
		return err
	}
	moved := map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: hashed}}
	for k, v := range item {
		if k != attrPK {
			moved[k] = v // owner, claimedAt: the claim as it was made
		}
	}
	ownerNames := map[string]string{"#owner": attrOwner}
	ownerValue := map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: owner}}
	_, err = client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{
			TableName:                 aws.String(table),
			Item:                      moved,
			ConditionExpression:       aws.String(condGuardOwner),
			ExpressionAttributeNames:  ownerNames,
			ExpressionAttributeValues: ownerValue,
		}},
		{Delete: &types.Delete{
			TableName:                 aws.String(table),
			Key:                       map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: key}},
			ConditionExpression:       aws.String("#owner = :owner"),
			ExpressionAttributeNames:  ownerNames,
			ExpressionAttributeValues: ownerValue,
		}},
	}})
	canceled, isCanceled := attr.Canceled(err)
	switch {
	case err == nil:
		if ok, err := held(); err != nil || !ok {
			if err != nil {
				return err
			}
			return dropGuard(ctx, client, table, hashed, owner, p)
		}
		p.Done++
	case isCanceled:
		if len(canceled.Reasons) == 2 && canceled.Code(0) == attr.ReasonConditionalCheckFailed {
			p.Conflicts++
			p.Conflicting = append(p.Conflicting, owner)
		} else {
			p.Skipped++ // released, moved or changed meanwhile
		}
	default:
		return fmt.Errorf("move the guard of %s: %w", owner, err)
	}
	return nil
}

// dropGuard deletes the claim key of owner, if still owner's (a retry
// after a lost reply finds it gone: skipped).
func dropGuard(ctx context.Context, client MigrateClient, table, key, owner string, p *MigratePage) error {
	_, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                aws.String(table),
		Key:                      map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: key}},
		ConditionExpression:      aws.String("#owner = :owner"),
		ExpressionAttributeNames: map[string]string{"#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": &types.AttributeValueMemberS{Value: owner},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		p.Stale++
	case errors.As(err, &ccf):
		p.Skipped++
	default:
		return fmt.Errorf("delete the stale guard of %s: %w", owner, err)
	}
	return nil
}

// MigrateEvents seals the plain personal fields of the events of one Scan
// segment of the events table, and those of the stream snapshots they
// carry (es.StreamSnapshots), in place: an UpdateItem on the condition that
// what was read is unchanged. The rewritten items reach the table's stream
// as MODIFY records, which the relay skips (events are immutable: it
// publishes INSERTs only).
func MigrateEvents(ctx context.Context, client MigrateClient, table string, m Migrator, segment, segments int, onPage func(MigratePage) error) error {
	in := &dynamodb.ScanInput{
		TableName:                aws.String(table),
		FilterExpression:         aws.String("attribute_exists(#type) AND attribute_exists(#data)"),
		ExpressionAttributeNames: map[string]string{"#type": attrType, "#data": attrData},
	}
	err := scanSegment(ctx, client, in, segment, segments, func(item map[string]types.AttributeValue, p *MigratePage) error {
		id, err1 := attr.String(item, attrPK)
		typ, err2 := attr.String(item, attrType)
		data, err3 := attr.String(item, attrData)
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("decode event item: %w", err)
		}
		set := map[string]sealedAttr{}
		sealed, changed, err := m.SealStored(ctx, id, typ, json.RawMessage(data))
		if err != nil {
			return err
		}
		if changed {
			set[attrData] = sealedAttr{old: data, new: string(sealed)}
		}
		if snap, ok := item[attrSnapState].(*types.AttributeValueMemberS); ok {
			aggType, _ := item[attrAggregateType].(*types.AttributeValueMemberS) // absent: an older item
			var typ string
			if aggType != nil {
				typ = aggType.Value
			}
			sealed, changed, err := m.SealStoredSnapshot(ctx, id, typ, json.RawMessage(snap.Value))
			if err != nil {
				return err
			}
			if changed {
				set[attrSnapState] = sealedAttr{old: snap.Value, new: string(sealed)}
			}
		}
		return sealItem(ctx, client, table, map[string]types.AttributeValue{attrPK: item[attrPK], attrSK: item[attrSK]}, set, p)
	}, onPage)
	if err != nil {
		return fmt.Errorf("migrate events: %w", err)
	}
	return nil
}

// MigrateSnapshots seals the plain personal fields of the snapshots of one
// Scan segment of the snapshots table (es.Options.Snapshots, a table of its
// own), as MigrateEvents does.
func MigrateSnapshots(ctx context.Context, client MigrateClient, table string, m Migrator, segment, segments int, onPage func(MigratePage) error) error {
	in := &dynamodb.ScanInput{TableName: aws.String(table)}
	err := scanSegment(ctx, client, in, segment, segments, func(item map[string]types.AttributeValue, p *MigratePage) error {
		id, err1 := attr.String(item, attrPK)
		state, err2 := attr.String(item, attrState)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("decode snapshot item: %w", err)
		}
		var typ string
		if t, ok := item[attrAggregateType].(*types.AttributeValueMemberS); ok { // absent: an older item
			typ = t.Value
		}
		sealed, changed, err := m.SealStoredSnapshot(ctx, id, typ, json.RawMessage(state))
		if err != nil || !changed {
			return err
		}
		return sealItem(ctx, client, table, map[string]types.AttributeValue{attrPK: item[attrPK]},
			map[string]sealedAttr{attrState: {old: state, new: string(sealed)}}, p)
	}, onPage)
	if err != nil {
		return fmt.Errorf("migrate snapshots: %w", err)
	}
	return nil
}

type sealedAttr struct{ old, new string }

// sealItem sets the attributes of set to their new values, on the
// condition that each still holds its old one.
func sealItem(ctx context.Context, client MigrateClient, table string, key map[string]types.AttributeValue, set map[string]sealedAttr, p *MigratePage) error {
	if len(set) == 0 {
		return nil
	}
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	var sets, conds []string
	i := 0
	for name, v := range set {
		n, o, w := fmt.Sprintf("#a%d", i), fmt.Sprintf(":o%d", i), fmt.Sprintf(":n%d", i)
		names[n] = name
		values[o] = &types.AttributeValueMemberS{Value: v.old}
		values[w] = &types.AttributeValueMemberS{Value: v.new}
		sets = append(sets, n+" = "+w)
		conds = append(conds, n+" = "+o)
		i++
	}
	_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       key,
		UpdateExpression:          aws.String("SET " + strings.Join(sets, ", ")),
		ConditionExpression:       aws.String(strings.Join(conds, " AND ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		// A condition that fails shows what is there: this very write,
		// applied by an attempt whose reply was lost, is a success.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		p.Done++
	case errors.As(err, &ccf) && holdsAll(ccf.Item, set):
		p.Done++
	case errors.As(err, &ccf):
		p.Skipped++ // changed meanwhile
	default:
		return fmt.Errorf("seal %v in %s: %w", key, table, err)
	}
	return nil
}

// MigrateReport is what a whole migration did, table by table.
type MigrateReport struct {
	Guards    MigratePage `json:"guards"`
	Events    MigratePage `json:"events"`
	Snapshots MigratePage `json:"snapshots"`
}

// Left reports whether the run wrote or skipped anything: a run that
// reports false found nothing left to migrate (conflicts aside, which only
// an operator settles).
func (r MigrateReport) Left() bool {
	return r.Guards.Done+r.Guards.Skipped+r.Guards.Stale+r.Events.Done+r.Events.Skipped+r.Snapshots.Done+r.Snapshots.Skipped > 0
}

// Migrate runs the migration of the tables of t (the snapshots table only
// when named and present), holds telling which plain claims are still
// held (MigrateGuards), in segments parallel Scan segments each: the
// guards first, then the events, then the snapshots. onPage, if not nil,
// is told of every page (from several goroutines at once).
func Migrate(ctx context.Context, client MigrateClient, t Tables, m Migrator, holds Holder, segments int, onPage func(table string, p MigratePage)) (MigrateReport, error) {
	var r MigrateReport
	steps := []struct {
		table string
		into  *MigratePage
		run   func(context.Context, MigrateClient, string, Migrator, int, int, func(MigratePage) error) error
	}{
		{t.Guards, &r.Guards, func(ctx context.Context, c MigrateClient, table string, m Migrator, seg, segs int, on func(MigratePage) error) error {
			return MigrateGuards(ctx, c, table, m, holds, seg, segs, on)
		}},
		{t.Events, &r.Events, MigrateEvents},
		{t.Snapshots, &r.Snapshots, MigrateSnapshots},
	}
	for _, step := range steps {
		if step.table == "" {
			continue
		}
		var mu sync.Mutex
		errs := make([]error, segments)
		var wg sync.WaitGroup
		for seg := range segments {
			wg.Go(func() {
				errs[seg] = step.run(ctx, client, step.table, m, seg, segments, func(p MigratePage) error {
					mu.Lock()
					step.into.Add(p)
					mu.Unlock()
					if onPage != nil {
						onPage(step.table, p)
					}
					return nil
				})
			})
		}
		wg.Wait()
		err := errors.Join(errs...)
		var missing *types.ResourceNotFoundException
		if step.table == t.Snapshots && errors.As(err, &missing) {
			continue // no snapshots table: the stack keeps its snapshots in the events table
		}
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// holdsAll reports whether item holds the new value of every attribute of set.
func holdsAll(item map[string]types.AttributeValue, set map[string]sealedAttr) bool {
	for name, v := range set {
		s, ok := item[name].(*types.AttributeValueMemberS)
		if !ok || s.Value != v.new {
			return false
		}
	}
	return true
}
