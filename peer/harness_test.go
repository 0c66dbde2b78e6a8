package peer

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
)

// recSink is a Sink that records what a connection delivers.
type recSink struct {
	mu   sync.Mutex
	msgs []Message
	sig  chan struct{}
}

func newSink() *recSink { return &recSink{sig: make(chan struct{}, 1)} }

func (s *recSink) Push(done <-chan struct{}, from ID, msgs []Message) (int, error) {
	s.mu.Lock()
	s.msgs = append(s.msgs, msgs...)
	s.mu.Unlock()
	select {
	case s.sig <- struct{}{}:
	default:
	}
	return len(msgs), nil
}

func (s *recSink) all() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// waitN waits until at least n messages arrived.
func (s *recSink) waitN(t testing.TB, n int) []Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if m := s.all(); len(m) >= n {
			return m
		}
		select {
		case <-s.sig:
		case <-deadline:
			t.Fatalf("%d messages delivered, want %d", len(s.all()), n)
		}
	}
}

func instanceOf(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() | 1
}

// testConfig returns a valid node configuration; mods run before the
// defaults are filled in.
func testConfig(t testing.TB, name string, mods ...func(*Config)) *Config {
	t.Helper()
	c := Config{Name: name, Instance: instanceOf(name), Inbox: newSink(), IDs: new(atomic.Uint64)}
	for _, m := range mods {
		m(&c)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

func sinkOf(cfg *Config) *recSink { return cfg.Inbox.(*recSink) }

// remoteHello is the hello a node called name with default settings sends.
func remoteHello(name string) *wire.Hello {
	c := Config{Name: name, Instance: instanceOf(name)}.WithDefaults()
	return c.hello()
}

// frame is one parsed frame.
type frame struct {
	wire.Header
	Payload []byte
}

// parseFrames splits b into complete frames and returns the rest.
func parseFrames(t testing.TB, b []byte) ([]frame, []byte) {
	t.Helper()
	var out []frame
	for len(b) >= wire.HeaderLen {
		h, err := wire.ParseHeader(b, wire.MaxVersion, wire.MaxFrameLimit)
		if err != nil {
			t.Fatalf("bad frame header % x: %v", b[:wire.HeaderLen], err)
		}
		n := wire.HeaderLen + int(h.Length)
		if len(b) < n {
			break
		}
		out = append(out, frame{Header: h, Payload: b[wire.HeaderLen:n:n]})
		b = b[n:]
	}
	return out, b
}

func mustData(t testing.TB, f frame) wire.Data {
	t.Helper()
	if f.Type != wire.TypeData {
		t.Fatalf("frame %s, want DATA", wire.TypeName(f.Type))
	}
	d, err := wire.ParseData(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// remote is the far end of a connection, driven by hand with package wire.
type remote struct {
	t     testing.TB
	nc    net.Conn
	fr    *wire.Reader
	hello *wire.Hello // what it sends
	peer  *wire.Hello // what it received
}

func newRemote(t testing.TB, nc net.Conn, hello *wire.Hello) *remote {
	return &remote{t: t, nc: nc, fr: wire.NewReader(nc, 0), hello: hello}
}

func (r *remote) send(frames ...[]byte) {
	r.t.Helper()
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	r.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("remote write: %v", err)
	}
}

func (r *remote) readFull(n int) []byte {
	r.t.Helper()
	b := make([]byte, n)
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(r.nc, b); err != nil {
		r.t.Fatalf("remote read: %v", err)
	}
	return b
}

// nextErr reads the next frame.
func (r *remote) nextErr() (wire.Header, []byte, error) {
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	return r.fr.ReadFrame()
}

func (r *remote) next() (wire.Header, []byte) {
	r.t.Helper()
	h, p, err := r.nextErr()
	if err != nil {
		r.t.Fatalf("remote read frame: %v", err)
	}
	return h, p
}

// skipping reads the next frame that is not an ACK, PING or PONG.
func (r *remote) skipping() (wire.Header, []byte) {
	r.t.Helper()
	for {
		h, p := r.next()
		switch h.Type {
		case wire.TypeAck, wire.TypeProgress, wire.TypePing, wire.TypePong:
			continue
		}
		return h, p
	}
}

// expectClose reads up to the next REJECT or GOODBYE (skipping control
// frames) and checks its type and code.
func (r *remote) expectClose(typ uint8, code wire.Code) wire.Close {
	r.t.Helper()
	h, p := r.skipping()
	if h.Type != typ {
		r.t.Fatalf("got %s frame, want %s", wire.TypeName(h.Type), wire.TypeName(typ))
	}
	c, err := wire.ParseClose(p)
	if err != nil {
		r.t.Fatal(err)
	}
	if c.Code != code {
		r.t.Fatalf("%s with code %v (%q), want %v", wire.TypeName(typ), c.Code, c.Reason, code)
	}
	return c
}

// expectEOF checks that the connection ends without another frame other
// than control frames.
func (r *remote) expectEOF() {
	r.t.Helper()
	for {
		h, _, err := r.nextErr()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
				r.t.Fatalf("want EOF, got %v", err)
			}
			return
		}
		switch h.Type {
		case wire.TypeAck, wire.TypeProgress, wire.TypePing, wire.TypePong:
			continue
		}
		r.t.Fatalf("want EOF, got a %s frame", wire.TypeName(h.Type))
	}
}

// handshake plays the remote's part of the preamble and hello exchange.
func (r *remote) handshake() {
	r.t.Helper()
	r.send(wire.AppendPreamble(nil, wire.Preamble{Min: 1, Max: 1, Mode: wire.ModePlain}))
	if _, err := wire.ParsePreamble(r.readFull(wire.PreambleLen)); err != nil {
		r.t.Fatal(err)
	}
	r.send(wire.AppendHello(nil, 1, r.hello))
	h, p := r.next()
	if h.Type != wire.TypeHello {
		r.t.Fatalf("got %s, want HELLO", wire.TypeName(h.Type))
	}
	hello, err := wire.ParseHello(p)
	if err != nil {
		r.t.Fatal(err)
	}
	r.peer = hello
}

// resume reads the local side's RESUME and sends the remote's.
func (r *remote) resume(delivered uint64) wire.Resume {
	r.t.Helper()
	h, p := r.next()
	if h.Type != wire.TypeResume {
		r.t.Fatalf("first frame after the hello is %s, want RESUME", wire.TypeName(h.Type))
	}
	ours, err := wire.ParseResume(p)
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(wire.AppendResume(nil, 1, wire.Resume{Instance: r.peer.Instance, Delivered: delivered}))
	return ours
}

func data(seq uint64, flags, ser, comp uint8, typ string, body []byte) []byte {
	return wire.AppendData(nil, 1, flags, seq, ser, comp, typ, body)
}

// connect runs the local handshake on one end of a buffered pipe while
// the remote side is driven by hand on the other.
func connect(t testing.TB, cfg *Config, hello *wire.Hello) (*Handshake, *remote) {
	t.Helper()
	a, b := testutil.NewBufferedPipe(1 << 20)
	type result struct {
		hs  *Handshake
		err error
	}
	ch := make(chan result, 1)
	go func() {
		hs, err := RunHandshake(context.Background(), a, cfg, true)
		ch <- result{hs, err}
	}()
	r := newRemote(t, b, hello)
	r.handshake()
	res := <-ch
	if res.err != nil {
		b.Close()
		t.Fatalf("handshake: %v", res.err)
	}
	t.Cleanup(func() { b.Close(); a.Close() })
	return res.hs, r
}

// connHarness is a session served by a real connection (reader and
// writer goroutines) whose remote end is driven by hand.
type connHarness struct {
	t      testing.TB
	cfg    *Config
	s      *Session
	c      *conn
	r      *remote
	ev     chan any
	gen    uint64
	closed bool
}

func newSession(cfg *Config, remoteName string) *Session {
	s := NewSession(cfg, "")
	s.SetID(ID(remoteName))
	return s
}

// serve connects s to a new hand-driven remote that sends hello, and
// starts the connection loops. The remote has not sent its RESUME yet.
func serve(t testing.TB, s *Session, hello *wire.Hello) *connHarness {
	t.Helper()
	hs, r := connect(t, s.cfg, hello)
	h := &connHarness{t: t, cfg: s.cfg, s: s, r: r, ev: make(chan any, 64)}
	h.gen = s.gen.Add(1)
	h.c = startConn(s, hs, h.gen, func(m any) { h.ev <- m })
	t.Cleanup(h.close)
	return h
}

// up sends the remote's RESUME and waits for the connection to be up. It
// returns the local side's RESUME.
func (h *connHarness) up(delivered uint64) wire.Resume {
	h.t.Helper()
	ours := h.r.resume(delivered)
	if u, ok := h.event().(*connUp); !ok || u.delivered != delivered {
		h.t.Fatalf("want connUp with delivered %d, got %#v", delivered, u)
	}
	return ours
}

func (h *connHarness) event() any {
	h.t.Helper()
	select {
	case m := <-h.ev:
		return m
	case <-time.After(10 * time.Second):
		h.t.Fatal("no report from the connection")
		return nil
	}
}

// down waits for the connection to report its end.
func (h *connHarness) down() error {
	h.t.Helper()
	for {
		switch m := h.event().(type) {
		case *connDown:
			if m.gen != h.gen {
				h.t.Fatalf("connDown for generation %d, want %d", m.gen, h.gen)
			}
			return m.err
		case *connUp:
			continue
		default:
			h.t.Fatalf("unexpected report %#v", m)
		}
	}
}

// noDown checks that the connection has not failed.
func (h *connHarness) noDown() {
	h.t.Helper()
	select {
	case m := <-h.ev:
		if d, ok := m.(*connDown); ok {
			h.t.Fatalf("connection failed: %v", d.err)
		}
	default:
	}
}

func (h *connHarness) close() {
	if h.closed {
		return
	}
	h.closed = true
	h.c.shutdown(nil)
	h.s.out.abandon()
	h.r.nc.Close()
}

// wantProto checks that err is a local protocol error with code.
func wantProto(t testing.TB, err error, code wire.Code) *wire.ProtocolError {
	t.Helper()
	pe, ok := wire.AsProtocolError(err)
	if !ok {
		t.Fatalf("error %v (%T), want a protocol error with code %v", err, err, code)
	}
	if pe.Code != code {
		t.Fatalf("error %v: code %v, want %v", err, pe.Code, code)
	}
	return pe
}

// drain takes everything pending in l as the writer would, marking it
// written, and returns the bytes.
func drain(l *outLog) []byte {
	var out bytes.Buffer
	for {
		bufs, ok := l.take(nil, 1<<30)
		if !ok {
			return out.Bytes()
		}
		for _, b := range bufs {
			out.Write(b)
		}
		l.wrote()
	}
}
