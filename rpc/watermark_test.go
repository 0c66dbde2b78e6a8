package rpc_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/rpc"
)

var onceIface = rpc.Interface{
	Name: "test.Once", Description: "Counts its runs.",
	Methods: []rpc.Method{{
		Name: "hold", Description: "Counts a run, then blocks until released.",
		In:  []rpc.Argument{{Name: "tag", Type: rpc.TypeString, Description: "Names the call."}},
		Out: []rpc.Argument{{Name: "n", Type: rpc.TypeInt, Description: "Runs of tag so far."}},
	}},
}

// holder implements onceIface: hold announces each run on started and
// returns when release is closed (or its context ends).
type holder struct {
	impl    *rpc.Implementation
	started chan string
	release chan struct{}

	mu   sync.Mutex
	runs map[string]int
}

func newHolder(t *testing.T) *holder {
	t.Helper()
	h := &holder{started: make(chan string, 100), release: make(chan struct{}), runs: map[string]int{}}
	impl, err := rpc.NewImplementation(onceIface)
	if err != nil {
		t.Fatal(err)
	}
	if err := impl.Handle("hold", func(ctx context.Context, a rpc.Args) (rpc.Args, error) {
		tag := a["tag"].(string)
		h.mu.Lock()
		h.runs[tag]++
		n := h.runs[tag]
		h.mu.Unlock()
		h.started <- tag
		select {
		case <-h.release:
			return rpc.Args{"n": n}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	h.impl = impl
	return h
}

func (h *holder) count(tag string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs[tag]
}

func (h *holder) waitStarted(ctx context.Context, t *testing.T) string {
	t.Helper()
	select {
	case tag := <-h.started:
		return tag
	case <-ctx.Done():
		t.Fatal("the handler did not start")
		return ""
	}
}

// eventually waits until cond holds, checking it every few milliseconds,
// failing the test when ctx ends first.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
}

// TestAtMostOnceAcrossReset: a call whose handler is running when the
// connection is reset, and that finishes once the session has resumed,
// runs exactly once, and its caller gets exactly one result.
func TestAtMostOnceAcrossReset(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	server := newNode(t, "server")
	h := newHolder(t)
	if err := server.Register("/once", h.impl); err != nil {
		t.Fatal(err)
	}
	proxy, err := testutil.NewProxy(listen(t, server))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	client := newNode(t, "client", quickRetry())
	rec := record(t, client)
	peer := connect(t, client, proxy.Addr())
	rec.waitCount(ctx, t, "PeerConnected", 1, isType[*actors.PeerConnected])

	type result struct {
		out rpc.Args
		err error
	}
	done := make(chan result, 2)
	go func() {
		out, err := client.Call(ctx, peer, "/once", "test.Once", "hold", rpc.Args{"tag": "a"})
		done <- result{out, err}
	}()
	h.waitStarted(ctx, t)
	proxy.Reset()
	rec.waitCount(ctx, t, "PeerConnected", 2, isType[*actors.PeerConnected])
	close(h.release)

	select {
	case r := <-done:
		if r.err != nil || r.out["n"] != int64(1) {
			t.Fatalf("call = %v, %v; want n=1", r.out, r.err)
		}
	case <-ctx.Done():
		t.Fatal("no result")
	}
	// A later call on the same session: everything sent before it has
	// arrived by the time its result is back.
	if out, err := client.Call(ctx, peer, "/once", "test.Once", "hold", rpc.Args{"tag": "b"}); err != nil || out["n"] != int64(1) {
		t.Fatalf("second call = %v, %v", out, err)
	}
	if n := h.count("a"); n != 1 {
		t.Errorf("the call ran %d times, want 1", n)
	}
	if n := rpc.StrayResults(client); n != 0 {
		t.Errorf("the client got %d results it did not await (copies), want 0", n)
	}
	if n := rec.count(func(ev any) bool { pc, ok := ev.(*actors.PeerConnected); return ok && pc.Restarted }); n != 0 {
		t.Fatalf("%d restarts reported; the server never restarted", n)
	}
	// The server keeps only the last call's result: the watermark of
	// the second call dropped the first's.
	if n := rpc.KeptCalls(server, "client"); n != 1 {
		t.Errorf("the server keeps %d calls of the client, want 1", n)
	}
}

// TestWatermark: the callee keeps the results a caller has not
// acknowledged, whatever their number and age, and drops them once the
// caller's watermark passes them; calls given up stay outstanding until
// their results arrive.
func TestWatermark(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	server := newNodeWith(t, "server", []rpc.Option{rpc.WithMaxResults(3)})
	h := newHolder(t)
	if err := server.Register("/once", h.impl); err != nil {
		t.Fatal(err)
	}
	other := newNode(t, "other")
	if err := other.Register("/once", newHolder(t).impl); err != nil {
		t.Fatal(err)
	}
	client := newNode(t, "client")
	peer := connect(t, client, listen(t, server))
	otherPeer := connect(t, client, listen(t, other))

	// Many calls, one at a time: one result kept at most.
	close(h.release)
	for i := range 50 {
		if _, err := client.Call(ctx, peer, "/once", "test.Once", "hold", rpc.Args{"tag": "seq"}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := rpc.KeptCalls(server, "client"); n != 1 {
		t.Fatalf("after 50 calls, the server keeps %d, want 1", n)
	}
	if w := rpc.Watermark(client, peer); w != 0 {
		t.Fatalf("watermark %d with nothing outstanding", w)
	}

	// A call blocked on another node does not hold this node's
	// watermark back: watermarks are per callee.
	octx, ocancel := context.WithCancel(ctx)
	odone := make(chan error, 1)
	go func() {
		_, err := client.Call(octx, otherPeer, "/once", "test.Once", "hold", rpc.Args{"tag": "o"})
		odone <- err
	}()
	eventually(ctx, t, "the call to other is outstanding", func() bool { return rpc.Watermark(client, otherPeer) != 0 })
	for range 10 {
		if _, err := client.Call(ctx, peer, "/once", "test.Once", "hold", rpc.Args{"tag": "seq"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := rpc.KeptCalls(server, "client"); n != 1 {
		t.Fatalf("with a call outstanding elsewhere, the server keeps %d, want 1", n)
	}
	// A call given up stays outstanding until its result (here: the
	// handler's context canceled) arrives.
	ocancel()
	if err := <-odone; !errors.Is(err, rpc.ErrCanceled) {
		t.Fatalf("canceled call: %v", err)
	}
	eventually(ctx, t, "the canceled call's result arrives", func() bool { return rpc.Watermark(client, otherPeer) == 0 })
	if n := rpc.StrayResults(client); n != 0 {
		t.Errorf("%d stray results, want 0", n)
	}
}

// TestMaxResultsBusy: a caller with WithMaxResults calls kept on a node
// gets KindBusy for new ones, which do not run, until it acknowledges
// results.
func TestMaxResultsBusy(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	server := newNodeWith(t, "server", []rpc.Option{rpc.WithMaxResults(2)})
	h := newHolder(t)
	if err := server.Register("/once", h.impl); err != nil {
		t.Fatal(err)
	}
	client := newNode(t, "client")
	peer := connect(t, client, listen(t, server))

	done := make(chan error, 2)
	for _, tag := range []string{"x", "y"} {
		go func() {
			_, err := client.Call(ctx, peer, "/once", "test.Once", "hold", rpc.Args{"tag": tag})
			done <- err
		}()
	}
	h.waitStarted(ctx, t)
	h.waitStarted(ctx, t)
	_, err := client.Call(ctx, peer, "/once", "test.Once", "hold", rpc.Args{"tag": "z"})
	if !errors.Is(err, rpc.ErrBusy) || !strings.Contains(err.Error(), "WithMaxResults") {
		t.Fatalf("third call: %v, want busy (WithMaxResults)", err)
	}
	if n := h.count("z"); n != 0 {
		t.Fatalf("the refused call ran %d times", n)
	}
	close(h.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if out, err := client.Call(ctx, peer, "/once", "test.Once", "hold", rpc.Args{"tag": "z"}); err != nil || out["n"] != int64(1) {
		t.Fatalf("call after the results were acknowledged: %v, %v", out, err)
	}
	// A caller that says goodbye re-sends nothing: the server forgets it.
	if n := rpc.KeptCalls(server, "client"); n != 1 {
		t.Fatalf("the server keeps %d calls of the client, want 1", n)
	}
	if err := client.Communicator().Disconnect(ctx, peer); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the server forgets the client", func() bool { return rpc.KeptCalls(server, "client") == 0 })
}
