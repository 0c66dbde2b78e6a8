package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestLogLevel runs the demo with each --log-level and checks which of the
// library's log levels reach stderr. The demo's forced reconnect logs a
// supervisor restart at Debug level, and its actor systems log their start
// at Info level.
func TestLogLevel(t *testing.T) {
	t.Parallel()
	for i, tt := range []struct {
		args []string
		want []string // levels that must be logged
		not  []string // levels that must not
	}{
		{[]string{"--log-level", "debug"}, []string{"DEBUG", "INFO"}, nil},
		{[]string{"-v"}, []string{"DEBUG", "INFO"}, nil},
		{[]string{"--log-level", "info"}, []string{"INFO"}, []string{"DEBUG"}},
		{[]string{"--log-level", "WARN"}, nil, []string{"DEBUG", "INFO"}},
		{[]string{"--log-level=error"}, nil, []string{"DEBUG", "INFO", "WARN"}},
		{nil, nil, []string{"DEBUG", "INFO", "WARN", "ERROR"}},
	} {
		args := slices.Concat(tt.args, []string{"demo"})
		r := runSLC(t, args...)
		if r.code != 0 {
			t.Errorf("%d. slc %s: exit code %d\nstderr:\n%s", i, strings.Join(args, " "), r.code, r.stderr)
			continue
		}
		for _, l := range tt.want {
			if !strings.Contains(r.stderr, "level="+l+" ") {
				t.Errorf("%d. slc %s: no level=%s log on stderr:\n%s", i, strings.Join(args, " "), l, r.stderr)
			}
		}
		for _, l := range tt.not {
			if strings.Contains(r.stderr, "level="+l+" ") {
				t.Errorf("%d. slc %s: level=%s log on stderr:\n%s", i, strings.Join(args, " "), l, r.stderr)
			}
		}
		if !strings.Contains(r.stdout, "lost=0 duplicated=0") {
			t.Errorf("%d. slc %s: no result on stdout:\n%s", i, strings.Join(args, " "), r.stdout)
		}
	}
}

// TestLogLevelJSON: with --json the logs are JSON objects too.
func TestLogLevelJSON(t *testing.T) {
	t.Parallel()
	r := runSLC(t, "--json", "--log-level", "info", "demo")
	if r.code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s", r.code, r.stderr)
	}
	levels := map[string]int{}
	for _, l := range lines(r.stderr) {
		var rec struct{ Level string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("stderr line is not JSON: %q", l)
		}
		levels[rec.Level]++
	}
	if levels["INFO"] == 0 || levels["DEBUG"] != 0 {
		t.Errorf("levels logged %v; want INFO and no DEBUG:\n%s", levels, r.stderr)
	}
}

// TestLogLevelInvalid: an unknown level, or -v with another level, is a
// one-line error.
func TestLogLevelInvalid(t *testing.T) {
	t.Parallel()
	for i, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-level", "loud", "demo"}, `slc: invalid argument "loud" for "--log-level" flag: want debug, info, warn or error`},
		{[]string{"--log-level", "", "demo"}, `slc: invalid argument "" for "--log-level" flag: want debug, info, warn or error`},
		{[]string{"-v", "--log-level", "warn", "demo"}, "slc: -v means --log-level debug: it cannot be combined with --log-level warn"},
	} {
		r := runSLC(t, tt.args...)
		if r.code == 0 || strings.TrimSpace(r.stderr) != tt.want || r.stdout != "" {
			t.Errorf("%d. slc %s: exit %d, stdout %q, stderr %q; want a non-zero exit and %q",
				i, strings.Join(tt.args, " "), r.code, r.stdout, r.stderr, tt.want)
		}
	}
}
