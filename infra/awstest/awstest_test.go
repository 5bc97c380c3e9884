package awstest_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/infra/awstest"
)

func TestEmulatorsAnswer(t *testing.T) {
	ddb := awstest.DynamoDB(t)
	if _, err := ddb.ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("DynamoDB ListTables: %v", err)
	}
	queues := awstest.SQS(t)
	if _, err := queues.ListQueues(t.Context(), &sqs.ListQueuesInput{}); err != nil {
		t.Fatalf("SQS ListQueues: %v", err)
	}
}

func TestTableNameIsUniquePerCall(t *testing.T) {
	a, b := awstest.TableName("events"), awstest.TableName("events")
	if a == b {
		t.Fatalf("TableName returned %q twice", a)
	}
	if !strings.HasPrefix(a, "events-") || len(a) != len("events-")+36 {
		t.Fatalf("TableName(%q) = %q, want events-<uuid>", "events", a)
	}
}
