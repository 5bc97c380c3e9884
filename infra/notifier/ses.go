package notifier

import (
	"errors"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// NotSent reports whether a SendEmail error proves that SES did not accept
// the mail, so that sending it again cannot make a second one:
//
//   - SES answered a 4xx (throttled, rejected, sending paused, a bad
//     request): it refuses before it accepts;
//   - the connection never opened (dial or DNS failure);
//   - the SDK failed before sending anything (credentials, signing,
//     serialization).
//
// Anything else may have been accepted: a 5xx (SES may fail after
// queueing the mail), a timeout or a connection lost once the request was
// on its way, the context ending in the transport, an answer that did not
// decode, and any error that does not come from the SDK.
func NotSent(err error) bool {
	if err == nil {
		return false
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		code := status.HTTPStatusCode()
		return code >= 400 && code < 500
	}
	var (
		send     *smithyhttp.RequestSendError
		canceled *smithy.CanceledError
		op       *smithy.OperationError
	)
	switch {
	case errors.As(err, &send):
		return neverConnected(send.Err)
	case errors.As(err, &canceled):
		return false
	case errors.As(err, &op):
		return true // failed before the transport: nothing went out
	}
	return false
}

// neverConnected: the error of a request that found no server to send to.
func neverConnected(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// throttled: SES refused for its sending rate (429, or a throttling code).
func throttled(err error) bool {
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() == 429 {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		_, ok := retry.DefaultThrottleErrorCodes[api.ErrorCode()]
		return ok
	}
	return false
}

// SendRetryer is the SES client's retryer: the SDK's standard one (three
// attempts, jittered backoff) retrying only what certainly sent nothing and
// may pass on a second try: throttling and connections that never opened.
// The standard retryer would also retry 5xx answers, timeouts and reset
// connections, where the first attempt may have been accepted: each such
// retry could send the mail twice. Those errors go to the notifier instead,
// which holds the mail in doubt.
func SendRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			var send *smithyhttp.RequestSendError
			dial := errors.As(err, &send) && neverConnected(send.Err)
			return aws.BoolTernary(dial || throttled(err))
		})}
	})
}

// SESOptions configures an SES client for the notifier:
// sesv2.NewFromConfig(cfg, notifier.SESOptions).
func SESOptions(o *sesv2.Options) { o.Retryer = SendRetryer() }
