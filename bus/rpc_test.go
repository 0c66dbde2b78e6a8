package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc/bus"
)

// newCalculator serves /calc/ on p: add (typed), echo (raw), fail (an
// error), boom (a panic), bad (an unconvertible result), slow (waits for
// its context).
func newCalculator(t *testing.T, ctx context.Context, p *bus.Participant) *bus.LocalServer {
	t.Helper()
	s, err := p.NewLocalServer(ctx, "/calc/")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(bus.AddMethod(s, "add", func(_ context.Context, p Pose) (float64, error) { return p.X + p.Y, nil }))
	must(s.AddMethod("echo", func(_ context.Context, e *bus.Event) (any, error) { return e.Data, nil }))
	must(bus.AddMethod(s, "fail", func(_ context.Context, msg string) (string, error) { return "", errors.New(msg) }))
	must(bus.AddMethod(s, "boom", func(context.Context, string) (string, error) { panic("kaboom") }))
	must(s.AddMethod("bad", func(context.Context, *bus.Event) (any, error) { return make(chan int), nil }))
	must(s.AddMethod("slow", func(ctx context.Context, _ *bus.Event) (any, error) { <-ctx.Done(); return nil, ctx.Err() }))
	return s
}

func TestRequestReply(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "rpc-server")
	cli := join(t, addr, "rpc-client")
	newCalculator(t, ctx, srv)
	for name, p := range map[string]*bus.Participant{"remote": cli, "same participant": srv} {
		r, err := p.NewRemoteServer(ctx, "/calc/")
		if err != nil {
			t.Fatal(err)
		}
		sum, err := bus.Call[float64](ctx, r, "add", Pose{X: 1.5, Y: 2})
		if err != nil || sum != 3.5 {
			t.Errorf("%s: add = %v, %v", name, sum, err)
		}
		rep, err := r.Call(ctx, "echo", "hello")
		if err != nil || rep.Data != "hello" || rep.Method != bus.MethodReply || len(rep.Causes) != 1 ||
			rep.Scope.String() != "/calc/echo/" || rep.ID.Sender != "rpc-server" {
			t.Errorf("%s: echo = %+v, %v", name, rep, err)
		}
		if v, err := bus.Call[any](ctx, r, "echo", nil); err != nil || v != nil {
			t.Errorf("%s: echo of nothing = %v, %v", name, v, err)
		}
		// Concurrent calls each get their own reply.
		errs := make(chan error, 20)
		for i := range 20 {
			go func() {
				v, err := bus.Call[int64](ctx, r, "echo", int64(i))
				if err == nil && v != int64(i) {
					err = fmt.Errorf("echo %d = %d", i, v)
				}
				errs <- err
			}()
		}
		for range 20 {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		r.Close()
	}
}

func TestRequestReplyErrors(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "rpcerr-server")
	cli := join(t, addr, "rpcerr-client")
	calc := newCalculator(t, ctx, srv)
	r, err := cli.NewRemoteServer(ctx, "/calc/")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		req    any
		kind   string
		msg    string
	}{
		{"fail", "disk full", bus.KindHandler, "disk full"},
		{"boom", "x", bus.KindPanic, "kaboom"},
		{"nope", "x", bus.KindUnknownMethod, `no method "nope"`},
		{"add", "not a pose", bus.KindBadRequest, "request data is string"},
		{"bad", nil, bus.KindBadReply, "no converter"},
	} {
		rep, err := r.Call(ctx, tc.method, tc.req)
		var re *bus.RemoteError
		if !errors.As(err, &re) || re.Kind != tc.kind || !strings.Contains(re.Message, tc.msg) ||
			re.Method != tc.method || re.Scope != r.Scope() {
			t.Errorf("%s: %v (%#v), want a %s error with %q", tc.method, err, re, tc.kind, tc.msg)
			continue
		}
		if rep == nil || rep.Meta.UserInfos[bus.InfoError] != "1" {
			t.Errorf("%s: reply %+v", tc.method, rep)
		}
		if errors.Is(err, bus.ErrUnknownMethod) != (tc.kind == bus.KindUnknownMethod) {
			t.Errorf("%s: errors.Is(ErrUnknownMethod) wrong for %v", tc.method, err)
		}
		if !strings.Contains(err.Error(), "/calc/"+tc.method) {
			t.Errorf("%s: error %q does not name the method", tc.method, err)
		}
	}
	// A reply of the wrong type for a typed call.
	if _, err := bus.Call[bool](ctx, r, "echo", "text"); err == nil || !strings.Contains(err.Error(), "want bool") {
		t.Errorf("typed call with the wrong reply type: %v", err)
	}
	// Invalid method names fail before anything is sent.
	for _, m := range []string{"", "a/b", "a b"} {
		if _, err := r.Call(ctx, m, nil); !errors.Is(err, bus.ErrInvalidScope) {
			t.Errorf("method %q: %v", m, err)
		}
		if err := calc.AddMethod(m, func(context.Context, *bus.Event) (any, error) { return nil, nil }); !errors.Is(err, bus.ErrInvalidScope) {
			t.Errorf("add method %q: %v", m, err)
		}
	}
	if err := calc.AddMethod("nil", nil); err == nil {
		t.Error("a nil handler was accepted")
	}
	// A call nobody answers ends with its context.
	nobody, err := cli.NewRemoteServer(ctx, "/nobody/")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := nobody.Call(short, "anything", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call nobody answers: %v", err)
	}
	// A method still running when its server closes sees its context end,
	// and the call, which gets no reply, ends with its own context.
	started, ended := make(chan struct{}), make(chan error, 1)
	if err := calc.AddMethod("slow", func(ctx context.Context, _ *bus.Event) (any, error) {
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	short2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	done := make(chan error, 1)
	go func() {
		_, err := r.Call(short2, "slow", nil)
		done <- err
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the slow method never started")
	}
	calc.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the slow method's context ended with %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("the slow method's context did not end when its server closed")
	}
	select {
	case err := <-done:
		t.Fatalf("the call ended before its context: %v", err)
	default:
	}
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("slow call: %v, want context.Canceled", err)
	}
}

// TestRequestCancel checks that a handler's context follows its caller's:
// a caller that cancels ends the handler's context, and a caller's
// deadline is the handler's.
func TestRequestCancel(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	srv := join(t, addr, "rpccancel-server")
	cli := join(t, addr, "rpccancel-client")
	s, err := srv.NewLocalServer(ctx, "/wait/")
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		deadline time.Time
		hasDL    bool
		err      error
	}
	started, ended := make(chan struct{}, 1), make(chan run, 1)
	if err := s.AddMethod("block", func(hctx context.Context, _ *bus.Event) (any, error) {
		started <- struct{}{}
		<-hctx.Done()
		dl, ok := hctx.Deadline()
		ended <- run{dl, ok, hctx.Err()}
		return nil, hctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*bus.Participant{"remote": cli, "same participant": srv} {
		r, err := p.NewRemoteServer(ctx, "/wait/")
		if err != nil {
			t.Fatal(err)
		}
		// The caller cancels: the handler sees its context end, the caller
		// gets context.Canceled.
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := r.Call(cctx, "block", nil)
			done <- err
		}()
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatalf("%s: the handler never started", name)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("%s: canceled call: %v, want context.Canceled", name, err)
		}
		select {
		case got := <-ended:
			if !errors.Is(got.err, context.Canceled) {
				t.Errorf("%s: handler's context ended with %v, want context.Canceled", name, got.err)
			}
		case <-ctx.Done():
			t.Fatalf("%s: the caller canceled, the handler's context did not end", name)
		}

		// The caller's deadline passes: the handler's context has a
		// deadline too, and ends with it.
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		want, _ := dctx.Deadline()
		go func() {
			_, err := r.Call(dctx, "block", nil)
			done <- err
		}()
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatalf("%s: the handler never started", name)
		}
		if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: call past its deadline: %v", name, err)
		}
		dcancel()
		select {
		case got := <-ended:
			if !got.hasDL || got.deadline.After(want.Add(5*time.Second)) || got.err == nil {
				t.Errorf("%s: handler's context: deadline %v (set %v), err %v; want about %v", name, got.deadline, got.hasDL, got.err, want)
			}
		case <-ctx.Done():
			t.Fatalf("%s: the caller's deadline passed, the handler's context did not end", name)
		}
		r.Close()
	}
	// A handler that returns ends its context: one kept past the call is
	// done.
	kept := make(chan context.Context, 1)
	if err := s.AddMethod("keep", func(hctx context.Context, _ *bus.Event) (any, error) {
		kept <- hctx
		return "ok", nil
	}); err != nil {
		t.Fatal(err)
	}
	r, err := cli.NewRemoteServer(ctx, "/wait/")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if v, err := bus.Call[string](ctx, r, "keep", nil); err != nil || v != "ok" {
		t.Fatalf("keep = %q, %v", v, err)
	}
	select {
	case <-(<-kept).Done():
	case <-ctx.Done():
		t.Fatal("the context of a handler that returned did not end")
	}
}
