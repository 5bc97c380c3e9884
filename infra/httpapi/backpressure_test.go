package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/es/memory"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/httpapi"
)

// refusingStore is an event store whose appends fail with err once the
// user exists: a partition that takes no more writes.
type refusingStore struct {
	es.Store
	err     error
	refused int
}

func (s *refusingStore) Append(ctx context.Context, req es.AppendRequest) error {
	if req.ExpectedVersion > 0 {
		s.refused++
		return s.err
	}
	return s.Store.Append(ctx, req)
}

// opError is err as the SDK returns it from DynamoDB after its retries.
func opError(op string, err error) error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: op,
		Err: fmt.Errorf("exceeded maximum number of attempts, 3, https response error StatusCode: 400, RequestID: x, %w", err)}
}

// TestHotAggregateBackpressure: a user written beyond what its partition
// takes is answered at once with a problem+json the client can act on,
// never a 500 or a timeout: DynamoDB's throttling (after the SDK's own
// retries) is a 503 with Retry-After, and a user whose concurrent writers
// keep winning past the retry budget a 409 with Retry-After. So is a store
// that fails on its side (a 5xx), cannot be reached or does not answer in
// time: a 503 with Retry-After (type unavailable), never a 500.
func TestHotAggregateBackpressure(t *testing.T) {
	throttledTx := &types.TransactionCanceledException{Message: aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [ThrottlingError, None]"),
		CancellationReasons: []types.CancellationReason{{Code: aws.String("ThrottlingError")}, {Code: aws.String("None")}}}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		typ    string
	}{
		{"provisioned throughput exceeded", opError("PutItem", &types.ProvisionedThroughputExceededException{Message: aws.String("throughput exceeded")}), http.StatusServiceUnavailable, "throttled"},
		{"throttling", opError("PutItem", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "rate exceeded"}), http.StatusServiceUnavailable, "throttled"},
		{"request limit", opError("TransactWriteItems", &types.RequestLimitExceeded{Message: aws.String("limit")}), http.StatusServiceUnavailable, "throttled"},
		{"throttled transaction", opError("TransactWriteItems", throttledTx), http.StatusServiceUnavailable, "throttled"},
		{"store failed on its side", opError("PutItem", &types.InternalServerError{Message: aws.String("internal server error")}), http.StatusServiceUnavailable, "unavailable"},
		{"store unreachable", opError("PutItem", &smithyhttp.RequestSendError{Err: errors.New("read: connection reset by peer")}), http.StatusServiceUnavailable, "unavailable"},
		{"store past the deadline", opError("PutItem", fmt.Errorf("request canceled: %w", context.DeadlineExceeded)), http.StatusServiceUnavailable, "unavailable"},
		{"conflicts past the budget", fmt.Errorf("append: %w", es.ErrConflict), http.StatusConflict, "conflict"},
		{"busy past the budget", fmt.Errorf("append: %w", es.ErrBusy), http.StatusConflict, "conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &refusingStore{Store: memory.New(), err: tc.err}
			svc := user.NewService(store, es.Options{MaxAttempts: 4})
			cmds := httpapi.NewCommands(svc, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			sub := newSub("hot")
			created := do(t, cmds, request(t, "commands/create-user.json", as(sub)))
			if created.StatusCode != http.StatusCreated {
				t.Fatalf("create: %d %s", created.StatusCode, created.Body)
			}
			var w struct {
				ID string `json:"id"`
			}
			mustJSON(t, created.Body, &w)
			resp := do(t, cmds, request(t, "commands/rename-user.json", as(sub), withID(w.ID)))
			p := wantProblem(t, resp, tc.status)
			if want := "urn:chronicle:problem:" + tc.typ; p.Type != want {
				t.Errorf("type %q, want %q", p.Type, want)
			}
			if s, err := strconv.Atoi(resp.Headers["Retry-After"]); err != nil || s < 1 {
				t.Errorf("Retry-After %q, want whole seconds", resp.Headers["Retry-After"])
			}
			if tc.status == http.StatusServiceUnavailable && store.refused != 1 {
				t.Errorf("a throttled append was sent %d times: the SDK has retried it already, the service must not", store.refused)
			}
		})
	}
}

func mustJSON(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
}
