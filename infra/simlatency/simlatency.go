// Package simlatency adds a fixed delay to every AWS call an SDK client
// sends: the network round trip a function in a region pays and an emulator
// on the same machine does not. Benchmarks turn it on to report what a user
// would see (make bench's api-latency group, CHRONICLE_SIM_LATENCY in the
// load tests); a service and its floor run under the same delays.
package simlatency

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/chronicle-go/chronicle/domain/es/backoff"
)

// EnvVar holds the delays of the load tests' clients, as Parse reads them.
const EnvVar = "CHRONICLE_SIM_LATENCY"

// Default is a region's typical round trip from a Lambda function: a few
// milliseconds to DynamoDB, about ten to SQS.
const Default = "dynamodb=4ms,sqs=10ms"

// Delays are the delay of each service's calls, by service key: the SDK's
// service id, lower case, without spaces ("dynamodb", "sqs",
// "dynamodbstreams", "sesv2"). "*" applies to every other service.
type Delays map[string]time.Duration

// Parse reads "dynamodb=4ms,sqs=10ms" (a service key = a Go duration, comma
// separated). "on" or "1" is Default; "" and "off" are no delay.
func Parse(s string) (Delays, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "off", "0":
		return nil, nil
	case "on", "1":
		s = Default
	}
	d := Delays{}
	for part := range strings.SplitSeq(s, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("simulated latency %q: want service=duration, as in %q", part, Default)
		}
		v, err := time.ParseDuration(strings.TrimSpace(val))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("simulated latency %q: want a duration such as 4ms", part)
		}
		d[strings.ToLower(strings.TrimSpace(key))] = v
	}
	return d, nil
}

// String is the delays as Parse reads them, sorted by service.
func (d Delays) String() string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + d[k].String()
	}
	return strings.Join(parts, ",")
}

// of is the delay of a call to the service with the SDK's service id.
func (d Delays) of(serviceID string) time.Duration {
	if v, ok := d[strings.ToLower(strings.ReplaceAll(serviceID, " ", ""))]; ok {
		return v
	}
	return d["*"]
}

// APIOption returns the middleware to append to an aws.Config's
// APIOptions. It waits in the finalize step, after the retry middleware,
// so each attempt the SDK sends pays the delay, as each pays a round trip.
// The wait ends early when the call's context is done.
func (d Delays) APIOption() func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("SimulatedLatency",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if delay := d.of(awsmiddleware.GetServiceID(ctx)); delay > 0 {
					if err := backoff.Sleep(ctx, delay); err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, err
					}
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
}
