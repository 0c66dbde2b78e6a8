package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/rpc"
)

func TestWatch(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	p := start(t, "watch", "watch", "--json", "-c", l.addr, "lab", "/timer", "com.example.Timer", "timeout", "--count", "2")
	_, i := p.waitRecord(0, map[string]any{"kind": "info", "msg": "subscribed", "event": "com.example.Timer.timeout"})
	for _, name := range []string{"tea", "eggs"} {
		if err := l.impl.Fire(ctx, "timeout", rpc.Args{"name": name}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"tea", "eggs"} {
		rec, j := p.waitRecord(i, map[string]any{"kind": "recv", "msg": "event", "from": "lab", "path": "/timer",
			"event": "com.example.Timer.timeout"})
		if args, _ := rec["args"].(map[string]any); args["name"] != name {
			t.Fatalf("event %v, want timeout of %s", rec, name)
		}
		i = j + 1
	}
	p.expectExit(0)
}

// waitEvent waits for watch's record of the timeout event of name, from
// index i on, and returns the index after it.
func waitEvent(t *testing.T, p *proc, i int, name string) int {
	t.Helper()
	_, j := p.waitRecordFunc(i, "the event "+name, func(r map[string]any) bool {
		args, _ := r["args"].(map[string]any)
		return r["kind"] == "recv" && r["msg"] == "event" && r["from"] == "lab" && args["name"] == name
	})
	return j + 1
}

// TestWatchReconnect: watch keeps its subscription across connection
// resets, including the events fired while the connection was down.
func TestWatchReconnect(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	proxy, err := testutil.NewProxy(l.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	fire := func(name string) {
		t.Helper()
		if err := l.impl.Fire(ctx, "timeout", rpc.Args{"name": name}); err != nil {
			t.Fatal(err)
		}
	}
	p := start(t, "watch", "watch", "--json", "-c", proxy.Addr(), "lab", "/timer", "com.example.Timer", "timeout", "--count", "3")
	_, i := p.waitRecord(0, map[string]any{"kind": "info", "msg": "subscribed", "event": "com.example.Timer.timeout"})
	fire("before")
	i = waitEvent(t, p, i, "before")

	// A reset: the session resumes, the subscription stands.
	proxy.Reset()
	_, i = p.waitRecord(i, map[string]any{"kind": "event", "msg": "PeerConnected", "peer": "lab", "resumed": true})
	fire("resumed")
	i = waitEvent(t, p, i, "resumed")

	// An event fired while the connection is down arrives once it is
	// back.
	proxy.Refuse(true)
	proxy.Reset()
	_, i = p.waitRecord(i, map[string]any{"kind": "event", "msg": "PeerDisconnected", "peer": "lab"})
	fire("while-down")
	proxy.Refuse(false)
	waitEvent(t, p, i, "while-down")
	p.expectExit(0)
	if rs := p.records(map[string]any{"kind": "event", "msg": "PeerConnected", "restarted": true}); len(rs) != 0 {
		t.Errorf("restarts reported: %v", rs)
	}
}

// TestWatchRestart: watch keeps its subscription across a restart of the
// node, a new instance of lab behind the same address, which gets the
// subscription again: when the old instance went away without a word
// (slc reconnects and finds the new instance) and when it said goodbye,
// ending the session (watch dials again).
func TestWatchRestart(t *testing.T) {
	t.Parallel()
	for _, goodbye := range []bool{false, true} {
		name := "abrupt"
		if goodbye {
			name = "goodbye"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testWatchRestart(t, goodbye)
		})
	}
}

func testWatchRestart(t *testing.T, goodbye bool) {
	first := startLab(t)
	proxy, err := testutil.NewProxy(first.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	p := start(t, "watch", "watch", "--json", "-c", proxy.Addr(), "lab", "/timer", "com.example.Timer", "timeout", "--count", "2")
	_, i := p.waitRecord(0, map[string]any{"kind": "info", "msg": "subscribed", "event": "com.example.Timer.timeout"})
	if err := first.impl.Fire(ctx, "timeout", rpc.Args{"name": "first"}); err != nil {
		t.Fatal(err)
	}
	i = waitEvent(t, p, i, "first")

	stopFirst := func() {
		first.node.Close()
		first.node.Communicator().Close()
	}
	if goodbye {
		stopFirst()
		_, i = p.waitRecord(i, map[string]any{"kind": "event", "msg": "PeerDisconnected", "peer": "lab", "final": true})
	}
	second := startLab(t)
	proxy.SetTarget(second.addr)
	proxy.Reset()
	if goodbye {
		// A new session, with an instance slc never saw.
		_, i = p.waitRecord(i, map[string]any{"kind": "info", "msg": "connected", "peer": "lab"})
	} else {
		_, i = p.waitRecord(i, map[string]any{"kind": "event", "msg": "PeerConnected", "peer": "lab", "restarted": true})
		stopFirst()
	}
	// The new instance holds the subscription once watch's hello
	// exchange with it is done, which nothing here observes: fire until
	// the event arrives (bounded by procTimeout).
	stop := make(chan struct{})
	fired := make(chan struct{})
	go func() {
		defer close(fired)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			second.impl.Fire(ctx, "timeout", rpc.Args{"name": "second"})
			select {
			case <-tick.C:
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	waitEvent(t, p, i, "second")
	close(stop)
	<-fired
	p.expectExit(0)
}

// TestWatchUnknownEvent: watch of an event the node does not have exits 1
// with the node's typed refusal.
func TestWatchUnknownEvent(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	r := runSLC(t, "watch", "-c", l.addr, "lab", "/timer", "com.example.Timer", "timeot")
	if r.code != 1 || !strings.Contains(r.stderr, `unknown event: com.example.Timer has no event "timeot"`) {
		t.Errorf("watch of a typo: exit %d, stderr %q", r.code, r.stderr)
	}
}
