package rpc_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc/examples/timer/timer"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/rpc"
)

// TestSubscribeUnknown: a subscription to a path, interface or event the
// node does not have is refused by the node, and Wait reports it with a
// typed error; the subscription is ended. The same holds on a node's own
// name.
func TestSubscribeUnknown(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	server := newNode(t, "timer")
	if err := server.Register("/timer", timer.New(newFakeClock()).Impl); err != nil {
		t.Fatal(err)
	}
	client := newNode(t, "client")
	peer := connect(t, client, listen(t, server))

	cases := []struct {
		path, iface, event string
		kind               *rpc.Error
		contains           string
	}{
		{"/nowhere", "com.example.Timer", "timeout", rpc.ErrUnknownPath, `nothing is registered at "/nowhere"`},
		{"/timer", "com.example.Nope", "timeout", rpc.ErrUnknownInterface, "it implements com.example.Timer"},
		{"/timer", "com.example.Timer", "timeot", rpc.ErrUnknownEvent, `no event "timeot" (events: timeout)`},
	}
	for _, n := range []*rpc.Node{client, server} {
		for i, tc := range cases {
			sub, err := n.On(peer, tc.path, tc.iface, tc.event, newEvents().handler)
			if err != nil {
				t.Fatalf("%s: %d. On: %v", n.Name(), i, err)
			}
			err = sub.Wait(ctx)
			var re *rpc.Error
			switch {
			case !errors.Is(err, tc.kind):
				t.Errorf("%s: %d. On(%q, %q, %q).Wait() = %v; want %s", n.Name(), i, tc.path, tc.iface, tc.event, err, tc.kind.Kind)
			case !errors.As(err, &re) || re.Node != peer || re.Path != tc.path || !strings.Contains(err.Error(), tc.contains):
				t.Errorf("%s: %d. Wait() = %q (%+v); want node %s, path %s, containing %q", n.Name(), i, err, re, peer, tc.path, tc.contains)
			}
			if errors.Is(err, rpc.ErrUnknownEvent) && !strings.Contains(err.Error(), "com.example.Timer.timeot") {
				t.Errorf("%s: %d. Wait() = %q; want the event named", n.Name(), i, err)
			}
			sub.Unsubscribe() // a no-op: it ended
		}
	}
	if n := rpc.RemoteSubscriptions(server); n != 0 {
		t.Errorf("the server holds %d subscriptions, want 0", n)
	}
	// A right one is held.
	sub, err := client.On(peer, "/timer", "com.example.Timer", "timeout", newEvents().handler)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := sub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rpc.RemoteSubscriptions(server); n != 1 {
		t.Errorf("the server holds %d subscriptions, want 1", n)
	}
}

// TestSubscriptionWaitsForRegistration: a held subscription that a
// restarted node refuses, because it has not registered the
// implementation yet, is kept and sent again when the node registers it.
func TestSubscriptionWaitsForRegistration(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	first := newNode(t, "timer")
	if err := first.Register("/timer", timer.New(newFakeClock()).Impl); err != nil {
		t.Fatal(err)
	}
	proxy, err := testutil.NewProxy(listen(t, first))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	client := newNode(t, "client", quickRetry())
	rec := record(t, client)
	peer := connect(t, client, proxy.Addr())
	got := newEvents()
	sub, err := client.On(peer, "/timer", "com.example.Timer", "timeout", got.handler)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := sub.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	// The restarted node: the same name behind the same address, with
	// nothing registered when it says hello.
	second := newNode(t, "timer")
	proxy.SetTarget(listen(t, second))
	proxy.Reset()
	rec.wait(ctx, t, "NodeAppeared of the new instance", func(ev any) bool {
		a, ok := ev.(*rpc.NodeAppeared)
		return ok && a.Node == "timer" && a.Instance == second.Instance()
	})
	tm := timer.New(newFakeClock())
	if err := second.Register("/timer", tm.Impl); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the new instance holds the subscription", func() bool { return rpc.RemoteSubscriptions(second) == 1 })
	if err := tm.Impl.Fire(ctx, "timeout", rpc.Args{"name": "after"}); err != nil {
		t.Fatal(err)
	}
	if ev := got.next(ctx, t); ev.Args["name"] != "after" || ev.Node != "timer" {
		t.Fatalf("event %+v, want timeout after", ev)
	}
}
