//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine is what the figures were measured on.
type Machine struct {
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemoryMB int    `json:"memoryMB"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel,omitempty"`
	Go       string `json:"go"`
	Java     string `json:"java,omitempty"`
	// DynamoDBLocal and Moto are the emulators' versions.
	DynamoDBLocal string `json:"dynamodbLocal,omitempty"`
	Moto          string `json:"moto,omitempty"`
	Commit        string `json:"commit,omitempty"`
}

// readMachine reads the machine's description from /proc and the tools.
func readMachine(ctx context.Context, goCmd, repo string) Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.Atoi(strings.Fields(procField("/proc/meminfo", "MemTotal") + " 0")[0]); err == nil {
		m.MemoryMB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Go = output(ctx, repo, goCmd, "env", "GOVERSION")
	if v := output(ctx, repo, "java", "-version"); v != "" {
		m.Java = firstLine(v)
	}
	m.Moto = motoVersion(ctx)
	m.Commit = output(ctx, repo, "git", "rev-parse", "--short", "HEAD")
	if m.Commit != "" && output(ctx, repo, "git", "status", "--porcelain", "--untracked-files=no") != "" {
		m.Commit += " (with uncommitted changes)"
	}
	return m
}

// procField returns the value of the first "name: value" line of a /proc
// file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAverage is the one-minute load average: how busy the machine was
// with other work, which the figures share it with.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	v, err := strconv.ParseFloat(strings.Fields(string(b) + " x")[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// dynamoDBLocalVersion asks the jar cmd/emulators ran.
func dynamoDBLocalVersion(ctx context.Context, jar string) string {
	if jar == "" {
		return ""
	}
	return firstLine(output(ctx, "", "java", "-jar", jar, "-version"))
}

// motoVersion asks the Python that runs moto_server for moto's version:
// the interpreter of its #! line, or python3 when that is no Python (a
// pyenv shim, say, which runs the same Python as python3).
func motoVersion(ctx context.Context) string {
	python := "python3"
	if path, err := exec.LookPath("moto_server"); err == nil {
		if b, err := os.ReadFile(path); err == nil {
			if shebang, ok := strings.CutPrefix(firstLine(string(b)), "#!"); ok {
				if f := strings.Fields(shebang); len(f) == 1 && strings.Contains(filepath.Base(f[0]), "python") {
					python = f[0]
				}
			}
		}
	}
	return output(ctx, "", python, "-c", "import moto; print(moto.__version__)")
}

// output runs a command and returns what it printed, trimmed, or "" if it
// failed.
func output(ctx context.Context, dir, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(out))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, %d MiB, %s", m.CPU, m.Cores, m.MemoryMB, m.Go)
}
