package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/rpc"
)

// labIface is what the in-process rpc node of the call, describe and
// watch tests offers at /timer.
var labIface = rpc.Interface{
	Name:        "com.example.Timer",
	Description: "Named timers that fire an event when they expire.",
	Methods: []rpc.Method{
		{Name: "add", Description: "Start a timer.", In: []rpc.Argument{
			{Name: "name", Type: rpc.TypeString, Description: "The timer's name."},
			{Name: "seconds", Type: rpc.TypeFloat, Description: "Seconds until it fires."},
		}},
		{Name: "list", Description: "List the timers.",
			Out: []rpc.Argument{{Name: "names", Type: rpc.TypeList, Description: "Their names."}}},
		{Name: "tag", Description: "Takes arguments of every type.", In: []rpc.Argument{
			{Name: "n", Type: rpc.TypeInt, Description: "An int."},
			{Name: "ok", Type: rpc.TypeBool, Description: "A bool."},
			{Name: "raw", Type: rpc.TypeBytes, Description: "Bytes."},
			{Name: "list", Type: rpc.TypeList, Description: "A list."},
			{Name: "any", Description: "Anything."},
		}, Out: []rpc.Argument{{Name: "got", Description: "What arrived, as text."}}},
	},
	Events: []rpc.Event{{Name: "timeout", Description: "A timer expired.",
		Args: []rpc.Argument{{Name: "name", Type: rpc.TypeString, Description: "The timer's name."}}}},
}

// lab is an rpc node in the test process that the slc binary talks to.
type lab struct {
	node *rpc.Node
	impl *rpc.Implementation
	addr string

	mu    sync.Mutex
	names []string
}

func startLab(t *testing.T) *lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := slc.New(slc.WithName("lab"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n, err := rpc.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	l := &lab{node: n}
	l.impl, err = rpc.NewImplementation(labIface)
	if err != nil {
		t.Fatal(err)
	}
	l.impl.Handle("add", func(ctx context.Context, a rpc.Args) (rpc.Args, error) {
		if a["seconds"].(float64) < 0 {
			return nil, errors.New("negative delay")
		}
		l.mu.Lock()
		l.names = append(l.names, a["name"].(string))
		l.mu.Unlock()
		return nil, nil
	})
	l.impl.Handle("list", func(ctx context.Context, a rpc.Args) (rpc.Args, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return rpc.Args{"names": append([]string{}, l.names...)}, nil
	})
	l.impl.Handle("tag", func(ctx context.Context, a rpc.Args) (rpc.Args, error) {
		b, _ := json.Marshal(map[string]any{"n": a["n"], "ok": a["ok"], "raw": string(asBytes(a["raw"])), "list": a["list"], "any": a["any"]})
		return rpc.Args{"got": string(b)}, nil
	})
	if err := n.Register("/timer", l.impl); err != nil {
		t.Fatal(err)
	}
	a, err := c.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.addr = a.String()
	return l
}

func asBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	return nil
}

func TestCall(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	r := runSLC(t, "call", "--json", "-c", l.addr, "lab", "/timer", "com.example.Timer", "add", "name=tea", "seconds=1.5")
	if r.code != 0 {
		t.Fatalf("call add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rec map[string]any
	for _, line := range lines(r.stdout) {
		if m, ok := parseRecord(line); ok && m["kind"] == "call" {
			rec = m
		}
	}
	if rec == nil || rec["msg"] != "returned" || rec["peer"] != "lab" || rec["method"] != "com.example.Timer.add" {
		t.Fatalf("no call record in\n%s", r.stdout)
	}
	l.mu.Lock()
	names := strings.Join(l.names, ",")
	l.mu.Unlock()
	if names != "tea" {
		t.Fatalf("the lab has timers %q, want tea", names)
	}

	// Text output.
	r = runSLC(t, "call", "-c", l.addr, "lab", "/timer", "com.example.Timer", "list")
	if r.code != 0 || !strings.Contains(r.stdout, `call    returned peer=lab path=/timer method=com.example.Timer.list out={"names":["tea"]}`) {
		t.Fatalf("call list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Values are converted to the declared types.
	r = runSLC(t, "call", "--json", "-c", l.addr, "lab", "/timer", "com.example.Timer", "tag",
		"n=0x10", "ok=true", "raw=bytes", "list=[1,\"two\"]", "any={\"k\":null}")
	if r.code != 0 || !strings.Contains(r.stdout, `"out":{"got":"{\"any\":{\"k\":null},\"list\":[1,\"two\"],\"n\":16,\"ok\":true,\"raw\":\"bytes\"}"}`) {
		t.Fatalf("call tag: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestCallErrors(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	cases := []struct {
		args   []string
		stderr string
	}{
		{[]string{"lab", "/timer", "com.example.Timer", "nope"},
			`slc: rpc: lab /timer com.example.Timer.nope: unknown method: com.example.Timer has no method "nope" (methods: add, list, tag)`},
		{[]string{"lab", "/nowhere", "com.example.Timer", "list"},
			`slc: rpc: lab /nowhere com.example.Timer.list: unknown path: nothing is registered at "/nowhere"`},
		{[]string{"lab", "/timer", "com.example.Other", "list"},
			`slc: rpc: lab /timer com.example.Other.list: unknown interface`},
		{[]string{"lab", "/timer", "com.example.Timer", "add", "name=x"},
			`slc: rpc: lab /timer com.example.Timer.add: bad arguments: missing argument "seconds"`},
		{[]string{"lab", "/timer", "com.example.Timer", "add", "name=x", "seconds=-1"},
			`slc: rpc: lab /timer com.example.Timer.add: handler failed: negative delay`},
		{[]string{"lab", "/timer", "com.example.Timer", "add", "name=x", "seconds=soon"},
			`slc: argument seconds: "soon" is not a float`},
		{[]string{"lab", "/timer", "com.example.Timer", "add", "name"},
			`slc: argument "name": want key=value`},
		{[]string{"other", "/timer", "com.example.Timer", "list"},
			`slc: the node at ` + l.addr + ` is "lab", not "other"`},
		{[]string{"lab", "timer", "com.example.Timer", "list"},
			`slc: invalid path "timer"`},
	}
	for i, tc := range cases {
		r := runSLC(t, append([]string{"call", "-c", l.addr}, tc.args...)...)
		if r.code != 1 || !strings.HasPrefix(strings.TrimSpace(r.stderr), tc.stderr) || len(lines(r.stderr)) != 1 {
			t.Errorf("%d. slc call %s: exit %d, stderr %q; want 1 and %q", i, strings.Join(tc.args, " "), r.code, r.stderr, tc.stderr)
		}
	}
	if r := runSLC(t, "call", "lab", "/timer", "com.example.Timer", "list"); r.code != 1 || !strings.Contains(r.stderr, `"connect" not set`) {
		t.Errorf("call without --connect: exit %d, stderr %q", r.code, r.stderr)
	}
}
