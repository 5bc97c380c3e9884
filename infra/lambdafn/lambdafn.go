package lambdafn

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/logging"

	"github.com/chronicle-go/chronicle/infra/tracing"
)

// Getenv reads one environment variable: os.Getenv in Lambda, the
// function's template environment in the local runner.
type Getenv func(string) string

// Names lists the functions Handler builds, by their directory under
// functions/.
func Names() []string {
	return []string{"authorizer", "commands", "membership", "notifier", "projector", "queries", "relay", "replay"}
}

// Handler builds the handler of the function whose code is functions/<name>
// and returns its Handle method, ready for lambda.Start or lambda.NewHandler.
func Handler(name string, cfg aws.Config, getenv Getenv, logger *slog.Logger) (any, error) {
	switch name {
	case "authorizer":
		h, err := Authorizer(getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	case "commands":
		h, err := Commands(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	case "queries":
		h, err := Queries(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	case "relay":
		h, err := Relay(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	case "projector":
		h, err := Projector(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	case "notifier":
		h, err := Notifier(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	case "membership":
		h, err := Membership(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	case "replay":
		h, err := Replay(cfg, getenv, logger)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	}
	return nil, fmt.Errorf("no function %q: want one of %s", name, strings.Join(Names(), ", "))
}

// required reads variables that must be set and reports all missing ones at once.
type required struct {
	getenv  Getenv
	missing []string
}

func (r *required) get(key string) string {
	v := r.getenv(key)
	if v == "" && !slices.Contains(r.missing, key) {
		r.missing = append(r.missing, key)
	}
	return v
}

func (r *required) err() error {
	if len(r.missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing environment variables %s", strings.Join(r.missing, ", "))
}

func envOr(getenv Getenv, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// withSDKLogger returns cfg with the AWS SDK's own log lines (its warnings,
// and what ClientLogMode asks for) going to logger, so that a function
// writes one JSON object a line: by default the SDK prints plain text to
// stderr. One such warning is spurious with DynamoDB Local (and perhaps
// DynamoDB): "failed to close HTTP response body ... did not match
// expected checksum" after an error answer without an X-Amz-Crc32 header
// (aws/aws-sdk-go-v2#3545). With tracing on, every client made from the
// result also writes a span per call (otelaws).
func withSDKLogger(cfg aws.Config, logger *slog.Logger) aws.Config {
	cfg.Logger = sdkLogger{logger}
	tracing.InstrumentAWS(&cfg)
	return cfg
}

// sdkLogger adapts a *slog.Logger to the SDK's logging.Logger.
type sdkLogger struct{ l *slog.Logger }

// Logf implements logging.Logger.
func (s sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelInfo
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	s.l.Log(context.Background(), level, fmt.Sprintf(format, v...), slog.String("source", "aws-sdk"))
}
