package rpc_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/rpc"
)

// testIface is the interface of the error and cancellation tests.
var testIface = rpc.Interface{
	Name:        "test.Calc",
	Description: "Methods that succeed, fail, panic or block.",
	Methods: []rpc.Method{
		{Name: "div", Description: "Integer division.",
			In: []rpc.Argument{
				{Name: "a", Type: rpc.TypeInt, Description: "Dividend."},
				{Name: "b", Type: rpc.TypeInt, Description: "Divisor."},
			},
			Out: []rpc.Argument{{Name: "q", Type: rpc.TypeInt, Description: "Quotient."}}},
		{Name: "panic", Description: "Panics."},
		{Name: "bad", Description: "Returns results that do not match its declaration.",
			Out: []rpc.Argument{{Name: "x", Type: rpc.TypeInt, Description: "A number."}}},
		{Name: "block", Description: "Blocks until its context ends, and reports how it ended.",
			In: []rpc.Argument{{Name: "tag", Type: rpc.TypeString, Description: "Names the call."}}},
	},
}

// blocked is what a call of block saw.
type blocked struct {
	tag         string
	caller      rpc.CallInfo
	hasDeadline bool
	deadline    time.Time
	err         error
}

// calc implements testIface. Each call of block announces itself on
// started, and reports on ended how its context ended.
type calc struct {
	impl    *rpc.Implementation
	started chan blocked
	ended   chan blocked

	mu    sync.Mutex
	calls map[string]int
}

func newCalc(t *testing.T) *calc {
	t.Helper()
	c := &calc{started: make(chan blocked, 10), ended: make(chan blocked, 10), calls: map[string]int{}}
	impl, err := rpc.NewImplementation(testIface)
	if err != nil {
		t.Fatal(err)
	}
	c.impl = impl
	handle := func(name string, fn rpc.MethodFunc) {
		if err := impl.Handle(name, func(ctx context.Context, args rpc.Args) (rpc.Args, error) {
			c.mu.Lock()
			c.calls[name]++
			c.mu.Unlock()
			return fn(ctx, args)
		}); err != nil {
			t.Fatal(err)
		}
	}
	handle("div", func(ctx context.Context, args rpc.Args) (rpc.Args, error) {
		a, _ := args["a"].(int64)
		b, _ := args["b"].(int64)
		if b == 0 {
			return nil, errors.New("division by zero")
		}
		return rpc.Args{"q": a / b}, nil
	})
	handle("panic", func(ctx context.Context, args rpc.Args) (rpc.Args, error) { panic("deliberately") })
	handle("bad", func(ctx context.Context, args rpc.Args) (rpc.Args, error) { return rpc.Args{"y": "no"}, nil })
	handle("block", func(ctx context.Context, args rpc.Args) (rpc.Args, error) {
		b := blocked{tag: args["tag"].(string)}
		b.caller, _ = rpc.CallerOf(ctx)
		b.deadline, b.hasDeadline = ctx.Deadline()
		c.started <- b
		<-ctx.Done()
		b.err = ctx.Err()
		c.ended <- b
		return nil, ctx.Err()
	})
	return c
}

func (c *calc) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

// calcPair starts a node offering calc at /calc and a client connected
// to it.
func calcPair(t *testing.T, serverOpts ...rpc.Option) (server, client *rpc.Node, impl *calc, peer slc.PeerID) {
	t.Helper()
	server = newNodeWith(t, "calc", serverOpts)
	impl = newCalc(t)
	if err := server.Register("/calc", impl.impl); err != nil {
		t.Fatal(err)
	}
	client = newNode(t, "client")
	peer = connect(t, client, listen(t, server))
	return server, client, impl, peer
}

// TestRemoteErrors checks every kind of error a call returns, and that
// the node goes on serving after handlers fail.
func TestRemoteErrors(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	_, client, impl, peer := calcPair(t)

	cases := []struct {
		name                string
		node                slc.PeerID
		path, iface, method string
		args                rpc.Args
		kind                *rpc.Error
		contains            string
	}{
		{"unknown node", "nobody", "/calc", "test.Calc", "div", rpc.Args{"a": 1, "b": 1}, rpc.ErrUnknownNode, "unknown node"},
		{"unknown path", peer, "/nowhere", "test.Calc", "div", rpc.Args{"a": 1, "b": 1}, rpc.ErrUnknownPath, `nothing is registered at "/nowhere"`},
		{"unknown interface", peer, "/calc", "test.Nope", "div", rpc.Args{"a": 1, "b": 1}, rpc.ErrUnknownInterface, "it implements test.Calc"},
		{"unknown method", peer, "/calc", "test.Calc", "mul", rpc.Args{"a": 1, "b": 1}, rpc.ErrUnknownMethod, `no method "mul" (methods: div, panic, bad, block)`},
		{"missing argument", peer, "/calc", "test.Calc", "div", rpc.Args{"a": 1}, rpc.ErrBadArguments, `missing argument "b"`},
		{"unknown argument", peer, "/calc", "test.Calc", "div", rpc.Args{"a": 1, "b": 1, "c": 2}, rpc.ErrBadArguments, `unknown argument "c"`},
		{"wrong type", peer, "/calc", "test.Calc", "div", rpc.Args{"a": 1, "b": "two"}, rpc.ErrBadArguments, `argument "b": string "two" is not of type int`},
		{"handler error", peer, "/calc", "test.Calc", "div", rpc.Args{"a": 1, "b": 0}, rpc.ErrHandler, "division by zero"},
		{"handler panic", peer, "/calc", "test.Calc", "panic", nil, rpc.ErrHandler, "the handler panicked: deliberately"},
		{"bad results", peer, "/calc", "test.Calc", "bad", nil, rpc.ErrHandler, `bad results: missing argument "x"; unknown argument "y"`},
	}
	for i, tc := range cases {
		_, err := client.Call(ctx, tc.node, tc.path, tc.iface, tc.method, tc.args)
		var re *rpc.Error
		switch {
		case err == nil:
			t.Errorf("%d. %s: no error", i, tc.name)
		case !errors.Is(err, tc.kind) || !errors.As(err, &re):
			t.Errorf("%d. %s: error %v (%T), want kind %s", i, tc.name, err, err, tc.kind.Kind)
		case !strings.Contains(err.Error(), tc.contains):
			t.Errorf("%d. %s: error %q does not say %q", i, tc.name, err, tc.contains)
		case re.Node != tc.node || re.Path != tc.path || re.Interface != tc.iface || re.Method != tc.method:
			t.Errorf("%d. %s: error names %s %s %s.%s, want %s %s %s.%s", i, tc.name,
				re.Node, re.Path, re.Interface, re.Method, tc.node, tc.path, tc.iface, tc.method)
		}
	}
	if impl.count("div") != 1 || impl.count("panic") != 1 || impl.count("bad") != 1 {
		t.Errorf("handler runs: div=%d panic=%d bad=%d; want 1 each (calls with bad arguments never run)",
			impl.count("div"), impl.count("panic"), impl.count("bad"))
	}

	// The node is still up: a good call succeeds.
	out, err := client.Call(ctx, peer, "/calc", "test.Calc", "div", rpc.Args{"a": 7, "b": 2})
	if err != nil {
		t.Fatal(err)
	}
	if q, ok := out["q"].(int64); !ok || q != 3 {
		t.Fatalf("7 / 2 = %#v, want 3", out["q"])
	}
	if want := "rpc: calc /calc test.Calc.div: handler failed: division by zero"; func() string {
		_, err := client.Call(ctx, peer, "/calc", "test.Calc", "div", rpc.Args{"a": 1, "b": 0})
		return err.Error()
	}() != want {
		t.Errorf("handler error message is not %q", want)
	}
}

// TestTimeoutError: a call whose deadline passes fails with KindTimeout;
// the deadline went with the call, so the handler's context ended too.
func TestTimeoutError(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	_, client, impl, peer := calcPair(t)

	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := client.Call(cctx, peer, "/calc", "test.Calc", "block", rpc.Args{"tag": "t"})
	if !errors.Is(err, rpc.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a timeout", err)
	}
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v does not report Timeout() = true", err)
	}
	started := <-impl.started
	if !started.hasDeadline {
		t.Fatal("the handler's context has no deadline")
	}
	select {
	case b := <-impl.ended:
		// The handler's own deadline, or the cancel the caller sent.
		if !errors.Is(b.err, context.DeadlineExceeded) && !errors.Is(b.err, context.Canceled) {
			t.Fatalf("handler context ended with %v", b.err)
		}
	case <-ctx.Done():
		t.Fatal("the handler's context did not end")
	}
}

// TestBusyError: past WithMaxCalls, calls fail with KindBusy at once.
func TestBusyError(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	_, client, impl, peer := calcPair(t, rpc.WithMaxCalls(1))
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := client.Call(cctx, peer, "/calc", "test.Calc", "block", rpc.Args{"tag": "first"})
		done <- err
	}()
	<-impl.started
	_, err := client.Call(ctx, peer, "/calc", "test.Calc", "div", rpc.Args{"a": 1, "b": 1})
	if !errors.Is(err, rpc.ErrBusy) {
		t.Fatalf("second call: %v, want busy", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, rpc.ErrCanceled) {
		t.Fatalf("first call: %v, want canceled", err)
	}
	<-impl.ended
	// The slot is free again once the handler has returned.
	for {
		_, err := client.Call(ctx, peer, "/calc", "test.Calc", "div", rpc.Args{"a": 1, "b": 1})
		if err == nil {
			break
		}
		if !errors.Is(err, rpc.ErrBusy) {
			t.Fatal(err)
		}
	}
}

// TestNodeLostError: a call in progress when the session ends fails with
// KindNodeLost; a call after it, with KindUnknownNode; a call on a closed
// node, with KindClosed.
func TestNodeLostError(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	server, client, impl, peer := calcPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := client.Call(ctx, peer, "/calc", "test.Calc", "block", rpc.Args{"tag": "x"})
		done <- err
	}()
	b := <-impl.started
	if b.caller.Node != "client" || b.caller.Method != "block" || b.caller.Path != "/calc" {
		t.Errorf("CallerOf = %+v", b.caller)
	}
	if err := server.Communicator().Disconnect(ctx, "client"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, rpc.ErrNodeLost) {
		t.Fatalf("call in progress: %v, want node lost", err)
	}
	// The server canceled the call of the peer that left.
	if e := <-impl.ended; !errors.Is(e.err, context.Canceled) {
		t.Fatalf("handler context: %v, want canceled", e.err)
	}
	if _, err := client.Call(ctx, peer, "/calc", "test.Calc", "div", rpc.Args{"a": 1, "b": 1}); !errors.Is(err, rpc.ErrUnknownNode) {
		t.Fatalf("call after the disconnect: %v, want unknown node", err)
	}
	client.Close()
	if _, err := client.Call(ctx, peer, "/calc", "test.Calc", "div", rpc.Args{"a": 1, "b": 1}); !errors.Is(err, rpc.ErrClosed) {
		t.Fatalf("call on a closed node: %v, want closed", err)
	}
}

// TestRestartedError: a call in progress when the node restarts fails
// with KindRestarted (it may have run on the previous instance, and is
// not run again); calls to the new instance work. The restart is a new
// node of the same name behind the same address.
func TestRestartedError(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	first := newNode(t, "calc")
	impl1 := newCalc(t)
	if err := first.Register("/calc", impl1.impl); err != nil {
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

	done := make(chan error, 1)
	go func() {
		_, err := client.Call(ctx, peer, "/calc", "test.Calc", "block", rpc.Args{"tag": "old"})
		done <- err
	}()
	<-impl1.started

	second := newNode(t, "calc")
	impl2 := newCalc(t)
	if err := second.Register("/calc", impl2.impl); err != nil {
		t.Fatal(err)
	}
	proxy.SetTarget(listen(t, second))
	proxy.Reset()
	if err := <-done; !errors.Is(err, rpc.ErrRestarted) {
		t.Fatalf("call in progress: %v, want restarted", err)
	}
	rec.wait(ctx, t, "NodeAppeared of the new instance", func(ev any) bool {
		a, ok := ev.(*rpc.NodeAppeared)
		return ok && a.Node == "calc" && a.Instance == second.Instance()
	})
	out, err := client.Call(ctx, peer, "/calc", "test.Calc", "div", rpc.Args{"a": 9, "b": 3})
	if err != nil || out["q"] != int64(3) {
		t.Fatalf("call to the new instance: %v, %v", out, err)
	}
	if impl2.count("block") != 0 {
		t.Errorf("the new instance ran the old call")
	}
}
