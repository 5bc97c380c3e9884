// Package awstest gives integration tests AWS clients pointed at the local
// emulators (see cmd/emulators) or LocalStack, and skips those tests when no
// emulator is configured unless CHRONICLE_REQUIRE_EMULATORS=1 demands them.
//
// Endpoints come only from the SDK's own AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> variables, as they do in production code.
package awstest

import (
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"
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

	opts := []func(*config.LoadOptions) error{
		config.WithDefaultRegion("us-east-1"),
		// The emulators send no checksums; validating only when an operation
		// requires it avoids a warning per response.
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	cfg, err := config.LoadDefaultConfig(tb.Context(), opts...)
	if err != nil {
		tb.Fatalf("load AWS config: %v", err)
	}
	return cfg
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
