package es

import (
	"encoding/json"
	"fmt"
)

// Registry maps versioned type names to Go types and reads old schema versions
// through upcasters. It is built explicitly by the caller: no init-time globals,
// no names derived by reflection.
type Registry struct {
	codecs    map[string]codec
	upcasters map[typeSchema]Upcaster
}

type codec struct {
	schema int
	decode func(json.RawMessage) (Event, error)
}

type typeSchema struct {
	typ    string
	schema int
}

// Upcaster reads one stored shape as the next one. It may change the type name
// (user.created.v1 → user.created.v2) or only the schema version.
type Upcaster struct {
	Type   string // stored type name it reads
	Schema int    // stored schema version it reads
	// Up returns the next shape: type name, schema version and data.
	Up func(data json.RawMessage) (typ string, schema int, out json.RawMessage, err error)
}

// maxUpcasts bounds an upcaster chain, so that a cycle is an error, not a hang.
const maxUpcasts = 32

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{codecs: map[string]codec{}, upcasters: map[typeSchema]Upcaster{}}
}

// Register adds the event type T, whose current schema version is schema, under
// the name T's EventType method returns. It panics on a duplicate name: that is
// a programming error found at start-up.
func Register[T Event](r *Registry, schema int) {
	var zero T
	name := zero.EventType()
	if _, dup := r.codecs[name]; dup {
		panic(fmt.Sprintf("es: event type %q registered twice", name))
	}
	r.codecs[name] = codec{schema: schema, decode: func(data json.RawMessage) (Event, error) {
		var e T
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, err
		}
		return e, nil
	}}
}

// AddUpcaster registers u. It panics when one is already registered for the same
// type and schema version.
func (r *Registry) AddUpcaster(u Upcaster) {
	k := typeSchema{u.Type, u.Schema}
	if _, dup := r.upcasters[k]; dup {
		panic(fmt.Sprintf("es: upcaster for %s schema %d registered twice", u.Type, u.Schema))
	}
	r.upcasters[k] = u
}

// Encode returns the type name, schema version and JSON of e.
func (r *Registry) Encode(e Event) (typ string, schema int, data json.RawMessage, err error) {
	typ = e.EventType()
	c, ok := r.codecs[typ]
	if !ok {
		return "", 0, nil, fmt.Errorf("encode %s: %w", typ, ErrUnknownEvent)
	}
	data, err = json.Marshal(e)
	if err != nil {
		return "", 0, nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return typ, c.schema, data, nil
}

// Decode returns the event of rec in its current shape, upcasting old schema
// versions. An unknown type or schema version is an error wrapping
// ErrUnknownEvent, never a silent skip.
func (r *Registry) Decode(rec Record) (Event, error) {
	typ, schema, data := rec.Type, rec.SchemaVersion, rec.Data
	for range maxUpcasts {
		if c, ok := r.codecs[typ]; ok && c.schema == schema {
			e, err := c.decode(data)
			if err != nil {
				return nil, fmt.Errorf("decode %s v%d of %s: %w", typ, schema, rec.AggregateID, err)
			}
			return e, nil
		}
		u, ok := r.upcasters[typeSchema{typ, schema}]
		if !ok {
			return nil, fmt.Errorf("decode %s schema %d at %s v%d: %w", typ, schema, rec.AggregateID, rec.Version, ErrUnknownEvent)
		}
		var err error
		if typ, schema, data, err = u.Up(data); err != nil {
			return nil, fmt.Errorf("upcast %s schema %d at %s v%d: %w", u.Type, u.Schema, rec.AggregateID, rec.Version, err)
		}
	}
	return nil, fmt.Errorf("decode %s at %s v%d: upcaster chain longer than %d: %w", rec.Type, rec.AggregateID, rec.Version, maxUpcasts, ErrUnknownEvent)
}

// DecodeAll fills the Event field of every record.
func (r *Registry) DecodeAll(recs []Record) error {
	for i := range recs {
		e, err := r.Decode(recs[i])
		if err != nil {
			return err
		}
		recs[i].Event = e
	}
	return nil
}
