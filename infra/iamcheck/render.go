package iamcheck

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/chronicle-go/chronicle/infra/template"
)

// Render writes a value that template.Load kept (a literal or an encoded
// intrinsic) in the template's short form: !GetAtt T.Arn, !Ref X, !Sub "...".
func Render(v string) string {
	fn, arg, ok := template.Intrinsic(v)
	if !ok {
		return quote(v)
	}
	return renderCall(fn, arg)
}

func renderCall(fn string, arg any) string {
	short := "!" + strings.TrimPrefix(fn, "Fn::")
	switch fn {
	case template.FnGetAtt:
		if a, ok := arg.([]any); ok && len(a) == 2 {
			return fmt.Sprintf("!GetAtt %v.%v", a[0], a[1])
		}
	case template.FnRef:
		return fmt.Sprintf("!Ref %v", arg)
	}
	return short + " " + renderValue(arg)
}

func renderValue(v any) string {
	switch v := v.(type) {
	case string:
		return quote(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = renderValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		if len(v) == 1 {
			for fn, arg := range v {
				if strings.HasPrefix(fn, "Fn::") || fn == template.FnRef {
					return renderCall(fn, arg)
				}
			}
		}
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, k+": "+renderValue(v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// quote writes a string as YAML would need it: bare when it is safe.
func quote(s string) string {
	if s == "*" || strings.ContainsAny(s, ":{}[],&*#?|<>=!%@`'\" ") || s == "" {
		return strconv.Quote(s)
	}
	return s
}

// newRenderer returns a function that writes a resolved ARN as the template
// would: !GetAtt of the table, stream or queue it is, a !Sub for an index,
// or the literal.
func newRenderer(tpl *template.Template, r template.Resolver) func(string) string {
	known := map[string]string{}
	if tables, err := tpl.Tables(); err == nil {
		for _, t := range tables {
			if arn, err := r.GetAtt(t.Name, "Arn"); err == nil {
				known[arn] = fmt.Sprintf("!GetAtt %s.Arn", t.Name)
				known[arn+"/index/*"] = fmt.Sprintf("!Sub \"${%s.Arn}/index/*\"", t.Name)
			}
			if t.StreamViewType != "" {
				if arn, err := r.GetAtt(t.Name, "StreamArn"); err == nil {
					known[arn] = fmt.Sprintf("!GetAtt %s.StreamArn", t.Name)
				}
			}
		}
	}
	if queues, err := tpl.Queues(); err == nil {
		for _, q := range queues {
			if arn, err := r.GetAtt(q.Name, "Arn"); err == nil {
				known[arn] = fmt.Sprintf("!GetAtt %s.Arn", q.Name)
			}
		}
	}
	return func(arn string) string {
		if w, ok := known[arn]; ok {
			return w
		}
		// An index of a table: grant the table's indexes.
		if table, _, ok := strings.Cut(arn, "/index/"); ok {
			if w, ok := known[table+"/index/*"]; ok {
				return w
			}
		}
		return quote(arn)
	}
}
