package slc_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/discovery"
	"github.com/slc-go/slc/internal/testutil"
)

// The discovery tests stay on lo: no mDNS on a real interface.
func onLo(opts ...slc.Option) []slc.Option {
	return append([]slc.Option{slc.WithInterfaces("lo")}, opts...)
}

// discEvents records the discovery events of a communicator.
type discEvents struct {
	mu  sync.Mutex
	all []any
	sig chan struct{}
}

func watchDiscovery(t *testing.T, c *slc.Communicator) *discEvents {
	e := &discEvents{sig: make(chan struct{}, 1)}
	sub := c.ActorSystem().EventStream.Subscribe(func(ev any) {
		switch ev.(type) {
		case *actors.ServiceDiscovered, *actors.ServiceLost:
			e.mu.Lock()
			e.all = append(e.all, ev)
			e.mu.Unlock()
			select {
			case e.sig <- struct{}{}:
			default:
			}
		}
	})
	t.Cleanup(func() { c.ActorSystem().EventStream.Unsubscribe(sub) })
	return e
}

func (e *discEvents) wait(ctx context.Context, t *testing.T, what string, match func(any) bool) any {
	t.Helper()
	for {
		e.mu.Lock()
		for _, ev := range e.all {
			if match(ev) {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		select {
		case <-e.sig:
		case <-ctx.Done():
			t.Fatalf("no %s event: %v", what, ctx.Err())
			return nil
		}
	}
}

// noDiscoveryGoroutines fails if a goroutine of package discovery still
// runs: they must all have ended when Discover, StopAdvertising or Close
// returned.
//
// A goroutine that has signalled its end (wg.Done in its last deferred
// call) is still listed for the few instructions until it returns, so
// the check allows it a moment to go.
func noDiscoveryGoroutines(t *testing.T) {
	t.Helper()
	left := func() string {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "slc/discovery.") {
				return g
			}
		}
		return ""
	}
	deadline := time.Now().Add(time.Second)
	for g := left(); g != ""; g = left() {
		if time.Now().After(deadline) {
			t.Fatalf("a discovery goroutine is still running:\n%s", g)
		}
		time.Sleep(time.Millisecond)
	}
}

func exchange(t *testing.T, from, to *slc.Communicator, id slc.PeerID) {
	t.Helper()
	ctx := testCtx(t, 5*time.Second)
	if _, err := from.Send(ctx, Seq{N: 7}, id); err != nil {
		t.Fatal(err)
	}
	m, err := to.Receive(ctx, from.Name())
	if err != nil || m.Body.(Seq).N != 7 {
		t.Fatalf("received %+v, %v", m, err)
	}
}

// TestDiscoveryInProcess: two nodes advertise, a third discovers both,
// connects to each by name and exchanges a message.
func TestDiscoveryInProcess(t *testing.T) {
	a := newComm(t, "disc-node-a", onLo()...)
	b := newComm(t, "disc-node-b", onLo()...)
	c := newComm(t, "disc-node-c", onLo()...)
	ev := watchDiscovery(t, c)
	addrA, addrB := listen(t, a), listen(t, b)
	if err := a.Advertise("disc-a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Advertise(""); err != nil { // the node's name
		t.Fatal(err)
	}
	svcs, err := c.Discover(testCtx(t, time.Second), "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		node *slc.Communicator
		addr string
	}{"disc-a": {a, addrA}, "disc-node-b": {b, addrB}}
	got := 0
	for _, s := range svcs {
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		got++
		if s.PeerID != w.node.Name() || !slices.Equal(s.Addrs, []string{w.addr}) || s.Port == 0 || s.Instance == 0 || s.Fingerprint != "" {
			t.Errorf("%s: %+v (listening on %s)", s.Name, s, w.addr)
		}
	}
	if got != 2 {
		t.Fatalf("discovered %d of 2: %+v", got, svcs)
	}
	ev.wait(testCtx(t, time.Second), t, "ServiceDiscovered", func(e any) bool {
		d, ok := e.(*actors.ServiceDiscovered)
		return ok && d.Service.Name == "disc-a" && d.Service.PeerID == a.Name()
	})
	for name, node := range map[string]*slc.Communicator{"disc-a": a, "disc-node-b": b} {
		id, err := c.Connect(testCtx(t, 5*time.Second), "mdns:"+name)
		if err != nil {
			t.Fatal(err)
		}
		if id != node.Name() {
			t.Fatalf("mdns:%s is %q, want %q", name, id, node.Name())
		}
		exchange(t, c, node, id)
		exchange(t, node, c, c.Name())
	}
	// Connecting by name again finds the session there.
	if id, err := c.Connect(testCtx(t, 5*time.Second), "mdns:disc-a"); err != nil || id != a.Name() {
		t.Fatalf("second connect: %q, %v", id, err)
	}
}

// TestDiscoveryStopAdvertising: StopAdvertising says goodbye: a browse in
// progress reports ServiceLost, and a new browse does not find the name.
func TestDiscoveryStopAdvertising(t *testing.T) {
	a := newComm(t, "disc-stop-a", onLo()...)
	c := newComm(t, "disc-stop-c", onLo()...)
	listen(t, a)
	if err := a.Advertise("disc-stop"); err != nil {
		t.Fatal(err)
	}
	ev := watchDiscovery(t, c)
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	long := make(chan []slc.Service, 1)
	go func() {
		svcs, _ := c.Discover(bctx, "disc-stop")
		long <- svcs
	}()
	ev.wait(testCtx(t, 3*time.Second), t, "ServiceDiscovered", func(e any) bool {
		d, ok := e.(*actors.ServiceDiscovered)
		return ok && d.Service.Name == "disc-stop"
	})
	if err := a.StopAdvertising(); err != nil {
		t.Fatal(err)
	}
	lost := ev.wait(testCtx(t, 3*time.Second), t, "ServiceLost", func(e any) bool {
		l, ok := e.(*actors.ServiceLost)
		return ok && l.Service.Name == "disc-stop"
	}).(*actors.ServiceLost)
	if lost.Reason != discovery.ReasonGoodbye || lost.Service.PeerID != a.Name() {
		t.Fatalf("ServiceLost %+v", lost)
	}
	// A new browse while the long one still runs (they share a browser),
	// and one from a fresh node.
	if svcs, err := c.Discover(testCtx(t, 700*time.Millisecond), "disc-stop"); err != nil || len(svcs) != 0 {
		t.Fatalf("after StopAdvertising, found %+v, %v", svcs, err)
	}
	d := newComm(t, "disc-stop-d", onLo()...)
	if svcs, err := d.Discover(testCtx(t, 700*time.Millisecond), "disc-stop"); err != nil || len(svcs) != 0 {
		t.Fatalf("after StopAdvertising, a new node found %+v, %v", svcs, err)
	}
	bcancel()
	if svcs := <-long; len(svcs) != 0 {
		t.Fatalf("the long browse returned %+v, gone before it ended", svcs)
	}
	noDiscoveryGoroutines(t)
	// Advertising again works.
	if err := a.Advertise("disc-stop"); err != nil {
		t.Fatal(err)
	}
	if svcs, err := c.Discover(testCtx(t, 700*time.Millisecond), "disc-stop"); err != nil || len(svcs) != 1 {
		t.Fatalf("advertised again: found %+v, %v", svcs, err)
	}
}

func TestDiscoveryAdvertiseErrors(t *testing.T) {
	a := newComm(t, "disc-err-a", onLo()...)
	if err := a.Advertise("x"); !errors.Is(err, slc.ErrNotListening) {
		t.Fatalf("advertise before listen: %v", err)
	}
	if _, err := a.Listen(testCtx(t, time.Second), "unix:"+t.TempDir()+"/s"); err != nil {
		t.Fatal(err)
	}
	if err := a.Advertise("x"); !errors.Is(err, slc.ErrNotListening) {
		t.Fatalf("advertise with a unix listener only: %v", err)
	}
	listen(t, a)
	if err := a.Advertise(strings.Repeat("n", 64)); err == nil {
		t.Fatal("a 64-byte name was accepted")
	}
	if err := a.Advertise("disc-twice"); err != nil {
		t.Fatal(err)
	}
	if err := a.Advertise("disc-twice"); err != nil {
		t.Fatalf("advertising a name again: %v", err)
	}
	if _, err := slc.New(slc.WithInterfaces()); err == nil {
		t.Fatal("WithInterfaces() accepted")
	}
	b := newComm(t, "disc-err-b", slc.WithInterfaces("slc-no-such-if"))
	listen(t, b)
	if err := b.Advertise("y"); err == nil || !strings.Contains(err.Error(), "slc-no-such-if") {
		t.Fatalf("advertise on a missing interface: %v", err)
	}
	if _, err := b.Discover(testCtx(t, time.Second), ""); err == nil {
		t.Fatal("discover on a missing interface: no error")
	}
	if err := b.StopAdvertising(); err != nil {
		t.Fatal(err)
	}
	if err := a.StopAdvertising(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := a.Advertise("z"); !errors.Is(err, slc.ErrClosed) {
		t.Fatalf("advertise after close: %v", err)
	}
	if _, err := a.Discover(testCtx(t, time.Second), ""); !errors.Is(err, slc.ErrClosed) {
		t.Fatalf("discover after close: %v", err)
	}
	noDiscoveryGoroutines(t)
}

// TestDiscoveryNameInUseIsRetried: a node that advertises a name another
// node holds fails at first; its advertiser is restarted with backoff by
// the facade's supervisor and takes the name once it is free.
func TestDiscoveryNameInUseIsRetried(t *testing.T) {
	a := newComm(t, "disc-dup-a", onLo()...)
	b := newComm(t, "disc-dup-b", onLo()...)
	c := newComm(t, "disc-dup-c", onLo()...)
	listen(t, a)
	listen(t, b)
	if err := a.Advertise("disc-dup"); err != nil {
		t.Fatal(err)
	}
	err := b.Advertise("disc-dup")
	if !errors.Is(err, discovery.ErrNameInUse) || !errors.Is(err, slc.ErrAdvertiseRetrying) {
		t.Fatalf("advertising a name in use: %v", err)
	}
	if err := a.StopAdvertising(); err != nil {
		t.Fatal(err)
	}
	ev := watchDiscovery(t, c)
	go c.Discover(testCtx(t, 10*time.Second), "disc-dup")
	ev.wait(testCtx(t, 10*time.Second), t, "ServiceDiscovered from b", func(e any) bool {
		d, ok := e.(*actors.ServiceDiscovered)
		return ok && d.Service.Name == "disc-dup" && d.Service.PeerID == b.Name()
	})
	// Advertise reports the latest attempt; the success is reported to the
	// facade just after the first announcement goes out.
	testutil.Eventually(t, 3*time.Second, func() bool { return b.Advertise("disc-dup") == nil },
		"once the name was registered, Advertise still reported a failure")
}

// TestDiscoveryConnectUnknownName: Connect to a name nobody advertises
// fails when its context ends, and a cancel ends it at once.
func TestDiscoveryConnectUnknownName(t *testing.T) {
	c := newComm(t, "disc-unknown", onLo()...)
	start := time.Now()
	_, err := c.Connect(testCtx(t, 600*time.Millisecond), "mdns:disc-nobody")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("connect to an unknown name: %v after %v", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Connect(ctx, "mdns:disc-nobody")
		done <- err
	}()
	time.AfterFunc(200*time.Millisecond, cancel)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled connect: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a canceled connect by name did not return")
	}
	// The actor API: a Connect without a timeout uses the connect timeout.
	if _, err := c.Connect(testCtx(t, time.Second), "mdns:"); err == nil {
		t.Fatal("an empty name was accepted")
	}
	res, err := c.ActorSystem().Root.RequestFuture(c.PID(), &actors.Discover{Name: "disc-nobody", Timeout: 300 * time.Millisecond}, 5*time.Second).Result()
	if err != nil || len(res.(*actors.DiscoverResult).Services) != 0 || res.(*actors.DiscoverResult).Err != nil {
		t.Fatalf("actor Discover: %+v, %v", res, err)
	}
	noDiscoveryGoroutines(t)
}

// TestDiscoveryCloseEndsEverything: Close while advertising, browsing
// and connecting by name ends every discovery goroutine before it
// returns.
func TestDiscoveryCloseEndsEverything(t *testing.T) {
	a, err := slc.New(onLo(slc.WithName("disc-close-a"))...)
	if err != nil {
		t.Fatal(err)
	}
	listen(t, a)
	if err := a.Advertise("disc-close"); err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 2)
	go func() {
		_, err := a.Discover(context.Background(), "")
		results <- err
	}()
	go func() {
		_, err := a.Connect(context.Background(), "mdns:disc-close-nobody")
		results <- err
	}()
	ev := watchDiscovery(t, a)
	ev.wait(testCtx(t, 3*time.Second), t, "ServiceDiscovered", func(e any) bool { return isType[*actors.ServiceDiscovered](e) })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	noDiscoveryGoroutines(t)
	for range 2 {
		select {
		case err := <-results:
			if err != nil && !errors.Is(err, slc.ErrClosed) {
				t.Errorf("after Close: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("a call did not return after Close")
		}
	}
}
