package faults_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/chronicle-go/chronicle/infra/faults"
)

// answering is an HTTP client that answers every request with status and
// counts the requests.
type answering struct {
	status int
	calls  int
}

func (a *answering) Do(*http.Request) (*http.Response, error) {
	a.calls++
	return &http.Response{StatusCode: a.status, Body: io.NopCloser(strings.NewReader("{}"))}, nil
}

func request(target, attempt string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, "http://localhost/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", target)
	if attempt != "" {
		req.Header.Set("Amz-Sdk-Request", attempt)
	}
	return req
}

func TestLostReplies(t *testing.T) {
	cases := []struct {
		name, target, attempt string
		status                int
		lost                  bool
	}{
		{"a write's reply", "DynamoDB_20120810.PutItem", "attempt=1; max=3", 200, true},
		{"a retry's reply", "AmazonSQS.SendMessageBatch", "attempt=2; max=3", 200, true},
		{"the last attempt's reply", "DynamoDB_20120810.UpdateItem", "attempt=3; max=3", 200, false},
		{"without retries", "DynamoDB_20120810.UpdateItem", "", 200, false},
		{"a read", "DynamoDB_20120810.GetItem", "attempt=1; max=3", 200, false},
		{"a receive", "AmazonSQS.ReceiveMessage", "attempt=1; max=3", 200, false},
		{"a refused write", "DynamoDB_20120810.PutItem", "attempt=1; max=3", 400, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next := &answering{status: c.status}
			in := faults.New(1)
			resp, err := faults.NewLostReplies(next, in, 1).Do(request(c.target, c.attempt))
			if next.calls != 1 {
				t.Errorf("%d requests reached the service, want 1", next.calls)
			}
			var op *net.OpError
			switch {
			case c.lost && (resp != nil || !errors.As(err, &op) || !errors.Is(err, syscall.ECONNRESET)):
				t.Errorf("got %v, %v; want a connection reset", resp, err)
			case !c.lost && (err != nil || resp.StatusCode != c.status):
				t.Errorf("got %v, %v; want the reply", resp, err)
			}
			if want := map[bool]int{true: 1}[c.lost]; in.Total("lostreply.") != want {
				t.Errorf("counted %s, want %d", in, want)
			}
		})
	}
}
