package iamcheck

import (
	"fmt"

	"github.com/chronicle-go/chronicle/infra/template"
)

// LambdaCalls are the calls that Lambda, not the function's code, makes
// with the function's role, as AWS documents them: its runtime writes the
// function's logs; an SQS event source mapping receives, deletes and reads
// the attributes of its queue; a DynamoDB stream mapping describes, lists
// and reads the stream, and sends the description of a failed batch to its
// on-failure queue; active tracing sends X-Ray segments. The local runner
// plays the event source mappings with clients of its own, so that no test
// records these: they are checked from the template.
func LambdaCalls(tpl *template.Template, f template.Function, r template.Resolver) ([]Call, error) {
	var out []Call
	add := func(resource string, actions ...string) {
		for _, a := range actions {
			out = append(out, Call{Function: f.Name, Action: a, Resource: resource, By: ByLambda})
		}
	}
	pseudo := func(name string) (string, error) { return r.Ref(name) }
	partition, err := pseudo("AWS::Partition")
	if err != nil {
		return nil, err
	}
	region, err := pseudo("AWS::Region")
	if err != nil {
		return nil, err
	}
	account, err := pseudo("AWS::AccountId")
	if err != nil {
		return nil, err
	}

	group := ""
	if f.LogGroup != "" {
		if group, err = tpl.Resolve(f.LogGroup, r); err != nil {
			return nil, fmt.Errorf("function %s: LogGroup: %w", f.Name, err)
		}
	} else {
		name, err := r.Ref(f.Name)
		if err != nil {
			return nil, fmt.Errorf("function %s: name: %w", f.Name, err)
		}
		group = "/aws/lambda/" + name
	}
	add(fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s:log-stream:*", partition, region, account, group),
		"logs:CreateLogStream", "logs:PutLogEvents")

	for _, e := range f.QueueEvents {
		arn, err := r.GetAtt(e.Queue, "Arn")
		if err != nil {
			return nil, fmt.Errorf("function %s, event %s: %w", f.Name, e.Name, err)
		}
		add(arn, "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
	}
	for _, e := range f.StreamEvents {
		arn, err := r.GetAtt(e.Table, "StreamArn")
		if err != nil {
			return nil, fmt.Errorf("function %s, event %s: %w", f.Name, e.Name, err)
		}
		add(arn, "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
		add("*", "dynamodb:ListStreams")
		if e.OnFailure != "" {
			dest, err := r.GetAtt(e.OnFailure, "Arn")
			if err != nil {
				return nil, fmt.Errorf("function %s, event %s: on-failure destination: %w", f.Name, e.Name, err)
			}
			add(dest, "sqs:SendMessage")
		}
	}
	if f.Tracing == "Active" {
		add("*", "xray:PutTraceSegments", "xray:PutTelemetryRecords")
	}
	return out, nil
}
