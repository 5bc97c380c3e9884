package simlatency_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/simlatency"
)

func TestParse(t *testing.T) {
	d, err := simlatency.Parse("on")
	if err != nil || d.String() != "dynamodb=4ms,sqs=10ms" {
		t.Fatalf("on: %v, %v", d, err)
	}
	d, err = simlatency.Parse(" DynamoDB = 2ms , *=1ms")
	if err != nil || d.String() != "*=1ms,dynamodb=2ms" {
		t.Fatalf("custom: %v, %v", d, err)
	}
	if d, err := simlatency.Parse("off"); err != nil || d != nil {
		t.Fatalf("off: %v, %v", d, err)
	}
	for _, bad := range []string{"dynamodb", "dynamodb=fast", "sqs=-1ms"} {
		if _, err := simlatency.Parse(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestDelaysEveryCall: each call to a service pays its delay, against the
// emulators. (That a service without a delay is not held is left to
// Delays.of: on a loaded machine an emulator alone can take seconds.)
func TestDelaysEveryCall(t *testing.T) {
	cfg := awstest.Config(t)
	d, err := simlatency.Parse("dynamodb=60ms")
	if err != nil {
		t.Fatal(err)
	}
	cfg.APIOptions = append(cfg.APIOptions, d.APIOption())
	slow := dynamodb.NewFromConfig(cfg)
	timed := func(f func() error) time.Duration {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	for range 3 {
		if took := timed(func() error { _, err := slow.ListTables(t.Context(), &dynamodb.ListTablesInput{}); return err }); took < 60*time.Millisecond {
			t.Errorf("DynamoDB call with a 60ms delay took %s", took)
		}
	}
}
