package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/rpc"
)

func TestDescribe(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	r := runSLC(t, "describe", "-c", l.addr, "lab")
	if r.code != 0 {
		t.Fatalf("describe: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"node lab (instance ",
		"/timer\n  com.example.Timer\n    Named timers that fire an event when they expire.\n",
		"    method add(name string, seconds float)\n      Start a timer.\n      in  name string: The timer's name.\n      in  seconds float: Seconds until it fires.\n",
		"    method list() -> (names list)\n      List the timers.\n      out names list: Their names.\n",
		"      in  any any: Anything.\n",
		"    event timeout(name string)\n      A timer expired.\n      arg name string: The timer's name.\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = runSLC(t, "describe", "--json", "-c", l.addr, "lab")
	if r.code != 0 || len(lines(r.stdout)) != 1 {
		t.Fatalf("describe --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var d rpc.NodeDescription
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatal(err)
	}
	if d.Node != "lab" || d.Instance != l.node.Instance() || len(d.Paths) != 1 || d.Paths[0].Path != "/timer" ||
		len(d.Paths[0].Interfaces) != 1 || len(d.Paths[0].Interfaces[0].Methods) != 3 {
		t.Fatalf("describe --json: %+v", d)
	}

	if r := runSLC(t, "describe", "-c", l.addr, "someone"); r.code != 1 || !strings.Contains(r.stderr, `is "lab", not "someone"`) {
		t.Errorf("describe of the wrong node: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestDescribeVia: describe of a peer of the node at --connect asks that
// node, which answers with what its peer announced.
func TestDescribeVia(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := slc.New(slc.WithName("other"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	other, err := rpc.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	impl, err := rpc.NewImplementation(rpc.Interface{Name: "test.Ping", Description: "Answers pings.",
		Methods: []rpc.Method{{Name: "ping", Description: "Returns at once."}}})
	if err != nil {
		t.Fatal(err)
	}
	impl.Handle("ping", func(ctx context.Context, a rpc.Args) (rpc.Args, error) { return nil, nil })
	if err := other.Register("/ping", impl); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Connect(ctx, l.addr); err != nil {
		t.Fatal(err)
	}
	// lab knows other once other said hello.
	if _, err := l.node.Describe(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	r := runSLC(t, "describe", "-c", l.addr, "other")
	if r.code != 0 {
		t.Fatalf("describe other: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"node other (instance ", "/ping\n  test.Ping\n    Answers pings.\n    method ping()\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe output lacks %q:\n%s", want, r.stdout)
		}
	}
}
