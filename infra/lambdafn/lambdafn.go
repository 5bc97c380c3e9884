package lambdafn

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Getenv reads one environment variable: os.Getenv in Lambda, the
// function's template environment in the local runner.
type Getenv func(string) string

// Names lists the functions Handler builds, by their directory under
// functions/.
func Names() []string {
	return []string{"authorizer", "commands", "notifier", "projector", "queries", "relay", "replay"}
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
