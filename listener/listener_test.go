package listener

import (
	"context"
	"errors"
	"github.com/slc-go/slc/internal/testutil"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.LeakOptions()...) }

type nopSink struct{}

func (nopSink) Push(<-chan struct{}, peer.ID, []peer.Message) (int, error) { return 0, nil }

func peerConfig(t *testing.T, name string, timeout time.Duration) *peer.Config {
	t.Helper()
	c := peer.Config{Name: name, Instance: uint64(len(name)) + 100, Inbox: nopSink{}, Timeout: timeout}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

type rejection struct {
	addr string
	err  error
}

// owner plays the facade: it spawns the listener and passes every
// Inbound to the test, which answers (or not).
type owner struct {
	props   *actor.Props
	inbound chan *Inbound
	child   chan *actor.PID
}

func (o *owner) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		o.child <- ctx.Spawn(o.props)
	case *Inbound:
		o.inbound <- m
	}
}

type harness struct {
	t        *testing.T
	sys      *actor.ActorSystem
	owner    *actor.PID
	listener *actor.PID
	addr     string
	inbound  chan *Inbound
	rejected chan rejection
	failures chan any // reasons the listener actor failed with
	stopped  bool
}

type opts struct {
	timeout       time.Duration
	maxHandshakes int
	wrap          func(net.Listener) net.Listener
}

func start(t *testing.T, o opts) *harness {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	pc := peerConfig(t, "server", o.timeout)
	ln, err := pc.Transport.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.wrap != nil {
		ln = o.wrap(ln)
	}
	h := &harness{t: t, addr: ln.Addr().String(), inbound: make(chan *Inbound, 16),
		rejected: make(chan rejection, 64), failures: make(chan any, 16)}
	h.sys = actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(time.Millisecond),
	)
	props := Props(ln, Config{Peer: pc, MaxHandshakes: o.maxHandshakes, Rejected: func(addr, _ string, err error) {
		h.rejected <- rejection{addr, err}
	}})
	strategy := actor.NewOneForOneStrategy(10, time.Minute, func(reason any) actor.Directive {
		h.failures <- reason
		return actor.RestartDirective
	})
	ow := &owner{props: props, inbound: h.inbound, child: make(chan *actor.PID, 1)}
	h.owner = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return ow }, actor.WithSupervisor(strategy)))
	h.listener = <-ow.child
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.sys.Root.StopFuture(h.owner).Wait()
	h.sys.Shutdown()
}

func (h *harness) nextRejection() rejection {
	h.t.Helper()
	select {
	case r := <-h.rejected:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatal("no rejection reported")
		return rejection{}
	}
}

func (h *harness) nextInbound() *Inbound {
	h.t.Helper()
	select {
	case in := <-h.inbound:
		return in
	case <-time.After(10 * time.Second):
		h.t.Fatal("no connection handed over")
		return nil
	}
}

func (h *harness) dial() net.Conn {
	h.t.Helper()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// client runs a full client handshake against the listener.
func (h *harness) client(name string) (*peer.Handshake, error) {
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		return nil, err
	}
	hs, err := peer.RunHandshake(context.Background(), nc, peerConfig(h.t, name, 5*time.Second), true)
	if err == nil {
		h.t.Cleanup(func() { hs.Close() })
	}
	return hs, err
}

// readClose reads what the listener sends on c until it closes the
// connection, and returns the frames after its preamble.
func readAll(t *testing.T, c net.Conn, within time.Duration) ([]byte, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return b, err
	}
	return b, nil
}

// nextFrame reads the frame after the handshake on a client connection.
func nextFrame(t *testing.T, hs *peer.Handshake) (wire.Header, []byte) {
	t.Helper()
	hs.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, p, err := hs.Reader.ReadFrame()
	if err != nil {
		t.Fatalf("reading after the handshake: %v", err)
	}
	return h, p
}

func wantCode(t *testing.T, err error, code wire.Code) *wire.ProtocolError {
	t.Helper()
	pe, ok := wire.AsProtocolError(err)
	if !ok || pe.Code != code {
		t.Fatalf("error %v, want code %v", err, code)
	}
	return pe
}

func TestListenerHandsOver(t *testing.T) {
	h := start(t, opts{})
	hs, err := h.client("client")
	if err != nil {
		t.Fatal(err)
	}
	in := h.nextInbound()
	if in.Handshake.Remote.Name != "client" || in.Handshake.Dialed {
		t.Fatalf("handed over %+v (dialed %v)", in.Handshake.Remote, in.Handshake.Dialed)
	}
	if in.Handshake.Addr != hs.Conn.LocalAddr().String() {
		t.Fatalf("remote address %q, the client is %q", in.Handshake.Addr, hs.Conn.LocalAddr())
	}
	in.Reply <- nil
	defer in.Handshake.Close()
	// The connection is the owner's now, and it works.
	if _, err := hs.Conn.Write(wire.AppendPing(nil, 1, false, 7)); err != nil {
		t.Fatal(err)
	}
	in.Handshake.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, p, err := in.Handshake.Reader.ReadFrame()
	if err != nil || f.Type != wire.TypePing {
		t.Fatalf("owner read %v, %v", f, err)
	}
	if n, _ := wire.ParsePing(p); n != 7 {
		t.Fatalf("PING %d", n)
	}
	select {
	case r := <-h.rejected:
		t.Fatalf("rejection reported for a handed-over connection: %v", r.err)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestListenerOwnerRejects(t *testing.T) {
	h := start(t, opts{})
	for _, tc := range []struct {
		reply  error
		code   wire.Code
		reason string
	}{
		{&wire.ProtocolError{Code: wire.CodeNameInUse, Reason: "taken"}, wire.CodeNameInUse, "taken"},
		{errors.New("owner broke"), wire.CodeInternal, "owner broke"},
	} {
		hs, err := h.client("client")
		if err != nil {
			t.Fatal(err)
		}
		in := h.nextInbound()
		in.Reply <- tc.reply
		f, p := nextFrame(t, hs)
		c, err := wire.ParseClose(p)
		if f.Type != wire.TypeReject || err != nil || c.Code != tc.code || c.Reason != tc.reason {
			t.Fatalf("client got %s %+v, want REJECT %v %q", wire.TypeName(f.Type), c, tc.code, tc.reason)
		}
		r := h.nextRejection()
		if r.err != tc.reply || r.addr != hs.Conn.LocalAddr().String() {
			t.Fatalf("rejection %v from %s, want %v from %s", r.err, r.addr, tc.reply, hs.Conn.LocalAddr())
		}
	}
}

func TestListenerOwnerTooSlow(t *testing.T) {
	h := start(t, opts{timeout: 300 * time.Millisecond})
	hs, err := h.client("client")
	if err != nil {
		t.Fatal(err)
	}
	h.nextInbound() // never answered
	start := time.Now()
	f, p := nextFrame(t, hs)
	c, _ := wire.ParseClose(p)
	if f.Type != wire.TypeReject || c.Code != wire.CodeBusy {
		t.Fatalf("client got %s %+v, want REJECT busy", wire.TypeName(f.Type), c)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("rejected after %v with a 300ms timeout", took)
	}
	wantCode(t, h.nextRejection().err, wire.CodeBusy)
}

func TestListenerMaxHandshakes(t *testing.T) {
	h := start(t, opts{maxHandshakes: 2, timeout: 10 * time.Second})
	// Two clients that say nothing hold both handshake slots; the
	// listener's preamble shows their handshakes run.
	var silent []net.Conn
	for i := 0; i < 2; i++ {
		c := h.dial()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, wire.PreambleLen)); err != nil {
			t.Fatalf("silent client %d: %v", i, err)
		}
		silent = append(silent, c)
	}
	// A third is closed at once, without a preamble.
	third := h.dial()
	start := time.Now()
	b, err := readAll(t, third, 5*time.Second)
	if err != nil || len(b) != 0 {
		t.Fatalf("third client read %d bytes, %v; want the connection closed at once", len(b), err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("third client closed after %v", took)
	}
	r := h.nextRejection()
	pe := wantCode(t, r.err, wire.CodeBusy)
	if r.addr != third.LocalAddr().String() || pe.Reason == "" {
		t.Fatalf("rejection %v for %s", r.err, r.addr)
	}

	// A slot frees when a silent client leaves; then a client gets in.
	silent[0].Close()
	if r := h.nextRejection(); r.addr != silent[0].LocalAddr().String() {
		t.Fatalf("rejection for %s, want the client that left", r.addr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		hs, err := h.client("late")
		if err == nil {
			in := h.nextInbound()
			if in.Handshake.Remote.Name != "late" {
				t.Fatalf("handed over %q", in.Handshake.Remote.Name)
			}
			in.Reply <- nil
			in.Handshake.Close()
			_ = hs
			break
		}
		wantCode(t, h.nextRejection().err, wire.CodeBusy) // the slot was not free yet
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListenerHandshakeFailures(t *testing.T) {
	h := start(t, opts{timeout: 300 * time.Millisecond})
	for _, tc := range []struct {
		name  string
		send  []byte
		close bool
		check func(error) bool
	}{
		{"bad magic", []byte("GET / HTTP/1.1\r\n"), false, func(err error) bool { return errors.Is(err, wire.ErrBadMagic) }},
		{"version", wire.AppendPreamble(nil, wire.Preamble{Min: 5, Max: 9}), false, func(err error) bool { return errors.Is(err, wire.ErrInvalidVersion) }},
		{"security mode", wire.AppendPreamble(nil, wire.Preamble{Min: 1, Max: 1, Mode: wire.ModeNoiseXX}), false, func(err error) bool {
			pe, ok := wire.AsProtocolError(err)
			return ok && pe.Code == wire.CodeSecurityMismatch
		}},
		{"closed at once", nil, true, func(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }},
		{"silent", nil, false, func(err error) bool {
			pe, ok := wire.AsProtocolError(err)
			return ok && pe.Code == wire.CodeTimeout
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial()
			c.Write(tc.send)
			if tc.close {
				c.(*net.TCPConn).CloseWrite()
			}
			if _, err := readAll(t, c, 5*time.Second); err != nil {
				t.Fatalf("connection not closed by the listener: %v", err)
			}
			r := h.nextRejection()
			if r.addr != c.LocalAddr().String() || !tc.check(r.err) {
				t.Fatalf("rejection %v for %s", r.err, r.addr)
			}
		})
	}
	// The listener still works.
	if _, err := h.client("ok"); err != nil {
		t.Fatal(err)
	}
	h.nextInbound().Reply <- nil
}

// TestListenerStop: stopping the listener closes the socket, cuts the
// handshakes in progress (the one waiting for the owner gets a shutdown
// REJECT), and ends every goroutine it started, quickly.
func TestListenerStop(t *testing.T) {
	before := goleak.IgnoreCurrent()
	h := start(t, opts{timeout: 10 * time.Second})
	silent := h.dial()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadFull(silent, make([]byte, wire.PreambleLen))
	waiting, err := h.client("waiting")
	if err != nil {
		t.Fatal(err)
	}
	h.nextInbound() // not answered

	start := time.Now()
	h.stop()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("stop took %v", took)
	}
	if _, err := readAll(t, silent, 5*time.Second); err != nil {
		t.Fatalf("the silent client's connection is still open: %v", err)
	}
	f, p := nextFrame(t, waiting)
	if c, _ := wire.ParseClose(p); f.Type != wire.TypeReject || c.Code != wire.CodeShutdown {
		t.Fatalf("waiting client got %s %+v, want REJECT shutting down", wire.TypeName(f.Type), c)
	}
	if c, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the address still accepts connections")
	}
	silent.Close()
	waiting.Close()
	goleak.VerifyNone(t, before)
}

// TestListenerStopReportsCancel: handshakes cut by the shutdown are not
// reported as remotes that were too slow.
func TestListenerStopReportsCancel(t *testing.T) {
	h := start(t, opts{timeout: time.Hour})
	silent := h.dial()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadFull(silent, make([]byte, wire.PreambleLen))
	h.stop()
	select {
	case r := <-h.rejected:
		if pe, ok := wire.AsProtocolError(r.err); ok && pe.Code == wire.CodeTimeout {
			t.Errorf("a handshake cut by the shutdown was reported as %q (with a 1h timeout)", r.err)
		}
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("shutdown rejection %v does not wrap context.Canceled", r.err)
		}
	default:
	}
}

// flakyListener fails Accept on demand: with a permanent error once, or
// with temporary errors a number of times.
type flakyListener struct {
	net.Listener
	permanent atomic.Bool
	temporary atomic.Int32
	closes    atomic.Int32
}

type tempErr struct{}

func (tempErr) Error() string   { return "temporary accept failure" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.temporary.Load() > 0 {
		l.temporary.Add(-1)
		return nil, tempErr{}
	}
	c, err := l.Listener.Accept()
	if err == nil && l.permanent.CompareAndSwap(true, false) {
		c.Close()
		return nil, errors.New("accept broke")
	}
	return c, err
}

func (l *flakyListener) Close() error {
	l.closes.Add(1)
	return l.Listener.Close()
}

// TestListenerRestart: when Accept fails for good the actor fails, and the
// restarted actor listens again on the same address.
func TestListenerRestart(t *testing.T) {
	var fl *flakyListener
	h := start(t, opts{wrap: func(ln net.Listener) net.Listener { fl = &flakyListener{Listener: ln}; return fl }})
	if _, err := h.client("before"); err != nil {
		t.Fatal(err)
	}
	h.nextInbound().Reply <- nil

	fl.permanent.Store(true)
	c, _ := net.Dial("tcp", h.addr) // wakes Accept, which fails
	if c != nil {
		defer c.Close()
	}
	select {
	case reason := <-h.failures:
		if err, ok := reason.(error); !ok || !errors.Is(err, ErrAcceptFailed) {
			t.Fatalf("listener failed with %v", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not fail")
	}
	// The restarted actor listens on the same address.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := h.client("after")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listener on %s after the restart: %v", h.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if fl.closes.Load() == 0 {
		t.Fatal("the failed listener was not closed")
	}
	if in := h.nextInbound(); in.Handshake.Remote.Name != "after" {
		t.Fatalf("handed over %q", in.Handshake.Remote.Name)
	} else {
		in.Reply <- nil
		in.Handshake.Close()
	}
}

// TestListenerTemporaryAcceptErrors: temporary Accept errors are waited
// out, not turned into a restart.
func TestListenerTemporaryAcceptErrors(t *testing.T) {
	var fl *flakyListener
	var once sync.Once
	h := start(t, opts{wrap: func(ln net.Listener) net.Listener {
		once.Do(func() { fl = &flakyListener{Listener: ln} })
		fl.temporary.Store(4)
		return fl
	}})
	hs, err := h.client("client")
	if err != nil {
		t.Fatal(err)
	}
	in := h.nextInbound()
	in.Reply <- nil
	in.Handshake.Close()
	hs.Close()
	if fl.temporary.Load() != 0 {
		t.Fatal("the temporary errors were not seen")
	}
	select {
	case r := <-h.failures:
		t.Fatalf("the listener failed over temporary errors: %v", r)
	default:
	}
}

// An owner that takes the connection after the listener stopped waiting
// (too slow, or the node shutting down) serves it: the listener must not
// write a REJECT after what the session has written. And when the
// listener gives up first, the owner cannot take it.
func TestListenerOwnerTakesLate(t *testing.T) {
	for _, shutdown := range []bool{false, true} {
		h := start(t, opts{timeout: 200 * time.Millisecond})
		hs, err := h.client("client")
		if err != nil {
			t.Fatal(err)
		}
		in := h.nextInbound()
		if !in.Handshake.Claim() {
			t.Fatal("the owner could not take a connection the listener still waited on")
		}
		// The session writes its first frame; then the listener's wait
		// ends without an answer.
		if _, err := in.Handshake.Conn.Write(wire.AppendPing(nil, in.Handshake.Version, false, 7)); err != nil {
			t.Fatal(err)
		}
		if shutdown {
			h.stop()
		} else {
			time.Sleep(400 * time.Millisecond) // past the listener's 200ms timeout
		}
		f, _ := nextFrame(t, hs)
		if f.Type != wire.TypePing {
			t.Fatalf("shutdown=%v: client got %s first, want the session's PING", shutdown, wire.TypeName(f.Type))
		}
		hs.Conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if f, _, err := hs.Reader.ReadFrame(); err == nil {
			t.Fatalf("shutdown=%v: the listener wrote %s on a connection its owner took", shutdown, wire.TypeName(f.Type))
		}
		select {
		case r := <-h.rejected:
			t.Fatalf("shutdown=%v: a connection the owner took was reported rejected: %v", shutdown, r.err)
		default:
		}
		in.Handshake.Close()
		in.Reply <- nil
	}

	// The listener gives up first: REJECT, and the owner's late Claim fails.
	h := start(t, opts{timeout: 200 * time.Millisecond})
	hs, err := h.client("client")
	if err != nil {
		t.Fatal(err)
	}
	in := h.nextInbound()
	f, p := nextFrame(t, hs)
	if c, _ := wire.ParseClose(p); f.Type != wire.TypeReject || c.Code != wire.CodeBusy {
		t.Fatalf("client got %s %+v, want REJECT busy", wire.TypeName(f.Type), c)
	}
	if in.Handshake.Claim() {
		t.Fatal("the owner took a connection the listener had refused")
	}
}
