package pii_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/domain/user/usertest"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/faults"
	"github.com/chronicle-go/chronicle/infra/pii"
)

// opCounter counts the DynamoDB operations a client sends, by name, with
// the tables of each transaction's items.
type opCounter struct {
	mu  sync.Mutex
	ops []string
}

func (c *opCounter) apiOption(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("opCounter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.ops = append(c.ops, awsmw.GetOperationName(ctx))
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

func (c *opCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

// box is one container of the commands function: its own key cache, its
// own state cache, over the fixture's tables.
type box struct {
	keys   *pii.Keys
	cipher *pii.Cipher
	store  *dynamo.Store
	svc    *es.Service[user.State, user.Command]
	ops    *opCounter
}

// newBox makes a cold container; cfg is its AWS config for DynamoDB
// (nil: the emulators' plain one); oldPath hides the cipher's SealAppend
// from the store, as before the key item went into the create's
// transaction.
func newBox(t testing.TB, f *fixture, cfg *aws.Config, oldPath bool) *box {
	t.Helper()
	return newBoxKMS(t, f, cfg, oldPath, kms.NewFromConfig(awstest.Config(t)))
}

// newBoxKMS is newBox with its KMS client.
func newBoxKMS(t testing.TB, f *fixture, cfg *aws.Config, oldPath bool, km *kms.Client) *box {
	t.Helper()
	c := awstest.Config(t)
	if cfg != nil {
		c = *cfg
	}
	b := &box{ops: &opCounter{}}
	c.APIOptions = append(slices.Clone(c.APIOptions), b.ops.apiOption)
	ddb := dynamodb.NewFromConfig(c)
	var err error
	b.keys, err = pii.NewKeys(km, ddb, f.keys.Config())
	if err != nil {
		t.Fatal(err)
	}
	reg := user.NewRegistry()
	b.cipher = pii.NewCipher(b.keys, reg, pii.ForgetOn(reg.Erases))
	var sc dynamo.Cipher = b.cipher
	if oldPath {
		sc = sealOnly{b.cipher}
	}
	b.store = dynamo.New(ddb, f.tables, dynamo.WithCipher(sc))
	b.svc = es.NewService(user.Decider(), reg, b.store, es.Options{CacheSize: 64})
	return b
}

// sealOnly is a cipher without SealAppend (dynamo.KeyPutter): the store
// then stores a new subject's key with a PutItem of its own before the
// append, as it did before.
type sealOnly struct{ dynamo.Cipher }

// create runs a create as the commands function does (a new id, decided
// without reading), with an idempotency key when idem is not "".
func (b *box) create(ctx context.Context, id, email, idem string) (es.Result[user.State], error) {
	opts := es.ExecOptions{Absent: true, Metadata: es.Metadata{Actor: "admin"}}
	if idem != "" {
		opts.Idempotency = &es.IdempotencyKey{Key: idem, RequestHash: "create " + email}
	}
	return b.svc.Execute(ctx, id, user.Create{Name: "Key Tx", Email: email}, opts)
}

// name reads the user id in a new cold container: its personal data opens
// with the stored key.
func (f *fixture) name(t *testing.T, id string) string {
	t.Helper()
	agg, err := newBox(t, f, nil, false).svc.Load(t.Context(), id)
	must(t, err)
	return agg.State.Name
}

// TestCreateOneDynamoDBCall: a create stores the user's data key in its
// own transaction: one TransactWriteItems and one GenerateDataKey, nothing
// else (the guard secret cached); in a cold container, the guard secret's
// read besides. The key stored is the one that sealed the events. Before,
// the key was a PutItem of its own ahead of the transaction (the old path,
// checked here too, so that the count means something).
func TestCreateOneDynamoDBCall(t *testing.T) {
	f := newFixture(t, 0)
	ctx := t.Context()
	_, err := f.cipher.GuardKey(ctx, user.EmailKey("first@keytx.example")) // the stack's guard secret, made once
	must(t, err)
	for _, c := range []struct {
		name    string
		oldPath bool
		warm    []string // DynamoDB calls of a create, the guard secret cached
		cold    []string // in a cold container
	}{
		{"key in the transaction", false, []string{"TransactWriteItems"}, []string{"GetItem", "TransactWriteItems"}},
		{"before: key put first", true, []string{"PutItem", "TransactWriteItems"}, []string{"GetItem", "PutItem", "TransactWriteItems"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBox(t, f, nil, c.oldPath)
			id := uuid.NewString()
			_, err := b.create(ctx, id, id[:8]+"@cold.keytx.example", "")
			must(t, err)
			if ops := b.ops.take(); !slices.Equal(ops, c.cold) {
				t.Errorf("cold create: DynamoDB calls %v, want %v", ops, c.cold)
			}
			if g, d := b.keys.Calls.Snapshot(); g != 1 || d != 1 {
				t.Errorf("cold create: %d GenerateDataKey, %d Decrypt; want 1, 1 (the user's key; the guard secret)", g, d)
			}
			id = uuid.NewString()
			_, err = b.create(ctx, id, id[:8]+"@warm.keytx.example", "idem-"+id)
			must(t, err)
			if ops := b.ops.take(); !slices.Equal(ops, c.warm) {
				t.Errorf("create: DynamoDB calls %v, want %v", ops, c.warm)
			}
			if g, d := b.keys.Calls.Snapshot(); g != 2 || d != 1 {
				t.Errorf("create: %d GenerateDataKey, %d Decrypt in all; want 2, 1", g, d)
			}
			if _, ok := keyItem(t, f, id)["wrapped"]; !ok {
				t.Fatalf("no key stored for %s: %v", id, keyItem(t, f, id))
			}
			if got := f.name(t, id); got != "Key Tx" {
				t.Errorf("read in a cold container: name %q, want Key Tx", got)
			}
			// The create's key is cached: the next command makes no KMS call
			// and one write.
			_, err = b.svc.Execute(ctx, id, user.Rename{Name: "Key Tx 2"}, es.ExecOptions{})
			must(t, err)
			if ops := b.ops.take(); !slices.Equal(ops, []string{"PutItem"}) {
				t.Errorf("warm rename after the create: DynamoDB calls %v, want [PutItem]", ops)
			}
			if g, d := b.keys.Calls.Snapshot(); g != 2 || d != 1 {
				t.Errorf("warm rename made KMS calls: %d GenerateDataKey, %d Decrypt in all", g, d)
			}
		})
	}
}

// TestCreateKeyInTransactionCases: what the key item in the create's
// transaction must keep right.
func TestCreateKeyInTransactionCases(t *testing.T) {
	f := newFixture(t, 0)
	ctx := t.Context()

	t.Run("a create that loses the race for its email leaves no key", func(t *testing.T) {
		winner, loser := newBox(t, f, nil, false), newBox(t, f, nil, false)
		email := uuid.NewString()[:8] + "@race.keytx.example"
		w, l := uuid.NewString(), uuid.NewString()
		_, err := winner.create(ctx, w, email, "")
		must(t, err)
		_, err = loser.create(ctx, l, email, "")
		if !errors.Is(err, es.ErrDuplicate) {
			t.Fatalf("second create of %s: %v, want ErrDuplicate", email, err)
		}
		if item := keyItem(t, f, l); item != nil {
			t.Errorf("the loser's key item was left: %v", item)
		}
		if got := f.name(t, w); got != "Key Tx" {
			t.Errorf("winner: name %q", got)
		}
	})

	t.Run("a create retried with its idempotency key", func(t *testing.T) {
		// The commands function makes up a new id per request: the retry
		// is another aggregate, told it is a repeat by the idempotency
		// record, and must leave no key of its own.
		first, retry := newBox(t, f, nil, false), newBox(t, f, nil, false)
		a, b := uuid.NewString(), uuid.NewString()
		email := a[:8] + "@idem.keytx.example"
		res1, err := first.create(ctx, a, email, "idem-"+a)
		must(t, err)
		res2, err := retry.create(ctx, b, email, "idem-"+a)
		must(t, err)
		if !res2.Replayed || res2.ID != res1.ID || res2.Version != res1.Version {
			t.Errorf("the retry answered %s v%d, want the first's %s v%d", res2.ID, res2.Version, res1.ID, res1.Version)
		}
		if item := keyItem(t, f, b); item != nil {
			t.Errorf("the retry left a key item: %v", item)
		}
	})

	t.Run("a forget is never overwritten", func(t *testing.T) {
		id := uuid.NewString()
		must(t, f.keys.Forget(ctx, id, time.Now()))
		// A cold container knows nothing of it: its transaction's key item
		// finds the tombstone.
		b := newBox(t, f, nil, false)
		_, err := b.create(ctx, id, id[:8]+"@forgotten.keytx.example", "")
		if !errors.Is(err, pii.ErrForgotten) {
			t.Fatalf("create of a forgotten subject: %v, want ErrForgotten", err)
		}
		item := keyItem(t, f, id)
		if _, ok := item["forgottenAt"]; !ok || item["wrapped"] != nil {
			t.Errorf("the tombstone was overwritten: %v", item)
		}
		if recs, err := f.store.Load(ctx, id, 1, 0); err != nil || len(recs) != 0 {
			t.Errorf("events written for a forgotten subject: %d, %v", len(recs), err)
		}
	})

	t.Run("a key stored before the events is used", func(t *testing.T) {
		// An earlier attempt stored the subject's key and wrote no event
		// (the old path, cut between its two calls).
		id := uuid.NewString()
		old := newBox(t, f, nil, true)
		_, err := old.cipher.Seal(ctx, []es.Record{createdRecord(t, id)})
		must(t, err)
		stored := keyItem(t, f, id)["wrapped"]

		b := newBox(t, f, nil, false)
		b.ops.take()
		_, err = b.create(ctx, id, id[:8]+"@stored.keytx.example", "")
		must(t, err)
		if got := keyItem(t, f, id)["wrapped"]; !equalB(got, stored) {
			t.Errorf("the stored key was replaced")
		}
		if ops := b.ops.take(); !slices.Equal(ops, []string{"GetItem", "TransactWriteItems", "TransactWriteItems"}) {
			t.Errorf("DynamoDB calls %v, want [GetItem TransactWriteItems TransactWriteItems] (guard secret, cancelled on the key, again with it)", ops)
		}
		if got := f.name(t, id); got != "Key Tx" {
			t.Errorf("read in a cold container: name %q", got)
		}
	})
}

// TestCreateKeyLostReplies: every write's reply is lost until the SDK's
// last attempt (faults.LostReplies): the create's transaction, key item
// included, is sent again after it applied, and the create must still
// succeed once, with the key that sealed its events; the race for an
// email and a forget still answer as without the fault.
func TestCreateKeyLostReplies(t *testing.T) {
	f := newFixture(t, 0)
	ctx := t.Context()
	in := faults.New(1)
	cfg := faults.WithLostReplies(awstest.Config(t), in, 1)
	b := newBox(t, f, &cfg, false)

	ids := make([]string, 3)
	for i := range ids {
		ids[i] = uuid.NewString()
		_, err := b.create(ctx, ids[i], ids[i][:8]+"@lost.keytx.example", "idem-"+ids[i])
		if err != nil {
			t.Fatalf("create %d after lost replies: %v", i, err)
		}
		recs, err := f.store.Load(ctx, ids[i], 1, 0)
		must(t, err)
		if len(recs) != 1 {
			t.Fatalf("%s holds %d events, want 1", ids[i], len(recs))
		}
		if got := f.name(t, ids[i]); got != "Key Tx" {
			t.Errorf("read in a cold container: name %q", got)
		}
	}
	// The same email again, from another container that loses its replies.
	other := newBox(t, f, &cfg, false)
	lost := uuid.NewString()
	if _, err := other.create(ctx, lost, ids[0][:8]+"@lost.keytx.example", ""); !errors.Is(err, es.ErrDuplicate) {
		t.Errorf("create of a taken email after lost replies: %v, want ErrDuplicate", err)
	}
	if item := keyItem(t, f, lost); item != nil {
		t.Errorf("the loser's key item was left: %v", item)
	}
	forgotten := uuid.NewString()
	must(t, f.keys.Forget(ctx, forgotten, time.Now()))
	if _, err := other.create(ctx, forgotten, forgotten[:8]+"@lost.keytx.example", ""); !errors.Is(err, pii.ErrForgotten) {
		t.Errorf("create of a forgotten subject after lost replies: %v, want ErrForgotten", err)
	}
	counts := in.Counts()
	t.Logf("faults: %s", in)
	if counts["lostreply.DynamoDB.TransactWriteItems"] == 0 {
		t.Errorf("no reply to TransactWriteItems was lost: %v", slices.Sorted(maps.Keys(counts)))
	}
}

func createdRecord(t *testing.T, id string) es.Record {
	t.Helper()
	typ, schema, data, err := user.NewRegistry().Encode(user.Created{Name: "Key Tx", Email: id[:8] + "@stored.keytx.example"})
	must(t, err)
	return es.Record{ID: uuid.NewString(), AggregateID: id, AggregateType: user.AggregateType, Version: 1,
		Type: typ, SchemaVersion: schema, OccurredAt: time.Now(), Data: data}
}

func equalB(a, b types.AttributeValue) bool {
	x, ok1 := a.(*types.AttributeValueMemberB)
	y, ok2 := b.(*types.AttributeValueMemberB)
	return ok1 && ok2 && strings.EqualFold(fmt.Sprintf("%x", x.Value), fmt.Sprintf("%x", y.Value))
}

// TestKeyPutCondition: the key item SealAppend hands to the transaction
// may be written again by whatever sends it again (its condition holds for
// its own write), never over another key or a tombstone, and a failed
// condition returns the item found.
func TestKeyPutCondition(t *testing.T) {
	f := newFixture(t, 0)
	ctx := t.Context()
	id := uuid.NewString()
	put := func(c *pii.Cipher) *types.Put {
		t.Helper()
		_, _, key, settle, err := c.SealAppend(ctx, []es.Record{createdRecord(t, id)}, nil)
		must(t, err)
		if key == nil || settle == nil {
			t.Fatal("SealAppend of a new subject's first event: no key item")
		}
		return key
	}
	send := func(p *types.Put) error {
		_, err := f.ddb.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{Put: p}}})
		return err
	}
	mine := put(newBox(t, f, nil, false).cipher)
	must(t, send(mine))
	if err := send(mine); err != nil { // a new request token: the condition is evaluated again
		t.Fatalf("the same key item sent again: %v", err)
	}
	var canceled *types.TransactionCanceledException
	err := send(put(newBox(t, f, nil, false).cipher))
	if !errors.As(err, &canceled) || canceled.CancellationReasons[0].Item["wrapped"] == nil {
		t.Fatalf("another key over a stored one: %v, want cancelled with the stored item", err)
	}
	must(t, f.keys.Forget(ctx, id, time.Now()))
	if err := send(mine); !errors.As(err, &canceled) {
		t.Fatalf("a key over a tombstone: %v, want cancelled", err)
	}
	if _, ok := keyItem(t, f, id)["forgottenAt"]; !ok {
		t.Fatal("the tombstone was overwritten")
	}
}

// TestUserScenariosSealed: the store's User scenarios where creates race
// for an email and emails are freed and claimed again, on a store that
// seals, so that every create there carries its key item.
func TestUserScenariosSealed(t *testing.T) {
	f := newFixture(t, 0)
	t.Run("RacingCreates", func(t *testing.T) { usertest.RacingCreates(t, f.store, 20) })
	t.Run("EmailLifecycle", func(t *testing.T) { usertest.EmailLifecycle(t, f.store) })
}
