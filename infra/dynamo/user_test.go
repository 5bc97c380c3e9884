package dynamo_test

import (
	"testing"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
)

// TestUserScenarios runs the User service's store-level scenarios (20 writers
// × 50 commands on one user, 100 rounds of racing creates with one email, the
// email and identity life cycle) on DynamoDB Local. Unlike the package's
// other tests it is not parallel: Go runs it first, alone, so that BusyUser's
// floor on the share of commands that succeed within the retry budget is
// not measured beside the feed's invariant test.
func TestUserScenarios(t *testing.T) {
	usertest.Run(t, func(t *testing.T) es.Store { return newStore(t) })
}
