// Package pii keeps the personal data of events encrypted with a data key
// of their subject, so that forgetting a subject is destroying one key
// (crypto-shredding): the event log is never rewritten, yet the personal
// fields of every copy of its events (the table, its stream, the queues,
// the dead-letter queues, the feed, backups) can no longer be read.
//
// Envelope encryption: each subject (aggregate) gets a 256-bit data key
// from KMS GenerateDataKey under the stack's key; the key is stored only
// wrapped, one item per subject in the keys table, and unwrapped with KMS
// Decrypt into a bounded per-container cache. Each personal field (the
// event types declare theirs: es.PersonalData) is sealed on its own with
// AES-256-GCM, its associated data binding the aggregate id, the event type
// and the field, so that a sealed value cannot be moved to another subject,
// type or field. A sealed value is the JSON string "pii1:" + base64(nonce
// || ciphertext); a plain string is an event written before encryption.
//
// Forget replaces the subject's key item with a tombstone. From then on
// every personal field of the subject reads as null, sealed or plain.
package pii

import (
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is the part of *kms.Client the keys use.
type KMS interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// DynamoDB is the part of *dynamodb.Client the keys use.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// ErrForgotten: the subject's key was destroyed; nothing personal of it can
// be written any more.
var ErrForgotten = errors.New("the subject is forgotten")

// Attributes of the keys table. A live key item: pk, wrapped, createdAt.
// A tombstone: pk, forgottenAt.
const (
	attrPK          = "pk"
	attrWrapped     = "wrapped"
	attrCreatedAt   = "createdAt"
	attrForgottenAt = "forgottenAt"

	// contextSubject is the KMS encryption context key that binds a
	// wrapped key to its subject (and shows in CloudTrail).
	contextSubject = "subject"
	// guardSubject is the keys-table item of the guard-key secret.
	guardSubject = "#guard-hmac"
)

// Defaults of Config.
const (
	DefaultCacheSize = 4096
	// DefaultCacheTTL bounds how long a container keeps using a key after
	// another container destroyed it: forgetting takes effect everywhere
	// within it.
	DefaultCacheTTL = time.Minute
)

// Config configures Keys.
type Config struct {
	KMSKeyID  string // the stack's key: id, ARN or alias
	Table     string // the keys table: pk (S)
	CacheSize int    // unwrapped keys kept per container (default DefaultCacheSize)
	CacheTTL  time.Duration
	Now       func() time.Time
}

// Keys hands out the data key of each subject. It is safe for concurrent use.
type Keys struct {
	kms KMS
	db  DynamoDB
	cfg Config

	mu    sync.Mutex
	order *list.List // of *entry, front: most recently used
	byID  map[string]*list.Element

	guardMu  sync.Mutex
	guardKey []byte

	// Calls counts the KMS calls made, for the benchmarks' figures.
	Calls Counter
}

// Counter counts KMS calls.
type Counter struct {
	mu                       sync.Mutex
	GenerateDataKey, Decrypt int
}

func (c *Counter) add(gen, dec int) {
	c.mu.Lock()
	c.GenerateDataKey += gen
	c.Decrypt += dec
	c.mu.Unlock()
}

// Snapshot returns the counts so far.
func (c *Counter) Snapshot() (generate, decrypt int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.GenerateDataKey, c.Decrypt
}

// state is what a subject's key item says.
type state int

const (
	stateNone      state = iota // no key: never sealed (events written before encryption)
	stateLive                   // a key
	stateForgotten              // a tombstone
)

type entry struct {
	id      string
	state   state
	aead    cipher.AEAD
	raw     []byte // the plain key: kept only for the guard secret
	expires time.Time
}

// NewKeys returns the keys of cfg.Table, wrapped under cfg.KMSKeyID.
func NewKeys(k KMS, db DynamoDB, cfg Config) (*Keys, error) {
	if cfg.KMSKeyID == "" || cfg.Table == "" {
		return nil, errors.New("pii: a KMS key and a keys table are required")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Keys{kms: k, db: db, cfg: cfg, order: list.New(), byID: map[string]*list.Element{}}, nil
}

// Config returns the configuration of k, defaults filled in.
func (k *Keys) Config() Config { return k.cfg }

// key returns what the keys table says of subject id, through the cache.
// With create, a subject without a key gets one.
func (k *Keys) key(ctx context.Context, id string, create bool) (entry, error) {
	return k.keyOf(ctx, id, create, false)
}

// keyOf is key; fresh says the subject is most likely new (its stream's
// first event is being sealed), so a key not cached is created without
// reading first: create's conditional put finds the stored key, if there
// is one after all (a retried create), and reads it then. A create then
// costs one DynamoDB call for its key, not two.
func (k *Keys) keyOf(ctx context.Context, id string, create, fresh bool) (entry, error) {
	e, ok := k.cached(id)
	if ok && (e.state != stateNone || !create) {
		return e, nil
	}
	if create && fresh && !ok {
		e, err := k.create(ctx, id)
		if err != nil {
			return entry{}, err
		}
		k.remember(e)
		return e, nil
	}
	e, err := k.read(ctx, id)
	if err != nil {
		return entry{}, err
	}
	if e.state == stateNone && create {
		if e, err = k.create(ctx, id); err != nil {
			return entry{}, err
		}
	}
	k.remember(e)
	return e, nil
}

// read reads the key item of id (consistently: a key created or destroyed
// a moment ago counts) and unwraps it.
func (k *Keys) read(ctx context.Context, id string) (entry, error) {
	out, err := k.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(k.cfg.Table),
		Key:            map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return entry{}, fmt.Errorf("read the key of %s: %w", id, err)
	}
	return k.fromItem(ctx, id, out.Item)
}

func (k *Keys) fromItem(ctx context.Context, id string, item map[string]types.AttributeValue) (entry, error) {
	if item == nil {
		return entry{id: id, state: stateNone}, nil
	}
	if _, ok := item[attrForgottenAt]; ok {
		return entry{id: id, state: stateForgotten}, nil
	}
	w, ok := item[attrWrapped].(*types.AttributeValueMemberB)
	if !ok {
		return entry{}, fmt.Errorf("the key item of %s has no wrapped key", id)
	}
	out, err := k.kms.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    w.Value,
		KeyId:             aws.String(k.cfg.KMSKeyID),
		EncryptionContext: map[string]string{contextSubject: id},
	})
	k.Calls.add(0, 1)
	if err != nil {
		return entry{}, fmt.Errorf("unwrap the key of %s: %w", id, err)
	}
	aead, err := newAEAD(out.Plaintext)
	if err != nil {
		return entry{}, fmt.Errorf("the key of %s: %w", id, err)
	}
	return entry{id: id, state: stateLive, aead: aead, raw: out.Plaintext}, nil
}

// create makes the key of id: a new data key, stored wrapped on the
// condition that id has no key item. When it has one (another writer, or
// this put sent again by the SDK after a lost reply), the stored item wins.
func (k *Keys) create(ctx context.Context, id string) (entry, error) {
	made, err := k.generate(ctx, id)
	if err != nil {
		return entry{}, err
	}
	_, err = k.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(k.cfg.Table),
		Item:                k.item(made),
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return k.read(ctx, id)
	case err != nil:
		return entry{}, fmt.Errorf("store the key of %s: %w", id, err)
	}
	return made.entry, nil
}

// newKey is a data key made by KMS, usable at once, and its wrapped form,
// which the keys table is to hold.
type newKey struct {
	entry
	wrapped []byte
}

// generate makes a new data key for id, without storing it.
func (k *Keys) generate(ctx context.Context, id string) (newKey, error) {
	out, err := k.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(k.cfg.KMSKeyID),
		KeySpec:           kmstypes.DataKeySpecAes256,
		EncryptionContext: map[string]string{contextSubject: id},
	})
	k.Calls.add(1, 0)
	if err != nil {
		return newKey{}, fmt.Errorf("generate the key of %s: %w", id, err)
	}
	aead, err := newAEAD(out.Plaintext)
	if err != nil {
		return newKey{}, fmt.Errorf("the key of %s: %w", id, err)
	}
	return newKey{entry: entry{id: id, state: stateLive, aead: aead, raw: out.Plaintext}, wrapped: out.CiphertextBlob}, nil
}

// item is the key item of made.
func (k *Keys) item(made newKey) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK:        &types.AttributeValueMemberS{Value: made.id},
		attrWrapped:   &types.AttributeValueMemberB{Value: made.wrapped},
		attrCreatedAt: &types.AttributeValueMemberS{Value: k.cfg.Now().UTC().Format(time.RFC3339Nano)},
	}
}

// putInTransaction is the write of made's key item for the transaction of
// the append that sealed with it. Its condition: the subject has no key
// item, or has this very one (an attempt of the same transaction that
// applied; the SDK's retries share its request token, so DynamoDB answers
// those without evaluating anything, but a condition that holds for its
// own write keeps the put idempotent whatever sends it again). A tombstone
// never matches: a forget is never overwritten. A failed condition returns
// the item found, which settle takes as the subject's key.
func (k *Keys) putInTransaction(made newKey) *types.Put {
	return &types.Put{
		TableName:                           aws.String(k.cfg.Table),
		Item:                                k.item(made),
		ConditionExpression:                 aws.String("attribute_not_exists(pk) OR #wrapped = :wrapped"),
		ExpressionAttributeNames:            map[string]string{"#wrapped": attrWrapped},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":wrapped": &types.AttributeValueMemberB{Value: made.wrapped}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// settle learns the outcome of the transaction that held made's key item:
// applied, the key is the subject's and is cached; taken (the condition
// failed on that item; empty when DynamoDB did not return it), the item
// found is the subject's key, or its tombstone, and is cached instead, so
// that sealing again uses it. Otherwise (cancelled for another reason, or
// an outcome unknown) nothing is cached: the next seal finds out.
func (k *Keys) settle(ctx context.Context, made newKey, applied bool, taken map[string]types.AttributeValue) error {
	switch {
	case applied:
		k.remember(made.entry)
	case taken != nil:
		var (
			e   entry
			err error
		)
		if len(taken) == 0 {
			e, err = k.read(ctx, made.id)
		} else {
			e, err = k.fromItem(ctx, made.id, taken)
		}
		if err != nil {
			return err
		}
		k.remember(e)
	}
	return nil
}

// Forget destroys the key of id: its item becomes a tombstone, whatever it
// was (so a retry, or a forget of a subject that never had a key, ends the
// same way), and this container forgets it at once.
func (k *Keys) Forget(ctx context.Context, id string, at time.Time) error {
	_, err := k.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(k.cfg.Table),
		Item: map[string]types.AttributeValue{
			attrPK:          &types.AttributeValueMemberS{Value: id},
			attrForgottenAt: &types.AttributeValueMemberS{Value: at.UTC().Format(time.RFC3339Nano)},
		},
	})
	if err != nil {
		return fmt.Errorf("destroy the key of %s: %w", id, err)
	}
	k.remember(entry{id: id, state: stateForgotten})
	return nil
}

// forgetHere makes this container treat the key of id as destroyed from
// now on, without touching the keys table: it has read id's forget.
func (k *Keys) forgetHere(id string) {
	if e, ok := k.cached(id); ok && e.state == stateForgotten {
		return
	}
	k.remember(entry{id: id, state: stateForgotten})
}

// Forgotten reports whether the key of id was destroyed.
func (k *Keys) Forgotten(ctx context.Context, id string) (bool, error) {
	e, err := k.key(ctx, id, false)
	return e.state == stateForgotten, err
}

func (k *Keys) cached(id string) (entry, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	el, ok := k.byID[id]
	if !ok {
		return entry{}, false
	}
	e := el.Value.(*entry)
	if k.cfg.Now().After(e.expires) && e.state != stateForgotten {
		// A destroyed key never comes back; a live one is checked again.
		k.order.Remove(el)
		delete(k.byID, id)
		return entry{}, false
	}
	k.order.MoveToFront(el)
	return *e, true
}

func (k *Keys) remember(e entry) {
	e.expires = k.cfg.Now().Add(k.cfg.CacheTTL)
	k.mu.Lock()
	defer k.mu.Unlock()
	if el, ok := k.byID[e.id]; ok {
		e.raw = nil
		*el.Value.(*entry) = e
		k.order.MoveToFront(el)
		return
	}
	e.raw = nil
	k.byID[e.id] = k.order.PushFront(&e)
	for k.order.Len() > k.cfg.CacheSize {
		last := k.order.Back()
		k.order.Remove(last)
		delete(k.byID, last.Value.(*entry).id)
	}
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("data key of %d bytes, want 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
