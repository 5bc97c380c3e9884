package apigw

import (
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestDecodeBody: members land in the typed struct's fields by their exact
// json names; every member at fault is listed; an unfit struct is a
// server error, not a client's.
func TestDecodeBody(t *testing.T) {
	type body struct {
		Name   String `json:"name"`
		Reason String `json:"reason"`
	}
	req := func(b string) *events.APIGatewayProxyRequest {
		return &events.APIGatewayProxyRequest{Body: b, Headers: map[string]string{"content-type": "application/json"}}
	}
	var b body
	if _, err := DecodeBody(req(`{"name":"Ada","reason":null}`), true, &b); err != nil {
		t.Fatal(err)
	}
	if b != (body{Name: String{"Ada", true}}) {
		t.Errorf("decoded %+v", b)
	}
	_, err := DecodeBody(req(`{"NAME":"x","name":1,"reason":"a","reason":"b"}`), true, &body{})
	var e *Error
	want := []FieldError{{"NAME", "is not a known field"}, {"name", "must be a string"}, {"reason", "must be given once"}}
	if !errors.As(err, &e) || e.Kind != Validation || !reflect.DeepEqual(e.Fields, want) {
		t.Errorf("err %v, fields %+v", err, e)
	}
	if _, err := DecodeBody(req(``), false, &body{}); err != nil {
		t.Errorf("optional body: %v", err)
	}
	if _, err := DecodeBody(req(`{}`), true, &struct{ N string }{}); err == nil || errors.As(err, &e) {
		t.Errorf("unfit struct: %v, want a plain (500) error", err)
	}
}

// BenchmarkDecodeBody: the typed struct against the map of fields the
// handlers built by hand before, on a rename body.
func BenchmarkDecodeBody(b *testing.B) {
	req := &events.APIGatewayProxyRequest{Body: `{"name":"Ada Lovelace","reason":"typo"}`,
		Headers: map[string]string{"Content-Type": "application/json"}}
	b.Run("struct", func(b *testing.B) {
		for b.Loop() {
			var v struct {
				Name   String `json:"name"`
				Reason String `json:"reason"`
			}
			if _, err := DecodeBody(req, true, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			var name, reason String
			body, err := Body(req)
			if err == nil {
				err = checkJSON(req)
			}
			if err == nil {
				err = decodeObject(body, map[string]*String{"name": &name, "reason": &reason})
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
