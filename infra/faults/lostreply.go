package faults

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// LostReplies is an HTTP client for the AWS SDK (aws.Config.HTTPClient, or a
// service's Options.HTTPClient) that lets a write reach the service, reads
// the service's successful answer, throws it away and reports a connection
// reset instead: the write was applied and its reply was lost.
//
// It sits below the SDK's retry loop, unlike DynamoDBFaults.Lost and
// SQSFaults.Lost, which fail the call above it. So the SDK does what it
// does in the cloud after a timeout or a reset: it sends the same request
// again (same body, same ClientRequestToken), and the caller sees only the
// retry's answer: "condition failed" for a conditional write that the first
// attempt applied, success for one that is idempotent. The caller's code
// must make both mean what a single successful call means.
//
// Only the writes of WriteOperations are hit, and never the SDK's last
// attempt (read from its amz-sdk-request header): the fault is the lost
// reply, not the SDK giving up, which the client-level faults already cover.
// A strike is counted as "lostreply.<Service>.<Operation>".
type LostReplies struct {
	next aws.HTTPClient
	in   *Injector
	p    float64
}

var _ aws.HTTPClient = (*LostReplies)(nil)

// NewLostReplies wraps next: each successful write is applied and then its
// reply lost with probability p.
func NewLostReplies(next aws.HTTPClient, in *Injector, p float64) *LostReplies {
	if next == nil {
		next = http.DefaultClient
	}
	return &LostReplies{next: next, in: in, p: p}
}

// LostReplyBackoff is the SDK's wait before it sends a request again, in
// the clients WithLostReplies makes: short, so that hundreds of lost
// replies cost seconds, not the default's up to 2 s each.
const LostReplyBackoff = 5 * time.Millisecond

// WithLostReplies returns cfg with its HTTP client wrapped in LostReplies
// and the SDK's standard retryer (three attempts, as in production) waiting
// LostReplyBackoff between attempts and without its retry quota: a test
// shares one client among dozens of goroutines, where a Lambda process
// makes one call at a time, and an exhausted quota would turn the injected
// faults into errors the SDK never retried.
func WithLostReplies(cfg aws.Config, in *Injector, p float64) aws.Config {
	cfg.HTTPClient = NewLostReplies(cfg.HTTPClient, in, p)
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxBackoff = LostReplyBackoff
			o.RateLimiter = ratelimit.None
		})
	}
	return cfg
}

// WriteOperations are the operations, by their X-Amz-Target, whose replies
// LostReplies may lose: every write the service makes to DynamoDB and SQS.
// SES's SendEmail is not among them: SES has no idempotency key, so a lost
// reply there is a second mail by construction (the notifier's policy, not
// the SDK's retry, decides what happens).
var WriteOperations = map[string]bool{
	"DynamoDB_20120810.PutItem":              true,
	"DynamoDB_20120810.UpdateItem":           true,
	"DynamoDB_20120810.DeleteItem":           true,
	"DynamoDB_20120810.TransactWriteItems":   true,
	"DynamoDB_20120810.BatchWriteItem":       true,
	"AmazonSQS.SendMessage":                  true,
	"AmazonSQS.SendMessageBatch":             true,
	"AmazonSQS.DeleteMessage":                true,
	"AmazonSQS.DeleteMessageBatch":           true,
	"AmazonSQS.ChangeMessageVisibility":      true,
	"AmazonSQS.ChangeMessageVisibilityBatch": true,
}

// Do implements aws.HTTPClient.
func (l *LostReplies) Do(req *http.Request) (*http.Response, error) {
	target := req.Header.Get("X-Amz-Target")
	resp, err := l.next.Do(req)
	if err != nil || !WriteOperations[target] || resp.StatusCode/100 != 2 || lastAttempt(req) {
		return resp, err
	}
	service, op, _ := strings.Cut(target, ".")
	service, _, _ = strings.Cut(service, "_") // DynamoDB_20120810
	service = strings.TrimPrefix(service, "Amazon")
	if !l.in.Strike("lostreply."+service+"."+op, l.p) {
		return resp, nil
	}
	// The service has answered: read its answer to the end, as a client
	// whose connection dies after the server wrote it would not.
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read",
		fmt.Errorf("injected: reply to %s lost after it was applied: %w", target, syscall.ECONNRESET))}
}

// lastAttempt reports whether req is the SDK's last attempt: its
// amz-sdk-request header reads "attempt=N; max=N". Without the header
// (retries off), every attempt is the last.
func lastAttempt(req *http.Request) bool {
	h := req.Header.Get("Amz-Sdk-Request")
	if h == "" {
		return true
	}
	var attempt, max int
	for part := range strings.SplitSeq(h, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if err != nil {
			continue
		}
		switch k {
		case "attempt":
			attempt = n
		case "max":
			max = n
		}
	}
	return max == 0 || attempt >= max
}
