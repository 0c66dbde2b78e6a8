package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchRecords parses the JSON lines of slc --json bench, keyed by msg.
func benchRecords(t *testing.T, out string) map[string]map[string]any {
	t.Helper()
	recs := map[string]map[string]any{}
	for _, l := range lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		if m["node"] != "bench" {
			t.Errorf("record of node %v: %q", m["node"], l)
		}
		msg, _ := m["msg"].(string)
		recs[msg] = m
	}
	return recs
}

// checkBenchResults checks the throughput and latency records.
func checkBenchResults(t *testing.T, recs map[string]map[string]any, size, pings float64, payload string) {
	t.Helper()
	tp := recs["throughput"]
	if tp == nil || tp["kind"] != "result" {
		t.Fatalf("no throughput result in %v", recs)
	}
	if n, _ := tp["messages"].(float64); n <= 0 {
		t.Errorf("throughput: messages = %v", tp["messages"])
	}
	if r, _ := tp["msg_per_s"].(float64); r <= 0 {
		t.Errorf("throughput: msg_per_s = %v", tp["msg_per_s"])
	}
	if tp["size"] != size || tp["payload"] != payload {
		t.Errorf("throughput: size %v payload %v, want %v %v", tp["size"], tp["payload"], size, payload)
	}
	lat := recs["latency"]
	if lat == nil {
		t.Fatalf("no latency result in %v", recs)
	}
	if lat["pings"] != pings {
		t.Errorf("latency: pings = %v, want %v", lat["pings"], pings)
	}
	p50, _ := lat["p50_us"].(float64)
	p99, _ := lat["p99_us"].(float64)
	if p50 <= 0 || p99 < p50 {
		t.Errorf("latency: p50_us %v, p99_us %v", lat["p50_us"], lat["p99_us"])
	}
}

func TestBench(t *testing.T) {
	t.Parallel()
	r := runSLC(t, "--json", "bench", "--duration", "300ms", "--pings", "20", "--size", "1KiB")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("stderr (no progress bar when it is not a terminal):\n%s", r.stderr)
	}
	recs := benchRecords(t, r.stdout)
	if recs["receiver started"] == nil || recs["connected"] == nil {
		t.Errorf("no receiver started or connected record:\n%s", r.stdout)
	}
	checkBenchResults(t, recs, 1024, 20, "typed")
}

func TestBenchText(t *testing.T) {
	t.Parallel()
	r := runSLC(t, "bench", "--count", "500", "--pings", "10", "--raw")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var tp, lat string
	for _, l := range lines(r.stdout) {
		switch {
		case strings.Contains(l, " result  throughput "):
			tp = l
		case strings.Contains(l, " result  latency "):
			lat = l
		}
	}
	if !strings.Contains(tp, "messages=500 ") || !strings.Contains(tp, "payload=raw") || !strings.Contains(tp, "msg_per_s=") {
		t.Errorf("throughput line %q\nstdout:\n%s", tp, r.stdout)
	}
	if !strings.Contains(lat, "pings=10 ") || !strings.Contains(lat, "p99=") {
		t.Errorf("latency line %q\nstdout:\n%s", lat, r.stdout)
	}
}

// TestBenchRemote runs the receiver as its own process and points
// slc bench --remote at it.
func TestBenchRemote(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	srv := exec.CommandContext(ctx, slcBin, "bench", "--serve", "--name", "bench-sink")
	srv.WaitDelay = 5 * time.Second
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		srv.Process.Kill()
		srv.Wait()
		t.Fatalf("the receiver printed nothing; stderr:\n%s", stderr.String())
	}
	addr, ok := strings.CutPrefix(sc.Text(), "listening ")
	if !ok {
		srv.Process.Kill()
		srv.Wait()
		t.Fatalf("first line %q, want \"listening ADDR\"", sc.Text())
	}

	r := runSLC(t, "--json", "bench", "--remote", addr, "--count", "300", "--pings", "15", "--size", "200")
	recs := benchRecords(t, r.stdout)
	if r.code != 0 {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	} else {
		if c := recs["connected"]; c == nil || c["peer"] != "bench-sink" {
			t.Errorf("connected record %v, want peer bench-sink", c)
		}
		if recs["receiver started"] != nil {
			t.Errorf("started a receiver although --remote was given")
		}
		checkBenchResults(t, recs, 200, 15, "typed")
	}

	// Ctrl-C ends the receiver cleanly.
	srv.Process.Signal(syscall.SIGINT)
	if err := srv.Wait(); err != nil {
		t.Errorf("receiver: %v; stderr:\n%s", err, stderr.String())
	}
}

func TestBenchBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench", "--size", "0"},
		{"bench", "--size", "1GiB"},
		{"bench", "--duration", "0s"},
		{"bench", "extra"},
	} {
		r := runSLC(t, args...)
		if r.code == 0 {
			t.Errorf("slc %s: exit 0", strings.Join(args, " "))
		}
		if l := lines(r.stderr); len(l) != 1 || !strings.HasPrefix(l[0], "slc: ") {
			t.Errorf("slc %s: stderr is not one line starting with \"slc: \":\n%s", strings.Join(args, " "), r.stderr)
		}
	}
}
