package rpc_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/rpc"
	"github.com/slc-go/slc/supervisor"
)

// timerNodeBin is the helper program of the restart test
// (testdata/timernode), built by TestMain.
var timerNodeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slc-rpc-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	timerNodeBin = filepath.Join(dir, "timernode")
	args := []string{"build", "-o", timerNodeBin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "./testdata/timernode")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, append(testutil.LeakOptions(), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// quickRetry reconnects every 20ms, without end.
func quickRetry() slc.Option {
	return slc.WithSupervisor(&supervisor.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond, Retries: -1})
}

// newComm starts a communicator with short timeouts, closed at cleanup.
func newComm(t *testing.T, name string, opts ...slc.Option) *slc.Communicator {
	t.Helper()
	c, err := slc.New(append([]slc.Option{slc.WithName(name), slc.WithTimeout(2 * time.Second),
		slc.WithHeartbeat(100*time.Millisecond, 2*time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
	})
	return c
}

// newNode starts an rpc node on a new communicator. The node is closed
// before the communicator.
func newNode(t *testing.T, name string, opts ...slc.Option) *rpc.Node {
	t.Helper()
	return newNodeWith(t, name, nil, opts...)
}

func newNodeWith(t *testing.T, name string, nodeOpts []rpc.Option, opts ...slc.Option) *rpc.Node {
	t.Helper()
	c := newComm(t, name, opts...)
	n, err := rpc.New(c, nodeOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// listen makes n listen on loopback and returns the address.
func listen(t *testing.T, n *rpc.Node) string {
	t.Helper()
	a, err := n.Communicator().Listen(testCtx(t, 5*time.Second), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}

// connect connects from to addr and waits until from knows the peer as
// an rpc node (it said hello).
func connect(t *testing.T, from *rpc.Node, addr string) slc.PeerID {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	p, err := from.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := from.Describe(ctx, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// recorder records the events published on a node's event stream.
type recorder struct {
	mu  sync.Mutex
	all []any
	sig chan struct{}
}

func record(t *testing.T, n *rpc.Node) *recorder {
	r := &recorder{sig: make(chan struct{}, 1)}
	es := n.Communicator().ActorSystem().EventStream
	sub := es.Subscribe(func(ev any) {
		switch ev.(type) {
		case *rpc.NodeAppeared, *rpc.NodeDisappeared, *rpc.ImplementationRegistered, *rpc.ImplementationUnregistered,
			*rpc.NodeRefused, *rpc.EventsDropped, *actors.PeerConnected, *actors.PeerDisconnected, *actors.PeerLost:
			r.mu.Lock()
			r.all = append(r.all, ev)
			r.mu.Unlock()
			select {
			case r.sig <- struct{}{}:
			default:
			}
		}
	})
	t.Cleanup(func() { es.Unsubscribe(sub) })
	return r
}

// wait returns the first recorded event that matches, waiting until ctx
// ends.
func (r *recorder) wait(ctx context.Context, t *testing.T, what string, match func(any) bool) any {
	t.Helper()
	for {
		r.mu.Lock()
		for _, ev := range r.all {
			if match(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		select {
		case <-r.sig:
		case <-ctx.Done():
			t.Fatalf("no %s event: %v", what, ctx.Err())
			return nil
		}
	}
}

// waitCount waits until at least n recorded events match.
func (r *recorder) waitCount(ctx context.Context, t *testing.T, what string, n int, match func(any) bool) {
	t.Helper()
	for r.count(match) < n {
		select {
		case <-r.sig:
		case <-ctx.Done():
			t.Fatalf("%d %s events, want %d: %v", r.count(match), what, n, ctx.Err())
		}
	}
}

func isType[T any](ev any) bool { _, ok := ev.(T); return ok }

func (r *recorder) count(match func(any) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for _, ev := range r.all {
		if match(ev) {
			k++
		}
	}
	return k
}

// events collects the events a subscription receives.
type events struct {
	ch chan rpc.EventMessage
}

func newEvents() *events { return &events{ch: make(chan rpc.EventMessage, 100)} }

func (e *events) handler(ev rpc.EventMessage) { e.ch <- ev }

// next returns the next event, failing the test if none comes before ctx
// ends.
func (e *events) next(ctx context.Context, t *testing.T) rpc.EventMessage {
	t.Helper()
	select {
	case ev := <-e.ch:
		return ev
	case <-ctx.Done():
		t.Fatalf("no event: %v", ctx.Err())
		return rpc.EventMessage{}
	}
}

// fakeClock is a manual clock: time moves only with Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, ft)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !ft.stopped
		ft.stopped = true
		return was
	}
}

// Advance moves the clock forward by d and runs the timers that are due,
// in order, on the calling goroutine.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	rest := c.timers[:0]
	for _, ft := range c.timers {
		switch {
		case ft.stopped:
		case !ft.at.After(c.now):
			ft.stopped = true
			due = append(due, ft)
		default:
			rest = append(rest, ft)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, ft := range due {
		ft.f()
	}
}

// pending returns how many timers wait.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
