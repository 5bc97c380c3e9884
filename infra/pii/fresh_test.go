package pii_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/pii"
)

// keyCalls records the DynamoDB operations a client makes on one table.
type keyCalls struct {
	table string
	mu    sync.Mutex
	ops   []string
}

func (c *keyCalls) client(t *testing.T) *dynamodb.Client {
	cfg := awstest.Config(t)
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("keyCalls",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				var table *string
				switch p := in.Parameters.(type) {
				case *dynamodb.GetItemInput:
					table = p.TableName
				case *dynamodb.PutItemInput:
					table = p.TableName
				}
				if aws.ToString(table) == c.table {
					c.mu.Lock()
					c.ops = append(c.ops, awsmw.GetOperationName(ctx))
					c.mu.Unlock()
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
	return dynamodb.NewFromConfig(cfg)
}

func (c *keyCalls) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

// TestFreshSubjectKeyOneCall: sealing the first event of a stream creates
// the subject's key without reading the keys table first (one PutItem,
// not a GetItem then a PutItem); a first event sealed again on a cold
// container, whose key is already stored (a retried create), gets that
// key, not a second one, and what it seals opens with it.
func TestFreshSubjectKeyOneCall(t *testing.T) {
	f := newFixture(t, 0)
	calls := &keyCalls{table: tableOf(t, f)}
	km := kms.NewFromConfig(awstest.Config(t))
	newCipher := func() (*pii.Keys, *pii.Cipher) {
		k, err := pii.NewKeys(km, calls.client(t), pii.Config{KMSKeyID: keyID(t, f), Table: tableOf(t, f)})
		must(t, err)
		return k, pii.NewCipher(k, user.NewRegistry())
	}
	reg := user.NewRegistry()
	first := func(id string) []es.Record {
		typ, schema, data, err := reg.Encode(user.Created{Name: "Fresh", Email: "fresh@calls.example"})
		must(t, err)
		return []es.Record{{ID: uuid.NewString(), AggregateID: id, AggregateType: user.AggregateType, Version: 1,
			Type: typ, SchemaVersion: schema, OccurredAt: time.Now(), Data: data}}
	}

	keys, c := newCipher()
	id := uuid.NewString()
	sealed, err := c.Seal(t.Context(), first(id))
	must(t, err)
	if ops := calls.take(); !slices.Equal(ops, []string{"PutItem"}) {
		t.Fatalf("sealing a new subject's first event: keys table calls %v, want [PutItem]", ops)
	}
	if g, d := keys.Calls.Snapshot(); g != 1 || d != 0 {
		t.Fatalf("new subject: %d GenerateDataKey, %d Decrypt; want 1, 0", g, d)
	}

	// A later event of a known subject reads its key (cold container).
	_, cold := newCipher()
	later := first(id)
	later[0].Version = 2
	_, err = cold.Seal(t.Context(), later)
	must(t, err)
	if ops := calls.take(); !slices.Equal(ops, []string{"GetItem"}) {
		t.Fatalf("sealing v2 on a cold container: keys table calls %v, want [GetItem]", ops)
	}

	// The first event again, on another cold container: the stored key wins.
	retryKeys, retry := newCipher()
	again, err := retry.Seal(t.Context(), first(id))
	must(t, err)
	if ops := calls.take(); !slices.Equal(ops, []string{"PutItem", "GetItem"}) {
		t.Fatalf("sealing v1 again on a cold container: keys table calls %v, want [PutItem GetItem]", ops)
	}
	if g, d := retryKeys.Calls.Snapshot(); g != 1 || d != 1 {
		t.Fatalf("v1 again: %d GenerateDataKey, %d Decrypt; want 1 (not kept), 1", g, d)
	}
	for _, recs := range [][]es.Record{sealed, again} {
		opened := slices.Clone(recs)
		must(t, cold.Open(t.Context(), opened))
		var e user.Created
		must(t, json.Unmarshal(opened[0].Data, &e))
		if e.Name != "Fresh" {
			t.Fatalf("opened with the stored key: name %q, want Fresh", e.Name)
		}
	}
}
