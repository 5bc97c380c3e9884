//go:build unix

package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantChild []string
		printEnv  bool
		wantErr   bool
	}{
		{name: "command after --", args: []string{"--", "go", "test", "-race"}, wantChild: []string{"go", "test", "-race"}},
		{name: "command without --", args: []string{"go", "test"}, wantChild: []string{"go", "test"}},
		{name: "print-env", args: []string{"-print-env"}, printEnv: true},
		{name: "print-env with a command", args: []string{"--print-env", "--", "ls"}, wantErr: true},
		{name: "no command", args: nil, wantErr: true},
		{name: "unknown flag", args: []string{"-nope", "--", "ls"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseOptions(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !slices.Equal(got.child, tt.wantChild) || got.printEnv != tt.printEnv {
				t.Errorf("parseOptions(%q) = child %q print-env %v, want %q %v",
					tt.args, got.child, got.printEnv, tt.wantChild, tt.printEnv)
			}
		})
	}
}

func TestMergeEnvReplacesEarlierValues(t *testing.T) {
	got := mergeEnv([]string{"HOME=/root", "AWS_REGION=eu-west-1", "PATH=/bin"},
		map[string]string{"AWS_REGION": "us-east-1", "CHRONICLE_REQUIRE_EMULATORS": "1"})
	want := []string{"HOME=/root", "PATH=/bin", "AWS_REGION=us-east-1", "CHRONICLE_REQUIRE_EMULATORS=1"}
	if !slices.Equal(got, want) {
		t.Errorf("mergeEnv = %q, want %q", got, want)
	}
}

func TestChildEnvKeepsGivenRegionAndCredentials(t *testing.T) {
	st := &stack{ddb: &emulator{port: 8000}, moto: &emulator{port: 5000}, kms: &emulator{port: 5001}}
	given := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"}
	env := childEnv(st, func(k string) string { return given[k] })
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if v, ok := env[k]; ok {
			t.Errorf("childEnv sets %s=%s although the environment gives one", k, v)
		}
	}
	if env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] != "http://127.0.0.1:8000" || env["AWS_ENDPOINT_URL_SESV2"] != "http://127.0.0.1:5000" ||
		env["AWS_ENDPOINT_URL_SQS"] != "http://127.0.0.1:5000" || env["AWS_ENDPOINT_URL_KMS"] != "http://127.0.0.1:5001" {
		t.Errorf("childEnv endpoints = %v", env)
	}

	env = childEnv(st, func(string) string { return "" })
	if env["AWS_REGION"] != "us-east-1" || env["AWS_ACCESS_KEY_ID"] != "test" || env["CHRONICLE_REQUIRE_EMULATORS"] != "1" {
		t.Errorf("childEnv defaults = %v", env)
	}
}

func TestParseJavaMajor(t *testing.T) {
	tests := map[string]int{
		`openjdk version "17.0.15" 2025-04-15`: 17,
		`openjdk version "21" 2023-09-19`:      21,
		`java version "1.8.0_392"`:             8,
	}
	for out, want := range tests {
		if got, err := parseJavaMajor(out); err != nil || got != want {
			t.Errorf("parseJavaMajor(%q) = %d, %v; want %d", out, got, err, want)
		}
	}
	if _, err := parseJavaMajor("command not found"); err == nil {
		t.Error("parseJavaMajor accepted output without a version")
	}
}

// TestHelp: -h and --help print the usage and are no error (they printed
// "flag: help requested" and exited 2).
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var out bytes.Buffer
		_, err := parseOptions([]string{arg}, &out)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "usage: emulators") || !strings.Contains(out.String(), "-print-env") {
			t.Errorf("%s: err %v, output %q", arg, err, out.String())
		}
	}
	if code := run(t.Context(), []string{"--help"}, func(string) string { return "" }, nil); code != 0 {
		t.Errorf("run --help: exit %d, want 0", code)
	}
}

// TestDataDirIsLocked: two emulators never share one DynamoDB Local
// database file; the second is told who holds it.
func TestDataDirIsLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), "in use by other emulators") {
		t.Fatalf("second lock: %v", err)
	}
	first.Close()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("after the first is released: %v", err)
	}
	again.Close()
}
