package iamcheck

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/aws/smithy-go/middleware"

	"github.com/chronicle-go/chronicle/infra/template"
)

// Record is one checked call: the grants that allowed it, or why none did.
type Record struct {
	Call
	Grants []Grant `json:"grants,omitempty"`
	// Denied is the DeniedError's message: "" when the call is granted.
	Denied string `json:"denied,omitempty"`
}

// Sink is told of each distinct checked call once.
type Sink func(Record)

// Checker checks the calls of one stack's functions against their roles.
// It is safe for concurrent use.
type Checker struct {
	policies map[string]*Policy
	arns     *arns
	sinks    []Sink

	mu   sync.Mutex
	seen map[string]bool
}

// NewChecker checks calls against policies (see Policies); account is the
// stack's, for the ARNs of tables and identities that requests name
// without one. Every distinct call goes to the sinks.
func NewChecker(policies map[string]*Policy, account string, sinks ...Sink) *Checker {
	pks := partitionKeys{}
	for _, p := range policies {
		maps.Copy(pks, p.partitionKeys)
	}
	return &Checker{policies: policies, arns: &arns{partition: "aws", account: account, partitionKeys: pks}, sinks: sinks, seen: map[string]bool{}}
}

// APIOptions returns the middleware to add to the aws.Config of the
// function's clients (its APIOptions): every operation they send is
// checked, before it is sent, as the function's role would be.
func (c *Checker) APIOptions(function string) func(*middleware.Stack) error {
	return c.arns.middleware(function, func(_ context.Context, call Call) { c.Check(call) })
}

// Check checks one call and tells the sinks of it, the first time it is seen.
func (c *Checker) Check(call Call) Record {
	rec := Record{Call: call}
	p, ok := c.policies[call.Function]
	switch {
	case !ok:
		rec.Denied = fmt.Sprintf("%s: %s on %s: the template has no function %s with a role", call.Function, call.Action, call.Resource, call.Function)
	case call.Resource == "":
		rec.Denied = fmt.Sprintf("%s: %s (operation %s): the check does not know what resource it acts on; teach infra/iamcheck's recorder", call.Function, call.Action, call.Operation)
	default:
		grants, err := p.Check(call)
		if err != nil {
			rec.Denied = err.Error()
		}
		rec.Grants = grants
	}
	// Calls that differ only in the items they touch (Sets) are one call
	// when the same grants allow them: the log keeps one line per outcome,
	// not one per item. A denial's message names the items.
	grants := make([]string, 0, len(rec.Grants))
	for _, g := range rec.Grants {
		grants = append(grants, g.Key())
	}
	key := strings.Join([]string{call.Function, call.By, call.Action, call.Resource, fmt.Sprint(call.Context),
		strings.Join(grants, " "), rec.Denied}, "\x00")
	c.mu.Lock()
	first := !c.seen[key]
	c.seen[key] = true
	c.mu.Unlock()
	if first {
		for _, s := range c.sinks {
			s(rec)
		}
	}
	return rec
}

// CheckLambda checks the calls Lambda makes with each function's role
// (LambdaCalls), resolved by r, and returns the denied ones as one error.
func (c *Checker) CheckLambda(tpl *template.Template, r template.Resolver) error {
	fns, err := tpl.Functions()
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range fns {
		calls, err := LambdaCalls(tpl, f, r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, call := range calls {
			if rec := c.Check(call); rec.Denied != "" {
				errs = append(errs, errors.New(rec.Denied))
			}
		}
	}
	return errors.Join(errs...)
}

// Functions lists the functions the checker knows, sorted.
func (c *Checker) Functions() []string { return slices.Sorted(maps.Keys(c.policies)) }

// Denials collects the denied calls a checker reports; safe for concurrent use.
type Denials struct {
	mu   sync.Mutex
	msgs []string
}

// Sink is the Sink that collects.
func (d *Denials) Sink(r Record) {
	if r.Denied == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, r.Denied)
}

// Messages returns the denials so far.
func (d *Denials) Messages() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.msgs)
}
