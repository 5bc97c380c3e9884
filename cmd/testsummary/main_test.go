package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixtures under testdata/ are recorded `go test -json` runs of small
// packages (paths of the recording machine replaced), but build-old.jsonl,
// written as Go before 1.24 reports a failed build.
func TestFixtures(t *testing.T) {
	cases := []struct {
		fixture string
		summary string
		status  int
		shows   []string // in the output
		hides   []string // not in the output
	}{
		{"pass.jsonl", "2 passed, 0 failed, 0 skipped (tests and subtests; 1 package, 0 failed, 0 failed to build)", 0,
			[]string{"ok  \texample.com/s/pass\t"}, []string{"=== RUN", "--- PASS", "fine", "PASS\n"}},
		{"fail.jsonl", "1 passed, 1 failed, 0 skipped (tests and subtests; 1 package, 1 failed, 0 failed to build)", 1,
			[]string{"    f_test.go:4: context\n", "want 1, got 2", "--- FAIL: TestBad", "FAIL\texample.com/s/fail\t"}, []string{"TestOK"}},
		{"skip.jsonl", "1 passed, 0 failed, 1 skipped (tests and subtests; 1 package, 0 failed, 0 failed to build)", 0,
			[]string{"ok  \texample.com/s/skip\t", "skipped: example.com/s/skip ", "needs AWS"}, []string{"--- SKIP"}},
		{"sub.jsonl", "4 passed, 2 failed, 1 skipped (tests and subtests; 1 package, 1 failed, 0 failed to build)", 1,
			[]string{"case two broke", "--- FAIL: TestTable/two", "--- FAIL: TestTable (", "skipped: example.com/s/sub TestTable/three", "later"}, []string{"TestParallel", "=== PAUSE", "=== CONT"}},
		{"build.jsonl", "0 passed, 0 failed, 0 skipped (tests and subtests; 1 package, 0 failed, 1 failed to build)", 1,
			[]string{"cannot use \"x\"", "FAIL\texample.com/s/build [build failed]"}, nil},
		{"build-old.jsonl", "1 passed, 0 failed, 0 skipped (tests and subtests; 2 packages, 0 failed, 1 failed to build)", 1,
			[]string{"FAIL\texample.com/s/build [build failed]", "ok  \texample.com/s/pass"}, nil},
		{"panic.jsonl", "1 passed, 1 failed, 0 skipped (tests and subtests; 1 package, 1 failed, 0 failed to build)", 1,
			[]string{"before", "panic: assignment to entry in nil map", "p_test.go:4 +0x54", "FAIL\texample.com/s/panic"}, []string{"TestFine"}},
		{"mixed.jsonl", "9 passed, 4 failed, 2 skipped (tests and subtests; 6 packages, 3 failed, 1 failed to build)", 1,
			[]string{"[no test files]", "ok  \texample.com/s/pass", "FAIL\texample.com/s/sub"}, nil},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			status := run([]string{"-label", "make test"}, bytes.NewReader(in), &out, &errOut)
			if status != c.status {
				t.Errorf("exit status %d, want %d", status, c.status)
			}
			if errOut.Len() > 0 {
				t.Errorf("stderr: %s", errOut.String())
			}
			text := out.String()
			want := "make test: " + c.summary + "\n"
			if !strings.HasSuffix(text, want) {
				t.Errorf("output does not end with\n%s----- output:\n%s", want, text)
			}
			for _, s := range c.shows {
				if !strings.Contains(text, s) {
					t.Errorf("output lacks %q:\n%s", s, text)
				}
			}
			for _, s := range c.hides {
				if strings.Contains(text, s) {
					t.Errorf("output shows %q:\n%s", s, text)
				}
			}
		})
	}
}

// A line that is not an event (an emulator's message) passes through, and
// a test cut off mid-run (the stream ends: go test was killed) has its
// output shown; no package ended, so the run fails.
func TestPassThroughAndCutOff(t *testing.T) {
	in := "emulators: DynamoDB Local on 127.0.0.1:8000\n" +
		`{"Action":"run","Package":"p","Test":"TestHang"}` + "\n" +
		`{"Action":"output","Package":"p","Test":"TestHang","Output":"    h_test.go:9: waiting for the queue\n"}` + "\n"
	var out, errOut bytes.Buffer
	status := run(nil, strings.NewReader(in), &out, &errOut)
	if status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	text := out.String()
	for _, s := range []string{"emulators: DynamoDB Local on 127.0.0.1:8000\n", "waiting for the queue", "go test: 0 passed, 0 failed, 0 skipped", "no package reported"} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q:\n%s", s, text)
		}
	}
}

// With -summary the closing line goes to the file, not to stdout.
func TestSummaryFile(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "pass.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "summary")
	var out, errOut bytes.Buffer
	if status := run([]string{"-summary", path}, bytes.NewReader(in), &out, &errOut); status != 0 {
		t.Fatalf("exit status %d: %s", status, errOut.String())
	}
	if strings.Contains(out.String(), "passed") {
		t.Errorf("stdout has the closing line:\n%s", out.String())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "go test: 2 passed, 0 failed, 0 skipped (tests and subtests; 1 package, 0 failed, 0 failed to build)\n"; string(got) != want {
		t.Errorf("summary file %q, want %q", got, want)
	}
}
