package pii

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chronicle-go/chronicle/domain/es"
)

// sealedPrefix starts a sealed value.
const sealedPrefix = "pii1:"

// snapshotType is the type the associated data of a snapshot's fields names.
const snapshotType = "snapshot"

var (
	sealedMark = []byte(`"` + sealedPrefix)
	jsonNull   = json.RawMessage("null")
)

// Cipher seals and opens the personal fields of records and snapshots, and
// turns unique values into guard keys that do not reveal them. It is what
// the event store (dynamo.WithCipher) and the consumers of the queues use.
type Cipher struct {
	keys *Keys
	// fields returns the personal fields of an event type.
	fields func(typ string) []string
	// snapshots lists the personal fields of each aggregate type's state
	// (the snapshot shape), by aggregate type; a type it does not name has
	// none, so its snapshots get no key and no sealed field.
	snapshots map[string][]string
	// legacy is every field snapshots lists: those of a snapshot stored
	// before snapshots recorded their aggregate type.
	legacy []string
	// erases reports the event types after which a subject is forgotten
	// (es.Erasure); nil: none.
	erases func(typ string) bool
}

// Declarations are what a cipher seals, as the domain declares it: the
// personal fields of each event type (es.PersonalData) and of each
// aggregate type's state (es.RegisterState). *es.Registry declares both.
type Declarations interface {
	PersonalFields(typ string) []string
	StatePersonalFields() map[string][]string
}

// NewCipher returns the cipher of keys for the personal fields reg
// declares: the events' by type, the snapshots' by aggregate type
// (es.Snapshot.AggregateType). The streams of an aggregate type that
// declares no personal field in its events or its state (a team) never
// get a data key.
func NewCipher(keys *Keys, reg Declarations, opts ...CipherOption) *Cipher {
	fields, snapshots := reg.PersonalFields, reg.StatePersonalFields()
	c := &Cipher{keys: keys, fields: fields, snapshots: snapshots}
	for _, typ := range slices.Sorted(maps.Keys(snapshots)) {
		for _, f := range snapshots[typ] {
			if !slices.Contains(c.legacy, f) {
				c.legacy = append(c.legacy, f)
			}
		}
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// CipherOption configures a Cipher.
type CipherOption func(*Cipher)

// ForgetOn makes the cipher forget a subject the moment it opens one of
// its events of a type erases reports (es.Registry.Erases: the forget
// event). Without it, a container that cached the subject's key before
// another container destroyed it kept reading the subject's personal data
// until its cache entry expired (Config.CacheTTL), even after it had read
// the forget itself. A subject forgotten that way stays forgotten in the
// container: the forget is final, and its key is destroyed right after.
func ForgetOn(erases func(typ string) bool) CipherOption {
	return func(c *Cipher) { c.erases = erases }
}

// Keys returns the keys the cipher uses.
func (c *Cipher) Keys() *Keys { return c.keys }

// Seal returns recs with their personal fields sealed, in new records (recs
// is left as it is: the caller may keep it). A subject without a key gets
// one; a forgotten subject's records are refused with ErrForgotten.
func (c *Cipher) Seal(ctx context.Context, recs []es.Record) ([]es.Record, error) {
	return c.sealRecords(ctx, recs, &keying{})
}

// SealSnapshot returns s with the personal fields of its state sealed.
func (c *Cipher) SealSnapshot(ctx context.Context, s es.Snapshot) (es.Snapshot, error) {
	return c.sealSnapshot(ctx, s, &keying{})
}

// SealAppend seals recs and snap (nil: none) as Seal and SealSnapshot do,
// except that a new subject's key (its stream starts with recs and no
// container told this one of a key) is made by KMS but not stored: key is
// the put of its key item, for the append's own transaction to hold (nil
// when no key was made), so that a create is one KMS call and one
// DynamoDB call, and its key is stored if and only if its events are. The
// caller must then call settle with the outcome: applied, or the item the
// put's condition failed on (taken; an empty map when DynamoDB did not
// return it), which is the subject's key after all (a stream whose first
// attempt stored one, or a tombstone); the caller then seals again, with
// that key, and appends without a key item. It implements
// dynamo.KeyPutter.
func (c *Cipher) SealAppend(ctx context.Context, recs []es.Record, snap *es.Snapshot) (
	sealed []es.Record, sealedSnap *es.Snapshot, key *types.Put,
	settle func(ctx context.Context, applied bool, taken map[string]types.AttributeValue) error, err error,
) {
	ky := &keying{deferKey: true}
	if sealed, err = c.sealRecords(ctx, recs, ky); err != nil {
		return nil, nil, nil, nil, err
	}
	if snap != nil {
		s, err := c.sealSnapshot(ctx, *snap, ky)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		sealedSnap = &s
	}
	if ky.made == nil {
		return sealed, sealedSnap, nil, nil, nil
	}
	made := *ky.made
	settle = func(ctx context.Context, applied bool, taken map[string]types.AttributeValue) error {
		return c.keys.settle(ctx, made, applied, taken)
	}
	return sealed, sealedSnap, c.keys.putInTransaction(made), settle, nil
}

// keying is how one seal gets its subject's key.
type keying struct {
	fresh    bool    // the subject's stream starts with the record being sealed (Keys.keyOf)
	deferKey bool    // a fresh subject's new key is made but left to the caller to store (SealAppend)
	made     *newKey // the key made that way, which the rest of the seal uses
}

func (c *Cipher) sealRecords(ctx context.Context, recs []es.Record, ky *keying) ([]es.Record, error) {
	out := recs
	for i, r := range recs {
		fields := c.fields(r.Type)
		if len(fields) == 0 {
			continue
		}
		ky.fresh = r.Version == 1
		data, err := c.seal(ctx, r.AggregateID, ky, r.Type, r.Data, fields)
		if err != nil {
			return nil, fmt.Errorf("seal %s v%d of %s: %w", r.Type, r.Version, r.AggregateID, err)
		}
		if &out[0] == &recs[0] {
			out = append([]es.Record(nil), recs...)
		}
		out[i].Data = data
	}
	return out, nil
}

// snapshotFields are the personal fields of the state of an aggregate of
// type aggregateType ("": unknown).
func (c *Cipher) snapshotFields(aggregateType string) []string {
	if aggregateType == "" {
		return c.legacy
	}
	return c.snapshots[aggregateType]
}

func (c *Cipher) sealSnapshot(ctx context.Context, s es.Snapshot, ky *keying) (es.Snapshot, error) {
	fields := c.snapshotFields(s.AggregateType)
	if len(fields) == 0 {
		return s, nil
	}
	ky.fresh = false
	state, err := c.seal(ctx, s.AggregateID, ky, snapshotType, s.State, fields)
	if err != nil {
		return es.Snapshot{}, fmt.Errorf("seal the snapshot of %s at v%d: %w", s.AggregateID, s.Version, err)
	}
	s.State = state
	return s, nil
}

// sealKey returns the key that seals the personal data of id.
func (k *Keys) sealKey(ctx context.Context, id string, ky *keying) (entry, error) {
	if ky.made != nil && ky.made.id == id {
		return ky.made.entry, nil
	}
	if ky.deferKey && ky.fresh {
		if e, ok := k.cached(id); ok {
			if e.state != stateNone {
				return e, nil
			}
		} else {
			made, err := k.generate(ctx, id)
			if err != nil {
				return entry{}, err
			}
			ky.made = &made
			return made.entry, nil
		}
	}
	return k.keyOf(ctx, id, true, ky.fresh)
}

// seal seals the personal fields of data, under the key of id.
func (c *Cipher) seal(ctx context.Context, id string, ky *keying, typ string, data json.RawMessage, fields []string) (json.RawMessage, error) {
	obj, err := object(data, fields)
	if err != nil || obj == nil {
		return data, err
	}
	var k entry
	changed := false
	for _, f := range fields {
		v, ok := obj[f]
		if !ok || len(v) == 0 || v[0] != '"' {
			continue
		}
		var plain string
		if err := json.Unmarshal(v, &plain); err != nil {
			return nil, fmt.Errorf("field %s: %w", f, err)
		}
		if plain == "" {
			continue
		}
		if k.aead == nil {
			if k, err = c.keys.sealKey(ctx, id, ky); err != nil {
				return nil, err
			}
			if k.state != stateLive {
				return nil, ErrForgotten
			}
		}
		if obj[f], err = sealValue(k, id, typ, f, plain); err != nil {
			return nil, err
		}
		changed = true
	}
	if !changed {
		return data, nil
	}
	return json.Marshal(obj)
}

// Open opens the personal fields of recs in place. A forgotten subject's
// personal fields become null, sealed or not; a plain value of a subject
// that has a key (an event written before encryption) is left as it is.
// A sealed value that does not open (tampered, moved) is an error.
func (c *Cipher) Open(ctx context.Context, recs []es.Record) error {
	if c.erases != nil {
		for _, r := range recs {
			if c.erases(r.Type) {
				c.keys.forgetHere(r.AggregateID)
			}
		}
	}
	for i := range recs {
		r := &recs[i]
		fields := c.fields(r.Type)
		if len(fields) == 0 {
			continue
		}
		data, err := c.open(ctx, r.AggregateID, r.Type, r.Data, fields)
		if err != nil {
			return fmt.Errorf("open %s v%d of %s: %w", r.Type, r.Version, r.AggregateID, err)
		}
		r.Data = data
	}
	return nil
}

// OpenSnapshot opens the personal fields of s's state.
func (c *Cipher) OpenSnapshot(ctx context.Context, s *es.Snapshot) error {
	fields := c.snapshotFields(s.AggregateType)
	if len(fields) == 0 {
		return nil
	}
	state, err := c.open(ctx, s.AggregateID, snapshotType, s.State, fields)
	if err != nil {
		return fmt.Errorf("open the snapshot of %s at v%d: %w", s.AggregateID, s.Version, err)
	}
	s.State = state
	return nil
}

func (c *Cipher) open(ctx context.Context, id, typ string, data json.RawMessage, fields []string) (json.RawMessage, error) {
	k, err := c.keys.key(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if k.state == stateLive && !bytes.Contains(data, sealedMark) {
		return data, nil // nothing sealed: the common case of a plain event
	}
	obj, err := object(data, fields)
	if err != nil || obj == nil {
		return data, err
	}
	changed := false
	for _, f := range fields {
		v, ok := obj[f]
		if !ok || bytes.Equal(v, jsonNull) {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("field %s: %w", f, err)
		}
		sealed, isSealed := strings.CutPrefix(s, sealedPrefix)
		switch {
		case k.state == stateForgotten, k.state == stateNone && isSealed:
			// No key, or no key any more: the value cannot be read.
			obj[f] = jsonNull
		case !isSealed:
			continue
		default:
			b, err := base64.StdEncoding.DecodeString(sealed)
			n := k.aead.NonceSize()
			if err != nil || len(b) < n {
				return nil, fmt.Errorf("field %s: not a sealed value", f)
			}
			plain, err := k.aead.Open(nil, b[:n], b[n:], aad(id, typ, f))
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f, err)
			}
			obj[f], _ = json.Marshal(string(plain))
		}
		changed = true
	}
	if !changed {
		return data, nil
	}
	return json.Marshal(obj)
}

// object decodes data as a JSON object, or returns nil when it holds none
// of fields (so that most events are not decoded twice).
func object(data json.RawMessage, fields []string) (map[string]json.RawMessage, error) {
	any := false
	for _, f := range fields {
		if bytes.Contains(data, []byte(`"`+f+`"`)) {
			any = true
			break
		}
	}
	if !any {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("personal data of an object that is not one: %w", err)
	}
	return obj, nil
}

// aad is the associated data of a sealed field: the value belongs to this
// subject, this type and this field only.
func aad(id, typ, field string) []byte {
	return []byte(id + "\x00" + typ + "\x00" + field)
}

// GuardKey returns the guards-table key of a unique value ("email#a@b.c"):
// its prefix, then an HMAC-SHA256 of the whole key under the stack's guard
// secret. The guards table then shows no address, yet the same value
// always gives the same key, so uniqueness holds. The secret is a data key
// of its own in the keys table, unwrapped once per container.
func (c *Cipher) GuardKey(ctx context.Context, key string) (string, error) {
	secret, err := c.keys.guardSecret(ctx, true)
	if err != nil {
		return "", err
	}
	return guardKeyOf(secret, key), nil
}

// LookupGuardKey is GuardKey for a read: when the stack has no guard
// secret yet, no value can be held and ok is false, and no secret is made
// (the read side's role may not write keys). It implements
// dynamo.GuardKeyLookup.
func (c *Cipher) LookupGuardKey(ctx context.Context, key string) (string, bool, error) {
	secret, err := c.keys.guardSecret(ctx, false)
	if err != nil || secret == nil {
		return "", false, err
	}
	return guardKeyOf(secret, key), true, nil
}

func guardKeyOf(secret []byte, key string) string {
	prefix, _, ok := strings.Cut(key, "#")
	if !ok {
		prefix = "key"
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	return prefix + "#" + guardHashMark + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// guardSecret returns the stack's guard secret, made when there is none
// and create is set; nil when there is none and create is not.
func (k *Keys) guardSecret(ctx context.Context, create bool) ([]byte, error) {
	k.guardMu.Lock()
	defer k.guardMu.Unlock()
	if k.guardKey != nil {
		return k.guardKey, nil
	}
	e, err := k.read(ctx, guardSubject)
	if err == nil && e.state == stateNone && !create {
		return nil, nil
	}
	if err == nil && e.state == stateNone {
		e, err = k.create(ctx, guardSubject)
	}
	if err != nil {
		return nil, fmt.Errorf("the guard secret: %w", err)
	}
	if e.state != stateLive || len(e.raw) != 32 {
		return nil, errors.New("the guard secret is not usable")
	}
	k.guardKey = e.raw
	return k.guardKey, nil
}
