package template

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// Intrinsic function names.
const (
	FnRef    = "Ref"
	FnGetAtt = "Fn::GetAtt"
	FnSub    = "Fn::Sub"
	FnJoin   = "Fn::Join"
	FnSelect = "Fn::Select"
	FnSplit  = "Fn::Split"
)

// evaluated are the intrinsics goformation's own handlers evaluate at load
// time: conditions and their operators. Every other one is kept encoded.
var evaluated = map[string]bool{"Fn::If": true, "Fn::Equals": true, "Fn::And": true, "Fn::Or": true, "Fn::Not": true}

// handlers returns the intrinsic handlers of Load's second pass: Ref resolves
// parameters that have a value and AWS::NoValue; the condition functions are
// left to goformation, which evaluates them; the rest keep their call encoded.
func handlers(params map[string]string) map[string]intrinsics.IntrinsicHandler {
	h := map[string]intrinsics.IntrinsicHandler{}
	for name, fn := range cloudformation.EncoderIntrinsics {
		if !evaluated[name] {
			h[name] = fn
		}
	}
	h[FnRef] = func(_ string, input, _ any) any {
		name, ok := input.(string)
		switch {
		case !ok:
			return nil
		case name == "AWS::NoValue":
			return nil
		}
		if v, ok := params[name]; ok {
			return v
		}
		return cloudformation.Ref(name)
	}
	return h
}

// Intrinsic decodes a value that Load kept as an intrinsic function call: it
// returns the function's name and its argument, in which nested calls are
// decoded too ({"Ref": "X"} maps). ok is false for a literal.
func Intrinsic(v string) (fn string, arg any, ok bool) {
	call, ok := decodeCall(v)
	if !ok {
		return "", nil, false
	}
	for fn, arg := range call {
		return fn, expand(arg), true
	}
	return "", nil, false
}

// decodeCall decodes goformation's encoding of an intrinsic: base64 of a JSON
// object with one key, the function's name.
func decodeCall(v string) (map[string]any, bool) {
	if v == "" || len(v)%4 != 0 {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, false
	}
	var call map[string]any
	if json.Unmarshal(b, &call) != nil || len(call) != 1 {
		return nil, false
	}
	for fn := range call {
		if _, known := cloudformation.EncoderIntrinsics[fn]; !known {
			return nil, false
		}
	}
	return call, true
}

// expand decodes the encoded calls nested in an argument.
func expand(arg any) any {
	switch a := arg.(type) {
	case string:
		if call, ok := decodeCall(a); ok {
			out := make(map[string]any, 1)
			for fn, inner := range call {
				out[fn] = expand(inner)
			}
			return out
		}
		return a
	case []any:
		out := make([]any, len(a))
		for i, e := range a {
			out[i] = expand(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(a))
		for k, e := range a {
			out[k] = expand(e)
		}
		return out
	default:
		return arg
	}
}

// RefTo returns the logical id (or pseudo parameter) that v is a Ref to.
func RefTo(v string) (string, bool) {
	fn, arg, ok := Intrinsic(v)
	if !ok || fn != FnRef {
		return "", false
	}
	name, ok := arg.(string)
	return name, ok
}

// GetAttOf returns the logical id and attribute that v is a Fn::GetAtt of.
func GetAttOf(v string) (id, attribute string, ok bool) {
	fn, arg, ok := Intrinsic(v)
	if !ok || fn != FnGetAtt {
		return "", "", false
	}
	return getAttArgs(arg)
}

func getAttArgs(arg any) (id, attribute string, ok bool) {
	switch a := arg.(type) {
	case []any:
		if len(a) == 2 {
			id, ok1 := a[0].(string)
			attr, ok2 := a[1].(string)
			return id, attr, ok1 && ok2
		}
	case string:
		id, attr, ok := strings.Cut(a, ".")
		return id, attr, ok
	}
	return "", "", false
}

// Target returns the logical id that v points at, through a Ref or a
// Fn::GetAtt; "" for anything else.
func Target(v string) string {
	if id, ok := RefTo(v); ok {
		return id
	}
	if id, _, ok := GetAttOf(v); ok {
		return id
	}
	return ""
}

// Resolver gives the values that only a deployment knows: what a Ref to a
// resource or a pseudo parameter (AWS::Region, AWS::StackName, ...) returns,
// and resource attributes.
type Resolver interface {
	Ref(name string) (string, error)
	GetAtt(id, attribute string) (string, error)
}

// ErrNoValue: a Ref to a parameter that has neither a default nor a value
// given with WithParameters.
var ErrNoValue = errors.New("parameter has no value")

// Resolve evaluates v, a literal or an intrinsic kept by Load, to a string.
// Parameters resolve to their values; Refs to anything else, and
// Fn::GetAtt, go to r. Fn::Sub, Fn::Join, Fn::Select and Fn::Split are
// evaluated here.
func (t *Template) Resolve(v string, r Resolver) (string, error) {
	fn, arg, ok := Intrinsic(v)
	if !ok {
		return v, nil
	}
	return t.eval(map[string]any{fn: arg}, r)
}

func (t *Template) eval(v any, r Resolver) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	case map[string]any:
		if len(v) != 1 {
			return "", fmt.Errorf("not an intrinsic function: %v", v)
		}
		for fn, arg := range v {
			s, err := t.call(fn, arg, r)
			if err != nil {
				return "", fmt.Errorf("%s: %w", fn, err)
			}
			return s, nil
		}
	}
	return "", fmt.Errorf("cannot resolve %T %v to a string", v, v)
}

func (t *Template) call(fn string, arg any, r Resolver) (string, error) {
	switch fn {
	case FnRef:
		name, ok := arg.(string)
		if !ok {
			return "", fmt.Errorf("argument %v is not a name", arg)
		}
		return t.ref(name, r)
	case FnGetAtt:
		id, attr, ok := getAttArgs(arg)
		if !ok {
			return "", fmt.Errorf("argument %v is not [id, attribute]", arg)
		}
		return r.GetAtt(id, attr)
	case FnSub:
		return t.sub(arg, r)
	case FnJoin:
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return "", fmt.Errorf("argument %v is not [delimiter, list]", arg)
		}
		delim, ok := a[0].(string)
		if !ok {
			return "", fmt.Errorf("delimiter %v is not a string", a[0])
		}
		parts, err := t.list(a[1], r)
		if err != nil {
			return "", err
		}
		return strings.Join(parts, delim), nil
	case FnSelect:
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return "", fmt.Errorf("argument %v is not [index, list]", arg)
		}
		idx, err := t.eval(a[0], r)
		if err != nil {
			return "", err
		}
		i, err := strconv.Atoi(idx)
		if err != nil {
			return "", fmt.Errorf("index %q: %w", idx, err)
		}
		items, err := t.list(a[1], r)
		if err != nil {
			return "", err
		}
		if i < 0 || i >= len(items) {
			return "", fmt.Errorf("index %d out of a list of %d", i, len(items))
		}
		return items[i], nil
	default:
		return "", errors.New("not supported")
	}
}

// list evaluates a list: a literal one, or a Fn::Split.
func (t *Template) list(v any, r Resolver) ([]string, error) {
	switch v := v.(type) {
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, err := t.eval(e, r)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	case map[string]any:
		if a, ok := v[FnSplit].([]any); ok && len(v) == 1 && len(a) == 2 {
			delim, ok := a[0].(string)
			if !ok {
				return nil, fmt.Errorf("%s: delimiter %v is not a string", FnSplit, a[0])
			}
			src, err := t.eval(a[1], r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", FnSplit, err)
			}
			return strings.Split(src, delim), nil
		}
	}
	return nil, fmt.Errorf("%v is not a list", v)
}

func (t *Template) ref(name string, r Resolver) (string, error) {
	if v, ok := t.Params[name]; ok {
		return v, nil
	}
	if _, declared := t.Parameters[name]; declared {
		return "", fmt.Errorf("%s: %w", name, ErrNoValue)
	}
	return r.Ref(name)
}

// sub evaluates Fn::Sub: "text ${Name} ${Id.Attr} ${!Literal}", with an
// optional map of variables.
func (t *Template) sub(arg any, r Resolver) (string, error) {
	var text string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		text = a
	case []any:
		if len(a) != 2 {
			return "", fmt.Errorf("argument %v is not [text, variables]", arg)
		}
		s, ok1 := a[0].(string)
		m, ok2 := a[1].(map[string]any)
		if !ok1 || !ok2 {
			return "", fmt.Errorf("argument %v is not [text, variables]", arg)
		}
		text = s
		maps.Copy(vars, m)
	default:
		return "", fmt.Errorf("argument %v is not text", arg)
	}

	var b strings.Builder
	for {
		start := strings.Index(text, "${")
		if start < 0 {
			b.WriteString(text)
			return b.String(), nil
		}
		end := strings.Index(text[start:], "}")
		if end < 0 {
			return "", fmt.Errorf("unclosed ${ in %q", text)
		}
		end += start
		b.WriteString(text[:start])
		name := text[start+2 : end]
		text = text[end+1:]

		if lit, ok := strings.CutPrefix(name, "!"); ok {
			b.WriteString("${" + lit + "}")
			continue
		}
		var (
			s   string
			err error
		)
		switch v, ok := vars[name]; {
		case ok:
			s, err = t.eval(v, r)
		case strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::"):
			id, attr, _ := strings.Cut(name, ".")
			s, err = r.GetAtt(id, attr)
		default:
			s, err = t.ref(name, r)
		}
		if err != nil {
			return "", fmt.Errorf("${%s}: %w", name, err)
		}
		b.WriteString(s)
	}
}
