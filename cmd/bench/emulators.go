//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// emulators is one DynamoDB Local + moto pair started by cmd/emulators
// -print-env for one group of benchmarks, so that no group runs on an
// emulator that earlier groups have slowed down (DynamoDB Local writes
// ever more slowly as stream records pile up; moto slows with what its
// queues have held).
type emulators struct {
	cmd  *exec.Cmd
	env  []string // the export lines, as NAME=value
	jar  string   // DynamoDB Local's jar, from the log
	done chan struct{}
}

// emulatorStart bounds how long the emulators may take to answer.
const emulatorStart = 3 * time.Minute

var jarField = regexp.MustCompile(`jar=(\S+)`)

// startEmulators runs bin -print-env, its log in logPath, and waits for the
// environment it prints once both emulators answer.
func startEmulators(ctx context.Context, bin, logPath string) (*emulators, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	// A pipe of our own rather than StdoutPipe, which Wait would close
	// under the reader.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-print-env")
	cmd.Stdout, cmd.Stderr = pw, logFile
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	e := &emulators{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 64)
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody listens any more
			}
		}
		close(lines)
	}()
	go func() { _ = cmd.Wait(); close(e.done) }()

	timeout := time.NewTimer(emulatorStart)
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				e.stop()
				return nil, fmt.Errorf("emulators exited before printing their environment; see %s", logPath)
			}
			kv, found := strings.CutPrefix(line, "export ")
			if !found {
				continue
			}
			e.env = append(e.env, kv)
			// -print-env prints the variables sorted; this one comes last.
			if strings.HasPrefix(kv, "CHRONICLE_REQUIRE_EMULATORS=") {
				if b, err := os.ReadFile(logPath); err == nil {
					if m := jarField.FindSubmatch(b); m != nil {
						e.jar = string(m[1])
					}
				}
				return e, nil
			}
		case <-timeout.C:
			e.stop()
			return nil, fmt.Errorf("emulators did not answer within %s; see %s", emulatorStart, logPath)
		case <-ctx.Done():
			e.stop()
			return nil, ctx.Err()
		}
	}
}

// stop interrupts cmd/emulators, which stops both emulators, and kills it
// if it has not exited after a while.
func (e *emulators) stop() {
	if e == nil || e.cmd.Process == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

// errExternal: AWS_ENDPOINT_URL is set, so the benchmarks run against that
// endpoint (LocalStack, say) and no emulator is started.
var errExternal = errors.New("AWS_ENDPOINT_URL is set: using that endpoint, starting no emulator")
