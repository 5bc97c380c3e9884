package pii

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// The migration of a stack whose events were written before encryption
// (chronicle pii migrate, dynamo.Migrate*) seals in place what the store
// would have sealed on append, and moves plain guard keys to hashed ones.

// SealStored returns the data of a stored event of type typ of subject id
// with its plain personal fields sealed, and whether it changed anything.
// Fields already sealed are kept as they are (so a rerun changes nothing);
// a subject without a key gets one; a forgotten subject's plain fields
// become null (its key is gone: they must not stay readable).
func (c *Cipher) SealStored(ctx context.Context, id, typ string, data json.RawMessage) (json.RawMessage, bool, error) {
	out, changed, err := c.sealPlain(ctx, id, typ, data, c.fields(typ))
	if err != nil {
		return nil, false, fmt.Errorf("seal %s of %s in place: %w", typ, id, err)
	}
	return out, changed, nil
}

// SealStoredSnapshot is SealStored for the state of a snapshot of an
// aggregate of type aggregateType ("": a snapshot stored before snapshots
// recorded it).
func (c *Cipher) SealStoredSnapshot(ctx context.Context, id, aggregateType string, state json.RawMessage) (json.RawMessage, bool, error) {
	fields := c.snapshotFields(aggregateType)
	if len(fields) == 0 {
		return state, false, nil
	}
	out, changed, err := c.sealPlain(ctx, id, snapshotType, state, fields)
	if err != nil {
		return nil, false, fmt.Errorf("seal a snapshot of %s in place: %w", id, err)
	}
	return out, changed, nil
}

// IsGuardHash reports whether a guards-table key is one GuardKey made (its
// value hashed), rather than a plain unique value.
func (c *Cipher) IsGuardHash(key string) bool {
	_, rest, ok := strings.Cut(key, "#")
	return ok && strings.HasPrefix(rest, guardHashMark)
}

// guardHashMark follows the prefix of a hashed guard key.
const guardHashMark = "h1:"

func (c *Cipher) sealPlain(ctx context.Context, id, typ string, data json.RawMessage, fields []string) (json.RawMessage, bool, error) {
	if len(fields) == 0 {
		return data, false, nil
	}
	obj, err := object(data, fields)
	if err != nil || obj == nil {
		return data, false, err
	}
	plain := map[string]string{}
	for _, f := range fields {
		v, ok := obj[f]
		if !ok || len(v) == 0 || v[0] != '"' {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, false, fmt.Errorf("field %s: %w", f, err)
		}
		if s != "" && !strings.HasPrefix(s, sealedPrefix) {
			plain[f] = s
		}
	}
	if len(plain) == 0 {
		return data, false, nil
	}
	k, err := c.keys.key(ctx, id, true)
	if err != nil {
		return nil, false, err
	}
	for f, s := range plain {
		if k.state != stateLive {
			obj[f] = jsonNull
			continue
		}
		if obj[f], err = sealValue(k, id, typ, f, s); err != nil {
			return nil, false, err
		}
	}
	out, err := json.Marshal(obj)
	return out, err == nil, err
}

// sealValue is the sealed JSON string of plain, field f of an event of type
// typ of subject id, under k.
func sealValue(k entry, id, typ, f, plain string) (json.RawMessage, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	sealed := k.aead.Seal(nonce, nonce, []byte(plain), aad(id, typ, f))
	return json.Marshal(sealedPrefix + base64.StdEncoding.EncodeToString(sealed))
}
