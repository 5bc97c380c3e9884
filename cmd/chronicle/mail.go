package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chronicle-go/chronicle/infra/notifier"
)

// mailCmd lists the welcome mails the notifier held in doubt (an attempt
// may have reached SES, and SES has no idempotency key) and settles them on
// the operator's evidence: --sent marks one sent, --resend sends it again.
func mailCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	sent := fs.Bool("sent", false, "resolve: the mail was sent (SES's sending records or the recipient say so)")
	resend := fs.Bool("resend", false, "resolve: it was not sent: deliver its event to the notifier again")
	note := fs.String("note", "", "resolve --sent: the evidence, kept on the record")
	queue := fs.String("queue-url", "", "resolve --resend: the notifications queue (default: <stack>-notifications.fifo)")
	return func(ctx context.Context, args []string) error {
		if len(args) == 0 {
			return usagef("want list, or resolve <event-id> --sent|--resend")
		}
		rm, err := a.mails(ctx)
		if err != nil {
			return err
		}
		switch args[0] {
		case "list":
			if len(args) > 1 {
				return usagef("list takes no argument")
			}
			return a.mailList(ctx, rm)
		case "resolve":
			if len(args) != 2 {
				return usagef("resolve takes one event id")
			}
			if *sent == *resend {
				return usagef("give --sent or --resend")
			}
			eventID := args[1]
			if *sent {
				if err := rm.ResolveMail(ctx, eventID, true, strings.TrimSpace(*note), time.Now()); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "mail of %s marked sent\n", eventID)
				return nil
			}
			store, _, err := a.eventStore(ctx)
			if err != nil {
				return err
			}
			client, err := a.queues(ctx)
			if err != nil {
				return err
			}
			url := *queue
			if url == "" {
				if a.stack == "" {
					return usagef("give --stack, or --queue-url")
				}
				if url, err = queueURL(ctx, client, a.stack+"-notifications.fifo"); err != nil {
					return err
				}
			}
			r := notifier.Resolver{Mails: rm, Events: store, Queue: client, QueueURL: url, Now: time.Now}
			if err := r.Resend(ctx, eventID); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "event %s delivered to the notifier again: it sends the mail\n", eventID)
			return nil
		default:
			return usagef("unknown action %q: want list or resolve", args[0])
		}
	}
}

func (a *app) mailList(ctx context.Context, rm *notifier.Mails) error {
	doubts, err := rm.MailsInDoubt(ctx)
	if err != nil {
		return err
	}
	if a.asJSON {
		if doubts == nil {
			doubts = []notifier.Mail{}
		}
		return a.printJSON(map[string]any{"inDoubt": doubts})
	}
	fmt.Fprintf(a.stdout, "%d welcome mail(s) in doubt\n", len(doubts))
	if len(doubts) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "EVENT ID\tUSER\tCLAIMED AT\tIN DOUBT SINCE\tATTEMPTS\tWHY")
	for _, m := range doubts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", m.EventID, m.AggregateID, m.ClaimedAt.Format(time.RFC3339),
			m.DoubtAt.Format(time.RFC3339), m.Attempts, m.DoubtReason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "\nCheck SES's sending records (or ask the user), then: chronicle mail resolve <event-id> --sent --note '...' or --resend")
	return nil
}

// mails are the notifier's sent-mail records in the read-model table.
func (a *app) mails(ctx context.Context) (*notifier.Mails, error) {
	table, err := a.readModel()
	if err != nil {
		return nil, err
	}
	ddb, err := a.dynamo(ctx)
	if err != nil {
		return nil, err
	}
	return notifier.NewMails(ddb, table), nil
}
