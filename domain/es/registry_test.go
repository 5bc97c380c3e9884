package es_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/domain/es"
)

type renamedV2 struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

func (renamedV2) EventType() string { return "person.renamed.v2" }

type noted struct {
	Text string `json:"text"`
}

func (noted) EventType() string { return "person.noted.v1" }

func registry() *es.Registry {
	r := es.NewRegistry()
	es.Register[renamedV2](r, 1)
	es.Register[noted](r, 2)
	// person.renamed.v1 {"name": "Ada Lovelace"} is read as person.renamed.v2.
	r.AddUpcaster(es.Upcaster{Type: "person.renamed.v1", Schema: 1,
		Up: func(data json.RawMessage) (string, int, json.RawMessage, error) {
			var v1 struct{ Name string }
			if err := json.Unmarshal(data, &v1); err != nil {
				return "", 0, nil, err
			}
			first, last, _ := strings.Cut(v1.Name, " ")
			out, err := json.Marshal(renamedV2{First: first, Last: last})
			return "person.renamed.v2", 1, out, err
		}})
	// person.noted.v1 schema 1 called the field "body".
	r.AddUpcaster(es.Upcaster{Type: "person.noted.v1", Schema: 1,
		Up: func(data json.RawMessage) (string, int, json.RawMessage, error) {
			var v struct{ Body string }
			if err := json.Unmarshal(data, &v); err != nil {
				return "", 0, nil, err
			}
			out, err := json.Marshal(noted{Text: v.Body})
			return "person.noted.v1", 2, out, err
		}})
	return r
}

func TestRegistryDecode(t *testing.T) {
	r := registry()
	tests := []struct {
		name    string
		rec     es.Record
		want    es.Event
		wantErr error
	}{
		{"current shape", es.Record{Type: "person.renamed.v2", SchemaVersion: 1, Data: json.RawMessage(`{"first":"Ada","last":"L"}`)},
			renamedV2{First: "Ada", Last: "L"}, nil},
		{"old type upcast", es.Record{Type: "person.renamed.v1", SchemaVersion: 1, Data: json.RawMessage(`{"name":"Ada Lovelace"}`)},
			renamedV2{First: "Ada", Last: "Lovelace"}, nil},
		{"old schema upcast", es.Record{Type: "person.noted.v1", SchemaVersion: 1, Data: json.RawMessage(`{"body":"hi"}`)},
			noted{Text: "hi"}, nil},
		{"unknown type", es.Record{Type: "person.teleported.v1", SchemaVersion: 1, Data: json.RawMessage(`{}`)}, nil, es.ErrUnknownEvent},
		{"unknown schema", es.Record{Type: "person.noted.v1", SchemaVersion: 7, Data: json.RawMessage(`{}`)}, nil, es.ErrUnknownEvent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Decode(tc.rec)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestRegistryEncode(t *testing.T) {
	typ, schema, data, err := registry().Encode(noted{Text: "x"})
	if err != nil || typ != "person.noted.v1" || schema != 2 || string(data) != `{"text":"x"}` {
		t.Fatalf("got %s %d %s %v", typ, schema, data, err)
	}
	if _, _, _, err := es.NewRegistry().Encode(noted{}); !errors.Is(err, es.ErrUnknownEvent) {
		t.Fatalf("unregistered: %v", err)
	}
}

func TestUpcasterCycle(t *testing.T) {
	r := es.NewRegistry()
	r.AddUpcaster(es.Upcaster{Type: "a.v1", Schema: 1, Up: func(d json.RawMessage) (string, int, json.RawMessage, error) {
		return "a.v1", 1, d, nil
	}})
	if _, err := r.Decode(es.Record{Type: "a.v1", SchemaVersion: 1, Data: json.RawMessage(`{}`)}); !errors.Is(err, es.ErrUnknownEvent) {
		t.Fatalf("cycle: %v", err)
	}
}

func TestDecodeAllMalformed(t *testing.T) {
	good := es.Record{Type: "person.noted.v1", SchemaVersion: 2, Data: json.RawMessage(`{"text":"ok"}`)}
	for name, data := range map[string]string{
		"trailing data": `{"text":"a"}{"text":"b"}`,
		"truncated":     `{"text":`,
		"empty":         ``,
		"trailing }":    `{"text":"a"}}`,
		"wrong type":    `{"text":1}`,
	} {
		for _, pos := range []int{0, 1, 2} {
			recs := []es.Record{good, good, good}
			recs[pos].Data = json.RawMessage(data)
			if err := registry().DecodeAll(recs); err == nil {
				t.Errorf("%s at %d: decoded without error", name, pos)
			}
		}
	}
	recs := make([]es.Record, 3000) // long enough to decode in parallel
	for i := range recs {
		recs[i] = good
	}
	recs[2999].Data = json.RawMessage(`{"text":"last"}`)
	if err := registry().DecodeAll(recs); err != nil || recs[2999].Event != (noted{Text: "last"}) || recs[0].Event != (noted{Text: "ok"}) {
		t.Fatalf("long run: %v", err)
	}
}

// ticked is an event whose data is a bare number.
type ticked int

func (ticked) EventType() string { return "clock.ticked.v1" }

// TestDecodeAllScalars: values that need a delimiter to end (numbers) are
// decoded one per record, not run together ("1", "2" is not 12), and a
// record of whitespace alone is an error.
func TestDecodeAllScalars(t *testing.T) {
	r := es.NewRegistry()
	es.Register[ticked](r, 1)
	rec := func(data string) es.Record {
		return es.Record{Type: "clock.ticked.v1", SchemaVersion: 1, Data: json.RawMessage(data)}
	}
	recs := []es.Record{rec("1"), rec("2"), rec(" 3 "), rec("40")}
	if err := r.DecodeAll(recs); err != nil {
		t.Fatal(err)
	}
	for i, want := range []ticked{1, 2, 3, 40} {
		if recs[i].Event != want {
			t.Errorf("record %d: %v, want %v", i, recs[i].Event, want)
		}
	}
	for _, bad := range [][]es.Record{{rec("1"), rec("  "), rec("3")}, {rec("1 2"), rec("3")}, {rec("1"), rec("")}} {
		if err := r.DecodeAll(bad); err == nil {
			t.Errorf("%q: decoded without error", []string{string(bad[0].Data), string(bad[1].Data)})
		}
	}
}

type personalState struct{ Name string }

func (personalState) PersonalFields() []string { return []string{"name"} }

type plainState struct{ Count int }

// TestRegisterState: an aggregate type whose state declares personal
// fields lists them; one whose state declares none is left out; a second
// declaration of a type is a programming error.
func TestRegisterState(t *testing.T) {
	r := es.NewRegistry()
	es.RegisterState[personalState](r, "person")
	es.RegisterState[plainState](r, "counter")
	got := r.StatePersonalFields()
	if len(got) != 1 || !slices.Equal(got["person"], []string{"name"}) {
		t.Fatalf("StatePersonalFields() = %v, want person: [name] only", got)
	}
	got["person"][0] = "changed" // a copy: the caller cannot change the registry
	if r.StatePersonalFields()["person"][0] != "name" {
		t.Error("StatePersonalFields returned the registry's own slice")
	}
	defer func() {
		if recover() == nil {
			t.Error("a second declaration of person did not panic")
		}
	}()
	es.RegisterState[personalState](r, "person")
}
