package deadletter_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/readmodel"
)

// TestFailureRecordsExpire: a failure record carries TTLAttribute, in
// epoch seconds, and the table CreateTable makes (as template.yaml declares
// it) has TTL on that attribute, so that DynamoDB deletes the record.
func TestFailureRecordsExpire(t *testing.T) {
	t.Parallel()
	client := awstest.DynamoDB(t)
	table := awstest.TableName("readmodel")
	if err := readmodel.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = readmodel.DeleteTable(t.Context(), client, table) })
	s := deadletter.New(client, table)
	id := uuid.NewString()
	at := time.Now().UTC()
	if err := s.RecordFailure(t.Context(), deadletter.Failure{MessageID: id, Consumer: "projector", Error: "boom", At: at}); err != nil {
		t.Fatal(err)
	}
	out, err := client.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil || len(out.Items) != 1 {
		t.Fatalf("scan: %d items, %v", len(out.Items), err)
	}
	exp, ok := out.Items[0][readmodel.TTLAttribute].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("failure record %v has no number %s", out.Items[0], readmodel.TTLAttribute)
	}
	// SQS keeps a dead letter 14 days at most: the record lasts as long.
	if secs, err := strconv.ParseInt(exp.Value, 10, 64); err != nil || time.Unix(secs, 0).Sub(at) < 13*24*time.Hour || time.Unix(secs, 0).Sub(at) > 15*24*time.Hour {
		t.Errorf("%s = %s, want epoch seconds about 14 days after %v", readmodel.TTLAttribute, exp.Value, at)
	}

	ttl, err := client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != readmodel.TTLAttribute {
		t.Errorf("read-model table TTL: %+v, want enabled on %s", d, readmodel.TTLAttribute)
	}
}
