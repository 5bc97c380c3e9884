package esjson_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/domain/es/esjson"
)

// pair is what DecodeStrings decodes into, with encoding/json's tags.
type pair struct {
	A string `json:"a"`
	B string `json:"long_name"`
}

// check fails unless DecodeStrings and json.Unmarshal agree on data: both
// succeed with the same value, or both fail. Both start from the same
// non-zero value, so that a null or a missing member shows.
func check(t *testing.T, data []byte) {
	t.Helper()
	want := pair{A: "init a", B: "init b"}
	werr := json.Unmarshal(data, &want)
	got := pair{A: "init a", B: "init b"}
	gerr := esjson.DecodeStrings(data, esjson.Field{Name: "a", Dst: &got.A}, esjson.Field{Name: "long_name", Dst: &got.B})
	if (gerr == nil) != (werr == nil) || gerr == nil && got != want {
		t.Fatalf("%q: esjson %+v, %v; encoding/json %+v, %v", data, got, gerr, want, werr)
	}
}

var seeds = []string{
	`{"a":"x","long_name":"y"}`, `{"A":"x","LONG_NAME":"y"}`, `{"Long_Name":"y","a":null}`, `null`, `{}`,
	`{"a":"x","a":"z"}`, `{"a":1}`, `{"a":"\u00e9\ud800"}`, "{\"a\":\"\xff\"}", `{"b":[1,{"c":null}],"a":"x"}`,
	`{"a":"x"} `, `{"a":"x"}x`, `{"a":"x",}`, `[]`, `"a"`, ``, `{"a":"x" , "long_name" : "y"}`, `{"long_namE":"k"}`,
	"{\"\u017f\":\"s\"}", `{"x":1e400}`, `{"x":-0.5E-3}`,
}

func TestAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		check(t, []byte(s))
	}
	for _, depth := range []int{10_000, 10_001} {
		check(t, []byte(`{"x":`+strings.Repeat("[", depth-1)+strings.Repeat("]", depth-1)+`}`))
	}
}

func FuzzAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { check(t, data) })
}
