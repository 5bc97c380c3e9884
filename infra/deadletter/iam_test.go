package deadletter_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
)

// TestRecordFailureUnderTheConsumersRoles: every consumer that records why
// a message failed may do so under its role, whose grant on the read-model
// table is scoped to the failure records (dynamodb:LeadingKeys failure#*)
// where the role holds nothing else there. The fault suites reach a
// notifier's failure only by chance; this reaches it always.
func TestRecordFailureUnderTheConsumersRoles(t *testing.T) {
	t.Parallel()
	table := readmodeltest.Table(t)
	for _, function := range []string{"ProjectorFunction", "NotifierFunction", "MembershipFunction"} {
		t.Run(function, func(t *testing.T) {
			client := dynamodb.NewFromConfig(awstest.Config(t), awstest.UnderIAM[*dynamodb.Options](t, function, map[string]string{"ReadModelTable": table}))
			f := deadletter.Failure{MessageID: uuid.NewString(), Consumer: function, Error: "boom", ReceiveCount: 1, At: time.Now().UTC()}
			if err := deadletter.New(client, table).RecordFailure(t.Context(), f); err != nil {
				t.Fatal(err)
			}
		})
	}
}
