package rie

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBuildFlagsAreTheMakefiles: the bootstraps run here are built with
// the flags of the Makefile's LAMBDA_BUILD (make build, sam build), for
// the architecture the template ships.
func TestBuildFlagsAreTheMakefiles(t *testing.T) {
	b, err := os.ReadFile("../../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LAMBDA_BUILD = (.*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no LAMBDA_BUILD in the Makefile")
	}
	line := string(m[1])
	want := "CGO_ENABLED=0 GOOS=" + Shipped.OS + " GOARCH=" + Shipped.Arch + " $(GO) build " +
		strings.Replace(strings.Join(LambdaBuildFlags, " "), "-ldflags=-s -w", "-ldflags='-s -w'", 1)
	if line != want {
		t.Errorf("Makefile: LAMBDA_BUILD = %s\nthe package builds:  %s\nkeep them in step", line, want)
	}
	tpl, err := os.ReadFile("../../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(tpl, []byte("Architectures: ["+Shipped.Arch+"]")) {
		t.Errorf("template.yaml does not ship %s", Shipped.Arch)
	}
}

// TestLogWriter: the REPORT line gets the init's real duration, from the
// emulator's INIT REPORT line, which is dropped with the other (rapid)
// lines; the bootstrap's lines pass unchanged, split writes included.
func TestLogWriter(t *testing.T) {
	var out bytes.Buffer
	w := newLogWriter(&out, false)
	in := "01 Dec 2026 17:03:30,069 [INFO] (rapid) INIT START(type: on-demand, phase: init)\n" +
		"START RequestId: r1 Version: $LATEST\n" +
		"01 Dec 2026 17:03:30,093 [INFO] (rapid) INIT REPORT(durationMs: 24.634000)\n" +
		`{"msg":"authorizer allowed"}` + "\n" +
		"01 Dec 2026 17:03:30,093 [WARNING] (rapid) something odd\n" +
		"END RequestId: r1\n" +
		"REPORT RequestId: r1\tInit Duration: 0.25 ms\tDuration: 33.61 ms\tBilled Duration: 34 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\t\n" +
		"REPORT RequestId: r2\tDuration: 3.00 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\t\n"
	for i := 0; i < len(in); i += 7 {
		w.Write([]byte(in[i:min(i+7, len(in))]))
	}
	want := "START RequestId: r1 Version: $LATEST\n" +
		`{"msg":"authorizer allowed"}` + "\n" +
		"01 Dec 2026 17:03:30,093 [WARNING] (rapid) something odd\n" +
		"END RequestId: r1\n" +
		"REPORT RequestId: r1\tInit Duration: 24.63 ms\tDuration: 33.61 ms\tBilled Duration: 34 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\t\n" +
		"REPORT RequestId: r2\tDuration: 3.00 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\t\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
	if d := w.initDuration(); d != 24634*time.Microsecond {
		t.Errorf("init %s", d)
	}
}

// TestFunctionError: the runtime's error document is told from answers.
func TestFunctionError(t *testing.T) {
	for body, isErr := range map[string]bool{
		`{"errorMessage":"Unauthorized","errorType":"errorString"}`:                     true,
		`{"errorMessage":"boom","errorType":"runtime.Error","stackTrace":[{"line":1}]}`: true,
		`{"statusCode":500,"body":"{\"errorType\":\"x\"}"}`:                             false,
		`{"batchItemFailures":[]}`:                                                      false,
		`{"errorType":"x","errorMessage":"y","principalId":"alice"}`:                    false,
		`"a string"`: false,
	} {
		if got := functionError([]byte(body)) != nil; got != isErr {
			t.Errorf("%s: function error %v, want %v", body, got, isErr)
		}
	}
}
