package iamcheck

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/chronicle-go/chronicle/infra/template"
)

// LogDirEnv names the directory where the test processes write the calls
// they check (make test sets it); unset, nothing is written.
const LogDirEnv = "CHRONICLE_IAM_LOG"

var (
	logMu    sync.Mutex
	logFiles = map[string]*os.File{} // by directory: one file per process
)

// FileSink returns a Sink that appends each record as a JSON line to a file
// of this process in dir.
func FileSink(dir string) (Sink, error) {
	logMu.Lock()
	defer logMu.Unlock()
	f, ok := logFiles[dir]
	if !ok {
		var err error
		f, err = os.CreateTemp(dir, fmt.Sprintf("calls-%d-*.jsonl", os.Getpid()))
		if err != nil {
			return nil, fmt.Errorf("iam log: %w", err)
		}
		logFiles[dir] = f
	}
	return func(r Record) {
		b, err := json.Marshal(r)
		if err != nil {
			return
		}
		logMu.Lock()
		defer logMu.Unlock()
		_, _ = f.Write(append(b, '\n'))
	}, nil
}

// EnvSinks returns a FileSink on $CHRONICLE_IAM_LOG when it is set, and
// none otherwise.
func EnvSinks() ([]Sink, error) {
	dir := os.Getenv(LogDirEnv)
	if dir == "" {
		return nil, nil
	}
	s, err := FileSink(dir)
	if err != nil {
		return nil, err
	}
	return []Sink{s}, nil
}

// ReadLog reads the records of every file in dir and says how many files
// (test processes) wrote them.
func ReadLog(dir string) ([]Record, int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, 0, err
	}
	var out []Record
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, 0, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return nil, 0, fmt.Errorf("%s: %w", name, err)
			}
			out = append(out, r)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	return out, len(files), nil
}

// Summary is what the records of a test run say about the template's roles.
type Summary struct {
	Calls  int      // distinct calls recorded, Lambda's included
	Denied []string // messages of the denied calls, deduplicated
	// ByCode are the grants some call of the functions' code used;
	// ByLambdaOnly those only Lambda's own calls used (see LambdaCalls);
	// Unused those no call used.
	ByCode, ByLambdaOnly, Unused []Grant
}

// Summarize matches records against every grant of tpl's roles. The
// Lambda calls of tpl are checked here too (against a Stack), so that a
// grant Lambda needs is never reported unused.
func Summarize(tpl *template.Template, records []Record) (Summary, error) {
	sum := Summary{Calls: len(records)}
	all, err := Grants(tpl)
	if err != nil {
		return sum, err
	}
	stack, err := NewStack(tpl, "stack", "us-east-1", "123456789012")
	if err != nil {
		return sum, err
	}
	policies, err := Policies(tpl, stack)
	if err != nil {
		return sum, err
	}
	checker := NewChecker(policies, stack.Account, func(r Record) { records = append(records, r) })
	if err := checker.CheckLambda(tpl, stack); err != nil {
		sum.Denied = append(sum.Denied, strings.Split(err.Error(), "\n")...)
	}

	byCode, byLambda := map[string]bool{}, map[string]bool{}
	seen := map[string]bool{}
	for _, r := range records {
		if r.Denied != "" && !seen[r.Denied] {
			seen[r.Denied] = true
			sum.Denied = append(sum.Denied, r.Denied)
		}
		for _, g := range r.Grants {
			if r.By == ByLambda {
				byLambda[g.Key()] = true
			} else {
				byCode[g.Key()] = true
			}
		}
	}
	for _, g := range all {
		switch {
		case byCode[g.Key()]:
			sum.ByCode = append(sum.ByCode, g)
		case byLambda[g.Key()]:
			sum.ByLambdaOnly = append(sum.ByLambdaOnly, g)
		default:
			sum.Unused = append(sum.Unused, g)
		}
	}
	slices.Sort(sum.Denied)
	return sum, nil
}

// Grants lists every grant of tpl's roles: each action on each resource of
// each Allow statement.
func Grants(tpl *template.Template) ([]Grant, error) {
	sts, err := tpl.Statements()
	if err != nil {
		return nil, err
	}
	var out []Grant
	index := map[string]int{}
	for _, s := range sts {
		i := index[s.Role]
		index[s.Role]++
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Actions {
			for j, res := range s.Resources {
				out = append(out, Grant{Role: s.Role, Statement: i, Sid: s.Sid, Action: a, ResourceIndex: j, Resource: Render(res)})
			}
		}
	}
	return out, nil
}
