package template_test

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the root of the repository these tests run in.
const repoRoot = "../.."

// outside matches what in a file would refer to something outside the
// repository: the documents that sit beside it when it is developed (by
// path, or by a bare name that no file of the repository has), and absolute
// paths of a developer's machine.
var outside = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`\.\./shared\b|\bshared/[A-Z]+\.md\b`), "a document beside the repository"},
	{regexp.MustCompile(`(^|[^A-Za-z0-9_./-])(API|DESIGN|STYLE)\.md\b`), "a document the repository does not hold"},
	{regexp.MustCompile(`(^|[^A-Za-z0-9_.~-])/(work|home|root|Users)/`), "an absolute path of a machine"},
}

// TestNothingOutsideTheRepository: no tracked text file refers to a file
// outside the repository or to a path of the machine it was written on. A
// clean clone is all a reader has.
func TestNothingOutsideTheRepository(t *testing.T) {
	files := trackedFiles(t)
	if len(files) < 50 {
		t.Fatalf("found %d files under %s: not the repository", len(files), repoRoot)
	}
	held := map[string]bool{}
	for _, f := range files {
		held[filepath.Base(f)] = true
	}
	self := filepath.Join("infra", "template", "repo_test.go")
	for _, f := range files {
		if filepath.FromSlash(f) == self {
			continue // its patterns name what they look for
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			continue // binary
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, len(b)+1)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			for _, o := range outside {
				m := o.re.FindStringSubmatch(line)
				if m == nil || (len(m) > 2 && held[m[2]+".md"]) {
					continue
				}
				t.Errorf("%s:%d refers to %s (%q): %s", f, n, o.why, strings.TrimSpace(m[0]), strings.TrimSpace(line))
			}
		}
	}
}

// trackedFiles lists the repository's files, relative to its root: those git
// tracks, or, without git (an exported tree), every file outside .git.
func trackedFiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", repoRoot, "ls-files", "-z").Output()
	if err == nil {
		var files []string
		for f := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
			if _, err := os.Stat(filepath.Join(repoRoot, f)); err == nil { // deleted but not yet committed
				files = append(files, f)
			}
		}
		return files
	}
	t.Logf("git ls-files: %v; walking the tree instead", err)
	var files []string
	err = filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
