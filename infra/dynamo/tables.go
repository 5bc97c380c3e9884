package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableWait bounds how long CreateTables and DeleteTables wait for a table.
const tableWait = 5 * time.Minute

// CreateTables creates the store's tables, as template.yaml declares them, for
// tests, benchmarks and the local runner: on-demand billing, a NEW_IMAGE
// stream and the feed index on events, TTL on the guards' expiresAt. Tables that already exist
// are kept. It returns when all are ACTIVE.
func CreateTables(ctx context.Context, client *dynamodb.Client, t Tables) error {
	for _, in := range []*dynamodb.CreateTableInput{
		tableInput(t.Events, true),
		tableInput(t.Guards, false),
		tableInput(t.Snapshots, false),
	} {
		_, err := client.CreateTable(ctx, in)
		var exists *types.ResourceInUseException
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("create table %s: %w", aws.ToString(in.TableName), err)
		}
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 5*time.Second
	})
	for _, name := range []string{t.Events, t.Guards, t.Snapshots} {
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, tableWait); err != nil {
			return fmt.Errorf("wait for table %s: %w", name, err)
		}
	}
	return enableTTL(ctx, client, t.Guards)
}

// tableInput is a table keyed by pk (S), and by sk (N) for the events table,
// which also streams new images.
func tableInput(name string, events bool) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash}},
	}
	if events {
		in.AttributeDefinitions = append(in.AttributeDefinitions,
			types.AttributeDefinition{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeN})
		in.KeySchema = append(in.KeySchema,
			types.KeySchemaElement{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange})
		in.AttributeDefinitions = append(in.AttributeDefinitions,
			types.AttributeDefinition{AttributeName: aws.String(attrFeedShard), AttributeType: types.ScalarAttributeTypeN},
			types.AttributeDefinition{AttributeName: aws.String(attrFeedKey), AttributeType: types.ScalarAttributeTypeS})
		in.GlobalSecondaryIndexes = []types.GlobalSecondaryIndex{{
			IndexName: aws.String(FeedIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrFeedShard), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrFeedKey), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}}
		in.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewTypeNewImage,
		}
	}
	return in
}

// enableTTL turns on TTL on expiresAt unless it is already on (a second
// UpdateTimeToLive fails). DynamoDB Local supports both calls.
func enableTTL(ctx context.Context, client *dynamodb.Client, table string) error {
	desc, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", table, err)
	}
	if d := desc.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == attrExpiresAt &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrExpiresAt),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", table, err)
	}
	return nil
}

// DeleteTables deletes the store's tables, those that exist, and waits until
// they are gone.
func DeleteTables(ctx context.Context, client *dynamodb.Client, t Tables) error {
	var errs []error
	var deleted []string
	for _, name := range []string{t.Events, t.Guards, t.Snapshots} {
		_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		var missing *types.ResourceNotFoundException
		switch {
		case errors.As(err, &missing):
		case err != nil:
			errs = append(errs, fmt.Errorf("delete table %s: %w", name, err))
		default:
			deleted = append(deleted, name)
		}
	}
	waiter := dynamodb.NewTableNotExistsWaiter(client, func(o *dynamodb.TableNotExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 5*time.Second
	})
	for _, name := range deleted {
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, tableWait); err != nil {
			errs = append(errs, fmt.Errorf("wait for deletion of table %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
