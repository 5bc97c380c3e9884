package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/rebuild"
)

// piiCmd: chronicle pii migrate [--segments N]. Upgrades a stack whose
// events were written before encryption (dynamo.Migrate): plain guard keys
// become hashed ones, plain personal fields of events and snapshots are
// sealed in place (a forgotten user's become null). Safe to run again and
// while the service runs; run it until it reports nothing left. It runs as
// the operator: none of its calls is granted to the service's functions.
func piiCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	segments := fs.Int("segments", 4, "parallel scan segments per table (1..64)")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 || args[0] != "migrate" {
			return usagef("usage: chronicle pii migrate [--segments N]")
		}
		if *segments < 1 || *segments > rebuild.MaxSegments {
			return usagef("--segments must be 1..%d", rebuild.MaxSegments)
		}
		st, err := a.sealedTables(ctx, "deploy the version that encrypts personal data first")
		if err != nil {
			return err
		}
		ddb, c, events, guards := st.ddb, st.cipher, st.events, st.guards
		tables := dynamo.Tables{Events: events, Guards: guards, Snapshots: a.snapshots()}
		// Whether a user still holds a plain claim: its current state,
		// read through the sealing store (plain or sealed, both open).
		users := user.NewService(dynamo.New(ddb, dynamo.Tables{Events: events, Guards: guards}, dynamo.WithCipher(c)), es.Options{})
		holds := func(ctx context.Context, owner, key string) (bool, error) {
			agg, err := users.Load(ctx, owner)
			if err != nil {
				return false, err
			}
			return slices.Contains(user.Unique(agg.State), key), nil
		}
		r, err := dynamo.Migrate(ctx, ddb, tables, c, holds, *segments, nil)
		if err != nil {
			return err
		}
		slices.Sort(r.Guards.Conflicting)
		if a.asJSON {
			if err := a.printJSON(struct {
				dynamo.MigrateReport
				Left bool `json:"left"`
			}{r, r.Left()}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(a.stdout, "guards:    %d moved to hashed keys, %d stale deleted, %d changed meanwhile, %d in conflict (of %d plain or hashed claims)\n",
				r.Guards.Done, r.Guards.Stale, r.Guards.Skipped, r.Guards.Conflicts, r.Guards.Scanned)
			fmt.Fprintf(a.stdout, "events:    %d sealed, %d changed meanwhile (of %d scanned)\n", r.Events.Done, r.Events.Skipped, r.Events.Scanned)
			fmt.Fprintf(a.stdout, "snapshots: %d sealed, %d changed meanwhile (of %d scanned)\n", r.Snapshots.Done, r.Snapshots.Skipped, r.Snapshots.Scanned)
			if r.Left() {
				fmt.Fprintln(a.stdout, "run it again: it wrote or skipped something, the next run checks that nothing is left")
			} else {
				fmt.Fprintln(a.stdout, "nothing left to migrate")
			}
		}
		if n := r.Guards.Conflicts; n > 0 {
			return fmt.Errorf("%d plain claims are held, hashed, by another user (claimed during the upgrade); their owners: %s. Settle each (change one user's email), then run again",
				n, strings.Join(r.Guards.Conflicting, ", "))
		}
		return nil
	}
}
