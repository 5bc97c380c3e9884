package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/readmodel"
	"github.com/chronicle-go/chronicle/infra/userviews"
)

// ---------------------------------------------------------------- users

// usersCmd lists the live users from the read model, newest first, as GET
// /users does.
func usersCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	status := fs.String("status", "", "active or suspended (default: both)")
	limit := fs.Int("limit", userviews.DefaultLimit, fmt.Sprintf("at most this many users, 1..%d", userviews.MaxLimit))
	cursor := fs.String("cursor", "", "carry on after the page that printed it")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return usagef("want no argument, got %d", len(args))
		}
		st := user.Status(*status)
		if st != "" && st != user.StatusActive && st != user.StatusSuspended {
			return usagef("--status must be active or suspended, not %q", *status)
		}
		if *limit < 1 || *limit > userviews.MaxLimit {
			return usagef("--limit must be from 1 to %d", userviews.MaxLimit)
		}
		rm, err := a.readModelStore(ctx)
		if err != nil {
			return err
		}
		page, err := userviews.New(rm).ListUsers(ctx, st, *limit, *cursor)
		if errors.Is(err, readmodel.ErrBadCursor) {
			return usagef("--cursor %q is not one this listing printed (same --status)", *cursor)
		}
		if err != nil {
			return err
		}
		if a.asJSON {
			return a.printJSON(struct {
				Users      []user.View `json:"users"`
				NextCursor string      `json:"nextCursor,omitempty"`
			}{Users: append([]user.View{}, page.Users...), NextCursor: page.Next})
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tCREATED AT (UTC)\tV\tNAME\tEMAIL")
		for _, v := range page.Users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", v.ID, v.Status, v.CreatedAt.UTC().Format(timeLayout), v.Version, quoteIf(v.Name), v.Email)
		}
		tw.Flush()
		if page.Next != "" {
			more := "chronicle users --cursor " + page.Next
			if st != "" {
				more += " --status " + string(st)
			}
			fmt.Fprintf(a.stdout, "%d user(s); more: %s\n", len(page.Users), more)
		} else {
			fmt.Fprintf(a.stdout, "%d user(s)\n", len(page.Users))
		}
		return nil
	}
}
