package iamcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/smithy-go/middleware"

	"github.com/chronicle-go/chronicle/infra/template"
)

// TestAccount is the account of the stack ForTest checks against: moto's
// default, which its queue URLs carry, and the one the table ARNs that
// requests name without an account are given.
const TestAccount = "123456789012"

// testPlaceholders stand for the template's parameters that have no
// default (as cmd/iamcheck's do); names may set them (EmailSender, say).
var testPlaceholders = map[string]string{
	"JwtIssuer":   "https://issuer.example",
	"JwksUrl":     "https://issuer.example/.well-known/jwks.json",
	"EmailSender": "no-reply@example.com",
}

// ForTest is the IAM check for a package test that builds a function's
// handler itself, outside the local runner: the middleware to add to the
// APIOptions of the SDK clients handed to that handler (and only to them:
// not the test's own clients that stand in for Lambda or drive the load).
// Every call they make is checked against function's role in the
// repository's template.yaml, resolved for a stack in region whose tables
// and queues are named by names (logical id -> the test's physical name;
// "EventsTable.StreamArn" -> the emulator's stream ARN; a template
// parameter's name -> its value, EmailSender say). The calls go to the
// sinks of EnvSinks (make test's $CHRONICLE_IAM_LOG), and a call the role
// does not grant fails tb when the test ends, with the check's message.
func ForTest(tb testing.TB, region, function string, names map[string]string) func(*middleware.Stack) error {
	tb.Helper()
	checker, err := testChecker(region, names, tb)
	if err != nil {
		tb.Fatalf("IAM check for %s: %v", function, err)
	}
	if _, ok := checker.policies[function]; !ok {
		tb.Fatalf("IAM check: template.yaml has no function %s (it has %s)", function, strings.Join(checker.Functions(), ", "))
	}
	return checker.APIOptions(function)
}

func testChecker(region string, names map[string]string, tb testing.TB) (*Checker, error) {
	path, err := repositoryTemplate()
	if err != nil {
		return nil, err
	}
	tpl, err := template.Load(path, template.WithParameters(testPlaceholders))
	if err != nil {
		return nil, err
	}
	params := map[string]string{}
	for k, v := range names {
		if _, ok := tpl.Parameters[k]; ok {
			params[k] = v
		}
	}
	if len(params) > 0 {
		if tpl, err = template.Load(path, template.WithParameters(testPlaceholders), template.WithParameters(params)); err != nil {
			return nil, err
		}
	}
	stack, err := NewStack(tpl, "test", region, TestAccount)
	if err != nil {
		return nil, err
	}
	for k, v := range names {
		if _, ok := params[k]; ok {
			continue
		}
		if err := stack.SetName(k, v); err != nil {
			return nil, err
		}
	}
	policies, err := Policies(tpl, stack)
	if err != nil {
		return nil, err
	}
	sinks, err := EnvSinks()
	if err != nil {
		return nil, err
	}
	// Denials are reported when the test ends: the handlers' goroutines
	// are done by then, and a denial does not stop the call, so the test
	// runs on to show what else its role lacks.
	denied := &Denials{}
	tb.Cleanup(func() {
		for _, msg := range denied.Messages() {
			tb.Errorf("IAM check: %s", msg)
		}
	})
	return NewChecker(policies, TestAccount, append(sinks, denied.Sink)...), nil
}

// repositoryTemplate finds template.yaml in the module's root, above the
// test's working directory (its package's directory).
func repositoryTemplate() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			path := filepath.Join(dir, "template.yaml")
			if _, err := os.Stat(path); err != nil {
				return "", fmt.Errorf("the module's root %s has no template.yaml: %w", dir, err)
			}
			return path, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
