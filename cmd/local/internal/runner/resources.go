package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	cfnddb "github.com/awslabs/goformation/v7/cloudformation/dynamodb"

	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/template"
)

// resources are the physical names of the stack's resources, and the
// template.Resolver that the functions' environments resolve against.
type resources struct {
	r          *Runner
	types      map[string]string // logical id -> resource type
	tableNames map[string]string
	streamARNs map[string]string
	queues     map[string]queueInfo
	keys       map[string]string // KMS key id by logical id (keys.go)
	// tablesFound are the tables that existed before this start (kept by
	// DynamoDB Local's -dbPath), queuesCreated says whether any queue was
	// made afresh: together, a kept table whose stream fed queues that are
	// gone (moto keeps nothing), see pollStream.
	tablesFound   map[string]bool
	queuesCreated bool
}

type queueInfo struct {
	name, url, arn string
}

var _ template.Resolver = (*resources)(nil)

func newResources(r *Runner) *resources {
	res := &resources{r: r, types: map[string]string{}, tableNames: map[string]string{},
		streamARNs: map[string]string{}, queues: map[string]queueInfo{}, tablesFound: map[string]bool{}, keys: map[string]string{}}
	for id, rsc := range r.tpl.Resources {
		res.types[id] = rsc.AWSCloudFormationType()
	}
	return res
}

// physicalName is the name CloudFormation would make up for a resource
// without a name property; the runner's is stable from run to run.
func (res *resources) physicalName(id string) string {
	return res.r.cfg.StackName + "-" + id
}

func (res *resources) Ref(name string) (string, error) {
	switch name {
	case "AWS::StackName":
		return res.r.cfg.StackName, nil
	case "AWS::Region":
		return res.r.region, nil
	case "AWS::AccountId":
		return accountID, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::StackId":
		return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/local", res.r.region, accountID, res.r.cfg.StackName), nil
	case "AWS::NoValue":
		return "", nil
	}
	switch res.types[name] {
	case template.TypeTable:
		if n, ok := res.tableNames[name]; ok {
			return n, nil
		}
	case template.TypeQueue:
		if q, ok := res.queues[name]; ok {
			return q.url, nil
		}
		return "", fmt.Errorf("queue %s is not created yet", name)
	case template.TypeAPI:
		return apiID(res.r.cfg.StackName), nil
	case iamcheck.TypeKMSKey:
		if k, ok := res.keys[name]; ok {
			return k, nil
		}
		return "", fmt.Errorf("KMS key %s is not created yet", name)
	case "":
		return "", fmt.Errorf("Ref %s: no such resource or pseudo parameter", name)
	}
	return res.physicalName(name), nil
}

func (res *resources) GetAtt(id, attr string) (string, error) {
	typ := res.types[id]
	switch {
	case typ == template.TypeTable && attr == "Arn":
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", res.r.region, accountID, res.tableNames[id]), nil
	case typ == template.TypeTable && attr == "StreamArn":
		if a := res.streamARNs[id]; a != "" {
			return a, nil
		}
		return "", fmt.Errorf("table %s has no stream", id)
	case typ == template.TypeQueue:
		q, ok := res.queues[id]
		if !ok {
			return "", fmt.Errorf("queue %s is not created yet", id)
		}
		switch attr {
		case "Arn":
			return q.arn, nil
		case "QueueName":
			return q.name, nil
		case "QueueUrl":
			return q.url, nil
		}
	case typ == template.TypeFunction && attr == "Arn":
		return functionARN(res.r.region, res.physicalName(id)), nil
	case typ == template.TypeRole && attr == "Arn":
		return fmt.Sprintf("arn:aws:iam::%s:role/%s", accountID, res.physicalName(id)), nil
	case typ == "AWS::Logs::LogGroup" && attr == "Arn":
		return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", res.r.region, accountID, res.physicalName(id)), nil
	case typ == iamcheck.TypeKMSKey && (attr == "Arn" || attr == "KeyId"):
		k, ok := res.keys[id]
		if !ok {
			return "", fmt.Errorf("KMS key %s is not created yet", id)
		}
		if attr == "KeyId" {
			return k, nil
		}
		return iamcheck.KMSKeyARN(res.r.region, accountID, k), nil
	}
	return "", fmt.Errorf("Fn::GetAtt %s.%s: not something the runner knows", id, attr)
}

func functionARN(region, name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, accountID, name)
}

// apiID stands for the REST API's id in ARNs and request contexts.
func apiID(stack string) string {
	id := strings.ToLower(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, stack))
	if len(id) > 10 {
		id = id[:10]
	}
	return id
}

// tableWait bounds the wait for a table to become active or go away.
const tableWait = 2 * time.Minute

// createTables creates each table of the template, or updates an existing
// one to what the template declares where DynamoDB allows it (stream,
// missing global secondary indexes, TTL).
func (r *Runner) createTables(ctx context.Context) error {
	for _, t := range r.plan.tables {
		name := r.res.physicalName(t.Name)
		if t.TableName != "" {
			n, err := r.tpl.Resolve(t.TableName, r.res)
			if err != nil {
				return fmt.Errorf("table %s: TableName: %w", t.Name, err)
			}
			name = n
		}
		r.res.tableNames[t.Name] = name
		in, err := createTableInput(t, name)
		if err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
		_, err = r.ddb.CreateTable(ctx, in)
		var exists *ddbtypes.ResourceInUseException
		created := err == nil
		switch {
		case errors.As(err, &exists):
		case err != nil:
			return fmt.Errorf("create table %s: %w", name, err)
		}
		desc, err := r.waitActive(ctx, name)
		if err != nil {
			return err
		}
		if !created {
			r.res.tablesFound[t.Name] = true
			if desc, err = r.updateTable(ctx, t, in, desc); err != nil {
				return fmt.Errorf("table %s (%s) exists: %w", name, t.Name, err)
			}
		}
		if desc.StreamSpecification != nil && aws.ToBool(desc.StreamSpecification.StreamEnabled) {
			r.res.streamARNs[t.Name] = aws.ToString(desc.LatestStreamArn)
		}
		if err := r.enableTTL(ctx, name, t.TTLAttribute); err != nil {
			return err
		}
		r.log.Debug("table ready", "table", t.Name, "name", name, "created", created)
	}
	return nil
}

func (r *Runner) waitActive(ctx context.Context, name string) (*ddbtypes.TableDescription, error) {
	w := dynamodb.NewTableExistsWaiter(r.ddb, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, time.Second
	})
	out, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, tableWait)
	if err != nil {
		return nil, fmt.Errorf("wait for table %s: %w", name, err)
	}
	return out.Table, nil
}

func createTableInput(t template.Table, name string) (*dynamodb.CreateTableInput, error) {
	src := t.Resource
	in := &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: ddbtypes.BillingModePayPerRequest}
	for _, a := range src.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName), AttributeType: ddbtypes.ScalarAttributeType(a.AttributeType)})
	}
	in.KeySchema = keySchema(src.KeySchema)
	if aws.ToString(src.BillingMode) == string(ddbtypes.BillingModeProvisioned) {
		in.BillingMode = ddbtypes.BillingModeProvisioned
		in.ProvisionedThroughput = throughput(src.ProvisionedThroughput)
	}
	for _, g := range src.GlobalSecondaryIndexes {
		gsi := ddbtypes.GlobalSecondaryIndex{IndexName: aws.String(g.IndexName), KeySchema: keySchema(g.KeySchema),
			Projection: projection(g.Projection)}
		if in.BillingMode == ddbtypes.BillingModeProvisioned {
			gsi.ProvisionedThroughput = throughput(g.ProvisionedThroughput)
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	for _, l := range src.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, ddbtypes.LocalSecondaryIndex{
			IndexName: aws.String(l.IndexName), KeySchema: keySchema(l.KeySchema), Projection: projection(l.Projection)})
	}
	if t.StreamViewType != "" {
		in.StreamSpecification = &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true),
			StreamViewType: ddbtypes.StreamViewType(t.StreamViewType)}
	}
	if len(in.KeySchema) == 0 {
		return nil, errors.New("no KeySchema")
	}
	return in, nil
}

func keySchema(ks []cfnddb.Table_KeySchema) []ddbtypes.KeySchemaElement {
	out := make([]ddbtypes.KeySchemaElement, 0, len(ks))
	for _, k := range ks {
		out = append(out, ddbtypes.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: ddbtypes.KeyType(k.KeyType)})
	}
	return out
}

func projection(p *cfnddb.Table_Projection) *ddbtypes.Projection {
	out := &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll}
	if p == nil {
		return out
	}
	if p.ProjectionType != nil {
		out.ProjectionType = ddbtypes.ProjectionType(*p.ProjectionType)
	}
	out.NonKeyAttributes = p.NonKeyAttributes
	return out
}

func throughput(p *cfnddb.Table_ProvisionedThroughput) *ddbtypes.ProvisionedThroughput {
	if p == nil {
		return &ddbtypes.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(5)}
	}
	return &ddbtypes.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(int64(p.ReadCapacityUnits)), WriteCapacityUnits: aws.Int64(int64(p.WriteCapacityUnits))}
}

// updateTable brings an existing table to the template: the same keys (or
// an error: keys cannot change), its stream on, and its missing global
// secondary indexes created.
func (r *Runner) updateTable(ctx context.Context, t template.Table, want *dynamodb.CreateTableInput, desc *ddbtypes.TableDescription) (*ddbtypes.TableDescription, error) {
	if !sameKeys(desc.KeySchema, want.KeySchema) {
		return nil, fmt.Errorf("its key schema differs from the template's; delete it or choose another stack name")
	}
	name := aws.ToString(want.TableName)
	if want.StreamSpecification != nil {
		on := desc.StreamSpecification != nil && aws.ToBool(desc.StreamSpecification.StreamEnabled)
		if on && desc.StreamSpecification.StreamViewType != want.StreamSpecification.StreamViewType {
			return nil, fmt.Errorf("its stream is %s, the template's %s", desc.StreamSpecification.StreamViewType, want.StreamSpecification.StreamViewType)
		}
		if !on {
			if _, err := r.ddb.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: want.TableName, StreamSpecification: want.StreamSpecification}); err != nil {
				return nil, fmt.Errorf("enable stream: %w", err)
			}
			r.log.Info("stream enabled on an existing table", "table", t.Name, "name", name)
		}
	}
	for _, g := range want.GlobalSecondaryIndexes {
		if slices.ContainsFunc(desc.GlobalSecondaryIndexes, func(d ddbtypes.GlobalSecondaryIndexDescription) bool {
			return aws.ToString(d.IndexName) == aws.ToString(g.IndexName)
		}) {
			continue
		}
		if _, err := r.ddb.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName: want.TableName, AttributeDefinitions: want.AttributeDefinitions,
			GlobalSecondaryIndexUpdates: []ddbtypes.GlobalSecondaryIndexUpdate{{Create: &ddbtypes.CreateGlobalSecondaryIndexAction{
				IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection, ProvisionedThroughput: g.ProvisionedThroughput}}},
		}); err != nil {
			return nil, fmt.Errorf("create index %s: %w", aws.ToString(g.IndexName), err)
		}
		r.log.Info("index created on an existing table", "table", t.Name, "index", aws.ToString(g.IndexName))
		if _, err := r.waitActive(ctx, name); err != nil {
			return nil, err
		}
	}
	return r.waitActive(ctx, name)
}

func sameKeys(a, b []ddbtypes.KeySchemaElement) bool {
	return slices.EqualFunc(a, b, func(x, y ddbtypes.KeySchemaElement) bool {
		return aws.ToString(x.AttributeName) == aws.ToString(y.AttributeName) && x.KeyType == y.KeyType
	})
}

// enableTTL turns TTL on attr on, unless it is on already; "" does nothing.
func (r *Runner) enableTTL(ctx context.Context, table, attr string) error {
	if attr == "" {
		return nil
	}
	desc, err := r.ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", table, err)
	}
	if d := desc.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == attr &&
		(d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled || d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = r.ddb.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(table),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", table, err)
	}
	return nil
}

// createQueues creates each queue of the template, dead-letter queues
// first, or sets the template's attributes on a queue that exists.
func (r *Runner) createQueues(ctx context.Context) error {
	for _, q := range r.plan.queues {
		name := r.res.physicalName(q.Name)
		if q.FIFO {
			name += ".fifo"
		}
		if q.QueueName != "" {
			n, err := r.tpl.Resolve(q.QueueName, r.res)
			if err != nil {
				return fmt.Errorf("queue %s: QueueName: %w", q.Name, err)
			}
			name = n
		}
		attrs, err := r.queueAttributes(q)
		if err != nil {
			return fmt.Errorf("queue %s: %w", q.Name, err)
		}
		var url string
		got, err := r.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		var missing *sqstypes.QueueDoesNotExist
		switch {
		case err == nil:
			url = aws.ToString(got.QueueUrl)
			update := maps.Clone(attrs)
			delete(update, string(sqstypes.QueueAttributeNameFifoQueue)) // cannot change
			if _, err := r.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: got.QueueUrl, Attributes: update}); err != nil {
				return fmt.Errorf("queue %s exists; set its attributes: %w", name, err)
			}
		case errors.As(err, &missing):
			out, err := r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
			if err != nil {
				return fmt.Errorf("create queue %s: %w", name, err)
			}
			url = aws.ToString(out.QueueUrl)
			r.res.queuesCreated = true
		default:
			return fmt.Errorf("queue %s: %w", name, err)
		}
		a, err := r.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			return fmt.Errorf("queue %s: ARN: %w", name, err)
		}
		r.res.queues[q.Name] = queueInfo{name: name, url: url, arn: a.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]}
	}
	return nil
}

// queueAttributes are the SQS attributes of a template queue.
func (r *Runner) queueAttributes(q template.Queue) (map[string]string, error) {
	attrs := map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(q.VisibilityTimeout),
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(q.MessageRetentionPeriod),
	}
	if q.FIFO {
		attrs[string(sqstypes.QueueAttributeNameFifoQueue)] = "true"
		attrs[string(sqstypes.QueueAttributeNameContentBasedDeduplication)] = strconv.FormatBool(q.ContentBasedDeduplication)
	}
	src := q.Resource
	setInt := func(name sqstypes.QueueAttributeName, v *int) {
		if v != nil {
			attrs[string(name)] = strconv.Itoa(*v)
		}
	}
	setInt(sqstypes.QueueAttributeNameDelaySeconds, src.DelaySeconds)
	setInt(sqstypes.QueueAttributeNameMaximumMessageSize, src.MaximumMessageSize)
	setInt(sqstypes.QueueAttributeNameReceiveMessageWaitTimeSeconds, src.ReceiveMessageWaitTimeSeconds)
	if src.SqsManagedSseEnabled != nil {
		attrs[string(sqstypes.QueueAttributeNameSqsManagedSseEnabled)] = strconv.FormatBool(*src.SqsManagedSseEnabled)
	}
	if q.FIFO && src.DeduplicationScope != nil {
		attrs[string(sqstypes.QueueAttributeNameDeduplicationScope)] = *src.DeduplicationScope
	}
	if q.FIFO && src.FifoThroughputLimit != nil {
		attrs[string(sqstypes.QueueAttributeNameFifoThroughputLimit)] = *src.FifoThroughputLimit
	}
	if q.DeadLetterQueue != "" {
		dlq, ok := r.res.queues[q.DeadLetterQueue]
		if !ok {
			return nil, fmt.Errorf("dead-letter queue %s is not created", q.DeadLetterQueue)
		}
		policy, err := json.Marshal(map[string]string{"deadLetterTargetArn": dlq.arn, "maxReceiveCount": strconv.Itoa(q.MaxReceiveCount)})
		if err != nil {
			return nil, err
		}
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(policy)
	}
	return attrs, nil
}

// deleteQueues deletes the stack's queues that exist.
func (r *Runner) deleteQueues(ctx context.Context) error {
	var errs []error
	for _, q := range r.res.queues {
		_, err := r.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(q.url)})
		var missing *sqstypes.QueueDoesNotExist
		if err != nil && !errors.As(err, &missing) {
			errs = append(errs, fmt.Errorf("delete queue %s: %w", q.name, err))
		}
	}
	return errors.Join(errs...)
}

// deleteTables deletes the stack's tables that exist, without waiting.
func (r *Runner) deleteTables(ctx context.Context) error {
	var errs []error
	for _, name := range r.res.tableNames {
		_, err := r.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		var missing *ddbtypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &missing) {
			errs = append(errs, fmt.Errorf("delete table %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
