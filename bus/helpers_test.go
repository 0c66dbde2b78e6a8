package bus_test

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/bus"
)

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// join joins the bus at addr as name, with short slc timeouts, and closes
// the participant at the end of the test.
func join(t testing.TB, addr, name string, opts ...bus.Option) *bus.Participant {
	t.Helper()
	opts = append([]bus.Option{
		bus.WithAddr(addr),
		bus.WithNodeOptions(slc.WithName(name), slc.WithTimeout(2*time.Second),
			slc.WithHeartbeat(100*time.Millisecond, 2*time.Second)),
	}, opts...)
	p, err := bus.Join(testCtx(t, 20*time.Second), opts...)
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			// Show what still runs: Close waits for every goroutine.
			buf := make([]byte, 1<<22)
			t.Errorf("close %s: %v\ngoroutines:\n%s", name, err, buf[:runtime.Stack(buf, true)])
		}
	})
	return p
}

// collector gathers the events a handler listener gets.
type collector struct {
	mu     sync.Mutex
	events []*bus.Event
	sig    chan struct{}
}

func newCollector() *collector { return &collector{sig: make(chan struct{}, 1)} }

func (c *collector) handle(e *bus.Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []*bus.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*bus.Event(nil), c.events...)
}

// wait waits until the collector holds at least n events.
func (c *collector) wait(ctx context.Context, t testing.TB, n int) []*bus.Event {
	t.Helper()
	for {
		if ev := c.snapshot(); len(ev) >= n {
			return ev
		}
		select {
		case <-c.sig:
		case <-ctx.Done():
			t.Fatalf("%d events, want %d: %v", len(c.snapshot()), n, ctx.Err())
		}
	}
}

// listen starts a handler listener collecting into a new collector.
func listen(t testing.TB, p *bus.Participant, scope string, opts ...bus.ListenerOption) *collector {
	t.Helper()
	c := newCollector()
	if _, err := p.NewListener(testCtx(t, 20*time.Second), scope, c.handle, opts...); err != nil {
		t.Fatalf("listen on %s: %v", scope, err)
	}
	return c
}

// fastNode are slc options with short timeouts for a node called name.
func fastNode(name string) []slc.Option {
	return []slc.Option{slc.WithName(name), slc.WithTimeout(2 * time.Second),
		slc.WithHeartbeat(100*time.Millisecond, 2*time.Second)}
}
