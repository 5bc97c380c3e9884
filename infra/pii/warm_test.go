package pii_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/pii"
)

// inFlight counts the calls of one kind under way and the most seen at
// once. Each call is held for hold, so that calls sent together overlap
// whatever the machine's load.
type inFlight struct {
	hold      time.Duration
	mu        sync.Mutex
	now, most int
	calls     []string // the subjects, in call order
}

func (f *inFlight) enter(id string) {
	f.mu.Lock()
	f.now++
	f.most = max(f.most, f.now)
	f.calls = append(f.calls, id)
	f.mu.Unlock()
	time.Sleep(f.hold)
}

func (f *inFlight) leave() { f.mu.Lock(); f.now--; f.mu.Unlock() }

func (f *inFlight) take() (most int, calls []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	most, calls = f.most, f.calls
	f.most, f.calls = 0, nil
	return most, calls
}

// watchedKMS is moto's KMS, its Decrypts counted.
type watchedKMS struct {
	*kms.Client
	decrypts inFlight
}

func (k *watchedKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	k.decrypts.enter(in.EncryptionContext["subject"])
	defer k.decrypts.leave()
	return k.Client.Decrypt(ctx, in, opts...)
}

// watchedDDB is DynamoDB Local, its GetItems counted; beforeGet, when set,
// runs as a GetItem starts.
type watchedDDB struct {
	*dynamodb.Client
	gets      inFlight
	beforeGet func(id string)
}

func (d *watchedDDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	id := in.Key["pk"].(*types.AttributeValueMemberS).Value
	if d.beforeGet != nil {
		d.beforeGet(id)
	}
	d.gets.enter(id)
	defer d.gets.leave()
	return d.Client.GetItem(ctx, in, opts...)
}

// reader is a read-side container: a cold key cache over the fixture's
// keys table, as lambdafn builds the consumers' (ForgetOn included), its
// calls watched.
type reader struct {
	keys   *pii.Keys
	cipher *pii.Cipher
	kms    *watchedKMS
	ddb    *watchedDDB
}

func (f *fixture) reader(t *testing.T, hold time.Duration) *reader {
	t.Helper()
	cfg := awstest.Config(t)
	r := &reader{kms: &watchedKMS{Client: kms.NewFromConfig(cfg), decrypts: inFlight{hold: hold}},
		ddb: &watchedDDB{Client: dynamodb.NewFromConfig(cfg), gets: inFlight{hold: hold}}}
	keys, err := pii.NewKeys(r.kms, r.ddb, pii.Config{KMSKeyID: keyID(t, f), Table: tableOf(t, f)})
	must(t, err)
	reg := user.NewRegistry()
	r.keys = keys
	r.cipher = pii.NewCipher(keys, reg, pii.ForgetOn(reg.Erases))
	return r
}

// sealedCreates returns the sealed user.created records of n new subjects,
// as the relay delivers them, and an event without personal data after each.
func (f *fixture) sealedCreates(t *testing.T, n int) []es.Record {
	t.Helper()
	reg := user.NewRegistry()
	var recs []es.Record
	for range n {
		id := uuid.NewString()
		for v, e := range []es.Event{user.Created{Name: "Warm " + id[:4], Email: id[:8] + "@warm.example"}, user.Deleted{Reason: "test"}} {
			typ, schema, data, err := reg.Encode(e)
			must(t, err)
			recs = append(recs, es.Record{ID: uuid.NewString(), AggregateID: id, AggregateType: user.AggregateType,
				Version: int64(v + 1), Type: typ, SchemaVersion: schema, OccurredAt: time.Now(), Data: data})
		}
	}
	sealed, err := f.cipher.Seal(t.Context(), recs)
	must(t, err)
	return sealed
}

// opened is recs opened by c, one record at a time as the consumers open
// them, each record's outcome: its data, or its error.
func opened(ctx context.Context, c *pii.Cipher, recs []es.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		one := []es.Record{r}
		if err := c.Open(ctx, one); err != nil {
			out[i] = "error: " + err.Error()
			continue
		}
		out[i] = string(one[0].Data)
	}
	return out
}

// TestWarmUnwrapsABatchConcurrently: warming a batch of 20 new subjects
// reads their keys WarmConcurrency at a time (one GetItem and one Decrypt
// each, none for the events without personal data), after which opening
// the batch makes no call; what it opens is what a container without Warm
// opens.
func TestWarmUnwrapsABatchConcurrently(t *testing.T) {
	f := newFixture(t, 0)
	recs := f.sealedCreates(t, 20)
	r := f.reader(t, 30*time.Millisecond)

	start := time.Now()
	must(t, r.cipher.Warm(t.Context(), recs))
	took := time.Since(start)
	mostGets, gets := r.ddb.gets.take()
	mostDecrypts, decrypts := r.kms.decrypts.take()
	if len(gets) != 20 || len(decrypts) != 20 {
		t.Fatalf("warm: %d GetItem, %d Decrypt; want 20 each (one per subject)", len(gets), len(decrypts))
	}
	if mostGets != pii.WarmConcurrency || mostDecrypts != pii.WarmConcurrency {
		t.Fatalf("warm: at most %d GetItem and %d Decrypt at once; want %d", mostGets, mostDecrypts, pii.WarmConcurrency)
	}

	got := opened(t.Context(), r.cipher, recs)
	if _, gets := r.ddb.gets.take(); len(gets) > 0 {
		t.Fatalf("opening a warmed batch read the keys of %v again", gets)
	}
	if _, decrypts := r.kms.decrypts.take(); len(decrypts) > 0 {
		t.Fatalf("opening a warmed batch unwrapped %v again", decrypts)
	}

	cold := f.reader(t, 0)
	want := opened(t.Context(), cold.cipher, recs)
	if !slices.Equal(got, want) {
		t.Fatalf("opened after Warm:\n%q\nwithout:\n%q", got, want)
	}
	if !strings.Contains(got[0], "@warm.example") {
		t.Fatalf("the first record did not open: %s", got[0])
	}
	t.Logf("20 keys warmed in %s, each call held 30 ms", took.Round(time.Millisecond))
}

// TestWarmKeepsForgottenSubjectsForgotten: a subject forgotten in the keys
// table, or that this container forgets while Warm reads its key, opens as
// null after Warm; a batch with a forget in it opens as it does without
// Warm.
func TestWarmKeepsForgottenSubjectsForgotten(t *testing.T) {
	f := newFixture(t, 0)
	recs := f.sealedCreates(t, 3)
	stored, inBatch, racing := recs[0].AggregateID, recs[2].AggregateID, recs[4].AggregateID
	must(t, f.keys.Forget(t.Context(), stored, time.Now()))
	reg := user.NewRegistry()
	forget := func(id string) es.Record {
		typ, schema, data, err := reg.Encode(user.Forgotten{Reason: "art. 17"})
		must(t, err)
		return es.Record{ID: uuid.NewString(), AggregateID: id, AggregateType: user.AggregateType, Version: 3,
			Type: typ, SchemaVersion: schema, OccurredAt: time.Now(), Data: data}
	}
	batch := append(slices.Clone(recs), forget(inBatch))

	r := f.reader(t, 0)
	// While Warm reads racing's key, another batch of this container reads
	// racing's forget.
	r.ddb.beforeGet = func(id string) {
		if id == racing {
			must(t, r.cipher.Open(t.Context(), []es.Record{forget(racing)}))
		}
	}
	must(t, r.cipher.Warm(t.Context(), batch))
	r.ddb.beforeGet = nil
	got := opened(t.Context(), r.cipher, batch)

	cold := f.reader(t, 0)
	must(t, cold.cipher.Open(t.Context(), []es.Record{forget(racing)})) // as r did, without Warm
	want := opened(t.Context(), cold.cipher, batch)
	if !slices.Equal(got, want) {
		t.Fatalf("opened after Warm:\n%q\nwithout:\n%q", got, want)
	}
	// inBatch's creation opens before its forget, with Warm as without.
	for _, i := range []int{0, 4} {
		id := batch[i].AggregateID
		var e user.Created
		must(t, json.Unmarshal([]byte(got[i]), &e))
		if e.Email != "" || e.Name != "" {
			t.Errorf("forgotten subject %s opened as %+v", id, e)
		}
	}
}

// TestWarmErrorStaysWithItsSubject: a subject whose key cannot be unwrapped
// makes Warm return its error, and only its records fail to open, with
// the error they get without Warm; the others open from the cache.
func TestWarmErrorStaysWithItsSubject(t *testing.T) {
	f := newFixture(t, 0)
	recs := f.sealedCreates(t, 4)
	broken := recs[2].AggregateID
	_, err := f.ddb.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(tableOf(t, f)), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: broken}, "wrapped": &types.AttributeValueMemberB{Value: []byte("not a wrapped key")}}})
	must(t, err)

	r := f.reader(t, 0)
	err = r.cipher.Warm(t.Context(), recs)
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Fatalf("warm: %v; want the error of %s", err, broken)
	}
	r.ddb.gets.take()
	got := opened(t.Context(), r.cipher, recs)
	if _, gets := r.ddb.gets.take(); !slices.Equal(gets, []string{broken}) {
		t.Errorf("after Warm, opening read the keys of %v; want only %s's, read again", gets, broken)
	}
	want := opened(t.Context(), f.reader(t, 0).cipher, recs)
	for i := range recs {
		failed := strings.HasPrefix(got[i], "error:")
		if failed != (recs[i].AggregateID == broken && recs[i].Version == 1) {
			t.Errorf("record %d of %s: %s", i, recs[i].AggregateID, got[i])
		}
		if strings.Split(got[i], ": operation error")[0] != strings.Split(want[i], ": operation error")[0] {
			t.Errorf("record %d opened after Warm as %s, without as %s", i, got[i], want[i])
		}
	}
}
