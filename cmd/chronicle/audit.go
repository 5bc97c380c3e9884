package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/chronicle-go/chronicle/infra/auth"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/feed"
	"github.com/chronicle-go/chronicle/infra/notifier"
	"github.com/chronicle-go/chronicle/infra/rebuild"
	"github.com/chronicle-go/chronicle/infra/service"
)

func auditCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	segments := fs.Int("segments", rebuild.DefaultSegments, "parallel scan segments (1..64)")
	recheck := fs.Duration("recheck", 2*time.Second, "wait, then compare each difference again, so that a view only catching up is not reported (0: no recheck)")
	complete := fs.Bool("feed", false, "instead: check that every event of the feed reached every subscriber (projections' applied versions, welcome mails sent)")
	window := fs.Duration("window", dynamo.FeedWindow, "with --feed, how far behind now the feed is read")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("audit takes no argument")
		}
		if *complete {
			return a.auditFeed(ctx, *window)
		}
		if *segments < 1 || *segments > rebuild.MaxSegments {
			return usagef("--segments must be 1..%d", rebuild.MaxSegments)
		}
		rb, _, err := a.rebuilder(ctx)
		if err != nil {
			return err
		}
		rep, err := rb.Audit(ctx, rebuild.AuditOptions{Segments: *segments, Recheck: *recheck})
		if err != nil {
			return err
		}
		if a.asJSON {
			if rep.Differences == nil {
				rep.Differences = []rebuild.Difference{}
			}
			if err := a.printJSON(rep); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(a.stdout, "audited %s aggregates (%s events) against %s (the first at generation %d): %d difference(s)\n",
				count(rep.Aggregates), count(rep.Events), strings.Join(rb.Projections(), ", "), rep.Generation, len(rep.Differences))
			for _, d := range rep.Differences {
				fmt.Fprintf(a.stdout, "  %s  %-8s event store v%d, row v%d", d.AggregateID, d.Kind, d.StoreVersion, d.ViewVersion)
				if d.Detail != "" {
					fmt.Fprintf(a.stdout, ": %s", d.Detail)
				}
				fmt.Fprintln(a.stdout)
				for _, f := range d.Fields {
					fmt.Fprintf(a.stdout, "      %s: want %s, got %s\n", f.Field, f.Want, f.Got)
				}
			}
			if len(rep.Differences) > 0 {
				fmt.Fprintln(a.stdout, "\nRepair one aggregate with: chronicle rebuild <projection> --aggregate <id> (or all); rebuild all with: chronicle rebuild all")
			}
		}
		if len(rep.Differences) > 0 {
			return &exitError{code: exitFail}
		}
		return nil
	}
}

// auditFeed reports the events of the feed that some subscriber has not
// taken in: exit status 1 when there are any.
func (a *app) auditFeed(ctx context.Context, window time.Duration) error {
	if window < 0 {
		return usagef("--window must be at least 0")
	}
	if _, _, err := a.eventStore(ctx); err != nil {
		return err
	}
	rm, err := a.readModelStore(ctx)
	if err != nil {
		return err
	}
	events, _ := a.events()
	reader := dynamo.New(a.ddb, dynamo.Tables{Events: events}, dynamo.WithFeedWindow(window))
	rep, err := feed.AuditCompleteness(ctx, reader, feed.Stores{Views: rm, Mails: notifier.NewMails(a.ddb, rm.Table())}, service.Projections(), dynamo.FeedCursor{})
	if err != nil {
		return err
	}
	if a.asJSON {
		if rep.Missing == nil {
			rep.Missing = []feed.Missing{}
		}
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "audited %s events of %s aggregates in the feed against every subscriber: %d missing\n",
			count(int64(rep.Events)), count(int64(rep.Aggregates)), len(rep.Missing))
		for _, m := range rep.Missing {
			fmt.Fprintf(a.stdout, "  %-14s %s v%d  %s %s\n", m.Subscriber, m.AggregateID, m.Version, m.Detail, m.EventID)
		}
		if len(rep.Missing) > 0 {
			fmt.Fprintln(a.stdout, "\nSend the events again with: chronicle relay redrive (failed relay batches), or chronicle rebuild (a projection)")
		}
	}
	if len(rep.Missing) > 0 {
		return &exitError{code: exitFail}
	}
	return nil
}

func tokenCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	sub := fs.String("sub", "", "the subject (the actor of the events the token causes)")
	roles := fs.String("roles", "", "comma-separated roles, such as admin")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	issuer := fs.String("issuer", "", "iss claim (JWT_ISSUER, default chronicle-local)")
	audience := fs.String("audience", "", "aud claim (JWT_AUDIENCE, default chronicle-api)")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usagef("token takes no argument")
		}
		if strings.TrimSpace(*sub) == "" {
			return usagef("--sub is required")
		}
		if *ttl <= 0 {
			return usagef("--ttl must be positive")
		}
		secret := a.env("LOCAL_JWT_SECRET")
		if secret == "" {
			secret = auth.LocalSecret
		}
		iss := firstOf(*issuer, a.env("JWT_ISSUER"), auth.LocalIssuer)
		aud := firstOf(*audience, a.env("JWT_AUDIENCE"), auth.LocalAudience)
		now := time.Now()
		tok, err := auth.Mint([]byte(secret), iss, aud, *sub, splitList(*roles), *ttl, now)
		if err != nil {
			return err
		}
		if a.asJSON {
			return a.printJSON(struct {
				Token     string    `json:"token"`
				Sub       string    `json:"sub"`
				Roles     []string  `json:"roles"`
				ExpiresAt time.Time `json:"expiresAt"`
			}{tok, *sub, append([]string{}, splitList(*roles)...), now.Add(*ttl).UTC().Truncate(time.Second)})
		}
		fmt.Fprintln(a.stdout, tok)
		return nil
	}
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
