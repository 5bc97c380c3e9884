// Package template reads template.yaml, the SAM template that declares the
// service: its functions with their routes and event sources, its tables and
// queues, and the IAM roles of the functions. Tests check the template with
// it, and the local runner serves the template with it, without AWS.
//
// Parsing is goformation's (github.com/awslabs/goformation/v7), with two
// adjustments, because goformation's defaults lose what the runner needs:
//
//   - Intrinsic functions are kept, not resolved: goformation resolves Ref
//     only to parameter defaults and turns Fn::GetAtt and every Ref to a
//     resource into nil. Load resolves parameters (defaults, or the values
//     given with WithParameters) and conditions (so Fn::If picks its branch),
//     and keeps Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select and Fn::Split
//     in goformation's encoded form. Resolve evaluates them once the caller
//     knows the physical names; Intrinsic decodes them.
//   - goformation decodes resources strictly and its SAM schema predates
//     properties such as LoggingConfig, FunctionResponseTypes and structured
//     GatewayResponses. Load drops the top-level properties goformation cannot
//     decode from its typed view (Unmodeled lists them) and keeps every
//     resource's raw properties, from which Functions reads event sources.
//
// Resource-level Condition attributes are not supported: goformation's
// condition evaluation replaces such a resource with a boolean. The template
// uses Fn::If inside properties instead.
package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// Template is a parsed template: goformation's typed view, plus what
// goformation does not model.
type Template struct {
	*cloudformation.Template

	// Params holds the value of every parameter that has one: its default,
	// or the value given with WithParameters.
	Params map[string]string
	// Unmodeled lists, per logical id ("Globals.Function" for globals), the
	// top-level properties left out of the typed view because goformation's
	// schema does not know them. They are still in the raw properties.
	Unmodeled map[string][]string

	raw     map[string]rawResource
	globals map[string]map[string]json.RawMessage
}

// rawResource is a resource as the template writes it, after intrinsic
// processing.
type rawResource struct {
	Type       string                     `json:"Type"`
	Properties map[string]json.RawMessage `json:"Properties"`
}

type options struct {
	params map[string]string
}

// Option tunes Load.
type Option func(*options)

// WithParameters sets parameter values, as sam deploy --parameter-overrides
// does. Unknown names, and values outside a parameter's AllowedValues, are
// errors.
func WithParameters(p map[string]string) Option {
	return func(o *options) {
		if o.params == nil {
			o.params = map[string]string{}
		}
		maps.Copy(o.params, p)
	}
}

// Load parses the SAM template at path.
func Load(path string, opts ...Option) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a SAM template in YAML or JSON. It is safe for concurrent use.
func Parse(data []byte, opts ...Option) (*Template, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}

	// Pass 1, nothing resolved: the parameters, to resolve Refs to them in pass 2.
	plain, err := JSON(data)
	if err != nil {
		return nil, err
	}
	params, err := parameterValues(plain, o.params)
	if err != nil {
		return nil, err
	}

	// Pass 2: parameters and conditions resolved, other intrinsics kept.
	processed, err := processYAML(data, &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: handlers(params),
		EvaluateConditions:        true,
	})
	if err != nil {
		return nil, err
	}

	var doc map[string]json.RawMessage
	if err := json.Unmarshal(processed, &doc); err != nil {
		return nil, fmt.Errorf("decode template: %w", err)
	}
	t := &Template{Params: params, Unmodeled: map[string][]string{}}
	if err := decodeOptional(doc["Resources"], &t.raw); err != nil {
		return nil, fmt.Errorf("decode resources: %w", err)
	}
	if err := decodeOptional(doc["Globals"], &t.globals); err != nil {
		return nil, fmt.Errorf("decode globals: %w", err)
	}
	typedDoc, err := t.typedView(doc)
	if err != nil {
		return nil, err
	}
	t.Template = &cloudformation.Template{}
	if err := json.Unmarshal(typedDoc, t.Template); err != nil {
		return nil, fmt.Errorf("decode template: %w", err)
	}
	return t, nil
}

// JSON returns a template in YAML or JSON as JSON, every intrinsic left as
// written ({"Fn::GetAtt": ...}): for reading what the model does not.
func JSON(data []byte) ([]byte, error) {
	return processYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
}

// intrinsicsMu serializes goformation's intrinsic processing, which
// registers its YAML tag handlers in package-level maps on every call: two
// templates parsed at once would race.
var intrinsicsMu sync.Mutex

func processYAML(data []byte, opts *intrinsics.ProcessorOptions) ([]byte, error) {
	intrinsicsMu.Lock()
	defer intrinsicsMu.Unlock()
	return intrinsics.ProcessYAML(data, opts)
}

func decodeOptional(raw json.RawMessage, v any) error {
	if raw == nil {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// parameterValues returns the value of every parameter that has one.
func parameterValues(plain []byte, overrides map[string]string) (map[string]string, error) {
	var doc struct {
		Parameters map[string]struct {
			Default       any   `json:"Default"`
			AllowedValues []any `json:"AllowedValues"`
		} `json:"Parameters"`
	}
	if err := json.Unmarshal(plain, &doc); err != nil {
		return nil, fmt.Errorf("decode parameters: %w", err)
	}
	values := map[string]string{}
	for name, p := range doc.Parameters {
		if p.Default != nil {
			values[name] = scalar(p.Default)
		}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		p, ok := doc.Parameters[name]
		if !ok {
			errs = append(errs, fmt.Errorf("parameter %s: not declared by the template", name))
			continue
		}
		v := overrides[name]
		if len(p.AllowedValues) > 0 && !slices.ContainsFunc(p.AllowedValues, func(a any) bool { return scalar(a) == v }) {
			errs = append(errs, fmt.Errorf("parameter %s: %q is not one of its allowed values", name, v))
			continue
		}
		values[name] = v
	}
	return values, errors.Join(errs...)
}

// scalar renders a YAML scalar as CloudFormation passes a parameter: a string.
func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	default:
		return fmt.Sprint(v)
	}
}

var (
	unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)
	// typeErrorField matches encoding/json's UnmarshalTypeError.Field of a
	// property: "Properties.Name" or "Properties.Name.Nested".
	typeErrorField = regexp.MustCompile(`^Properties\.([^.]+)`)
)

// maxUnmodeled bounds the properties dropped from one resource.
const maxUnmodeled = 20

// typedView returns the document with the top-level properties that
// goformation cannot decode removed, recording them in t.Unmodeled.
func (t *Template) typedView(doc map[string]json.RawMessage) ([]byte, error) {
	out := maps.Clone(doc)
	types := cloudformation.AllResources()

	// Whole resources, with Metadata, DependsOn and the policies.
	var whole map[string]map[string]json.RawMessage
	if err := decodeOptional(doc["Resources"], &whole); err != nil {
		return nil, fmt.Errorf("decode resources: %w", err)
	}
	resources := map[string]json.RawMessage{}
	for _, id := range slices.Sorted(maps.Keys(t.raw)) {
		r := t.raw[id]
		if _, ok := types[r.Type]; !ok {
			continue // a type goformation does not know: raw only
		}
		res := maps.Clone(whole[id])
		props := maps.Clone(r.Properties)
		for {
			p, err := json.Marshal(props)
			if err != nil {
				return nil, fmt.Errorf("resource %s: %w", id, err)
			}
			res["Properties"] = p
			body, err := json.Marshal(res)
			if err != nil {
				return nil, fmt.Errorf("resource %s: %w", id, err)
			}
			err = json.Unmarshal(body, cloudformation.AllResources()[r.Type])
			if err == nil {
				resources[id] = body
				break
			}
			name := offendingProperty(err, props)
			if name == "" || len(t.Unmodeled[id]) >= maxUnmodeled {
				return nil, fmt.Errorf("resource %s (%s): %w", id, r.Type, err)
			}
			delete(props, name)
			t.Unmodeled[id] = append(t.Unmodeled[id], name)
		}
	}
	body, err := json.Marshal(resources)
	if err != nil {
		return nil, err
	}
	out["Resources"] = body

	// goformation's globals decode leniently; keep them as they are.
	return json.Marshal(out)
}

// offendingProperty names the top-level property of props that err is about,
// or "" when err is about something else.
func offendingProperty(err error, props map[string]json.RawMessage) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if m := typeErrorField.FindStringSubmatch(typeErr.Field); m != nil {
			if _, ok := props[m[1]]; ok {
				return m[1]
			}
		}
		return ""
	}
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		if _, ok := props[m[1]]; ok {
			return m[1]
		}
	}
	return ""
}
