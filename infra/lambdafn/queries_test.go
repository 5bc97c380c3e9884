package lambdafn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/readmodel/readmodeltest"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// dynamoCalls records the DynamoDB calls a client makes: each operation and
// its table, and how many items each Query returned.
type dynamoCalls struct {
	mu      sync.Mutex
	calls   []string // "GetItem <table>"
	queried map[string]int
}

// observe adds the recording middleware to cfg's clients.
func (d *dynamoCalls) observe(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("record",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				table := ""
				switch p := in.Parameters.(type) {
				case *dynamodb.GetItemInput:
					table = aws.ToString(p.TableName)
				case *dynamodb.QueryInput:
					table = aws.ToString(p.TableName)
				}
				d.mu.Lock()
				defer d.mu.Unlock()
				d.calls = append(d.calls, middleware.GetOperationName(ctx)+" "+table)
				if q, ok := out.Result.(*dynamodb.QueryOutput); ok && err == nil {
					d.queried[table] += len(q.Items)
				}
				return out, md, err
			}), middleware.After)
	})
	return cfg
}

func (d *dynamoCalls) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls, d.queried = nil, map[string]int{}
}

func (d *dynamoCalls) snapshot() ([]string, map[string]int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...), d.queried
}

// TestQueriesLoadFromSnapshots: the queries function, built from its
// environment as in Lambda, rebuilds a user from its latest snapshot (kept
// on the event it follows) and the events after it (the HTTP contract: "snapshot + newer events"), for every read that
// goes to the event store: read-your-writes, consistent reads, the state and
// the consistency of a user.
func TestQueriesLoadFromSnapshots(t *testing.T) {
	ctx := t.Context()
	store, tables := readmodeltest.EventStore(t)
	readModel := awstest.TableName("readmodel")
	client := awstest.DynamoDB(t)
	if err := userviews.CreateTable(ctx, client, readModel); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = readmodel.DeleteTable(ctx, client, readModel)
	})

	// 12 events with a snapshot every 5: the latest snapshot is at v10.
	writer := user.NewService(store, es.Options{SnapshotEvery: 5})
	id := uuid.NewString()
	if _, err := writer.Execute(ctx, id, user.Create{Name: "Snap", Email: "snap-" + id + "@example.com"}, es.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 12; i++ {
		if _, err := writer.Execute(ctx, id, user.Rename{Name: fmt.Sprintf("Snap %d", i)}, es.ExecOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The snapshot is kept on the event it follows (es.StreamSnapshots).
	if snap, ok, _, err := store.LoadLatest(ctx, id, 0, func(es.Snapshot) bool { return true }, 5); err != nil || !ok || snap.Version != 10 {
		t.Fatalf("arrange: snapshot %+v, %v, %v; want one at v10", snap, ok, err)
	}

	calls := &dynamoCalls{}
	cfg := calls.observe(awstest.Config(t))
	// The environment template.yaml gives the function.
	qs, err := Queries(cfg, env(map[string]string{
		"EVENTS_TABLE": tables.Events, "GUARDS_TABLE": tables.Guards, "SNAPSHOTS_TABLE": tables.Snapshots,
		"READMODEL_TABLE": readModel, "SNAPSHOT_INTERVAL": "5", // as the writer's

	}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	admin := auth.Principal{Sub: "root", Roles: []string{auth.RoleAdmin}}.AuthorizerContext()
	get := func(resource, path string, query map[string]string) events.APIGatewayProxyRequest {
		return events.APIGatewayProxyRequest{
			Resource: resource, Path: path, HTTPMethod: http.MethodGet,
			PathParameters: map[string]string{"id": id}, QueryStringParameters: query,
			RequestContext: events.APIGatewayProxyRequestContext{Authorizer: admin, ResourcePath: resource, HTTPMethod: http.MethodGet},
		}
	}
	for _, tc := range []struct {
		name string
		req  events.APIGatewayProxyRequest
	}{
		{"minVersion ahead of the view", get("/users/{id}", "/users/"+id, map[string]string{"minVersion": "12"})},
		{"consistent=true", get("/users/{id}", "/users/"+id, map[string]string{"consistent": "true"})},
		{"state", get("/users/{id}/state", "/users/"+id+"/state", nil)},
		{"state at v11", get("/users/{id}/state", "/users/"+id+"/state", map[string]string{"version": "11"})},
		{"consistency", get("/users/{id}/consistency", "/users/"+id+"/consistency", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.reset()
			resp, err := qs.Handle(ctx, tc.req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, %v: %s", resp.StatusCode, err, resp.Body)
			}
			made, queried := calls.snapshot()
			// One Query from the stream's end, of at most the snapshot
			// interval + 1 items, holds the event that carries the snapshot
			// (v10) and those after it: never v1..v6; the snapshots table
			// is not read.
			for _, c := range made {
				if c == "GetItem "+tables.Snapshots {
					t.Errorf("the snapshots table was read; calls: %v", made)
				}
			}
			queries := 0
			for _, c := range made {
				if c == "Query "+tables.Events {
					queries++
				}
			}
			if n := queried[tables.Events]; queries != 1 || n < 2 || n > 6 {
				t.Errorf("%d Queries read %d events from the event store, want one Query of v10 (the snapshot) and what follows, at most 6; calls: %v", queries, n, made)
			}
		})
	}
}
