package user_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
)

// The reference: the user events as encoding/json decodes them. Each ref
// type has its event's fields and tags but not its DecodeEvent method, so
// the registry decodes it by reflection, as it decoded every event before
// the events decoded themselves.
type (
	refCreated      user.Created
	refRenamed      user.Renamed
	refEmailChanged user.EmailChanged
	refSuspended    user.Suspended
	refReactivated  user.Reactivated
	refDeleted      user.Deleted
)

func (refCreated) EventType() string      { return user.Created{}.EventType() }
func (refRenamed) EventType() string      { return user.Renamed{}.EventType() }
func (refEmailChanged) EventType() string { return user.EmailChanged{}.EventType() }
func (refSuspended) EventType() string    { return user.Suspended{}.EventType() }
func (refReactivated) EventType() string  { return user.Reactivated{}.EventType() }
func (refDeleted) EventType() string      { return user.Deleted{}.EventType() }

// fromRef converts a reference event to the user event it stands for.
func fromRef(e es.Event) es.Event {
	switch e := e.(type) {
	case refCreated:
		return user.Created(e)
	case refRenamed:
		return user.Renamed(e)
	case refEmailChanged:
		return user.EmailChanged(e)
	case refSuspended:
		return user.Suspended(e)
	case refReactivated:
		return user.Reactivated(e)
	case refDeleted:
		return user.Deleted(e)
	}
	return e
}

// upcasters are the same on both sides: older shapes that reach the codecs
// through them. user.renamed.v0 called its field "fullName"; schema 0 of
// user.created.v1 had the shape of schema 1.
func upcasters(r *es.Registry) {
	r.AddUpcaster(es.Upcaster{Type: "user.renamed.v0", Schema: 1,
		Up: func(data json.RawMessage) (string, int, json.RawMessage, error) {
			var v0 struct {
				FullName *string `json:"fullName"`
			}
			if err := json.Unmarshal(data, &v0); err != nil {
				return "", 0, nil, err
			}
			if v0.FullName == nil {
				return "user.renamed.v1", 1, data, nil // passed on as it is
			}
			out, err := json.Marshal(map[string]string{"name": *v0.FullName})
			return "user.renamed.v1", 1, out, err
		}})
	r.AddUpcaster(es.Upcaster{Type: "user.created.v1", Schema: 0,
		Up: func(data json.RawMessage) (string, int, json.RawMessage, error) {
			return "user.created.v1", 1, data, nil
		}})
}

func registries() (own, ref *es.Registry) {
	own = user.NewRegistry()
	upcasters(own)
	ref = es.NewRegistry()
	es.Register[refCreated](ref, 1)
	es.Register[refRenamed](ref, 1)
	es.Register[refEmailChanged](ref, 1)
	es.Register[refSuspended](ref, 1)
	es.Register[refReactivated](ref, 1)
	es.Register[refDeleted](ref, 1)
	upcasters(ref)
	return own, ref
}

// codecKinds are the stored shapes under test: every event type at its
// schema, and the upcasted ones. field is a field of the shape, which the
// cases below use.
var codecKinds = []struct {
	typ    string
	schema int
	field  string
}{
	{"user.created.v1", 1, "email"},
	{"user.renamed.v1", 1, "name"},
	{"user.email_changed.v1", 1, "previous"},
	{"user.suspended.v1", 1, "reason"},
	{"user.reactivated.v1", 1, "reason"},
	{"user.deleted.v1", 1, "reason"},
	{"user.created.v1", 0, "sub"},
	{"user.renamed.v0", 1, "fullName"},
}

// codecCases are data templates: F stands for the kind's field.
var codecCases = []string{
	// well formed
	`{"F":"Ada"}`, `{"name":"Ada","email":"ada@example.com","sub":"auth0|1","previous":"old@example.com","reason":"r"}`,
	`{}`, ` {"F" : "Ada" } `, "\t\r\n{\"F\":\"x\"}\n", `{"F":""}`,
	// unknown fields, of every kind of value
	`{"F":"Ada","extra":1}`, `{"x":{"a":[1,2,{"b":null}],"c":"d"},"F":"Ada","y":[true,false,null,-1.5e+3,0,"s"]}`,
	`{"x":[],"y":{},"F":"a"}`, `{"x":-0.0e-0}`, `{"x":1E5}`,
	// nulls and missing fields
	`null`, ` null `, `{"F":null}`, `{"F":"a","F":null}`, `{"F":null,"F":"b"}`, `{"other":"x"}`,
	// duplicate keys: the last wins
	`{"F":"a","F":"b"}`, `{"F":"a","extra":2,"F":"c"}`,
	// names matched without regard to case, as encoding/json does
	`{"NAME":"a","EMAIL":"b","SUB":"c","PREVIOUS":"d","REASON":"e","FULLNAME":"f"}`,
	`{"Name":"a","Email":"b","Sub":"c","Previous":"d","Reason":"e","fullname":"f"}`,
	"{\"\u017fub\":\"long s\",\"rea\u017fon\":\"long s\",\"emai\u212a\":\"kelvin\"}",
	`{"n\u0061me":"escaped key","\u0065mail":"e","r\u0065ason":"r","\u0073ub":"s","pr\u0065vious":"p","fullN\u0061me":"f"}`,
	`{"F":"a","f":"b"}`, `{"F ":"a"}`, `{" F":"a"}`,
	// escapes
	`{"F":"\"\\\/\b\f\n\r\t"}`, `{"F":"caf\u00e9 \u00E9"}`, `{"F":"\ud83d\ude00"}`, `{"F":"\ud83d"}`,
	`{"F":"\ude00\ud83d"}`, `{"F":"\ud83dx"}`, `{"F":"\ud83d\u0041"}`, `{"F":"\ud83d\ud83d\ude00"}`, `{"F":"\u0000"}`,
	`{"F":"\uD800\uDC00"}`, `{"F":"a\u"}`, `{"F":"\u12"}`, `{"F":"\u12G4"}`, `{"F":"\x"}`, `{"F":"\'"}`, `{"F":"\`,
	// invalid UTF-8, in values and keys
	"{\"F\":\"\xff\"}", "{\"F\":\"a\xc3\"}", "{\"F\":\"\xed\xa0\x80\"}", "{\"F\":\"\xf0\x9f\x98\"}",
	"{\"F\":\"ok \xe2\x82\xac \xe2\x82\"}", "{\"F\xff\":\"a\"}", "{\"x\":\"\xfe\",\"F\":\"b\"}", "{\"F\":\"\xef\xbf\xbd\"}",
	// control characters
	"{\"F\":\"a\nb\"}", "{\"F\":\"\x01\"}", "{\"F\":\"\x7f\"}",
	// wrong types
	`{"F":1}`, `{"F":true}`, `{"F":false}`, `{"F":{}}`, `{"F":[]}`, `{"F":["a"]}`, `{"F":{"F":"a"}}`, `{"F":1,"x":}`,
	`"F"`, `1`, `true`, `[]`, `[{"F":"a"}]`, `-`, `nul`, `nulll`, `NULL`,
	// malformed
	``, ` `, `{`, `{"F"`, `{"F":`, `{"F":"a"`, `{"F":"a",}`, `{,"F":"a"}`, `{"F":"a"}}`, `{"F":"a"}{}`,
	`{"F":"a"} x`, `{"F":"a" "x":1}`, `{"F" "a"}`, `{F:"a"}`, `{'F':'a'}`, `{"x":01}`, `{"x":1.}`, `{"x":.5}`,
	`{"x":1e}`, `{"x":1e+}`, `{"x":+1}`, `{"x":-}`, `{"x":tru}`, `{"x":[1,]}`, `{"x":[1 2]}`, `{"x":{"a"}}`,
	`{"x":{"a":1,}}`, `{"x":[}`, `{"x":"a}`, "{\"F\":\"a\"}\x00", "\xef\xbb\xbf{\"F\":\"a\"}",
}

// codecRecord is a stored record of kind k with data.
func codecRecord(k int, data []byte) es.Record {
	return es.Record{AggregateID: "agg", Version: 1, Type: codecKinds[k].typ, SchemaVersion: codecKinds[k].schema, Data: data}
}

// checkAgrees decodes rec through both registries, alone and in a run of
// three (the path of a load), and fails unless both succeed with the same
// event or both fail.
func checkAgrees(t *testing.T, own, ref *es.Registry, rec es.Record) {
	t.Helper()
	got, gerr := own.Decode(rec)
	want, werr := ref.Decode(rec)
	if (gerr == nil) != (werr == nil) || gerr == nil && got != fromRef(want) {
		t.Fatalf("%s schema %d %q:\n  own:           %#v, %v\n  encoding/json: %#v, %v",
			rec.Type, rec.SchemaVersion, short(rec.Data), got, gerr, fromRef(want), werr)
	}
	if errors.Is(gerr, es.ErrUnknownEvent) != errors.Is(werr, es.ErrUnknownEvent) {
		t.Fatalf("%q: unknown event: own %v, encoding/json %v", short(rec.Data), gerr, werr)
	}
	good := codecRecord(1, []byte(`{"name":"x"}`))
	for pos := range 3 {
		runOwn := []es.Record{good, good, good}
		runOwn[pos] = rec
		runRef := append([]es.Record(nil), runOwn...)
		gerr, werr := own.DecodeAll(runOwn), ref.DecodeAll(runRef)
		if (gerr == nil) != (werr == nil) || gerr == nil && runOwn[pos].Event != fromRef(runRef[pos].Event) {
			t.Fatalf("%q at %d of 3: own %#v, %v; encoding/json %#v, %v", short(rec.Data), pos, runOwn[pos].Event, gerr, runRef[pos].Event, werr)
		}
	}
}

// short is data cut for a message.
func short(data []byte) string {
	if len(data) > 120 {
		return string(data[:60]) + fmt.Sprintf("...(%d bytes)...", len(data)-120) + string(data[len(data)-60:])
	}
	return string(data)
}

// TestCodecAgreesWithEncodingJSON: every user event, and every upcasted
// shape, decodes as encoding/json decodes it, case by case: unknown
// fields, nulls, missing fields, wrong types, duplicate keys, escapes,
// invalid UTF-8, malformed JSON.
func TestCodecAgreesWithEncodingJSON(t *testing.T) {
	own, ref := registries()
	for k, kind := range codecKinds {
		t.Run(fmt.Sprintf("%s/%d", kind.typ, kind.schema), func(t *testing.T) {
			for _, c := range codecCases {
				checkAgrees(t, own, ref, codecRecord(k, []byte(strings.ReplaceAll(c, "F", kind.field))))
			}
		})
	}
	// And a few that a wrong decoder would get wrong, checked against
	// literal values, not only against encoding/json.
	for data, want := range map[string]user.Renamed{
		`{"name":"a","name":"b"}`:     {Name: "b"},
		`{"name":"a","name":null}`:    {Name: "a"},
		`{"NaMe":"a"}`:                {Name: "a"},
		`{"name":"\ud83d\ude00"}`:     {Name: "😀"},
		`{"name":"\ud83d"}`:           {Name: "\uFFFD"},
		"{\"name\":\"a\xffb\"}":       {Name: "a\uFFFDb"},
		"{\"name\":\"\xed\xa0\x80\"}": {Name: "\uFFFD\uFFFD\uFFFD"},
		`{"x":[{"name":"no"}]}`:       {},
	} {
		got, err := own.Decode(codecRecord(1, []byte(data)))
		if err != nil || got != want {
			t.Errorf("%q: got %#v, %v; want %#v", data, got, err, want)
		}
	}
}

// TestCodecNesting: encoding/json refuses nesting deeper than 10,000; so
// do the codecs, in an unknown field.
func TestCodecNesting(t *testing.T) {
	own, ref := registries()
	for _, depth := range []int{9_999, 10_000, 10_001} {
		// The object of the event is one level; the unknown field's
		// arrays are the others.
		inner := depth - 1
		data := `{"name":"a","x":` + strings.Repeat("[", inner) + strings.Repeat("]", inner) + `}`
		checkAgrees(t, own, ref, codecRecord(1, []byte(data)))
		_, err := own.Decode(codecRecord(1, []byte(data)))
		if (err == nil) != (depth <= 10_000) {
			t.Errorf("depth %d: %v", depth, err)
		}
	}
}

// TestCodecsRegistered: every registered user event decodes itself, so
// that no event is left to reflection by mistake.
func TestCodecsRegistered(t *testing.T) {
	for _, e := range []es.Event{user.Created{}, user.Renamed{}, user.EmailChanged{}, user.Suspended{},
		user.Reactivated{}, user.Deleted{}, user.Forgotten{}} {
		if _, ok := e.(es.EventDecoder); !ok {
			t.Errorf("%T does not decode itself", e)
		}
	}
}

// FuzzCodecAgreesWithEncodingJSON compares the codecs with encoding/json on
// any data. Its seed corpus (codecCases) runs with go test; go test -fuzz
// FuzzCodecAgreesWithEncodingJSON ./domain/user searches further.
func FuzzCodecAgreesWithEncodingJSON(f *testing.F) {
	for k, kind := range codecKinds {
		for _, c := range codecCases {
			f.Add(uint8(k), []byte(strings.ReplaceAll(c, "F", kind.field)))
		}
	}
	own, ref := registries()
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		checkAgrees(t, own, ref, codecRecord(int(k)%len(codecKinds), data))
	})
}
