package es

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
)

// Registry maps versioned type names to Go types and reads old schema versions
// through upcasters. It is built explicitly by the caller: no init-time globals,
// no names derived by reflection.
type Registry struct {
	codecs    map[string]codec
	upcasters map[typeSchema]Upcaster
	// personal lists, per type name, the personal fields its events declare.
	personal map[string][]string
	// erasing holds the type names whose events are Erasures.
	erasing map[string]bool
	// statePersonal lists, per aggregate type, the personal fields of its
	// state (RegisterState): what a snapshot of it holds.
	statePersonal map[string][]string
}

// PersonalData is an event (or a state, the shape of a snapshot) that
// declares which of its top-level JSON fields, all strings, hold personal
// data. The kernel only records the declaration: an adapter stores those
// fields encrypted with a key of the subject (the aggregate) and reads them
// as null once that key is destroyed, which is how a subject is forgotten
// in a log that is never rewritten.
type PersonalData interface {
	PersonalFields() []string
}

// Erasure is an event after which its subject's personal data must not be
// read any more (a forget). An adapter that reads one stops opening the
// subject's personal fields at once, without waiting for the destroyed key
// to leave its caches.
type Erasure interface {
	ErasesPersonalData()
}

type codec struct {
	schema int
	// own decodes data without encoding/json, for a type that is an
	// EventDecoder; nil for the others.
	own func(data []byte) (Event, error)
	// decode reads the next JSON value of dec as the event. Decoding a run of
	// events through one json.Decoder costs about half of a json.Unmarshal
	// each: the decoder's state and buffers are reused.
	decode func(dec *json.Decoder) (Event, error)
}

type typeSchema struct {
	typ    string
	schema int
}

// EventDecoder is an event type that decodes its own JSON, without
// encoding/json's reflection, which was most of a replay's cost. Register
// uses it for the types that implement it, on their zero value. It must
// accept, refuse and produce exactly what encoding/json would decode into
// the type (package esjson does that for events of string fields): a test
// comparing the two on every type, and a fuzz test, say it does.
type EventDecoder interface {
	// DecodeEvent returns the event data encodes.
	DecodeEvent(data []byte) (Event, error)
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
	return &Registry{codecs: map[string]codec{}, upcasters: map[typeSchema]Upcaster{}, personal: map[string][]string{}, erasing: map[string]bool{},
		statePersonal: map[string][]string{}}
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
	c := codec{schema: schema, decode: func(dec *json.Decoder) (Event, error) {
		var e T
		if err := dec.Decode(&e); err != nil {
			return nil, err
		}
		return e, nil
	}}
	if d, ok := any(zero).(EventDecoder); ok {
		c.own = d.DecodeEvent
	}
	r.codecs[name] = c
	if p, ok := any(zero).(PersonalData); ok {
		r.personal[name] = p.PersonalFields()
	}
	if _, ok := any(zero).(Erasure); ok {
		r.erasing[name] = true
	}
}

// PersonalFields returns the personal fields of the events of type typ,
// as the type declares them (PersonalData); none for an unknown type.
func (r *Registry) PersonalFields(typ string) []string { return r.personal[typ] }

// RegisterState declares the state S of the aggregates of type
// aggregateType (Decider.Type): when S is PersonalData, its snapshots hold
// personal fields, which an adapter seals as it seals the events'. A state
// that declares none needs no call. It panics on a second declaration of
// the same aggregate type.
func RegisterState[S any](r *Registry, aggregateType string) {
	if _, dup := r.statePersonal[aggregateType]; dup {
		panic(fmt.Sprintf("es: state of aggregate type %q registered twice", aggregateType))
	}
	var zero S
	if p, ok := any(zero).(PersonalData); ok {
		r.statePersonal[aggregateType] = p.PersonalFields()
	}
}

// StatePersonalFields returns the personal fields of the states of each
// aggregate type that declares some (RegisterState), by aggregate type.
func (r *Registry) StatePersonalFields() map[string][]string {
	out := make(map[string][]string, len(r.statePersonal))
	for typ, fields := range r.statePersonal {
		if len(fields) > 0 {
			out[typ] = slices.Clone(fields)
		}
	}
	return out
}

// Erases reports whether the events of type typ are Erasures.
func (r *Registry) Erases(typ string) bool { return r.erasing[typ] }

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
	c, data, err := r.current(rec)
	if err != nil {
		return nil, err
	}
	if c.own != nil {
		e, err := c.own(data)
		if err != nil {
			return nil, decodeError(rec, err)
		}
		return e, nil
	}
	recs := []Record{rec}
	if err := r.decodeRange(recs); err != nil {
		return nil, err
	}
	return recs[0].Event, nil
}

// current returns the codec and data of rec in its current shape, after the
// upcasters.
func (r *Registry) current(rec Record) (codec, json.RawMessage, error) {
	typ, schema, data := rec.Type, rec.SchemaVersion, rec.Data
	for range maxUpcasts {
		if c, ok := r.codecs[typ]; ok && c.schema == schema {
			return c, data, nil
		}
		u, ok := r.upcasters[typeSchema{typ, schema}]
		if !ok {
			return codec{}, nil, fmt.Errorf("decode %s schema %d at %s v%d: %w", typ, schema, rec.AggregateID, rec.Version, ErrUnknownEvent)
		}
		var err error
		if typ, schema, data, err = u.Up(data); err != nil {
			return codec{}, nil, fmt.Errorf("upcast %s schema %d at %s v%d: %w", u.Type, u.Schema, rec.AggregateID, rec.Version, err)
		}
	}
	return codec{}, nil, fmt.Errorf("decode %s at %s v%d: upcaster chain longer than %d: %w", rec.Type, rec.AggregateID, rec.Version, maxUpcasts, ErrUnknownEvent)
}

// parallelDecodeMin is the stream length from which DecodeAll spreads the
// work over the available processors: decoding is independent per event and
// is most of the cost of a long replay.
const parallelDecodeMin = 1024

// DecodeAll fills the Event field of every record.
func (r *Registry) DecodeAll(recs []Record) error {
	workers := min(runtime.GOMAXPROCS(0), len(recs)/(parallelDecodeMin/2))
	if workers <= 1 {
		return r.decodeRange(recs)
	}
	chunk := (len(recs) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		part := recs[w*chunk : min((w+1)*chunk, len(recs))]
		wg.Go(func() { errs[w] = r.decodeRange(part) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// decodeRange decodes recs in order: the types that decode themselves
// directly, the others through one json.Decoder fed with their data, one
// JSON value after another.
func (r *Registry) decodeRange(recs []Record) error {
	var codecs []codec
	var at []int // index in recs of each value of feed
	feed := &values{}
	for i := range recs {
		c, data, err := r.current(recs[i])
		if err != nil {
			return err
		}
		if c.own != nil {
			e, err := c.own(data)
			if err != nil {
				return decodeError(recs[i], err)
			}
			recs[i].Event = e
			continue
		}
		codecs, at, feed.data = append(codecs, c), append(at, i), append(feed.data, data)
	}
	if len(at) == 0 {
		return nil
	}
	dec := json.NewDecoder(feed)
	for j, i := range at {
		e, err := codecs[j].decode(dec)
		if err == nil && feed.next != j+1 {
			// The value ended before its data did: trailing data.
			err = errors.New("invalid JSON: data after the top-level value")
		}
		if err != nil {
			return decodeError(recs[i], err)
		}
		recs[i].Event = e
	}
	if _, err := dec.Token(); err != io.EOF {
		rec := recs[at[len(at)-1]]
		return fmt.Errorf("decode %s of %s at v%d: invalid JSON: data after the top-level value", rec.Type, rec.AggregateID, rec.Version)
	}
	return nil
}

func decodeError(rec Record, err error) error {
	return fmt.Errorf("decode %s v%d of %s at v%d: %w", rec.Type, rec.SchemaVersion, rec.AggregateID, rec.Version, err)
}

// values is an io.Reader over JSON values, each followed by a newline (so
// that 1 and 2 do not read as 12), so that one json.Decoder reads them one
// by one. A Read serves from one value, or a newline alone, never from two
// values, so that after a Decode, next says how many values the decoder has
// taken in. The values are served in place, not copied.
type values struct {
	data    []json.RawMessage
	next    int    // index of the value to serve next
	rest    []byte // what remains of the value being served
	newline bool   // a newline is due before the next value
}

func (v *values) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(v.rest) == 0 {
		if v.newline {
			v.newline = false
			p[0] = '\n'
			return 1, nil
		}
		if v.next == len(v.data) {
			return 0, io.EOF
		}
		v.rest = v.data[v.next]
		v.next++
		v.newline = true
		if len(v.rest) == 0 { // an empty value: the decoder will report it
			v.newline = false
			p[0] = '\n'
			return 1, nil
		}
	}
	n := copy(p, v.rest)
	v.rest = v.rest[n:]
	return n, nil
}
