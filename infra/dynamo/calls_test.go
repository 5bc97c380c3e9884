package dynamo_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
)

// callCounter counts the DynamoDB operations a client sends, by name: an
// SDK middleware, so that every call counts, whatever sends it.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) apiOption(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CountCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.calls[awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// take returns the calls counted since the last take, as "Op×n" sorted.
func (c *callCounter) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(c.calls)) {
		parts = append(parts, fmt.Sprintf("%s×%d", op, c.calls[op]))
	}
	clear(c.calls)
	return strings.Join(parts, " ")
}

// TestCallsPerCommand counts the DynamoDB calls of User commands through
// the service as the commands function builds it (snapshots every 100
// events, the state cache on): a create under a new id is one transaction;
// a warm command one conditional write; a cold one (another container) one
// Query and the write; an idempotent warm command one transaction and its
// repeat (a no-op on the cached state) the record's read.
func TestCallsPerCommand(t *testing.T) {
	t.Parallel()
	_, tables := newTables(t)
	counter := &callCounter{calls: map[string]int{}}
	client := dynamodb.NewFromConfig(awstest.Config(t), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, counter.apiOption)
	})
	store := dynamo.New(client, tables)
	newService := func() *es.Service[user.State, user.Command] {
		return es.NewService(user.Decider(), user.NewRegistry(), store, es.Options{SnapshotEvery: 100, CacheSize: 100})
	}
	warm, cold := newService(), newService()
	ctx := t.Context()
	id := newID()
	exec := func(svc *es.Service[user.State, user.Command], c user.Command, x es.ExecOptions) string {
		t.Helper()
		counter.take()
		if _, err := svc.Execute(ctx, id, c, x); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		return counter.take()
	}
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %s, want %s", what, got, want)
		}
	}
	check("create under a new id", exec(warm, user.Create{Name: "Ann", Email: id + "@example.com"}, es.ExecOptions{Absent: true}), "TransactWriteItems×1")
	check("warm rename", exec(warm, user.Rename{Name: "Ann B"}, es.ExecOptions{}), "PutItem×1")
	check("cold rename", exec(cold, user.Rename{Name: "Ann C"}, es.ExecOptions{}), "PutItem×1 Query×1")
	check("rename on a stale cache", exec(warm, user.Rename{Name: "Ann D"}, es.ExecOptions{}), "PutItem×2 Query×1")
	key := es.IdempotencyKey{Key: "k-" + id, RequestHash: "h"}
	check("warm rename with an idempotency key", exec(warm, user.Rename{Name: "Ann E"}, es.ExecOptions{Idempotency: &key}), "TransactWriteItems×1")
	check("its repeat", exec(warm, user.Rename{Name: "Ann E"}, es.ExecOptions{Idempotency: &key}), "GetItem×1")
	for i := range 95 { // v6..v100: the append that crosses the interval carries the snapshot
		exec(warm, user.Rename{Name: fmt.Sprint("Ann ", i)}, es.ExecOptions{})
	}
	check("warm rename at v101", exec(warm, user.Rename{Name: "Ann F"}, es.ExecOptions{}), "PutItem×1")
	check("cold rename after a snapshot", exec(newService(), user.Rename{Name: "Ann G"}, es.ExecOptions{}), "PutItem×1 Query×1")
	counter.take()
	agg, err := newService().Load(ctx, id)
	if err != nil || agg.Version != 102 || agg.State.Name != "Ann G" {
		t.Fatalf("load: %+v, %v", agg, err)
	}
	check("a load", counter.take(), "Query×1")
}
