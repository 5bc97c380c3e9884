package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/deadletter"
	"github.com/chronicle-go/chronicle/infra/relay"
)

// Queues of the template that have a dead-letter queue, by the name the
// dlq command takes, and the function that consumes each.
var dlqQueues = map[string]string{
	"projections":   "projector",
	"notifications": "notifier",
	"membership":    "membership", // the process manager (infra/membership)
}

// dlqMessage is a dead-lettered message as the dlq command shows it.
type dlqMessage struct {
	MessageID       string                    `json:"messageId"`
	GroupID         string                    `json:"groupId,omitempty"`
	ReceiveCount    int                       `json:"receiveCount"` // this look included
	SentAt          *time.Time                `json:"sentAt,omitempty"`
	FirstReceivedAt *time.Time                `json:"firstReceivedAt,omitempty"`
	Event           *eventJSON                `json:"event,omitempty"`
	AggregateID     string                    `json:"aggregateId,omitempty"`
	Body            string                    `json:"body,omitempty"` // when it is not an event
	Failure         *deadletter.FailureRecord `json:"failure,omitempty"`
	receipt         string
	raw             string // the body as received
}

// queuePair is a DLQ and the queue its messages came from.
type queuePair struct {
	name, dlq, source, consumer string
}

func dlqCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	dlqURL := fs.String("dlq-url", "", "the dead-letter queue's URL (default: <stack>-<queue>-dlq.fifo)")
	sourceURL := fs.String("source-url", "", "the queue to send messages back to (default: <stack>-<queue>.fifo)")
	all := fs.Bool("all", false, "redrive: every message (default when no message id is given)")
	logs := fs.String("logs", "", "show: a file of JSON log lines (the local runner's) to search for the message id")
	return func(ctx context.Context, args []string) error {
		if len(args) < 2 {
			return usagef("want list|show|redrive and a queue (%s)", strings.Join(queueNames(), ", "))
		}
		verb, name, ids := args[0], args[1], args[2:]
		switch verb {
		case "list":
			if len(ids) > 0 {
				return usagef("list takes no message id")
			}
		case "show":
			if len(ids) != 1 {
				return usagef("show takes one message id")
			}
		case "redrive":
			if *all && len(ids) > 0 {
				return usagef("give --all or message ids, not both")
			}
		default:
			return usagef("unknown action %q: want list, show or redrive", verb)
		}
		client, err := a.queues(ctx)
		if err != nil {
			return err
		}
		q, err := a.queuePair(ctx, client, name, *dlqURL, *sourceURL)
		if err != nil {
			return err
		}
		switch verb {
		case "list":
			return a.dlqList(ctx, client, q)
		case "show":
			return a.dlqShow(ctx, client, q, ids[0], *logs)
		default:
			return a.dlqRedrive(ctx, client, q, ids)
		}
	}
}

func queueNames() []string { return slices.Sorted(maps.Keys(dlqQueues)) }

func (a *app) queuePair(ctx context.Context, client *sqs.Client, name, dlq, source string) (queuePair, error) {
	q := queuePair{name: name, dlq: dlq, source: source, consumer: dlqQueues[name]}
	if q.consumer == "" && (dlq == "" || source == "") {
		return q, usagef("unknown queue %q: want one of %s, or --dlq-url and --source-url", name, strings.Join(queueNames(), ", "))
	}
	var err error
	if q.dlq == "" || q.source == "" {
		if a.stack == "" {
			return q, usagef("give --stack, or --dlq-url and --source-url")
		}
	}
	if q.dlq == "" {
		if q.dlq, err = queueURL(ctx, client, a.stack+"-"+name+"-dlq.fifo"); err != nil {
			return q, err
		}
	}
	if q.source == "" {
		if q.source, err = queueURL(ctx, client, a.stack+"-"+name+".fifo"); err != nil {
			return q, err
		}
	}
	return q, nil
}

func queueURL(ctx context.Context, client *sqs.Client, name string) (string, error) {
	out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("find queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// peekVisibility hides the messages received while the DLQ is read through;
// they are made visible again (or deleted, once redriven) right after.
const peekVisibility = 60

// receiveAll receives every message of url, hiding each for peekVisibility
// seconds, until a receive returns none.
func receiveAll(ctx context.Context, client *sqs.Client, url string) ([]dlqMessage, error) {
	var msgs []dlqMessage
	seen := map[string]bool{}
	for {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(url),
			MaxNumberOfMessages:         10,
			VisibilityTimeout:           peekVisibility,
			WaitTimeSeconds:             1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return msgs, fmt.Errorf("receive from %s: %w", url, err)
		}
		if len(out.Messages) == 0 {
			return msgs, nil
		}
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id] = true
			msgs = append(msgs, describe(m))
		}
	}
}

func describe(m sqstypes.Message) dlqMessage {
	d := dlqMessage{MessageID: aws.ToString(m.MessageId), receipt: aws.ToString(m.ReceiptHandle), raw: aws.ToString(m.Body),
		GroupID: m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]}
	d.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	d.SentAt = epochMillis(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)])
	d.FirstReceivedAt = epochMillis(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateFirstReceiveTimestamp)])
	if rec, err := relay.DecodeMessage(aws.ToString(m.Body)); err == nil {
		e := toEventJSON(rec)
		d.Event, d.AggregateID = &e, rec.AggregateID
	} else {
		d.Body = aws.ToString(m.Body)
	}
	return d
}

func epochMillis(s string) *time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

// release makes msgs visible again at once.
func release(ctx context.Context, client *sqs.Client, url string, msgs []dlqMessage) error {
	for _, m := range msgs {
		if _, err := client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(url), ReceiptHandle: aws.String(m.receipt), VisibilityTimeout: 0,
		}); err != nil {
			return fmt.Errorf("release message %s: %w", m.MessageID, err)
		}
	}
	return nil
}

// failures adds the recorded failure of each message, when the read model
// is known and holds one.
func (a *app) failures(ctx context.Context, msgs []dlqMessage) {
	table, err := a.readModel()
	if err != nil {
		return
	}
	ddb, err := a.dynamo(ctx)
	if err != nil {
		return
	}
	records := deadletter.New(ddb, table)
	for i := range msgs {
		if f, ok, err := records.Failure(ctx, msgs[i].MessageID); err == nil && ok {
			msgs[i].Failure = &f
		}
	}
}

func (a *app) dlqList(ctx context.Context, client *sqs.Client, q queuePair) error {
	msgs, err := receiveAll(ctx, client, q.dlq)
	if rerr := release(context.WithoutCancel(ctx), client, q.dlq, msgs); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	a.failures(ctx, msgs)
	if a.asJSON {
		if msgs == nil {
			msgs = []dlqMessage{}
		}
		return a.printJSON(msgs)
	}
	fmt.Fprintf(a.stdout, "%s-dlq: %d message(s)\n", q.name, len(msgs))
	if len(msgs) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  MESSAGE ID\tSENT (UTC)\tRECEIVES\tEVENT\tERROR")
	for _, m := range msgs {
		ev := "(not an event)"
		if m.Event != nil {
			ev = fmt.Sprintf("%s v%d %s", m.AggregateID, m.Event.Version, m.Event.Type)
		}
		why := "(no recorded failure: see the " + q.consumer + "'s log)"
		if m.Failure != nil {
			why = oneLine(m.Failure.Error, 140)
		}
		sent := "-"
		if m.SentAt != nil {
			sent = m.SentAt.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", m.MessageID, sent, m.ReceiveCount, ev, why)
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "\nchronicle dlq show %s <message-id> for one; chronicle dlq redrive %s to send them back.\n", q.name, q.name)
	return nil
}

// oneLine squeezes s onto one line of at most about max bytes, keeping its
// start (the context) and its end (a wrapped error's cause).
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	head := max / 3
	return strings.ToValidUTF8(s[:head], "") + " … " + strings.ToValidUTF8(s[len(s)-(max-head):], "")
}

func (a *app) dlqShow(ctx context.Context, client *sqs.Client, q queuePair, id, logFile string) error {
	msgs, err := receiveAll(ctx, client, q.dlq)
	if rerr := release(context.WithoutCancel(ctx), client, q.dlq, msgs); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	i := slices.IndexFunc(msgs, func(m dlqMessage) bool { return m.MessageID == id })
	if i < 0 {
		return fmt.Errorf("message %s is not in %s-dlq (%d message(s) there)", id, q.name, len(msgs))
	}
	m := []dlqMessage{msgs[i]}
	a.failures(ctx, m)
	var lines []string
	if logFile != "" {
		if lines, err = grepLog(logFile, id); err != nil {
			return err
		}
	}
	if a.asJSON {
		return a.printJSON(struct {
			dlqMessage
			LogLines []string `json:"logLines,omitempty"`
		}{m[0], lines})
	}
	w := a.stdout
	msg := m[0]
	fmt.Fprintf(w, "message %s in %s-dlq\n", msg.MessageID, q.name)
	fmt.Fprintf(w, "  group:            %s\n", orDash(msg.GroupID))
	fmt.Fprintf(w, "  receives:         %d (this look included)\n", msg.ReceiveCount)
	if msg.SentAt != nil {
		fmt.Fprintf(w, "  sent:             %s\n", msg.SentAt.Format(timeLayout))
	}
	if msg.FirstReceivedAt != nil {
		fmt.Fprintf(w, "  first received:   %s\n", msg.FirstReceivedAt.Format(timeLayout))
	}
	if msg.Event != nil {
		body, _ := json.MarshalIndent(msg.Event, "  ", "  ")
		fmt.Fprintf(w, "  event:\n  %s\n", body)
	} else {
		fmt.Fprintf(w, "  body:             %s\n", msg.Body)
	}
	if f := msg.Failure; f != nil {
		fmt.Fprintf(w, "  failed %d time(s) in the %s, first %s, last %s (receive %d):\n    %s\n",
			f.Failures, f.Consumer, f.FirstAt.Format(timeLayout), f.At.Format(timeLayout), f.ReceiveCount, f.Error)
	} else {
		fmt.Fprintf(w, "  no failure recorded for it in the read model (the %s records them when wired with WithFailureLog)\n", q.consumer)
	}
	fmt.Fprintf(w, "\n  The %s logs each failed delivery as \"%s message failed\" with message_id; in CloudWatch Logs Insights,\n", q.consumer, q.consumer)
	fmt.Fprintf(w, "  on the %s function's log group:\n    fields @timestamp, receive_count, error | filter message_id = %q | sort @timestamp\n", q.consumer, msg.MessageID)
	if logFile != "" {
		fmt.Fprintf(w, "\n  %d line(s) of %s name it:\n", len(lines), logFile)
		for _, l := range lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	return nil
}

// grepLog returns the lines of file that contain s.
func grepLog(file, s string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out, sc.Err()
}

// redriveJSON is what dlq redrive reports per message.
type redriveJSON struct {
	MessageID    string `json:"messageId"`
	NewMessageID string `json:"newMessageId"`
	GroupID      string `json:"groupId,omitempty"`
}

// dlqRedrive sends messages back to their source queue, in the order the
// DLQ hands them out, with their group id and a new deduplication id (the
// old one may still be in the source queue's five-minute window), and
// deletes each from the DLQ once sent. A FIFO queue hands out at most ten
// messages of a group while they are in flight, so the DLQ is read again
// after each pass until it has no more to give. A crash between sending and
// deleting sends the message once more at the next redrive: the consumers
// are idempotent.
func (a *app) dlqRedrive(ctx context.Context, client *sqs.Client, q queuePair, ids []string) error {
	var done []redriveJSON
	found := map[string]bool{}
	for pass := 0; ; pass++ {
		n, err := a.redrivePass(ctx, client, q, ids, found, &done)
		if err != nil {
			return err
		}
		if n == 0 || (len(ids) > 0 && len(found) == len(ids)) {
			break
		}
	}
	for _, id := range ids {
		if !found[id] {
			return fmt.Errorf("message %s is not in %s-dlq (%d message(s) redriven)", id, q.name, len(done))
		}
	}
	if a.asJSON {
		if done == nil {
			done = []redriveJSON{}
		}
		return a.printJSON(done)
	}
	fmt.Fprintf(a.stdout, "%d message(s) sent back from %s-dlq to %s\n", len(done), q.name, q.name)
	for _, d := range done {
		fmt.Fprintf(a.stdout, "  %s → %s\n", d.MessageID, d.NewMessageID)
	}
	return nil
}

// redrivePass reads the DLQ once and redrives what it got (those of ids,
// when given); it returns how many it redrove.
func (a *app) redrivePass(ctx context.Context, client *sqs.Client, q queuePair, ids []string, found map[string]bool, done *[]redriveJSON) (int, error) {
	msgs, err := receiveAll(ctx, client, q.dlq)
	if err != nil {
		_ = release(context.WithoutCancel(ctx), client, q.dlq, msgs)
		return 0, err
	}
	var chosen, others []dlqMessage
	for _, m := range msgs {
		if len(ids) == 0 || slices.Contains(ids, m.MessageID) {
			chosen = append(chosen, m)
			found[m.MessageID] = true
		} else {
			others = append(others, m)
		}
	}
	defer func() { _ = release(context.WithoutCancel(ctx), client, q.dlq, others) }()
	fifo := strings.HasSuffix(q.source, ".fifo")
	for i, m := range chosen {
		in := &sqs.SendMessageInput{QueueUrl: aws.String(q.source), MessageBody: aws.String(m.raw)}
		if fifo {
			group := m.GroupID
			if group == "" {
				group = m.AggregateID
			}
			in.MessageGroupId, in.MessageDeduplicationId = aws.String(group), aws.String(uuid.NewString())
		}
		out, err := client.SendMessage(ctx, in)
		if err != nil {
			others = append(others, chosen[i:]...)
			return i, fmt.Errorf("send %s back to %s: %w (%d redriven before it)", m.MessageID, q.name, err, len(*done))
		}
		if _, err := client.DeleteMessage(context.WithoutCancel(ctx), &sqs.DeleteMessageInput{
			QueueUrl: aws.String(q.dlq), ReceiptHandle: aws.String(m.receipt),
		}); err != nil {
			others = append(others, chosen[i+1:]...)
			return i, fmt.Errorf("delete %s from %s-dlq after sending it back (it will be sent twice if redriven again): %w", m.MessageID, q.name, err)
		}
		*done = append(*done, redriveJSON{MessageID: m.MessageID, NewMessageID: aws.ToString(out.MessageId), GroupID: m.GroupID})
	}
	return len(chosen), nil
}
