package rpc_test

import (
	"testing"
	"time"

	"github.com/slc-go/slc/examples/timer/timer"
	"github.com/slc-go/slc/rpc"
)

// slowHandler is an event handler that blocks on each event until
// released; it reports each event's name on got as it starts.
type slowHandler struct {
	got     chan string
	release chan struct{}
}

func newSlowHandler() *slowHandler {
	return &slowHandler{got: make(chan string, 100), release: make(chan struct{})}
}

func (h *slowHandler) handle(ev rpc.EventMessage) {
	h.got <- ev.Args["name"].(string)
	<-h.release
}

func (h *slowHandler) next(t *testing.T, ctxDone <-chan struct{}) string {
	t.Helper()
	select {
	case name := <-h.got:
		return name
	case <-ctxDone:
		t.Fatal("no event")
		return ""
	}
}

// TestEventQueueBound: when the event handlers fall WithEventQueue events
// behind, further events are dropped, counted per subscription, and
// reported with one EventsDropped; the events queued before are handled,
// and so are those that arrive after the queue has room again.
func TestEventQueueBound(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	n := newNodeWith(t, "solo", []rpc.Option{rpc.WithEventQueue(2)})
	rec := record(t, n)
	tm := timer.New(newFakeClock())
	if err := n.Register("/timer", tm.Impl); err != nil {
		t.Fatal(err)
	}
	h := newSlowHandler()
	sub, err := n.On("solo", "/timer", "com.example.Timer", "timeout", h.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	fire := func(name string) {
		t.Helper()
		if err := tm.Impl.Fire(ctx, "timeout", rpc.Args{"name": name}); err != nil {
			t.Fatal(err)
		}
	}
	fire("e1")
	if got := h.next(t, ctx.Done()); got != "e1" {
		t.Fatalf("first event %q", got)
	}
	fire("e2") // queued: e1 runs, e2 waits
	fire("e3") // dropped
	fire("e4") // dropped
	if d := sub.Dropped(); d != 2 {
		t.Fatalf("Dropped() = %d, want 2", d)
	}
	ev := rec.wait(ctx, t, "EventsDropped", isType[*rpc.EventsDropped]).(*rpc.EventsDropped)
	if ev.Node != "solo" || ev.Path != "/timer" || ev.Interface != "com.example.Timer" || ev.Event != "timeout" || ev.Total != 1 {
		t.Errorf("EventsDropped %+v, want the first drop of solo /timer com.example.Timer.timeout", ev)
	}
	if k := rec.count(isType[*rpc.EventsDropped]); k != 1 {
		t.Errorf("%d EventsDropped published, want 1 (one per run of drops)", k)
	}
	close(h.release)
	if got := h.next(t, ctx.Done()); got != "e2" {
		t.Fatalf("second event handled %q, want e2", got)
	}
	// The queue drains; a later event is handled again.
	fire("e5")
	if got := h.next(t, ctx.Done()); got != "e5" {
		t.Fatalf("event after the drops %q, want e5", got)
	}
	if d := sub.Dropped(); d != 2 {
		t.Errorf("Dropped() = %d, want 2", d)
	}
}

// TestEventQueueBoundRemote: a subscriber whose handler is stuck drops the
// events of a remote node past the bound, instead of growing without end,
// and the connection keeps carrying calls meanwhile.
func TestEventQueueBoundRemote(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	server := newNode(t, "timer")
	tm := timer.New(newFakeClock())
	if err := server.Register("/timer", tm.Impl); err != nil {
		t.Fatal(err)
	}
	client := newNodeWith(t, "client", []rpc.Option{rpc.WithEventQueue(2)})
	peer := connect(t, client, listen(t, server))
	h := newSlowHandler()
	sub, err := client.On(peer, "/timer", "com.example.Timer", "timeout", h.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := sub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"e1", "e2", "e3", "e4", "e5", "e6"} {
		if err := tm.Impl.Fire(ctx, "timeout", rpc.Args{"name": name}); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.next(t, ctx.Done()); got != "e1" {
		t.Fatalf("first event %q", got)
	}
	// e1 runs and one more waits: 4 are dropped, whatever the timing.
	eventually(ctx, t, "4 events dropped", func() bool { return sub.Dropped() == 4 })
	// A call goes through while the handler is stuck.
	if _, err := timer.List.Call(ctx, client, peer, "/timer", rpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	if got := h.next(t, ctx.Done()); got != "e2" {
		t.Fatalf("second event %q, want e2", got)
	}
	if err := tm.Impl.Fire(ctx, "timeout", rpc.Args{"name": "e7"}); err != nil {
		t.Fatal(err)
	}
	if got := h.next(t, ctx.Done()); got != "e7" {
		t.Fatalf("event after the drops %q, want e7", got)
	}
	if d := sub.Dropped(); d != 4 {
		t.Errorf("Dropped() = %d, want 4", d)
	}
}
