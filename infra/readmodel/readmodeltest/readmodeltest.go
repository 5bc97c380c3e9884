// Package readmodeltest gives integration tests fresh tables on the DynamoDB
// emulator: a read-model table and an event store, each under a new name and
// deleted when the test ends. Like awstest, it skips without an emulator
// unless CHRONICLE_REQUIRE_EMULATORS=1.
package readmodeltest

import (
	"context"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// cleanupTimeout bounds a table deletion after the test; the test's own
// context is already cancelled then.
const cleanupTimeout = time.Minute

// Store returns a read-model store over a new table.
func Store(tb testing.TB) *readmodel.Store {
	tb.Helper()
	return readmodel.New(awstest.DynamoDB(tb), Table(tb))
}

// Table creates a new read-model table as template.yaml declares it (with
// the user list's index: userviews.CreateTable), deleted when the test
// ends, and returns its name: for the table's other stores (mail leases,
// failure records) and for clients a test wraps (faults).
func Table(tb testing.TB) string {
	tb.Helper()
	client := awstest.DynamoDB(tb)
	table := awstest.TableName("readmodel")
	if err := userviews.CreateTable(tb.Context(), client, table); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := readmodel.DeleteTable(ctx, client, table); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	return table
}

// EventStore returns a DynamoDB event store over new tables, and their names.
func EventStore(tb testing.TB) (*dynamo.Store, dynamo.Tables) {
	tb.Helper()
	client := awstest.DynamoDB(tb)
	tables := dynamo.Tables{
		Events:    awstest.TableName("events"),
		Guards:    awstest.TableName("guards"),
		Snapshots: awstest.TableName("snapshots"),
	}
	if err := dynamo.CreateTables(tb.Context(), client, tables); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := dynamo.DeleteTables(ctx, client, tables); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	return dynamo.New(client, tables), tables
}
