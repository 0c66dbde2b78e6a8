package main

import (
	"context"
	"testing"

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
