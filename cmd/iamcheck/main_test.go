package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/chronicle-go/chronicle/infra/iamcheck"
)

const templatePath = "../../template.yaml"

func TestRun(t *testing.T) {
	check := func(dir string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run([]string{"-template", templatePath, dir}, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	t.Run("nothing recorded fails", func(t *testing.T) {
		if code, _, errOut := check(t.TempDir()); code != 1 || !strings.Contains(errOut, "no call recorded") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("a call not granted fails and says what to add", func(t *testing.T) {
		dir := t.TempDir()
		sink, err := iamcheck.FileSink(dir)
		if err != nil {
			t.Fatal(err)
		}
		sink(iamcheck.Record{Call: iamcheck.Call{Function: "QueriesFunction", Action: "dynamodb:PutItem", Resource: "arn:aws:dynamodb:us-east-1:1:table/t"},
			Denied: "QueriesFunction: dynamodb:PutItem on arn:aws:dynamodb:us-east-1:1:table/t not granted; add to QueriesRole: ..."})
		code, out, errOut := check(dir)
		if code != 1 || !strings.Contains(errOut, "add to QueriesRole") || !strings.Contains(out, "grants no test exercised") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("granted calls pass and the unused grants are listed", func(t *testing.T) {
		dir := t.TempDir()
		sink, err := iamcheck.FileSink(dir)
		if err != nil {
			t.Fatal(err)
		}
		sink(iamcheck.Record{Call: iamcheck.Call{Function: "CommandsFunction", Action: "dynamodb:Query", Resource: "arn:aws:dynamodb:us-east-1:1:table/s-events"},
			Grants: []iamcheck.Grant{{Role: "CommandsRole", Statement: 1, Sid: "EventStore", Action: "dynamodb:Query", Resource: "!GetAtt EventsTable.Arn"}}})
		code, out, errOut := check(dir)
		if code != 0 || !strings.Contains(out, "CommandsRole statement EventStore: dynamodb:PutItem on !GetAtt EventsTable.Arn") ||
			strings.Contains(out, "CommandsRole statement EventStore: dynamodb:Query") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
}
