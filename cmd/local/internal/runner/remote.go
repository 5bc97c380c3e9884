package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/chronicle-go/chronicle/cmd/local/internal/rie"
	"github.com/chronicle-go/chronicle/infra/template"
)

// launch gives fn its pool of execution environments when the runner runs
// the functions under the emulator (Config.RIE). The pool starts them at
// the first invocations.
func (r *Runner) launch(fn *function, f template.Function) error {
	if r.cfg.RIE == nil {
		return nil
	}
	env := maps.Clone(fn.env)
	env["AWS_LAMBDA_LOG_STREAM_NAME"] = "local/" + fn.name
	pool, err := r.cfg.RIE.Pool(f.Name, codeName(f.Name), env, fn.timeout, f.MemorySize)
	if err != nil {
		return err
	}
	fn.remote = pool
	return nil
}

// invokeRemote is invoke for a function under the emulator: the payload
// goes to one of its bootstraps over HTTP, which answers as Lambda does,
// under the invocation's request id (the runner's line and the function's
// logs name the same).
func (r *Runner) invokeRemote(ctx context.Context, fn *function, requestID string, payload []byte, out any) error {
	b, err := fn.remote.Invoke(ctx, requestID, payload)
	var fe *rie.FunctionError
	switch {
	case errors.Is(err, rie.ErrTimeout):
		return &invocationError{OutcomeTimeout, fmt.Errorf("%w after %s", errTimeout, fn.timeout)}
	case errors.As(err, &fe) && fe.Type == "Runtime.ExitError":
		return &invocationError{OutcomePanic, err}
	case err != nil:
		return &invocationError{OutcomeError, err}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return &invocationError{OutcomeInvalid, fmt.Errorf("decode answer: %w", err)}
		}
	}
	return nil
}

// InitDurations are the cold inits of each function's execution
// environments so far, by logical id, when the functions run under the
// emulator (Config.RIE); nil otherwise.
func (r *Runner) InitDurations() map[string][]time.Duration {
	if r.cfg.RIE == nil {
		return nil
	}
	out := map[string][]time.Duration{}
	for id, fn := range r.functions {
		if fn.remote != nil {
			out[id] = fn.remote.InitDurations()
		}
	}
	return out
}

// closeRemotes stops the functions' emulators, if any.
func (r *Runner) closeRemotes() error {
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(r.functions)) {
		if fn := r.functions[id]; fn.remote != nil {
			errs = append(errs, fn.remote.Close())
		}
	}
	return errors.Join(errs...)
}

// Invoke invokes the function with logical id id on payload, a JSON event,
// and returns its answer: what go run ./cmd/local invoke does, under the
// emulator when Config.RIE is set. Provision must have succeeded.
func (r *Runner) Invoke(ctx context.Context, id string, payload json.RawMessage) (json.RawMessage, error) {
	fn, ok := r.functions[id]
	if !ok {
		return nil, fmt.Errorf("no function %s in the template (functions: %v)", id, slices.Sorted(maps.Keys(r.functions)))
	}
	var out json.RawMessage
	if _, err := r.invoke(ctx, fn, payload, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Close stops the functions' execution environments, for a runner that
// provisioned but did not Serve (Serve stops them when it returns).
func (r *Runner) Close() error { return r.closeRemotes() }

// CodeName is the functions/<name> directory of the function with logical
// id id, which must be in the template.
func (r *Runner) CodeName(id string) (string, error) {
	var ids []string
	for _, f := range r.plan.functions {
		if f.Name == id {
			return codeName(id), nil
		}
		ids = append(ids, f.Name)
	}
	return "", fmt.Errorf("no function %s in the template (functions: %v)", id, ids)
}
