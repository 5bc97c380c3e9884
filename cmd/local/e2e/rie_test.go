package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronicle-go/chronicle/cmd/local/internal/rie"
	"github.com/chronicle-go/chronicle/cmd/local/internal/runner"
	"github.com/chronicle-go/chronicle/infra/lambdafn"
)

// envRIE, set to 1, makes the suite's runners run every function as its
// own bootstrap process under the Lambda Runtime Interface Emulator (the
// runner's --rie mode) instead of in process. TestStoriesUnderRIE runs the
// stories that way, in a second process of this test binary.
const envRIE = "CHRONICLE_E2E_RIE"

// storiesUnderRIE are the tests TestStoriesUnderRIE runs again with the
// shipped code path: the stories of story_test.go.
var storiesUnderRIE = []string{"TestWhoDeletedMyUser", "TestReadYourWrites", "TestWelcomeMailOnce", "TestPoisonedAggregate"}

// rieLauncher is the launcher of the runners under envRIE, nil otherwise.
var rieLauncher *rie.Launcher

// rieRunners are the runners started under envRIE, for their functions'
// init durations.
var rieRunners struct {
	sync.Mutex
	all []*runner.Runner
}

// setUpRIE builds the emulator and the bootstraps when envRIE asks for
// them; the runners' functions write their logs to logDir/functions.log.
func setUpRIE(ctx context.Context, logDir string) error {
	if os.Getenv(envRIE) != "1" {
		return nil
	}
	root, err := rie.ModuleRoot(ctx, ".")
	if err != nil {
		return err
	}
	l, err := rie.NewLauncher(ctx, root, rie.Host, lambdafn.Names(), os.Getenv)
	if err != nil {
		return err
	}
	out, err := os.Create(logDir + "/functions.log")
	if err != nil {
		return err
	}
	l.Output = out
	rieLauncher = l
	return nil
}

// reportInits prints, in the child process, each function's cold inits
// as the emulator measured them, for the parent to log.
func reportInits() {
	rieRunners.Lock()
	defer rieRunners.Unlock()
	for _, r := range rieRunners.all {
		inits := r.InitDurations()
		for _, id := range slices.Sorted(maps.Keys(inits)) {
			for _, d := range inits[id] {
				fmt.Printf("rie-init %s %.2fms\n", id, float64(d)/float64(time.Millisecond))
			}
		}
	}
}

// TestStoriesUnderRIE runs the stories again, in a child process of this
// test binary whose runner runs each function as its bootstrap (built
// for this machine as make build builds them) under the emulator; the
// gateway and the pollers invoke them over HTTP. It logs the cold init of
// each function.
func TestStoriesUnderRIE(t *testing.T) {
	if os.Getenv(envRIE) != "" {
		t.Skip("this is the child process")
	}
	if s.local == nil {
		t.Skip("needs the runner in process: runs it with the functions under the emulator")
	}
	// Not parallel: it runs alone first, so that its second runner and
	// processes do not starve the timing-bound tests of this package
	// (batch sizes, lag) on a small machine.
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^("+strings.Join(storiesUnderRIE, "|")+")$",
		"-test.count", "1", "-test.v", "-test.timeout", "5m")
	cmd.Env = append(os.Environ(), envRIE+"=1")
	out, err := cmd.CombinedOutput()
	var inits, passed []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "rie-init "); ok {
			inits = append(inits, line)
		}
		if line, ok := strings.CutPrefix(sc.Text(), "--- PASS: "); ok {
			passed = append(passed, line)
		}
	}
	if err != nil {
		t.Fatalf("the stories under the emulator failed (%v) after %s:\n%s", err, time.Since(start).Round(time.Millisecond), out)
	}
	for _, name := range storiesUnderRIE {
		if !bytes.Contains(out, []byte("--- PASS: "+name+" ")) {
			t.Errorf("%s did not pass under the emulator:\n%s", name, out)
		}
	}
	t.Logf("the stories passed with every function under the emulator in %s (%s); cold inits (Init Duration): %s",
		time.Since(start).Round(time.Millisecond), strings.Join(passed, ", "), strings.Join(inits, ", "))
}
