package main

import (
	"bytes"
	"context"
	"errors"
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

// slcBin is the slc binary the tests run, built by TestMain.
var slcBin string

// runTimeout bounds every run of the binary.
const runTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slc-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cleanup := func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}
	slcBin = filepath.Join(dir, "slc")
	if runtime.GOOS == "windows" {
		slcBin += ".exe"
	}
	args := []string{"build", "-o", slcBin}
	if raceEnabled() {
		args = append(args, "-race") // the binary is checked for data races too
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		cleanup(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(cleanup))
}

// raceEnabled reports whether the tests were built with -race.
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

// result is how a run of the binary ended.
type result struct {
	stdout, stderr string
	code           int
}

// runSLC runs the binary with args and returns its output and exit code. It
// fails the test if the binary does not end within runTimeout.
func runSLC(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, slcBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("slc %s did not end within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), runTimeout, r.stdout, r.stderr)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("slc %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// lines splits output into its lines, without the final newline.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"no-such-command"}, {"dmeo"}, {"demo", "--no-such-flag"}, {"demo", "extra-arg"}} {
		r := runSLC(t, args...)
		if r.code == 0 {
			t.Errorf("slc %s: exit code 0, want non-zero", strings.Join(args, " "))
		}
		if l := lines(r.stderr); len(l) != 1 || !strings.HasPrefix(l[0], "slc: ") {
			t.Errorf("slc %s: stderr is not one line starting with \"slc: \":\n%s", strings.Join(args, " "), r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("slc %s: unexpected stdout:\n%s", strings.Join(args, " "), r.stdout)
		}
	}
}

func TestSuggestion(t *testing.T) {
	t.Parallel()
	r := runSLC(t, "dmeo")
	if want := `slc: unknown command "dmeo" for "slc" (did you mean "demo"?)`; strings.TrimSpace(r.stderr) != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	r := runSLC(t, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "slc version ") {
		t.Errorf("slc --version: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runSLC(t, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "demo") || !strings.Contains(r.stdout, "--json") {
		t.Errorf("slc --help: exit %d, stdout:\n%s", r.code, r.stdout)
	}
}
