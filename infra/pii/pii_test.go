package pii_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/pii"
)

type fixture struct {
	ddb    *dynamodb.Client
	tables dynamo.Tables
	keys   *pii.Keys
	cipher *pii.Cipher
	store  *dynamo.Store
	svc    *es.Service[user.State, user.Command]
}

// newFixture makes a KMS key on moto, a keys table and the event store's
// tables on DynamoDB Local, and a User service over a store that seals.
func newFixture(t testing.TB, snapshotEvery int) *fixture {
	t.Helper()
	cfg := awstest.Config(t)
	ctx := t.Context()
	ddb := dynamodb.NewFromConfig(cfg)
	km := kms.NewFromConfig(cfg)
	key, err := km.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("pii test")})
	if err != nil {
		t.Fatalf("create KMS key on moto: %v", err)
	}
	f := &fixture{ddb: ddb, tables: dynamo.Tables{
		Events: awstest.TableName("events"), Guards: awstest.TableName("guards"), Snapshots: awstest.TableName("snapshots"),
	}}
	keysTable := awstest.TableName("keys")
	if err := dynamo.CreateTables(ctx, ddb, f.tables); err != nil {
		t.Fatal(err)
	}
	if err := pii.CreateTable(ctx, ddb, keysTable); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		_ = dynamo.DeleteTables(ctx, ddb, f.tables)
		_, _ = ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(keysTable)})
	})
	f.keys, err = pii.NewKeys(km, ddb, pii.Config{KMSKeyID: aws.ToString(key.KeyMetadata.KeyId), Table: keysTable})
	if err != nil {
		t.Fatal(err)
	}
	reg := user.NewRegistry()
	f.cipher = pii.NewCipher(f.keys, reg)
	f.store = dynamo.New(ddb, f.tables, dynamo.WithCipher(f.cipher))
	f.svc = es.NewService(user.Decider(), reg, f.store, es.Options{SnapshotEvery: snapshotEvery})
	return f
}

func (f *fixture) exec(t *testing.T, id string, cmd user.Command) error {
	t.Helper()
	_, err := f.svc.Execute(t.Context(), id, cmd, es.ExecOptions{Metadata: es.Metadata{Actor: "admin"}})
	return err
}

// raw is every item of the store's and the keys' tables, as DynamoDB holds them.
func (f *fixture) raw(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{f.tables.Events, f.tables.Guards, f.tables.Snapshots} {
		p := dynamodb.NewScanPaginator(f.ddb, &dynamodb.ScanInput{TableName: aws.String(table)})
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, item := range out.Items {
				fmt.Fprintf(&b, "%v\n", dump(item))
			}
		}
	}
	return b.String()
}

func dump(item map[string]types.AttributeValue) map[string]any {
	out := map[string]any{}
	for k, v := range item {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out[k] = v.Value
		case *types.AttributeValueMemberN:
			out[k] = v.Value
		case *types.AttributeValueMemberB:
			out[k] = v.Value
		case *types.AttributeValueMemberM:
			out[k] = dump(v.Value)
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// leaks returns the forms of secret found in raw: as is, lower-cased, base64.
func leaks(raw string, secrets ...string) []string {
	var found []string
	for _, s := range secrets {
		for _, form := range []string{s, strings.ToLower(s), base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))} {
			if strings.Contains(raw, form) {
				found = append(found, form)
			}
		}
	}
	return found
}

// TestSealedAtRestForgottenEverywhere: the stored items hold no name or
// address, the service reads them back as decided, and after a forget
// every personal field reads as null while the audit trail stays; the
// address is free at once.
func TestSealedAtRestForgottenEverywhere(t *testing.T) {
	f := newFixture(t, 2) // a snapshot every 2 events: snapshots are sealed too
	id := uuid.NewString()
	must(t, f.exec(t, id, user.Create{Name: "Zebulon Quartermaine", Email: "zebulon@forget.example"}))
	must(t, f.exec(t, id, user.Rename{Name: "Zeb Quartermaine"}))
	must(t, f.exec(t, id, user.ChangeEmail{Email: "zq@forget.example"}))
	must(t, f.exec(t, id, user.Suspend{Reason: "fraud check"}))

	secrets := []string{"Zebulon Quartermaine", "Zeb Quartermaine", "zebulon@forget.example", "zq@forget.example", "Quartermaine", "forget.example"}
	if found := leaks(f.raw(t), secrets...); len(found) > 0 {
		t.Fatalf("the stored items hold %q", found)
	}
	agg, err := f.svc.Load(t.Context(), id)
	must(t, err)
	if agg.State.Name != "Zeb Quartermaine" || agg.State.Email != "zq@forget.example" {
		t.Fatalf("state read back = %+v", agg.State)
	}
	recs, err := f.store.Load(t.Context(), id, 1, 0)
	must(t, err)
	if !strings.Contains(string(recs[0].Data), "Zebulon Quartermaine") {
		t.Fatalf("history reads %s", recs[0].Data)
	}
	// The address is taken while the user lives.
	other := uuid.NewString()
	if err := f.exec(t, other, user.Create{Name: "Other", Email: "zq@forget.example"}); !errors.Is(err, es.ErrDuplicate) {
		t.Fatalf("a taken address: %v, want a duplicate", err)
	}

	must(t, f.exec(t, id, user.Forget{Reason: "art. 17"}))
	must(t, f.keys.Forget(t.Context(), id, agg.UpdatedAt))

	recs, err = f.store.Load(t.Context(), id, 1, 0)
	must(t, err)
	if len(recs) != 6 {
		t.Fatalf("%d events after the forget, want 6", len(recs))
	}
	for _, r := range recs {
		var data map[string]any
		must(t, json.Unmarshal(r.Data, &data))
		for _, field := range f.svc.Registry().PersonalFields(r.Type) {
			if v, ok := data[field]; ok && v != nil {
				t.Errorf("%s v%d: %s = %v after the forget", r.Type, r.Version, field, v)
			}
		}
		if r.Metadata.Actor != "admin" || r.ID == "" {
			t.Errorf("%s v%d lost its audit trail: %+v", r.Type, r.Version, r.Metadata)
		}
	}
	// A fresh service (no cached state) folds the forgotten user from the
	// snapshot and events.
	fresh := es.NewService(user.Decider(), user.NewRegistry(), f.store, es.Options{SnapshotEvery: 2})
	agg, err = fresh.Load(t.Context(), id)
	must(t, err)
	if !agg.State.Forgotten || agg.State.Name != "" || agg.State.Email != "" {
		t.Fatalf("forgotten state = %+v", agg.State)
	}
	past, err := fresh.LoadAt(t.Context(), id, 2)
	must(t, err)
	if past.State.Name != "" || past.State.Email != "" {
		t.Fatalf("past state after the forget = %+v", past.State)
	}
	if found := leaks(f.raw(t), secrets...); len(found) > 0 {
		t.Fatalf("the stored items hold %q after the forget", found)
	}
	// The address is free again at once; the forgotten user accepts nothing.
	must(t, f.exec(t, other, user.Create{Name: "Other", Email: "zq@forget.example"}))
	if err := f.exec(t, id, user.Rename{Name: "Back"}); !errors.Is(err, user.ErrForgotten) {
		t.Fatalf("rename a forgotten user: %v", err)
	}
	if err := f.exec(t, id, user.Forget{Reason: "again"}); !errors.Is(err, user.ErrForgotten) {
		t.Fatalf("forget twice: %v", err)
	}
}

// TestSealedValueBoundToItsPlace: a sealed value copied to another
// subject's event does not open: the associated data names the subject.
func TestSealedValueBoundToItsPlace(t *testing.T) {
	f := newFixture(t, 0)
	a, b := uuid.NewString(), uuid.NewString()
	must(t, f.exec(t, a, user.Create{Name: "Alice", Email: "alice@bound.example"}))
	must(t, f.exec(t, b, user.Create{Name: "Bob", Email: "bob@bound.example"}))
	ra := rawItem(t, f, a, 1)
	rb := rawItem(t, f, b, 1)
	rb[0].Data = ra[0].Data // Alice's sealed fields under Bob's id
	if err := f.cipher.Open(t.Context(), rb); err == nil {
		t.Fatalf("a sealed value moved to another subject opened: %s", rb[0].Data)
	}
}

// TestPlainEventsBeforeEncryption: an event written in clear before the
// store sealed (no key for its subject) loads as it is, and reads as null
// once its subject is forgotten.
func TestPlainEventsBeforeEncryption(t *testing.T) {
	f := newFixture(t, 0)
	id := uuid.NewString()
	plain := es.Record{ID: uuid.NewString(), AggregateID: id, AggregateType: "user", Version: 1, Type: "user.created.v1",
		SchemaVersion: 1, Data: json.RawMessage(`{"name":"Legacy Lou","email":"lou@legacy.example"}`)}
	if _, err := f.ddb.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(f.tables.Events), Item: dynamo.ItemFromRecord(plain)}); err != nil {
		t.Fatal(err)
	}
	agg, err := f.svc.Load(t.Context(), id)
	must(t, err)
	if agg.State.Name != "Legacy Lou" {
		t.Fatalf("plain event read as %+v", agg.State)
	}
	// A later event of that subject is sealed with a new key; both read.
	must(t, f.exec(t, id, user.Rename{Name: "Lou"}))
	recs, err := f.store.Load(t.Context(), id, 1, 0)
	must(t, err)
	if !strings.Contains(string(recs[1].Data), `"Lou"`) || !strings.Contains(string(recs[0].Data), "Legacy Lou") {
		t.Fatalf("read back %s, %s", recs[0].Data, recs[1].Data)
	}
	must(t, f.keys.Forget(t.Context(), id, agg.UpdatedAt))
	recs, err = f.store.Load(t.Context(), id, 1, 0)
	must(t, err)
	for _, r := range recs {
		if strings.Contains(string(r.Data), "Lou") {
			t.Fatalf("forgotten plain event reads %s", r.Data)
		}
	}
}

// TestKMSCalls: a cold container unwraps a subject's key once, then
// serves it from its cache; creating a subject costs one GenerateDataKey.
func TestKMSCalls(t *testing.T) {
	f := newFixture(t, 0)
	id := uuid.NewString()
	must(t, f.exec(t, id, user.Create{Name: "Carla", Email: "carla@calls.example"}))
	gen, dec := f.keys.Calls.Snapshot()
	// The create: its data key, and the guard secret (once per container).
	if gen != 2 || dec != 0 {
		t.Fatalf("create: %d GenerateDataKey, %d Decrypt; want 2, 0", gen, dec)
	}
	must(t, f.exec(t, id, user.Rename{Name: "Carla B"}))
	if g, d := f.keys.Calls.Snapshot(); g != gen || d != dec {
		t.Fatalf("a warm command made KMS calls: %d, %d", g-gen, d-dec)
	}
	// A cold container: a new Keys over the same table.
	cold, err := pii.NewKeys(kms.NewFromConfig(awstest.Config(t)), f.ddb, pii.Config{KMSKeyID: keyID(t, f), Table: tableOf(t, f)})
	must(t, err)
	reg := user.NewRegistry()
	c := pii.NewCipher(cold, reg)
	svc := es.NewService(user.Decider(), reg, dynamo.New(f.ddb, f.tables, dynamo.WithCipher(c)), es.Options{})
	_, err = svc.Execute(t.Context(), id, user.ChangeEmail{Email: "cb@calls.example"}, es.ExecOptions{})
	must(t, err)
	if g, d := cold.Calls.Snapshot(); g != 0 || d != 2 {
		t.Fatalf("a cold command: %d GenerateDataKey, %d Decrypt; want 0 and 2 (the subject's key, the guard secret)", g, d)
	}
	_, err = svc.Execute(t.Context(), id, user.Rename{Name: "C"}, es.ExecOptions{})
	must(t, err)
	if g, d := cold.Calls.Snapshot(); g != 0 || d != 2 {
		t.Fatalf("then warm: %d GenerateDataKey, %d Decrypt in all", g, d)
	}
	t.Logf("KMS calls per command: create %d (1 with the guard secret cached), cold 2 Decrypt (1 with the guard secret cached), warm 0", gen)
}

func keyID(t *testing.T, f *fixture) string   { t.Helper(); return f.keys.Config().KMSKeyID }
func tableOf(t *testing.T, f *fixture) string { t.Helper(); return f.keys.Config().Table }

func rawItem(t *testing.T, f *fixture, id string, v int64) []es.Record {
	t.Helper()
	out, err := f.ddb.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(f.tables.Events), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: id}, "sk": &types.AttributeValueMemberN{Value: fmt.Sprint(v)}}})
	must(t, err)
	r, err := dynamo.RecordFromItem(out.Item)
	must(t, err)
	return []es.Record{r}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
