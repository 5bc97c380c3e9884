// Package awstest gives integration tests AWS clients pointed at the local
// emulators (see cmd/emulators) or LocalStack, and skips those tests when no
// emulator is configured unless CHRONICLE_REQUIRE_EMULATORS=1 demands them.
//
// Endpoints come only from the SDK's own AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> variables, as they do in production code.
package awstest

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/chronicle-go/chronicle/infra/simlatency"
)

// Config loads the SDK's default configuration for the emulators: region
// us-east-1 and test credentials unless the environment gives others.
// Without an emulator endpoint it skips the test, or fails it when
// CHRONICLE_REQUIRE_EMULATORS=1.
func Config(tb testing.TB) aws.Config {
	tb.Helper()
	if os.Getenv("AWS_ENDPOINT_URL") == "" && os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		if os.Getenv("CHRONICLE_REQUIRE_EMULATORS") == "1" {
			tb.Fatal("CHRONICLE_REQUIRE_EMULATORS=1 but neither AWS_ENDPOINT_URL nor AWS_ENDPOINT_URL_DYNAMODB is set; run through make test")
		}
		tb.Skip("emulators not running; use make test")
	}

	opts := loadOptions()
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	// DynamoDB Local answers a write that waited too long for an item's
	// lock with a 500 ("This request will succeed in actual DynamoDB API"),
	// and on a loaded machine a hot item's writers can wait past the SDK's
	// three retries. That is the emulator's artefact, not the store's
	// behaviour under test: the tests' clients retry longer.
	opts = append(opts, config.WithRetryMaxAttempts(10))
	cfg, err := config.LoadDefaultConfig(tb.Context(), opts...)
	if err != nil {
		tb.Fatalf("load AWS config: %v", err)
	}
	// Benchmarks may ask for a region's round trips (make bench's
	// api-latency group): every client made from cfg pays them.
	delays, err := simlatency.Parse(os.Getenv(simlatency.EnvVar))
	if err != nil {
		tb.Fatalf("%s: %v", simlatency.EnvVar, err)
	}
	if delays != nil {
		cfg.APIOptions = append(cfg.APIOptions, delays.APIOption())
	}
	return cfg
}

// LoadConfig loads the SDK's configuration for a process that is not a
// test (a runner a test starts as a child process) or a suite that may run
// against a deployment: region us-east-1 and test credentials unless the
// environment names credentials or a profile. It never skips.
func LoadConfig(ctx context.Context) (aws.Config, error) {
	opts := loadOptions()
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	return config.LoadDefaultConfig(ctx, opts...)
}

func loadOptions() []func(*config.LoadOptions) error {
	return []func(*config.LoadOptions) error{
		config.WithDefaultRegion("us-east-1"),
		// The emulators send no checksums; validating only when an operation
		// requires it avoids a warning per response.
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
	}
}

// SentMail is one mail moto's SES holds.
type SentMail struct {
	Source string
	To     []string
}

// SentMails lists the mails moto's SES holds, from its state at
// GET /moto-api/data.json ({"ses": {"Message": [{"source", "destinations":
// {"ToAddresses": [...]}}]}}). It fails the test without an SES endpoint.
func SentMails(tb testing.TB) []SentMail {
	tb.Helper()
	endpoint := cmp.Or(os.Getenv("AWS_ENDPOINT_URL_SESV2"), os.Getenv("AWS_ENDPOINT_URL_SES"), os.Getenv("AWS_ENDPOINT_URL"))
	if endpoint == "" {
		tb.Fatal("no moto endpoint for SES: sent mail cannot be read back")
	}
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, strings.TrimRight(endpoint, "/")+"/moto-api/data.json", nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		tb.Fatalf("moto data.json: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("moto data.json: %s", resp.Status)
	}
	var data struct {
		SES struct {
			Message []struct {
				Source       string `json:"source"`
				Destinations struct {
					ToAddresses []string `json:"ToAddresses"`
				} `json:"destinations"`
			} `json:"Message"`
		} `json:"ses"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&data); err != nil {
		tb.Fatalf("moto data.json: %v", err)
	}
	mails := make([]SentMail, 0, len(data.SES.Message))
	for _, m := range data.SES.Message {
		mails = append(mails, SentMail{Source: m.Source, To: m.Destinations.ToAddresses})
	}
	return mails
}

// DynamoDB returns a DynamoDB client for the emulator.
func DynamoDB(tb testing.TB) *dynamodb.Client {
	tb.Helper()
	return dynamodb.NewFromConfig(Config(tb))
}

// SQS returns an SQS client for the emulator.
func SQS(tb testing.TB) *sqs.Client {
	tb.Helper()
	return sqs.NewFromConfig(Config(tb))
}

// TableName returns prefix-<uuid>, a name no other test uses, so tests can
// share one emulator without seeing each other's tables or queues.
func TableName(prefix string) string {
	return prefix + "-" + uuid.NewString()
}
