// Command iamcheck reads the AWS calls that the test processes of make test
// checked against template.yaml's roles (infra/iamcheck, written to the
// directory $CHRONICLE_IAM_LOG) and reports, for the whole run: the calls a
// role did not grant (exit status 1), and the grants that no call used,
// apart from those only Lambda itself uses (event source mappings, logs).
//
//	go run ./cmd/iamcheck [-template template.yaml] [-v] <dir>
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/chronicle-go/chronicle/infra/iamcheck"
	"github.com/chronicle-go/chronicle/infra/template"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// placeholders stand for the parameters that have no default: the
// statements' resources may name them.
var placeholders = map[string]string{
	"JwtIssuer":   "https://issuer.example",
	"JwksUrl":     "https://issuer.example/.well-known/jwks.json",
	"EmailSender": "no-reply@example.com",
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("iamcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("template", "template.yaml", "the SAM template whose roles were checked")
	verbose := fs.Bool("v", false, "also list the grants that were used")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: iamcheck [-template template.yaml] [-v] <dir of the recorded calls>")
		return 2
	}
	tpl, err := template.Load(*path, template.WithParameters(placeholders))
	if err != nil {
		fmt.Fprintln(stderr, "iamcheck:", err)
		return 1
	}
	records, files, err := iamcheck.ReadLog(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "iamcheck:", err)
		return 1
	}
	if len(records) == 0 {
		fmt.Fprintf(stderr, "iamcheck: no call recorded in %s: did the tests run with %s set (make test sets it)?\n", fs.Arg(0), iamcheck.LogDirEnv)
		return 1
	}
	sum, err := iamcheck.Summarize(tpl, records)
	if err != nil {
		fmt.Fprintln(stderr, "iamcheck:", err)
		return 1
	}
	fmt.Fprintf(stdout, "iamcheck: %d distinct AWS calls, from %d test processes, checked against the roles of %s\n",
		sum.Calls, files, *path)
	if *verbose {
		fmt.Fprintln(stdout, "grants used by the functions' code:")
		for _, g := range sum.ByCode {
			fmt.Fprintln(stdout, "  "+g.String())
		}
	}
	fmt.Fprintln(stdout, "grants used only by Lambda itself (event source mappings, logs, tracing), checked from the template:")
	for _, g := range sum.ByLambdaOnly {
		fmt.Fprintln(stdout, "  "+g.String())
	}
	if len(sum.Unused) == 0 {
		fmt.Fprintln(stdout, "grants no test exercised: none")
	} else {
		fmt.Fprintln(stdout, "grants no test exercised (least privilege: remove them, or test the path that needs them):")
		for _, g := range sum.Unused {
			fmt.Fprintln(stdout, "  "+g.String())
		}
	}
	if len(sum.Denied) > 0 {
		fmt.Fprintf(stderr, "iamcheck: %d calls not granted by their function's role in %s:\n", len(sum.Denied), *path)
		for _, d := range sum.Denied {
			fmt.Fprintln(stderr, d)
		}
		return 1
	}
	fmt.Fprintln(stdout, "iamcheck: every call granted")
	return 0
}
