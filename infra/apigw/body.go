package apigw

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// String is a string member of a request body.
type String struct {
	Value string
	Set   bool // present and not null
}

var stringType = reflect.TypeFor[String]()

// DecodeBody reads the request body into dst, a pointer to a struct whose
// fields are each a String with a json tag naming its member:
//
//	var b struct {
//		Name   apigw.String `json:"name"`
//		Reason apigw.String `json:"reason"`
//	}
//
// It returns the body's bytes. A body is optional when required is false:
// an empty one leaves every field unset. A body that is present must be
// declared as JSON and be an object whose members are all known strings;
// the 400 lists every member at fault (decodeObject). encoding/json is not
// used for the struct: it matches names without regard to case, keeps the
// last of repeated members and turns a number into a 400 only for the first
// bad member.
func DecodeBody(req *events.APIGatewayProxyRequest, required bool, dst any) ([]byte, error) {
	fields, err := bodyFields(dst)
	if err != nil {
		return nil, err
	}
	b, err := Body(req)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		if required {
			return nil, BadRequest("The request needs a JSON object body.")
		}
		return b, nil
	}
	if err := checkJSON(req); err != nil {
		return nil, err
	}
	return b, decodeObject(b, fields)
}

// bodyFields lists the String fields of the struct dst points to, by member
// name. An unfit dst is a programming error: a 500, with the cause logged.
func bodyFields(dst any) (map[string]*String, error) {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("apigw: DecodeBody into %T: want a pointer to a struct", dst)
	}
	v = v.Elem()
	fields := map[string]*String{}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type != stringType || name == "" || name == "-" {
			return nil, fmt.Errorf("apigw: DecodeBody into %T: field %s: want an apigw.String with a json name", dst, f.Name)
		}
		fields[name] = v.Field(i).Addr().Interface().(*String)
	}
	return fields, nil
}
