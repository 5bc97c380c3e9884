// Command chronicle is the operator's tool for a Chronicle deployment, in AWS
// or against the local emulators: the audit trail and time travel of a
// user, what-if questions, projection rebuilds, dead-letter queues, a
// consistency audit and local tokens.
//
//	chronicle [global flags] <command> [flags] [args]
//
//	history  <id>                          the events of a user, who caused them and why
//	state    <id> [--at T | --version N]   a user as it was then
//	state    <id> --diff A..B              what changed between two versions, and which events did it
//	users    [--status S] [--limit N]      the live users, newest first (--cursor C: the next page)
//	what-if  <id> [--at T] '<JSON>'        apply a command or an event to a past state; nothing is written
//	rebuild  <projection> [--aggregate ID] rebuild a projection (blue/green, resumable), or one aggregate in place
//	dlq      list|show|redrive <queue>     dead-lettered messages, why they failed, and sending them back
//	audit                                  compare every view with the fold of its events
//	feed     [--after C | --from T] [--follow]  every event of every aggregate, in order
//	relay    redrive [--dry-run]           send again the events of the relay's failed batches, from the feed
//	mail     list|resolve <event-id>       welcome mails held in doubt, settled with --sent or --resend
//	forget   <id> --reason R               erase a user's personal data (destroys its data key)
//	pii      migrate                       seal the personal data written before encryption (run until nothing is left)
//	trace    <request-id>                  one request's spans, API to read model and mail (local runner or X-Ray)
//	token    --sub S [--roles R,...]       mint a local JWT
//
// Global flags (also accepted after the command): --stack (CHRONICLE_STACK)
// names every table and queue as template.yaml does ("<stack>-events",
// "<stack>-projections-dlq.fifo", ...); --events-table, --snapshots-table,
// --readmodel-table (EVENTS_TABLE, SNAPSHOTS_TABLE, READMODEL_TABLE) name
// tables one by one; --json prints JSON instead of text. AWS credentials,
// region and endpoints come from the SDK's default chain, AWS_ENDPOINT_URL
// and AWS_ENDPOINT_URL_<SERVICE> included.
//
// Exit status: 0 done, 1 failed (or the audit found differences), 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// command is one subcommand.
type command struct {
	name    string
	usage   string // after "chronicle <name> "
	summary string
	// flags adds the command's own flags to fs; the returned function runs
	// the command with the positional arguments.
	flags func(fs *flag.FlagSet, app *app) func(ctx context.Context, args []string) error
}

var commands = []command{
	{"history", "<id> [--from N] [--limit N]", "the events of a user or a team (told apart by what is stored): what, when, who and why", historyCmd},
	{"state", "<id> [--at TIME | --version N | --diff A..B]", "a user or a team as it was at a time or version, or what changed between two versions", stateCmd},
	{"users", "[--status active|suspended] [--limit N] [--cursor C]", "the live users from the read model, newest first", usersCmd},
	{"what-if", "<id> [--at TIME] [--actor SUB] '<command or event JSON>'", "apply a command or event to a past state; nothing is written", whatIfCmd},
	{"rebuild", "<projection|all> [--segments N] [--aggregate ID] [--status] [--abort] [--prune] [--restart] [--remote]", "rebuild a projection from the event store", rebuildCmd},
	{"dlq", "list|show|redrive <queue> [<message-id>...]", "inspect dead-lettered messages and send them back", dlqCmd},
	{"audit", "[--segments N] [--recheck DURATION]", "compare every user's view with the fold of its events", auditCmd},
	{"feed", "[--after CURSOR | --from TIME] [--follow] [--poll 1s] [--limit N] | backfill [--segments 4]", "every event of every aggregate in commit order, from the durable feed; backfill: add events written before the feed existed", feedCmd},
	{"relay", "redrive [--dry-run] [--dlq-url URL] [--routes ROUTES]", "send again the events of the batches the relay gave up on (its OnFailure queue), found in the feed", relayCmd},
	{"mail", "list | resolve <event-id> --sent [--note TEXT] | --resend", "welcome mails held in doubt after a crash, and settling them", mailCmd},
	{"forget", "<id> --reason TEXT [--actor SUB]", "the right to be forgotten: delete the user if live, destroy its data key (its personal data reads as null everywhere)", forgetCmd},
	{"pii", "migrate [--segments N]", "upgrade a stack written before encryption: hash plain guard keys, seal plain personal fields in place (resumable)", piiCmd},
	{"trace", "<request-id> [--url URL] [--since 6h]", "the spans of one API request, from the API to the read model and the mail, in one tree", traceCmd},
	{"token", "--sub SUB [--roles R1,R2] [--ttl 1h]", "mint a local HS256 JWT (LOCAL_JWT_SECRET)", tokenCmd},
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	a.fromEnv()
	// Global flags may come first.
	global := flag.NewFlagSet("chronicle", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	a.globalFlags(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		fmt.Fprintln(stderr, "chronicle:", err)
		printUsage(stderr)
		return exitUsage
	}
	rest := global.Args()
	if len(rest) == 0 || rest[0] == "help" {
		printUsage(stdout)
		if len(rest) == 0 {
			return exitUsage
		}
		return exitOK
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == rest[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "chronicle: unknown command %q\n", rest[0])
		printUsage(stderr)
		return exitUsage
	}
	cmd := commands[i]
	fs := flag.NewFlagSet("chronicle "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.globalFlags(fs)
	exec := cmd.flags(fs, a)
	pos, err := parseInterspersed(fs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(stdout, cmd, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "chronicle %s: %v\n", cmd.name, err)
		commandUsage(stderr, cmd, fs)
		return exitUsage
	}
	err = exec(ctx, pos)
	var ue *usageError
	var ex *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "chronicle %s: %v\n", cmd.name, err)
		commandUsage(stderr, cmd, fs)
		return exitUsage
	case errors.As(err, &ex):
		return ex.code
	default:
		fmt.Fprintf(stderr, "chronicle %s: %v\n", cmd.name, err)
		return exitFail
	}
}

// exitError ends a command with a status and nothing more to say (the
// command printed its answer).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// parseInterspersed parses flags that may come before, between and after
// positional arguments ("state <id> --at T"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil // everything after "--" is positional
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: chronicle [--stack NAME | --events-table T ...] [--json] <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run chronicle <command> -h for its flags. Tables and queues come from --stack (CHRONICLE_STACK),")
	fmt.Fprintln(w, "named as template.yaml names them, or one by one (--events-table, EVENTS_TABLE, ...).")
	fmt.Fprintln(w, "AWS credentials, region and endpoints (AWS_ENDPOINT_URL*) come from the SDK's default chain.")
}

func commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: chronicle %s %s\n  %s\n\nflags:\n", c.name, c.usage, c.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// splitList splits "a,b, c" into its non-empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
