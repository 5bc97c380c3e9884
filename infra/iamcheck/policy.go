package iamcheck

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/chronicle-go/chronicle/infra/template"
)

// Call is one request as IAM authorizes it: an action on a resource.
type Call struct {
	Function string `json:"function"` // logical id of the function whose role is used
	Action   string `json:"action"`   // "dynamodb:GetItem"
	// Resource is an ARN, or "*" for an action that has no resource-level
	// permission (dynamodb:ListStreams, sqs:ListQueues, ...).
	Resource string `json:"resource"`
	// Context holds the condition keys of the request that a statement's
	// Condition may test (ses:FromAddress).
	Context map[string]string `json:"context,omitempty"`
	// Sets holds the multivalued condition keys of the request, which a
	// statement tests with ForAllValues: or ForAnyValue:. The one the
	// recorder fills is LeadingKeysKey: the partition-key values of the
	// items the call touches, present (possibly empty) for every item
	// action on a table whose partition key the check knows.
	Sets map[string][]string `json:"sets,omitempty"`
	// Unknown names the multivalued keys the recorder could not determine
	// (a Scan's leading keys, a Query whose key condition it cannot read),
	// with why. A statement that tests such a key does not hold: see
	// statement.conditionHolds.
	Unknown map[string]string `json:"unknown,omitempty"`
	// By is "" for a call of the function's code, ByLambda for one that
	// Lambda makes with the function's role (see LambdaCalls).
	By string `json:"by,omitempty"`
	// Operation is the SDK operation that made the call ("TransactWriteItems"),
	// when it differs from the action's name.
	Operation string `json:"operation,omitempty"`
}

// ByLambda marks the calls Lambda makes with a function's role.
const ByLambda = "lambda"

// Grant is one action on one resource of one statement, as the template
// writes them: the unit that least privilege counts.
type Grant struct {
	Role      string `json:"role"`
	Statement int    `json:"statement"` // index among the role's statements
	Sid       string `json:"sid,omitempty"`
	Action    string `json:"action"`
	// ResourceIndex is the position of the resource in the statement.
	ResourceIndex int `json:"resourceIndex"`
	// Resource is the resource as the template writes it: "!GetAtt ReadModelTable.Arn".
	Resource string `json:"resource"`
}

// Key identifies a grant across processes and stacks: the resource's
// rendering may differ with the template's parameters, its position not.
func (g Grant) Key() string {
	return fmt.Sprintf("%s/%d/%s/%d", g.Role, g.Statement, strings.ToLower(g.Action), g.ResourceIndex)
}

func (g Grant) String() string {
	return fmt.Sprintf("%s statement %s: %s on %s", g.Role, g.statementName(), g.Action, g.Resource)
}

func (g Grant) statementName() string {
	if g.Sid != "" {
		return g.Sid
	}
	return fmt.Sprintf("#%d", g.Statement+1)
}

// Policy is what a function's role allows, its resources resolved to the
// names of one stack.
type Policy struct {
	Function string // logical id
	Role     string // logical id of its AWS::IAM::Role
	stmts    []statement
	// written renders a resolved ARN as the template would write it, for
	// the messages; see newRenderer.
	written func(arn string) string
	// partitionKeys of the stack's tables (shared by the policies of one
	// stack), for the recorder's leading keys.
	partitionKeys partitionKeys
}

type statement struct {
	index     int
	sid       string
	deny      bool
	actions   []string
	resources []string // resolved
	rendered  []string // as written
	condition []condition
}

// Policies returns the policy of every function of tpl, keyed by logical
// id, with the roles' resources resolved by r. A function without a Role
// (a SAM Policies list) is an error: the template gives every function a
// role of its own.
func Policies(tpl *template.Template, r template.Resolver) (map[string]*Policy, error) {
	fns, err := tpl.Functions()
	if err != nil {
		return nil, err
	}
	sts, err := tpl.Statements()
	if err != nil {
		return nil, err
	}
	byRole := map[string][]template.Statement{}
	for _, s := range sts {
		byRole[s.Role] = append(byRole[s.Role], s)
	}
	written := newRenderer(tpl, r)
	pks, err := tablePartitionKeys(tpl, r)
	if err != nil {
		return nil, err
	}
	out := map[string]*Policy{}
	for _, f := range fns {
		role := template.Target(f.Role)
		if role == "" {
			return nil, fmt.Errorf("function %s: Role %q is not a Fn::GetAtt of a role of the template", f.Name, f.Role)
		}
		p := &Policy{Function: f.Name, Role: role, written: written, partitionKeys: pks}
		for i, s := range byRole[role] {
			st, err := resolveStatement(tpl, r, i, s)
			if err != nil {
				return nil, fmt.Errorf("role %s, statement %s: %w", role, sidOr(s.Sid, i), err)
			}
			p.stmts = append(p.stmts, st)
		}
		out[f.Name] = p
	}
	return out, nil
}

func sidOr(sid string, i int) string {
	if sid != "" {
		return sid
	}
	return fmt.Sprintf("#%d", i+1)
}

func resolveStatement(tpl *template.Template, r template.Resolver, i int, s template.Statement) (statement, error) {
	if len(s.NotActions) > 0 || len(s.NotResources) > 0 {
		return statement{}, errors.New("NotAction and NotResource are not supported")
	}
	st := statement{index: i, sid: s.Sid, actions: s.Actions}
	switch s.Effect {
	case "Allow":
	case "Deny":
		st.deny = true
	default:
		return statement{}, fmt.Errorf("Effect %q", s.Effect)
	}
	for _, res := range s.Resources {
		v, err := tpl.Resolve(res, r)
		if err != nil {
			return statement{}, fmt.Errorf("resource %s: %w", Render(res), err)
		}
		st.resources = append(st.resources, v)
		st.rendered = append(st.rendered, Render(res))
	}
	conds, err := conditions(tpl, r, s.Condition)
	if err != nil {
		return statement{}, err
	}
	st.condition = conds
	return st, nil
}

// Check returns the grants that allow c, or a *DeniedError that says which
// statement to add.
func (p *Policy) Check(c Call) ([]Grant, error) {
	var grants []Grant
	for _, s := range p.stmts {
		if !s.conditionHolds(c) {
			continue
		}
		for _, a := range s.actions {
			if !matchAction(a, c.Action) {
				continue
			}
			for j, res := range s.resources {
				if !Match(res, c.Resource) {
					continue
				}
				if s.deny {
					return nil, &DeniedError{Call: c, Role: p.Role, explicit: true, statement: s.name()}
				}
				grants = append(grants, Grant{Role: p.Role, Statement: s.index, Sid: s.sid, Action: a, ResourceIndex: j, Resource: s.rendered[j]})
			}
		}
	}
	if len(grants) == 0 {
		return nil, p.denied(c)
	}
	return grants, nil
}

func (s statement) name() string { return sidOr(s.sid, s.index) }

// DeniedError is a call that the function's role does not grant.
type DeniedError struct {
	Call Call
	Role string
	// Suggestion is the statement to add (YAML, as the template writes it).
	Suggestion string
	// Extend names a statement of the role that grants other actions on
	// the same resource: adding the action there is the smallest change.
	Extend    string
	explicit  bool
	statement string
}

func (e *DeniedError) Error() string {
	by := ""
	if e.Call.By == ByLambda {
		by = " (by Lambda for it)"
	}
	by += e.Call.items()
	if e.explicit {
		return fmt.Sprintf("%s: %s on %s%s denied by %s statement %s", e.Call.Function, e.Call.Action, e.Call.Resource, by, e.Role, e.statement)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s on %s%s not granted; ", e.Call.Function, e.Call.Action, e.Call.Resource, by)
	if e.Extend != "" {
		fmt.Fprintf(&b, "add %s to the Action of %s statement %s, or ", e.Call.Action, e.Role, e.Extend)
	}
	fmt.Fprintf(&b, "add to %s:\n%s", e.Role, e.Suggestion)
	return b.String()
}

// items says which items a call touches, for a denial's message: its
// leading keys, or why the check could not know them.
func (c Call) items() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(c.Sets)) {
		fmt.Fprintf(&b, " (%s %q)", k, c.Sets[k])
	}
	for _, k := range slices.Sorted(maps.Keys(c.Unknown)) {
		fmt.Fprintf(&b, " (%s unknown: %s)", k, c.Unknown[k])
	}
	return b.String()
}

func (p *Policy) denied(c Call) *DeniedError {
	res := p.written(c.Resource)
	e := &DeniedError{Call: c, Role: p.Role}
	e.Suggestion = fmt.Sprintf("  - Effect: Allow\n    Action: [%s]\n    Resource: %s", c.Action, res)
	if len(c.Context) > 0 {
		var conds []string
		for _, k := range slices.Sorted(maps.Keys(c.Context)) {
			conds = append(conds, fmt.Sprintf("%s: %q", k, c.Context[k]))
		}
		e.Suggestion += fmt.Sprintf("\n    Condition: {StringEquals: {%s}}", strings.Join(conds, ", "))
	}
	if prefixes := keyPrefixes(c.Sets[LeadingKeysKey]); len(prefixes) > 0 {
		e.Suggestion += fmt.Sprintf("\n    # where the role's items are only these: Condition: {ForAllValues:StringLike: {%s: [%s]}}",
			LeadingKeysKey, strings.Join(prefixes, ", "))
	}
	for _, s := range p.stmts {
		if !s.deny && s.conditionHolds(c) && slices.ContainsFunc(s.resources, func(r string) bool { return Match(r, c.Resource) }) {
			e.Extend = s.name()
			break
		}
	}
	return e
}

// keyPrefixes are the patterns "idem#*" of the leading keys' prefixes (up
// to the first "#"), for the suggestion of an item-scoped statement; none
// when a key has no such prefix (a bare id: nothing to scope by).
func keyPrefixes(keys []string) []string {
	var out []string
	for _, k := range keys {
		prefix, _, ok := strings.Cut(k, "#")
		if !ok || prefix == "" {
			return nil
		}
		out = append(out, fmt.Sprintf("%q", prefix+"#*"))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// matchAction matches an action pattern of a statement: case-insensitive,
// with wildcards.
func matchAction(pattern, action string) bool {
	return Match(strings.ToLower(pattern), strings.ToLower(action))
}

// Match reports whether s matches the IAM pattern: "*" stands for any run
// of characters (":" and "/" included), "?" for one character.
func Match(pattern, s string) bool {
	// Iterative glob with backtracking to the last star.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
