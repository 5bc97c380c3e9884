package rie

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"
)

// Launcher runs functions as their bootstraps under the emulator: it
// holds the emulator and the bootstraps, built once, and makes a Pool per
// function.
type Launcher struct {
	Emulator   string
	Platform   Platform
	Bootstraps map[string]string // path by functions/<name>
	// PoolSize is the number of execution environments per function.
	PoolSize int
	// Env is added to every function's environment: the emulators'
	// endpoints and credentials (see AWSEnv).
	Env map[string]string
	// Output receives every instance's output (see Spec.Output).
	Output  io.Writer
	Verbose bool
	// Overrides replace or add variables of a function's environment, by
	// logical id; those under "Parameters" apply to every function (the
	// --env-vars file of sam local invoke).
	Overrides map[string]map[string]string

	// TimeoutScale multiplies the template's timeouts (4 under qemu).
	TimeoutScale int

	root string // of the module, to build a bootstrap at its first use
}

// NewLauncher builds the emulator and the bootstraps of names, from the
// module at root, for p. The bootstrap of a function not in names is built
// at its first invocation (go run ./cmd/local invoke builds only the one).
func NewLauncher(ctx context.Context, root string, p Platform, names []string, getenv func(string) string) (*Launcher, error) {
	emu, err := Emulator(ctx)
	if err != nil {
		return nil, err
	}
	bins, err := Bootstraps(ctx, root, p, names...)
	if err != nil {
		return nil, err
	}
	l := &Launcher{Emulator: emu, Platform: p, Bootstraps: bins, PoolSize: 2, Env: AWSEnv(getenv), root: root, TimeoutScale: 1}
	if p != Host {
		// Under qemu the code runs several times slower, and the emulator
		// counts the cold init (seconds there) in the first invocation's
		// time: the template's timeouts, sized for Lambda, would cut
		// batches short.
		l.TimeoutScale = 4
	}
	return l, nil
}

// Pool makes the pool of the function id whose code is functions/<code>,
// with its environment, timeout and memory.
func (l *Launcher) Pool(id, code string, env map[string]string, timeout time.Duration, memoryMB int) (*Pool, error) {
	all := maps.Clone(l.Env)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, env)
	maps.Copy(all, l.Overrides["Parameters"])
	maps.Copy(all, l.Overrides[id])
	if l.TimeoutScale > 1 {
		timeout *= time.Duration(l.TimeoutScale)
	}
	pool := NewPool(Spec{Emulator: l.Emulator, Env: all, Timeout: timeout, MemoryMB: memoryMB,
		Output: l.Output, Verbose: l.Verbose}, l.PoolSize)
	pool.prepare = func(ctx context.Context) ([]string, error) {
		bin, ok := l.Bootstraps[code]
		if !ok {
			if l.root == "" {
				return nil, fmt.Errorf("no bootstrap built for functions/%s", code)
			}
			bins, err := Bootstraps(ctx, l.root, l.Platform, code)
			if err != nil {
				return nil, err
			}
			bin = bins[code]
		}
		return Command(l.Platform, bin)
	}
	return pool, nil
}

// AWSEnv is what a function needs, besides its template environment, to
// reach the emulators: their endpoints (AWS_ENDPOINT_URL[_<SERVICE>]) and
// credentials (the caller's, else the emulators' test ones; Lambda would
// give the role's), and checksums only where an operation requires them
// (the emulators send none), as the runner configures its own clients.
func AWSEnv(getenv func(string) string) map[string]string {
	env := map[string]string{
		"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
		"AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
		"AWS_ACCESS_KEY_ID":                "test",
		"AWS_SECRET_ACCESS_KEY":            "test",
	}
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = id, secret
		if tok := getenv("AWS_SESSION_TOKEN"); tok != "" {
			env["AWS_SESSION_TOKEN"] = tok
		}
	}
	for _, k := range endpointVars {
		if v := getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}

var endpointVars = func() []string {
	vars := []string{"AWS_ENDPOINT_URL"}
	for _, s := range []string{"DYNAMODB", "DYNAMODB_STREAMS", "SQS", "SES", "SESV2", "KMS", "STS", "CLOUDWATCH", "LAMBDA"} {
		vars = append(vars, "AWS_ENDPOINT_URL_"+strings.ToUpper(s))
	}
	return vars
}()
