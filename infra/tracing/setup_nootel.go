//go:build chronicle_nootel

package tracing

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Setup, in a build without the SDK (tag chronicle_nootel, for make
// bench's size comparison only), refuses to switch tracing on.
func Setup(_ context.Context, getenv func(string) string, _ string) (func(context.Context), error) {
	if v := getenv(EnvVar); v != "" && v != "off" {
		return nil, fmt.Errorf("%s=%q: this build has no tracing", EnvVar, v)
	}
	return func(context.Context) {}, nil
}

func instrumentAWS(*aws.Config) {}
