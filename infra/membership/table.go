package membership

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/infra/dynamo/attr"
)

// Client is the part of *dynamodb.Client the table uses.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ Client = (*dynamodb.Client)(nil)

// The table's items, all under the user's id (pk):
//
//	sk "team#<teamId>": the user's place in one team as the team's events
//	  said it, last at version: member (joined at version joined) or not.
//	sk "deleted": the marker of the user's deletion (Marker).
//
// One partition per user: the deletion's Query of the user's teams and a
// join's read of the marker are strongly consistent reads of the items the
// other side writes.
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrTeam      = "team"
	attrMember    = "member"
	attrVersion   = "version"
	attrJoined    = "joined"
	attrEventID   = "eventId"
	attrEventType = "eventType"
	attrActor     = "actor"
	attrReason    = "reason"
	attrCorrel    = "correlationId"
	attrAt        = "at"

	skDeleted  = "deleted"
	teamPrefix = "team#"
)

// Table is the process manager's own table: which teams each user is in,
// as far as the team events it has handled tell, and which users are
// deleted. It is not a read model: it is written before the decisions it
// informs and read with strong consistency.
type Table struct {
	client Client
	name   string
}

// NewTable returns the table name through client.
func NewTable(client Client, name string) *Table { return &Table{client: client, name: name} }

// Marker is a user's deletion as the process manager keeps it: the first
// deletion event it handled (user.deleted.v1, or user.forgotten.v1), whose
// actor, reason and ids every removal it causes carries.
type Marker struct {
	EventID       string
	EventType     string
	Actor         string
	Reason        string
	CorrelationID string
	At            time.Time // when the deletion occurred
}

// Row is a user's place in one team.
type Row struct {
	TeamID  string
	Member  bool  // a member after the event at Version
	Version int64 // the team's version of the last event handled about this user
	Joined  int64 // the team's version at which the user last joined
}

func key(user, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: user},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// condNotNewer: the row is absent, or holds an event at or below this
// one's version. At (not only below) so that the SDK's retry of a write
// whose reply was lost succeeds: it writes the same values again.
const condNotNewer = "attribute_not_exists(pk) OR #v <= :v"

// SetMember records that user joined (member) or left team at version of
// the team's stream. It reports false, writing nothing, when the row
// already holds a later event of the team: this one is stale (delivered
// late) and the later one decides.
func (t *Table) SetMember(ctx context.Context, user, team string, member bool, version int64) (bool, error) {
	update := "SET #team = :team, #m = :m, #v = :v"
	values := map[string]types.AttributeValue{
		":team": s(team), ":m": &types.AttributeValueMemberBOOL{Value: member}, ":v": n(version),
	}
	names := map[string]string{"#team": attrTeam, "#m": attrMember, "#v": attrVersion}
	if member {
		update += ", #j = :v"
		names["#j"] = attrJoined
	}
	_, err := t.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(t.name),
		Key:                       key(user, teamPrefix+team),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(condNotNewer),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var stale *types.ConditionalCheckFailedException
	if errors.As(err, &stale) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("membership of %s in %s v%d: %w", user, team, version, err)
	}
	return true, nil
}

// Teams returns every team row of user, read with strong consistency.
func (t *Table) Teams(ctx context.Context, user string) ([]Row, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(t.name),
		KeyConditionExpression: aws.String("pk = :u AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":u": s(user), ":p": s(teamPrefix),
		},
		ConsistentRead: aws.Bool(true),
	}
	var rows []Row
	for {
		out, err := t.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("teams of %s: %w", user, err)
		}
		for _, item := range out.Items {
			r, err := rowOf(item)
			if err != nil {
				return nil, fmt.Errorf("teams of %s: %w", user, err)
			}
			rows = append(rows, r)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return rows, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func rowOf(item map[string]types.AttributeValue) (Row, error) {
	sk, err := attr.String(item, attrSK)
	if err != nil {
		return Row{}, err
	}
	r := Row{TeamID: strings.TrimPrefix(sk, teamPrefix)}
	m, ok := item[attrMember].(*types.AttributeValueMemberBOOL)
	if !ok {
		return Row{}, fmt.Errorf("row %s: attribute %s missing", sk, attrMember)
	}
	r.Member = m.Value
	if r.Version, err = attr.Int(item, attrVersion); err != nil {
		return Row{}, fmt.Errorf("row %s: %w", sk, err)
	}
	if r.Member {
		if r.Joined, err = attr.Int(item, attrJoined); err != nil {
			return Row{}, fmt.Errorf("row %s: %w", sk, err)
		}
	}
	return r, nil
}

// MarkDeleted records user's deletion, unless one is recorded already, and
// returns the marker that holds: m, or the one recorded before (a
// redelivery, the forget after the delete). The SDK's retry of a put whose
// reply was lost finds the marker it wrote: that is m again.
func (t *Table) MarkDeleted(ctx context.Context, user string, m Marker) (Marker, error) {
	item := key(user, skDeleted)
	item[attrEventID], item[attrEventType], item[attrActor] = s(m.EventID), s(m.EventType), s(m.Actor)
	item[attrReason], item[attrCorrel] = s(m.Reason), s(m.CorrelationID)
	item[attrAt] = s(m.At.UTC().Format(time.RFC3339Nano))
	_, err := t.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(t.name),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var exists *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return m, nil
	case !errors.As(err, &exists):
		return Marker{}, fmt.Errorf("mark %s deleted: %w", user, err)
	}
	got, ok, err := t.Deleted(ctx, user)
	switch {
	case err != nil:
		return Marker{}, err
	case !ok:
		return Marker{}, fmt.Errorf("mark %s deleted: the marker the condition found is gone", user)
	}
	return got, nil
}

// Deleted returns user's deletion marker, read with strong consistency,
// and whether there is one.
func (t *Table) Deleted(ctx context.Context, user string) (Marker, bool, error) {
	out, err := t.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.name), Key: key(user, skDeleted), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Marker{}, false, fmt.Errorf("deletion of %s: %w", user, err)
	}
	if out.Item == nil {
		return Marker{}, false, nil
	}
	m, err := markerOf(out.Item)
	if err != nil {
		return Marker{}, false, fmt.Errorf("deletion of %s: %w", user, err)
	}
	return m, true, nil
}

func markerOf(item map[string]types.AttributeValue) (Marker, error) {
	var m Marker
	var err error
	for _, f := range []struct {
		name string
		to   *string
	}{{attrEventID, &m.EventID}, {attrEventType, &m.EventType}, {attrActor, &m.Actor}, {attrReason, &m.Reason}, {attrCorrel, &m.CorrelationID}} {
		if *f.to, err = attr.String(item, f.name); err != nil {
			return Marker{}, err
		}
	}
	if m.At, err = attr.Time(item, attrAt); err != nil {
		return Marker{}, err
	}
	return m, nil
}

// tableWait bounds CreateTable's wait for the table to become active.
const tableWait = 2 * time.Minute

// CreateTable creates the table as template.yaml declares MembershipTable
// (pk and sk, both strings), for tests; an existing table is kept.
func CreateTable(ctx context.Context, client *dynamodb.Client, name string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
	})
	var exists *types.ResourceInUseException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 2*time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, tableWait); err != nil {
		return fmt.Errorf("wait for table %s: %w", name, err)
	}
	return nil
}

// DeleteTable deletes the table, for tests.
func DeleteTable(ctx context.Context, client *dynamodb.Client, name string) error {
	if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
		return fmt.Errorf("delete table %s: %w", name, err)
	}
	return nil
}
