package rpc_test

import (
	"slices"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/examples/timer/timer"
	"github.com/slc-go/slc/rpc"
)

// TestTimer is supcon's Timer example: a client adds a 5-second timer on
// the timer node and gets the timeout event when it expires. The timer
// node's clock is a fake one that the test moves. It runs with both
// structured serializers.
func TestTimer(t *testing.T) {
	for _, ser := range []string{"msgpack", "json"} {
		t.Run(ser, func(t *testing.T) { testTimer(t, slc.WithSerializer(ser)) })
	}
}

func testTimer(t *testing.T, opts ...slc.Option) {
	ctx := testCtx(t, 20*time.Second)
	clock := newFakeClock()
	server := newNode(t, "timer", opts...)
	tm := timer.New(clock)
	if err := server.Register("/timer", tm.Impl); err != nil {
		t.Fatal(err)
	}
	client := newNode(t, "client", opts...)
	peer := connect(t, client, listen(t, server))

	type fired struct {
		from slc.PeerID
		v    timer.Timeout
	}
	got := make(chan fired, 10)
	sub, err := timer.TimeoutEv.On(client, peer, "/timer", func(from slc.PeerID, v timer.Timeout) { got <- fired{from, v} })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	if _, err := timer.Add.Call(ctx, client, peer, "/timer", timer.AddIn{Name: "t1", Seconds: 5}); err != nil {
		t.Fatal(err)
	}
	list := func() []string {
		t.Helper()
		out, err := timer.List.Call(ctx, client, peer, "/timer", rpc.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		return out.Names
	}
	if names := list(); !slices.Equal(names, []string{"t1"}) {
		t.Fatalf("running timers = %q, want [t1]", names)
	}
	if clock.pending() != 1 {
		t.Fatalf("%d timers scheduled on the clock, want 1", clock.pending())
	}

	clock.Advance(4999 * time.Millisecond)
	if names := list(); !slices.Equal(names, []string{"t1"}) {
		t.Fatalf("after 4.999s: running timers = %q, want [t1]", names)
	}
	select {
	case f := <-got:
		t.Fatalf("timeout %+v before 5 seconds", f)
	default:
	}

	clock.Advance(time.Millisecond)
	select {
	case f := <-got:
		if f.from != "timer" || f.v.Name != "t1" {
			t.Fatalf("got timeout %+v from %s, want t1 from timer", f.v, f.from)
		}
	case <-ctx.Done():
		t.Fatal("no timeout event")
	}
	if names := list(); len(names) != 0 {
		t.Fatalf("after the timeout: running timers = %q, want none", names)
	}

	// remove stops a timer before it fires.
	if _, err := timer.Add.Call(ctx, client, peer, "/timer", timer.AddIn{Name: "t2", Seconds: 1}); err != nil {
		t.Fatal(err)
	}
	rm, err := timer.Remove.Call(ctx, client, peer, "/timer", timer.RemoveIn{Name: "t2"})
	if err != nil || !rm.Removed {
		t.Fatalf("remove t2 = %+v, %v; want removed", rm, err)
	}
	clock.Advance(2 * time.Second)
	// A later call's result comes after any event fired before it.
	if _, err := timer.Add.Call(ctx, client, peer, "/timer", timer.AddIn{Name: "t3", Seconds: 0.5}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	select {
	case f := <-got:
		if f.v.Name != "t3" {
			t.Fatalf("got timeout of %q, want t3 (t2 was removed)", f.v.Name)
		}
	case <-ctx.Done():
		t.Fatal("no timeout event for t3")
	}
}
