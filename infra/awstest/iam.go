package awstest

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chronicle-go/chronicle/infra/iamcheck"
)

// UnderIAM is the client option that puts every call of a client built
// from Config under function's role in template.yaml (iamcheck.ForTest):
// a call the role does not grant fails the test. names give the
// template's resources the names the test created them with.
func UnderIAM[O interface {
	*dynamodb.Options | *sqs.Options | *sesv2.Options
}](tb testing.TB, function string, names map[string]string) func(O) {
	tb.Helper()
	check := iamcheck.ForTest(tb, Config(tb).Region, function, names)
	return func(o O) {
		switch o := any(o).(type) {
		case *dynamodb.Options:
			o.APIOptions = append(o.APIOptions, check)
		case *sqs.Options:
			o.APIOptions = append(o.APIOptions, check)
		case *sesv2.Options:
			o.APIOptions = append(o.APIOptions, check)
		}
	}
}

// QueueName is the name of the queue at url (its last path segment), as
// the template's resource names take it.
func QueueName(url string) string { return url[strings.LastIndex(url, "/")+1:] }
