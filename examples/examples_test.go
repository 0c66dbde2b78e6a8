// Package examples_test runs every example, so that none of them rots: each
// is built, run with a timeout, and must exit 0 and print its key line.
package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// examples are the example programs this test runs, with a line each must
// print. Every directory here must have an entry (TestEveryExampleListed).
var examples = []struct {
	dir, want string
}{
	{"hello", "workstation 21.5"},
	{"basic", "basic: done"},
	{"broadcast", "broadcast: 4 messages acknowledged by all 3 listeners"},
	{"chat", "chat: both sides said all their lines"},
	{"blob", "blob: 4096x4096 frame received, SHA-256 verified"},
	{"supervision", "supervision: reconnected; all 10 commands arrived exactly once, in order"},
	{"actor", "actor: 3 readings answered with setpoints"},
	{"robot", "robot: the controller handled 10 readings; the logger logged 17 events"},
	{"durable", "durable: 5 readings, each taken once across a restart"},
	{"groupchat", "groupchat: alice saw 3 joins, 2 departures and 4 lines in agreed order"},
	{"timer", "timer: tea timed out after 5s"},
	{"secure", "secure: 3 readings delivered encrypted; the intruder was rejected"},
	{"discover", "discover: found lab-camera on lo, connected by name, reading delivered"},
}

// runTimeout bounds each example's run; they take a few seconds at most.
const runTimeout = 60 * time.Second

// binDir holds the examples, built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slc-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled() {
		args = append(args, "-race") // the examples are checked for data races too
	}
	for _, ex := range examples {
		args = append(args, "./"+ex.dir)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestEveryExampleListed fails for a directory of examples/ that has no
// entry in examples, so that a new example cannot go unrun.
func TestEveryExampleListed(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	listed := make(map[string]bool, len(examples))
	for _, ex := range examples {
		listed[ex.dir] = true
	}
	dirs := 0
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata" {
			continue
		}
		dirs++
		if !listed[e.Name()] {
			t.Errorf("examples/%s has no entry in examples_test.go's examples table: add it with the line it must print", e.Name())
		}
		delete(listed, e.Name())
	}
	for dir := range listed {
		t.Errorf("examples table lists %q, which is not a directory of examples/", dir)
	}
	if dirs == 0 {
		t.Fatal("found no example directories")
	}
}

func TestExamples(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.dir, func(t *testing.T) {
			t.Parallel()
			bin := filepath.Join(binDir, ex.dir)
			if runtime.GOOS == "windows" {
				bin += ".exe"
			}
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.WaitDelay = 5 * time.Second
			start := time.Now()
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("did not end within %v\nstdout:\n%s\nstderr:\n%s", runTimeout, stdout.String(), stderr.String())
			}
			if err != nil {
				t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), ex.want+"\n") {
				t.Errorf("output lacks %q:\n%s", ex.want, stdout.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("wrote to stderr:\n%s", stderr.String())
			}
			t.Logf("ran in %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestGuideSnippets checks that every Go snippet of docs/guide.md is code
// from an example: its lines, without indentation and blank lines, appear
// in that order in one of the examples' files. A snippet marked with a
// "<!-- pending: FEATURE -->" line just before it uses an API that is not
// built yet; it is listed, not checked.
func TestGuideSnippets(t *testing.T) {
	checkSnippets(t, filepath.Join("..", "docs", "guide.md"), 10)
}

// TestReadmeSnippets checks the Go snippets of README.md as
// TestGuideSnippets checks the guide's.
func TestReadmeSnippets(t *testing.T) {
	checkSnippets(t, filepath.Join("..", "README.md"), 1)
}

// checkSnippets checks that each Go snippet of the Markdown file md, at
// least atLeast of them, is code from an example.
func checkSnippets(t *testing.T, md string, atLeast int) {
	t.Helper()
	doc, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(md)
	files, err := filepath.Glob(filepath.Join("*", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var sources [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, codeLines(string(b)))
	}
	snippets, pending := goSnippets(string(doc))
	if len(snippets) < atLeast {
		t.Fatalf("found %d Go snippets in %s, want at least %d; the parser is broken", len(snippets), name, atLeast)
	}
	for _, s := range snippets {
		want := codeLines(s.code)
		found := false
		for _, src := range sources {
			if containsRun(src, want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s line %d: the snippet is in no example:\n%s", name, s.line, s.code)
		}
	}
	for _, s := range pending {
		t.Logf("%s line %d: pending (%s), not checked", name, s.line, s.pending)
	}
}

type snippet struct {
	line    int
	code    string
	pending string
}

// goSnippets returns the guide's Go code blocks, the checked ones and the
// pending ones.
func goSnippets(md string) (checked, pending []snippet) {
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		s := snippet{line: i + 1}
		for j := i - 1; j >= 0; j-- {
			l := strings.TrimSpace(lines[j])
			if l == "" {
				continue
			}
			if p, ok := strings.CutPrefix(l, "<!-- pending:"); ok {
				s.pending = strings.TrimSpace(strings.TrimSuffix(p, "-->"))
			}
			break
		}
		var code []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			code = append(code, lines[i])
		}
		s.code = strings.Join(code, "\n")
		if s.pending != "" {
			pending = append(pending, s)
		} else {
			checked = append(checked, s)
		}
	}
	return checked, pending
}

// codeLines returns the non-blank lines of code, trimmed.
func codeLines(code string) []string {
	var out []string
	for l := range strings.Lines(code) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// containsRun reports whether want appears in src as consecutive lines.
func containsRun(src, want []string) bool {
	for i := 0; i+len(want) <= len(src); i++ {
		match := true
		for j, w := range want {
			if src[i+j] != w {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
