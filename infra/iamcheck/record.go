package iamcheck

import (
	"context"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
)

// recorderID names the middleware in the SDK's stack.
const recorderID = "chronicle/iamcheck"

// account and partition of the ARNs the recorder makes when a request
// does not carry them (a table name, say).
type arns struct {
	partition, account string
	// iterators maps a stream shard iterator to its stream's ARN: GetRecords
	// names only the iterator, IAM authorizes it on the stream.
	mu        sync.Mutex
	iterators map[string]string
	// partitionKeys of the stack's tables, for the leading keys of the
	// DynamoDB item calls.
	partitionKeys partitionKeys
}

// middleware returns an APIOptions entry that hands the calls of every
// operation to observe before the request is sent.
func (a *arns) middleware(function string, observe func(context.Context, Call)) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc(recorderID, func(
			ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler,
		) (middleware.InitializeOutput, middleware.Metadata, error) {
			region := awsmiddleware.GetRegion(ctx)
			for _, c := range a.calls(region, awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), in.Parameters) {
				c.Function = function
				if _, name, _ := strings.Cut(c.Action, ":"); name == c.Operation {
					c.Operation = ""
				}
				observe(ctx, c)
			}
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil {
				a.rememberIterators(in.Parameters, out.Result)
			}
			return out, md, err
		}), middleware.After)
	}
}

// calls turns one operation into the calls IAM authorizes. An operation
// it does not know gives a call with an empty Resource, which Check
// refuses: teach calls rather than guess.
func (a *arns) calls(region, service, op string, params any) []Call {
	one := func(action, resource string) []Call {
		return []Call{{Action: action, Resource: resource, Operation: op}}
	}
	table := func(name *string) string { return a.table(region, aws.ToString(name)) }
	queue := func(u *string) string { return a.queue(region, aws.ToString(u)) }
	if calls, ok := a.dynamoCalls(region, op, params); ok {
		return calls
	}
	switch in := params.(type) {
	// DynamoDB: tables (items and queries: dynamoCalls).
	case *dynamodb.DescribeTableInput:
		return one("dynamodb:DescribeTable", table(in.TableName))
	case *dynamodb.DescribeTimeToLiveInput:
		return one("dynamodb:DescribeTimeToLive", table(in.TableName))
	case *dynamodb.UpdateTimeToLiveInput:
		return one("dynamodb:UpdateTimeToLive", table(in.TableName))
	case *dynamodb.CreateTableInput:
		return one("dynamodb:CreateTable", table(in.TableName))
	case *dynamodb.UpdateTableInput:
		return one("dynamodb:UpdateTable", table(in.TableName))
	case *dynamodb.DeleteTableInput:
		return one("dynamodb:DeleteTable", table(in.TableName))
	case *dynamodb.ListTablesInput:
		return one("dynamodb:ListTables", "*")

	// DynamoDB Streams: authorized on the stream's ARN.
	case *dynamodbstreams.DescribeStreamInput:
		return one("dynamodb:DescribeStream", aws.ToString(in.StreamArn))
	case *dynamodbstreams.GetShardIteratorInput:
		return one("dynamodb:GetShardIterator", aws.ToString(in.StreamArn))
	case *dynamodbstreams.GetRecordsInput:
		a.mu.Lock()
		stream := a.iterators[aws.ToString(in.ShardIterator)]
		a.mu.Unlock()
		return one("dynamodb:GetRecords", stream)
	case *dynamodbstreams.ListStreamsInput:
		return one("dynamodb:ListStreams", "*")

	// SQS: authorized on the queue's ARN; a batch as its single action.
	case *sqs.SendMessageInput:
		return one("sqs:SendMessage", queue(in.QueueUrl))
	case *sqs.SendMessageBatchInput:
		return one("sqs:SendMessage", queue(in.QueueUrl))
	case *sqs.ReceiveMessageInput:
		return one("sqs:ReceiveMessage", queue(in.QueueUrl))
	case *sqs.DeleteMessageInput:
		return one("sqs:DeleteMessage", queue(in.QueueUrl))
	case *sqs.DeleteMessageBatchInput:
		return one("sqs:DeleteMessage", queue(in.QueueUrl))
	case *sqs.ChangeMessageVisibilityInput:
		return one("sqs:ChangeMessageVisibility", queue(in.QueueUrl))
	case *sqs.ChangeMessageVisibilityBatchInput:
		return one("sqs:ChangeMessageVisibility", queue(in.QueueUrl))
	case *sqs.GetQueueAttributesInput:
		return one("sqs:GetQueueAttributes", queue(in.QueueUrl))
	case *sqs.SetQueueAttributesInput:
		return one("sqs:SetQueueAttributes", queue(in.QueueUrl))
	case *sqs.PurgeQueueInput:
		return one("sqs:PurgeQueue", queue(in.QueueUrl))
	case *sqs.DeleteQueueInput:
		return one("sqs:DeleteQueue", queue(in.QueueUrl))
	case *sqs.GetQueueUrlInput:
		account := a.account
		if in.QueueOwnerAWSAccountId != nil {
			account = *in.QueueOwnerAWSAccountId
		}
		return one("sqs:GetQueueUrl", fmt.Sprintf("arn:%s:sqs:%s:%s:%s", a.partition, region, account, aws.ToString(in.QueueName)))
	case *sqs.CreateQueueInput:
		return one("sqs:CreateQueue", fmt.Sprintf("arn:%s:sqs:%s:%s:%s", a.partition, region, a.account, aws.ToString(in.QueueName)))
	case *sqs.ListQueuesInput:
		return one("sqs:ListQueues", "*")

	// SES: authorized on the sending identity, with the From address as a
	// condition key.
	case *sesv2.SendEmailInput:
		from := aws.ToString(in.FromEmailAddress)
		if addr, err := mail.ParseAddress(from); err == nil {
			from = addr.Address
		}
		identity := aws.ToString(in.FromEmailAddressIdentityArn)
		if identity == "" {
			identity = a.sesIdentity(region, from)
		}
		return []Call{{Action: "ses:SendEmail", Resource: identity, Operation: op, Context: map[string]string{"ses:FromAddress": from}}}
	case *sesv2.CreateEmailIdentityInput:
		return one("ses:CreateEmailIdentity", a.sesIdentity(region, aws.ToString(in.EmailIdentity)))

	// KMS: authorized on the key's ARN. A call that names the key by an
	// alias is authorized on the key it points to, which the check cannot
	// see: the alias's ARN stands for it, and no grant names it.
	case *kms.GenerateDataKeyInput:
		return one("kms:GenerateDataKey", a.kmsKey(region, aws.ToString(in.KeyId)))
	case *kms.DecryptInput:
		return one("kms:Decrypt", a.kmsKey(region, aws.ToString(in.KeyId)))
	case *kms.EncryptInput:
		return one("kms:Encrypt", a.kmsKey(region, aws.ToString(in.KeyId)))
	case *kms.GenerateMacInput:
		return one("kms:GenerateMac", a.kmsKey(region, aws.ToString(in.KeyId)))
	case *kms.DescribeKeyInput:
		return one("kms:DescribeKey", a.kmsKey(region, aws.ToString(in.KeyId)))
	case *kms.CreateKeyInput:
		return one("kms:CreateKey", "*")
	case *kms.CreateAliasInput:
		return one("kms:CreateAlias", a.kmsKey(region, aws.ToString(in.AliasName)))
	}
	return one(servicePrefix(service)+":"+op, "")
}

// kmsKey is the ARN of the key id names: a key id, a key ARN, an alias
// name ("alias/x") or an alias ARN. A Decrypt that names no key (KMS finds
// it in the ciphertext) has no resource the check can know: "".
func (a *arns) kmsKey(region, id string) string {
	switch {
	case id == "", strings.HasPrefix(id, "arn:"):
		return id
	case strings.HasPrefix(id, "alias/"):
		return fmt.Sprintf("arn:%s:kms:%s:%s:%s", a.partition, region, a.account, id)
	}
	return fmt.Sprintf("arn:%s:kms:%s:%s:key/%s", a.partition, region, a.account, id)
}

func (a *arns) table(region, name string) string {
	if strings.HasPrefix(name, "arn:") {
		return name
	}
	return fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s", a.partition, region, a.account, name)
}

func index(table string, name *string) string {
	if name == nil {
		return table
	}
	return table + "/index/" + *name
}

// queue is the ARN of the queue at u: https://sqs.<region>.amazonaws.com/<account>/<name>,
// or an emulator's http://host:port/<account>/<name>.
func (a *arns) queue(region, u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.Trim(p.Path, "/"), "/")
	if len(parts) != 2 {
		return ""
	}
	return fmt.Sprintf("arn:%s:sqs:%s:%s:%s", a.partition, region, parts[0], parts[1])
}

func (a *arns) sesIdentity(region, identity string) string {
	return fmt.Sprintf("arn:%s:ses:%s:%s:identity/%s", a.partition, region, a.account, identity)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// dedupe drops the calls that repeat another's action, resource and
// condition keys.
func dedupe(calls []Call) []Call {
	id := func(c Call) string {
		return fmt.Sprint(c.Action, " ", c.Resource, " ", c.Context, c.Sets, c.Unknown)
	}
	return slices.CompactFunc(slices.SortedFunc(slices.Values(calls), func(x, y Call) int {
		return strings.Compare(id(x), id(y))
	}), func(x, y Call) bool { return id(x) == id(y) })
}

// rememberIterators keeps the stream of each shard iterator a stream call
// returns, for the GetRecords that will use it.
func (a *arns) rememberIterators(params, result any) {
	var stream, next string
	switch out := result.(type) {
	case *dynamodbstreams.GetShardIteratorOutput:
		in, ok := params.(*dynamodbstreams.GetShardIteratorInput)
		if !ok {
			return
		}
		stream, next = aws.ToString(in.StreamArn), aws.ToString(out.ShardIterator)
	case *dynamodbstreams.GetRecordsOutput:
		in, ok := params.(*dynamodbstreams.GetRecordsInput)
		if !ok {
			return
		}
		a.mu.Lock()
		stream = a.iterators[aws.ToString(in.ShardIterator)]
		delete(a.iterators, aws.ToString(in.ShardIterator))
		a.mu.Unlock()
		next = aws.ToString(out.NextShardIterator)
	default:
		return
	}
	if stream == "" || next == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.iterators == nil {
		a.iterators = map[string]string{}
	}
	a.iterators[next] = stream
}

// servicePrefix is the IAM service prefix of an SDK service id.
func servicePrefix(serviceID string) string {
	switch serviceID {
	case "DynamoDB", "DynamoDB Streams":
		return "dynamodb"
	case "SESv2":
		return "ses"
	}
	return strings.ToLower(strings.ReplaceAll(serviceID, " ", ""))
}
