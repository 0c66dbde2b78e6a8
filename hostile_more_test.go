package slc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
	"github.com/slc-go/slc/secure"
)

// A message whose body nests 100,000 msgpack arrays is refused by the
// decoder with an error on that message; it does not crash the process,
// does not close the connection, and the next message is delivered. The
// plain and the secure listener are both tried: in secure mode the hostile
// peer is an authorized one, the only kind that gets this far.
func TestHostileNestedMsgpack(t *testing.T) {
	for _, mode := range []string{"plain", "secure"} {
		t.Run(mode, func(t *testing.T) { testHostileNested(t, mode == "secure") })
	}
}

func testHostileNested(t *testing.T, secured bool) {
	ctx := testCtx(t, 20*time.Second)
	var srvOpts []slc.Option
	var cid, sid *secure.Identity
	if secured {
		cid, sid = newIdentity(t), newIdentity(t)
		srvOpts = append(srvOpts, slc.WithIdentity(sid), slc.WithAuthorizedKeys(cid.PublicKey()))
	}
	a := newComm(t, "nest-srv", srvOpts...)
	ev := watch(t, a)
	nested := bytes.Repeat([]byte{0x91}, 100000) // fixarray of 1, 100,000 deep
	nested = append(nested, 0xc0)
	// A hand-driven peer sends the nested bytes as a msgpack body.
	nc, err := net.Dial("tcp", listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	var mode uint8
	if secured {
		mode = wire.ModeNoiseXX
	}
	mine := hostilePreamble(1, 1, mode)
	nc.Write(mine)
	var pre [wire.PreambleLen]byte
	if _, err := io.ReadFull(nc, pre[:]); err != nil {
		t.Fatal(err)
	}
	var c net.Conn = nc
	if secured {
		cfg := secure.NewConfig()
		if err := cfg.SetIdentity(cid); err != nil {
			t.Fatal(err)
		}
		if err := cfg.AddAuthorizedKeys(secure.AuthorizedKey{Key: sid.PublicKey()}); err != nil {
			t.Fatal(err)
		}
		sc, _, err := cfg.Handshake(ctx, &peer.PreambleConn{Conn: nc, Local: [wire.PreambleLen]byte(mine), Remote: pre}, true)
		if err != nil {
			t.Fatalf("noise handshake: %v", err)
		}
		c = sc
	}
	c.Write(wire.AppendHello(nil, 1, hostileHello("nester")))
	fr := wire.NewReader(c, 0)
	fr.Version = 1
	h, p, err := fr.ReadFrame()
	if err != nil || h.Type != wire.TypeHello {
		t.Fatalf("no HELLO from the server: %v", err)
	}
	srvHello, err := wire.ParseHello(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	out = wire.AppendResume(out, 1, wire.Resume{Instance: srvHello.Instance})
	out = wire.AppendData(out, 1, 0, 1, 1, 0, "", nested)                 // msgpack, 100,000 deep
	out = wire.AppendData(out, 1, 0, 2, 1, 0, "", []byte{0xa2, 'o', 'k'}) // msgpack "ok"
	c.Write(out)
	m, err := a.Receive(ctx, "nester")
	if err != nil {
		t.Fatal(err)
	}
	if m.Err == nil || m.Body != nil || len(m.Raw) != len(nested) {
		t.Fatalf("nested body: Err %v, Body %T; want a decode error and the raw bytes", m.Err, m.Body)
	}
	refused := m.Err
	if !strings.Contains(refused.Error(), "nest") {
		t.Errorf("nested body refused with %v, want the nesting limit", refused)
	}
	m, err = a.Receive(ctx, "nester")
	if err != nil || m.Body != "ok" {
		t.Fatalf("the next message: %+v, %v", m.Body, err)
	}
	if n := ev.count(isType[*actors.PeerDisconnected]); n != 0 {
		t.Fatalf("the connection was dropped %d times", n)
	}
	t.Logf("row: nested msgpack (secure=%v) | DATA body nesting 100,000 arrays | message delivered with Err %q, connection kept", secured, refused)
}

// handshakeCounter is a transport whose listeners count the connections
// in handshake: from the listener's first use of a connection (the
// handshake sets its deadline and sends the preamble) until it is
// closed. A connection refused as busy is closed unused and never counts.
// The listener takes a handshake slot before the first use and gives it
// back after the close, so the count never exceeds the slots in use:
// its high-water mark is a lower bound on the listener's, and the test's
// bound on it is sound.
type handshakeCounter struct {
	peer.NetTransport
	cur, peak atomic.Int64
}

func (h *handshakeCounter) Listen(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := h.NetTransport.Listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &countingListener{Listener: ln, h: h}, nil
}

// resetPeak starts a new high-water mark from the current count.
func (h *handshakeCounter) resetPeak() int64 {
	cur := h.cur.Load()
	h.peak.Store(cur)
	return cur
}

type countingListener struct {
	net.Listener
	h *handshakeCounter
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, h: l.h}, nil
}

type countingConn struct {
	net.Conn
	h               *handshakeCounter
	mu              sync.Mutex
	started, closed bool
}

func (c *countingConn) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed {
		return
	}
	c.started = true
	n := c.h.cur.Add(1)
	for p := c.h.peak.Load(); n > p && !c.h.peak.CompareAndSwap(p, n); p = c.h.peak.Load() {
	}
}

func (c *countingConn) SetDeadline(t time.Time) error { c.begin(); return c.Conn.SetDeadline(t) }
func (c *countingConn) Read(b []byte) (int, error)    { c.begin(); return c.Conn.Read(b) }
func (c *countingConn) Write(b []byte) (int, error)   { c.begin(); return c.Conn.Write(b) }

func (c *countingConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.started {
			c.h.cur.Add(-1)
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// 10,000 connections that connect and say nothing: the listener runs at
// most MaxHandshakes handshakes at once, closes the rest at once as busy,
// cuts the others at the handshake timeout, serves a legitimate peer
// throughout, and its goroutines come back to their level.
func TestHostileHalfOpenFlood(t *testing.T) {
	testHostileFlood(t, false)
}

func testHostileFlood(t *testing.T, secured bool) {
	const flood, maxHS = 10000, 256
	const timeout = time.Second
	ctx := testCtx(t, 2*time.Minute)
	hc := &handshakeCounter{}
	srvOpts := []slc.Option{slc.WithTimeout(timeout), slc.WithMaxHandshakes(maxHS), slc.WithTransport(hc)}
	var legitOpts []slc.Option
	if secured {
		sid, lid := newIdentity(t), newIdentity(t)
		srvOpts = append(srvOpts, slc.WithIdentity(sid), slc.WithAuthorizedKeys(lid.PublicKey()))
		legitOpts = append(legitOpts, slc.WithIdentity(lid), slc.WithAuthorizedKeys(sid.PublicKey()))
	}
	srv := newComm(t, "flood-srv", srvOpts...)
	addr := listen(t, srv)
	ev := watch(t, srv)
	legit := newComm(t, "flood-legit", legitOpts...)
	id, err := legit.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	base := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	legitConns := hc.resetPeak() // the legitimate peer's connection stays open

	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	refused, peakG := 0, 0
	for i := 0; i < flood; i++ {
		if i%100 == 0 {
			peakG = max(peakG, runtime.NumGoroutine())
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EAGAIN) {
				refused++
				continue
			}
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// The legitimate peer keeps working during the flood.
	for i := 1; i <= 100; i++ {
		if _, err := legit.Send(ctx, Seq{N: i}, id); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 100; i++ {
		m, err := srv.Receive(ctx, "flood-legit")
		if err != nil || m.Body.(Seq).N != i {
			t.Fatalf("legitimate message %d: %+v, %v", i, m.Body, err)
		}
	}
	peakG = max(peakG, runtime.NumGoroutine())
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	// Every flood connection is closed by the server, with EOF or a
	// reset, never by this side's deadline: at once, unused, when no
	// handshake slot is free (busy), or after its preamble at the
	// handshake timeout.
	busy, timedOut := 0, 0
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * timeout))
		got, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("flood connection %d: not closed by the server: %v", i, err)
		}
		if len(got) == 0 {
			busy++
		} else {
			timedOut++
		}
	}
	// The server's account agrees: one HandshakeRejected per connection,
	// busy or handshake timeout.
	code := func(c wire.Code) func(any) bool {
		return func(e any) bool {
			hr, ok := e.(*actors.HandshakeRejected)
			return ok && hostileCode(c)(hr.Err)
		}
	}
	ev.waitCount(ctx, t, "busy HandshakeRejected", busy, code(wire.CodeBusy))
	ev.waitCount(ctx, t, "timeout HandshakeRejected", timedOut, code(wire.CodeTimeout))
	if n, m := ev.count(code(wire.CodeBusy)), ev.count(code(wire.CodeTimeout)); n != busy || m != timedOut {
		t.Fatalf("server rejected %d as busy and %d at the timeout; the clients saw %d and %d", n, m, busy, timedOut)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return runtime.NumGoroutine() <= base+10 },
		"goroutines %d after the flood, %d before", runtime.NumGoroutine(), base)
	peakHS := hc.peak.Load() - legitConns
	t.Logf("secure=%v: %d connections (%d refused by the kernel backlog): %d closed at once as busy, %d at the %v handshake timeout; handshakes in progress peaked at %d (limit %d); goroutines %d -> peak %d -> %d; heap %d KiB -> %d KiB during",
		secured, flood, refused, busy, timedOut, timeout, peakHS, maxHS, base, peakG, runtime.NumGoroutine(), before.HeapAlloc>>10, during.HeapAlloc>>10)
	if peakHS > maxHS {
		t.Fatalf("%d handshakes in progress at once, limit %d", peakHS, maxHS)
	}
	if busy == 0 || timedOut == 0 {
		t.Fatalf("%d busy, %d timed out: the flood did not reach the limit", busy, timedOut)
	}
	if during.HeapAlloc > before.HeapAlloc+64<<20 {
		t.Fatalf("heap grew by %d MiB during the flood", (during.HeapAlloc-before.HeapAlloc)>>20)
	}
}
