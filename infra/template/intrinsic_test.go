package template_test

import (
	"testing"

	"github.com/chronicle-go/chronicle/infra/template"
)

const resolveTemplate = `
Parameters:
  Sender: {Type: String, Default: "me@example.org"}
  Count: {Type: Number, Default: 3}
  Flag: {Type: String, Default: "on", AllowedValues: ["on", "off"]}
Conditions:
  On: !Equals [!Ref Flag, "on"]
Resources:
  MyQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-q.fifo"
      VisibilityTimeout: !If [On, 60, 30]
      Tags:
        - {Key: ref, Value: !Ref MyQueue}
        - {Key: getatt, Value: !GetAtt MyQueue.Arn}
        - {Key: getatt-list, Value: !GetAtt [MyQueue, Arn]}
        - {Key: sub-vars, Value: !Sub ["${A}|${B}|${Count}|${!Literal}", {A: !Ref MyQueue, B: !GetAtt MyQueue.Arn}]}
        - {Key: join, Value: !Join [",", [!Ref MyQueue, "x", !Ref Sender]]}
        - {Key: select, Value: !Select [1, !Split ["@", !Ref Sender]]}
        - {Key: sub-getatt, Value: !Sub "${MyQueue.Arn}/${AWS::Region}"}
        - {Key: literal, Value: "plain"}
`

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		flag    string
		timeout int
	}{{"on", 60}, {"off", 30}} {
		tpl, err := template.Parse([]byte(resolveTemplate), template.WithParameters(map[string]string{"Flag": tc.flag}))
		if err != nil {
			t.Fatal(err)
		}
		q, err := tpl.GetSQSQueueWithName("MyQueue")
		if err != nil {
			t.Fatal(err)
		}
		if *q.VisibilityTimeout != tc.timeout {
			t.Errorf("Flag=%s: Fn::If gave %d, want %d", tc.flag, *q.VisibilityTimeout, tc.timeout)
		}
		want := map[string]string{
			"ref":         "https://sqs/MyQueue",
			"getatt":      "arn:MyQueue.Arn",
			"getatt-list": "arn:MyQueue.Arn",
			"sub-vars":    "https://sqs/MyQueue|arn:MyQueue.Arn|3|${Literal}",
			"join":        "https://sqs/MyQueue,x,me@example.org",
			"select":      "example.org",
			"sub-getatt":  "arn:MyQueue.Arn/region",
			"literal":     "plain",
		}
		for _, tag := range q.Tags {
			got, err := tpl.Resolve(tag.Value, values{})
			if err != nil {
				t.Errorf("%s: %v", tag.Key, err)
			} else if got != want[tag.Key] {
				t.Errorf("%s = %q, want %q", tag.Key, got, want[tag.Key])
			}
		}
		if got, err := tpl.Resolve(*q.QueueName, values{}); err != nil || got != "stack-q.fifo" {
			t.Errorf("QueueName = %q, %v", got, err)
		}
	}
}

func TestIntrinsic(t *testing.T) {
	tpl, err := template.Parse([]byte(resolveTemplate))
	if err != nil {
		t.Fatal(err)
	}
	q, err := tpl.GetSQSQueueWithName("MyQueue")
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tag := range q.Tags {
		tags[tag.Key] = tag.Value
	}
	if id, ok := template.RefTo(tags["ref"]); !ok || id != "MyQueue" {
		t.Errorf("RefTo = %q, %v", id, ok)
	}
	if id, attr, ok := template.GetAttOf(tags["getatt"]); !ok || id != "MyQueue" || attr != "Arn" {
		t.Errorf("GetAttOf = %q %q %v", id, attr, ok)
	}
	if fn, _, ok := template.Intrinsic(tags["literal"]); ok {
		t.Errorf("literal decoded as %s", fn)
	}
	if got := template.Target(tags["join"]); got != "" {
		t.Errorf("Target(Fn::Join) = %q, want none", got)
	}
}
