package iamcheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/chronicle-go/chronicle/infra/template"
)

// condition is one operator on one key of a statement's Condition.
type condition struct {
	op       string // StringEquals, StringLike, ... without IfExists
	ifExists bool
	key      string // lower case: condition keys are case-insensitive
	values   []string
}

// operators are the condition operators the check evaluates. Others make
// Policies fail rather than guess.
var operators = map[string]func(pattern, v string) bool{
	"StringEquals":           func(p, v string) bool { return p == v },
	"StringNotEquals":        func(p, v string) bool { return p != v },
	"StringEqualsIgnoreCase": strings.EqualFold,
	"StringLike":             Match,
	"StringNotLike":          func(p, v string) bool { return !Match(p, v) },
}

func conditions(tpl *template.Template, r template.Resolver, c map[string]any) ([]condition, error) {
	var out []condition
	for _, op := range slices.Sorted(maps.Keys(c)) {
		base, ifExists := strings.CutSuffix(op, "IfExists")
		if _, ok := operators[base]; !ok {
			return nil, fmt.Errorf("condition operator %s: the check does not evaluate it (infra/iamcheck)", op)
		}
		keys, ok := c[op].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("condition %s: %v is not a map of keys", op, c[op])
		}
		for _, key := range slices.Sorted(maps.Keys(keys)) {
			var raw []any
			switch v := keys[key].(type) {
			case []any:
				raw = v
			default:
				raw = []any{v}
			}
			cond := condition{op: base, ifExists: ifExists, key: strings.ToLower(key)}
			for _, v := range raw {
				s, ok := v.(string)
				if !ok {
					s = fmt.Sprint(v)
				}
				resolved, err := tpl.Resolve(s, r)
				if err != nil {
					return nil, fmt.Errorf("condition %s %s: %w", op, key, err)
				}
				cond.values = append(cond.values, resolved)
			}
			out = append(out, cond)
		}
	}
	return out, nil
}

// conditionHolds evaluates the statement's conditions on the call's keys,
// as IAM does: every condition must hold; within one, any value may match
// (all must differ for the negated operators); a key the request lacks
// fails the condition unless it is ...IfExists.
func (s statement) conditionHolds(ctx map[string]string) bool {
	for _, c := range s.condition {
		v, ok := lookup(ctx, c.key)
		if !ok {
			if c.ifExists {
				continue
			}
			return false
		}
		match := operators[c.op]
		negated := strings.Contains(c.op, "Not")
		held := negated
		for _, want := range c.values {
			if negated && !match(want, v) {
				held = false
				break
			}
			if !negated && match(want, v) {
				held = true
				break
			}
		}
		if !held {
			return false
		}
	}
	return true
}

func lookup(ctx map[string]string, key string) (string, bool) {
	for k, v := range ctx {
		if strings.ToLower(k) == key {
			return v, true
		}
	}
	return "", false
}
