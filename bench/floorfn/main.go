// Command floorfn is the floor of the cold-start figures in BENCHMARKS.md:
// a Lambda function that does nothing, built like the real ones (make
// build's flags), so that its init time and size are what the Go runtime
// and aws-lambda-go cost before any of Chronicle's.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (json.RawMessage, error) { return nil, nil })
}
