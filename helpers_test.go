package slc_test

import (
	"context"
	"github.com/slc-go/slc/internal/testutil"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.LeakOptions()...) }

// Seq is the message the delivery tests count.
type Seq struct {
	N       int
	Payload []byte
}

func init() { slc.Register[Seq]("test.Seq") }

// fast are options for tests: short timeouts and backoff.
func fast(opts ...slc.Option) []slc.Option {
	return append([]slc.Option{
		slc.WithTimeout(2 * time.Second),
		slc.WithHeartbeat(100*time.Millisecond, 2*time.Second),
	}, opts...)
}

func newComm(t *testing.T, name string, opts ...slc.Option) *slc.Communicator {
	t.Helper()
	c, err := slc.New(append(fast(slc.WithName(name)), opts...)...)
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

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// listen starts c listening on loopback and returns the address.
func listen(t *testing.T, c *slc.Communicator) string {
	t.Helper()
	addr, err := c.Listen(testCtx(t, 5*time.Second), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return addr.String()
}

// events records the events published on a communicator's actor system.
type events struct {
	mu  sync.Mutex
	all []any
	sig chan struct{}
}

func watch(t *testing.T, c *slc.Communicator) *events {
	e := &events{sig: make(chan struct{}, 1)}
	sub := c.ActorSystem().EventStream.Subscribe(func(ev any) {
		switch ev.(type) {
		case *actors.PeerConnected, *actors.PeerDisconnected, *actors.PeerReconnecting, *actors.PeerLost,
			*actors.HandshakeRejected, *actors.MessagesAcknowledged, *actors.ListenerFailed:
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

// wait returns the first recorded event for which match is true, waiting
// for it until ctx ends.
func (e *events) wait(ctx context.Context, t *testing.T, what string, match func(any) bool) any {
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

// waitCount waits until at least n recorded events match.
func (e *events) waitCount(ctx context.Context, t *testing.T, what string, n int, match func(any) bool) {
	t.Helper()
	for e.count(match) < n {
		select {
		case <-e.sig:
		case <-ctx.Done():
			t.Fatalf("%d %s events, want %d: %v", e.count(match), what, n, ctx.Err())
		}
	}
}

func (e *events) count(match func(any) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if match(ev) {
			n++
		}
	}
	return n
}

func isType[T any](ev any) bool { _, ok := ev.(T); return ok }
