package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// textLine matches a record of the text output: time, node, kind, message
// and fields.
var textLine = regexp.MustCompile(`^\[\s*\d+ms\] (\S+)\s+(\S+)\s+(\S+)(.*)$`)

// record is one line of the demo's output.
type record struct {
	node, kind, msg, rest string
}

// parseText returns the records of the text output, skipping headings and
// blank lines.
func parseText(t *testing.T, out string) []record {
	t.Helper()
	var rs []record
	for _, l := range lines(out) {
		if l == "" || strings.HasPrefix(l, "== ") {
			continue
		}
		m := textLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("malformed line %q", l)
		}
		rs = append(rs, record{node: m[1], kind: m[2], msg: m[3], rest: m[4]})
	}
	return rs
}

// checkEventOrder checks that node published the events in want in that
// order (other events may come in between); resumed marks a PeerConnected
// that must be a resumption.
func checkEventOrder(t *testing.T, rs []record, node string, want []string) {
	t.Helper()
	i := 0
	for _, r := range rs {
		if i == len(want) {
			return
		}
		if r.node != node || r.kind != "event" {
			continue
		}
		name, resumed := strings.CutSuffix(want[i], "+resumed")
		if r.msg == name && (!resumed || strings.Contains(r.rest, "resumed=true")) {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("%s: events in order %v: missing %s and after", node, want, want[i])
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	r := runSLC(t, "demo")
	if r.code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("stderr is not empty (the library is silent without -v):\n%s", r.stderr)
	}
	rs := parseText(t, r.stdout)
	checkEventOrder(t, rs, stationName, []string{"PeerConnected", "PeerDisconnected", "PeerReconnecting", "PeerConnected+resumed"})
	checkEventOrder(t, rs, cameraName, []string{"PeerConnected", "MessagesAcknowledged", "PeerDisconnected", "PeerConnected+resumed"})

	var cuts, typed, results int
	for _, rec := range rs {
		switch {
		case rec.node == "relay" && rec.kind == "cut":
			cuts++
		case rec.kind == "recv" && strings.Contains(rec.rest, "go_type=main.Reading body=main.Reading{"):
			typed++
		case rec.node == stationName && rec.kind == "result":
			results++
			if !strings.Contains(rec.rest, "sent=200 received=200 lost=0 duplicated=0 reordered=0") {
				t.Errorf("burst result: %s", rec.rest)
			}
		}
	}
	if cuts != 1 || results != 1 || typed == 0 {
		t.Errorf("%d cuts, %d results, %d typed readings received; want 1, 1 and some\n%s", cuts, results, typed, r.stdout)
	}
	if !strings.Contains(r.stdout, "WaitAcknowledged returned") || !strings.Contains(r.stdout, "IsAcknowledged") {
		t.Errorf("no acknowledgement calls in the output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "exactly once, in order, across the cut sent=200 received=200 lost=0 duplicated=0") {
		t.Errorf("no summary with 0 lost and 0 duplicated:\n%s", r.stdout)
	}
}

func TestDemoJSON(t *testing.T) {
	t.Parallel()
	r := runSLC(t, "demo", "--json")
	if r.code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	events := map[string]int{}
	var result map[string]any
	for _, l := range lines(r.stdout) {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("line is not a JSON object: %v\n%s", err, l)
		}
		for _, k := range []string{"t_ms", "node", "kind", "msg"} {
			if _, ok := obj[k]; !ok {
				t.Errorf("no %q in %s", k, l)
			}
		}
		switch obj["kind"] {
		case "event":
			events[obj["msg"].(string)]++
		case "result":
			result = obj
		}
	}
	for _, name := range []string{"PeerConnected", "PeerDisconnected", "PeerReconnecting", "MessagesAcknowledged"} {
		if events[name] == 0 {
			t.Errorf("no %s event", name)
		}
	}
	if events["PeerConnected"] < 4 {
		t.Errorf("%d PeerConnected events, want 4 (both nodes, before and after the cut)", events["PeerConnected"])
	}
	if result == nil {
		t.Fatal("no result record")
	}
	for k, want := range map[string]float64{"sent": 200, "received": 200, "lost": 0, "duplicated": 0, "reordered": 0} {
		if result[k] != want {
			t.Errorf("result %s = %v, want %v", k, result[k], want)
		}
	}
}

func TestDemoVerbose(t *testing.T) {
	t.Parallel()
	r := runSLC(t, "-v", "demo")
	if r.code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "level=") || !strings.Contains(r.stderr, "node="+stationName) {
		t.Errorf("-v: no library logs on stderr:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "lost=0 duplicated=0") {
		t.Errorf("-v: no result on stdout:\n%s", r.stdout)
	}
}

// TestDemoInterrupt interrupts the demo once its nodes are up and checks
// that it shuts down and says so.
func TestDemoInterrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, slcBin, "demo")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sent := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if !sent && strings.Contains(sc.Text(), "relaying connection") {
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			sent = true
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted || stderr.String() != "slc: interrupted\n" {
		t.Errorf("interrupted demo: %v, stderr %q, want exit code %d and \"slc: interrupted\"\nstdout:\n%s",
			err, stderr.String(), exitInterrupted, out.String())
	}
}
