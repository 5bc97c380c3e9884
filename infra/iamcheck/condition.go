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
	op       string // StringEquals, StringLike, ... without IfExists or a set qualifier
	set      string // "", forAllValues or forAnyValue
	ifExists bool
	key      string // lower case: condition keys are case-insensitive
	values   []string
}

// The set qualifiers of an operator, for multivalued keys.
const (
	forAllValues = "ForAllValues:"
	forAnyValue  = "ForAnyValue:"
)

// LeadingKeysKey is DynamoDB's multivalued condition key: the partition-key
// values of the items a request touches (the recorder fills it, Call.Sets).
const LeadingKeysKey = "dynamodb:LeadingKeys"

// multivalued are the keys (lower case) that hold a set: tested with a
// plain operator, IAM's result depends on how many values the request
// carries, so the check refuses the statement rather than guess.
var multivalued = map[string]bool{
	strings.ToLower(LeadingKeysKey): true,
	"dynamodb:attributes":           true,
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
		set := ""
		base := op
		for _, q := range []string{forAllValues, forAnyValue} {
			if rest, ok := strings.CutPrefix(op, q); ok {
				set, base = q, rest
			}
		}
		base, ifExists := strings.CutSuffix(base, "IfExists")
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
			cond := condition{op: base, set: set, ifExists: ifExists, key: strings.ToLower(key)}
			if set == "" && multivalued[cond.key] {
				return nil, fmt.Errorf("condition %s %s: %s holds a set of values: test it with %s%s (or %s)", op, key, key, forAllValues, op, forAnyValue)
			}
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
//
// On a multivalued key (Call.Sets) the set qualifiers apply that test to
// each value of the request: ForAllValues holds when every value passes,
// ForAnyValue when at least one does. So ForAllValues holds on an empty set,
// and on a key the request does not carry at all: IAM's rule, and the trap
// of item-scoped grants. A DynamoDB request whose leading keys the recorder
// cannot see (a Scan reads every partition; a Query whose key condition it
// cannot parse) would pass a ForAllValues:StringLike {dynamodb:LeadingKeys:
// [idem#*]} vacuously and reach every item; the recorder marks such a key
// Unknown instead, and a statement that tests an unknown key does not hold
// (fail closed: the call is denied, its message says why). A Scan has no
// leading keys at all: it is always Unknown, never vacuously allowed.
func (s statement) conditionHolds(c Call) bool {
	for _, cond := range s.condition {
		if _, unknown := lookup(c.Unknown, cond.key); unknown {
			return false
		}
		if cond.set != "" {
			if !cond.holdsOnSet(c) {
				return false
			}
			continue
		}
		v, ok := lookup(c.Context, cond.key)
		if !ok {
			if cond.ifExists {
				continue
			}
			return false
		}
		if !cond.holdsOn(v) {
			return false
		}
	}
	return true
}

// holdsOn tests one value of the request: any of the condition's values
// matches it (for a negated operator, none does).
func (c condition) holdsOn(v string) bool {
	match := operators[c.op]
	negated := strings.Contains(c.op, "Not")
	for _, want := range c.values {
		if negated && !match(want, v) {
			return false
		}
		if !negated && match(want, v) {
			return true
		}
	}
	return negated
}

// holdsOnSet tests a set qualifier's condition. A single-valued key of the
// request counts as a set of one.
func (c condition) holdsOnSet(call Call) bool {
	values, ok := lookup(call.Sets, c.key)
	if !ok {
		if v, single := lookup(call.Context, c.key); single {
			values, ok = []string{v}, true
		}
	}
	if c.set == forAllValues {
		// Missing or empty: true, as in IAM (see conditionHolds).
		for _, v := range values {
			if !c.holdsOn(v) {
				return false
			}
		}
		return true
	}
	if !ok && c.ifExists {
		return true
	}
	return slices.ContainsFunc(values, c.holdsOn)
}

func lookup[V any](ctx map[string]V, key string) (V, bool) {
	for k, v := range ctx {
		if strings.ToLower(k) == key {
			return v, true
		}
	}
	var zero V
	return zero, false
}
