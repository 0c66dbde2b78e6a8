package slc_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"slices"
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
)

// hostileLog collects a communicator's log for inspection.
type hostileLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *hostileLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *hostileLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines that mention the remote address addr.
func (l *hostileLog) lines(addr string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "remote="+addr+" ") {
			out = append(out, sc.Text())
		}
	}
	return out
}

// hostileCode matches a protocol error with code.
func hostileCode(code wire.Code) func(error) bool {
	return func(err error) bool {
		pe, ok := wire.AsProtocolError(err)
		return ok && pe.Code == code
	}
}

func hostilePreamble(min, max, mode uint8) []byte {
	return wire.AppendPreamble(nil, wire.Preamble{Min: min, Max: max, Mode: mode})
}

// hostileHello is a valid hello from a node called name.
func hostileHello(name string) *wire.Hello {
	return &wire.Hello{
		Name: name, Instance: 0xbadc0de,
		Serializers: []wire.CodecEntry{{ID: 0, Name: "raw", Version: 1}, {ID: 1, Name: "msgpack", Version: 1}},
		Compressors: []wire.CodecEntry{{ID: 0, Name: "none", Version: 1}},
		MaxFrame:    16 << 20, MaxMessage: 1 << 20, HeartbeatMS: 1000,
	}
}

// sendAll writes b and stops quietly if the server already closed.
func sendAll(c net.Conn, b []byte) { c.Write(b) }

type hostileCase struct {
	name  string
	input string // what the client sends, for the table
	// write sends the input; it may take its time, and must return once
	// done is closed.
	write func(c net.Conn, done <-chan struct{})
	want  func(error) bool // the reason in the HandshakeRejected event
	log   string           // expected in the log line
	slow  bool             // cut by the handshake timeout, not at once
	reply wire.Code        // a REJECT with this code is expected, when not 0
}

// TestHostileInput is the listener's robustness requirement: bad input on
// a listener (garbage, wrong magic, a 4 GiB length, a truncated hello, a
// client that connects and says nothing, ...) closes that connection with
// a logged reason and publishes an event; the listener and every other
// peer keep working; nothing panics.
func TestHostileInput(t *testing.T) {
	const timeout = 500 * time.Millisecond
	ctx := testCtx(t, 90*time.Second)
	var logs hostileLog
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := newComm(t, "hostile-srv", slc.WithLogger(logger), slc.WithTimeout(timeout))
	addr := listen(t, srv)
	srvEv := watch(t, srv)

	// A legitimate peer, connected before the bad inputs, exchanges
	// messages both ways for the whole test.
	old := newComm(t, "hostile-old")
	oldEv := watch(t, old)
	if _, err := old.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	srvEv.wait(ctx, t, "PeerConnected", func(ev any) bool {
		pc, ok := ev.(*actors.PeerConnected)
		return ok && pc.Peer == "hostile-old"
	})
	up := newHostileStream(ctx, t, old, srv, "hostile-srv", "hostile-old")
	down := newHostileStream(ctx, t, srv, old, "hostile-old", "hostile-srv")

	garbage := make([]byte, 256)
	rand.New(rand.NewSource(1)).Read(garbage)
	if bytes.HasPrefix(garbage, wire.Magic[:]) {
		t.Fatal("the garbage starts with the magic")
	}
	cases := []hostileCase{
		{name: "garbage", input: "256 random bytes",
			write: func(c net.Conn, _ <-chan struct{}) { sendAll(c, garbage) },
			want:  func(err error) bool { return errors.Is(err, wire.ErrBadMagic) }, log: "bad magic"},
		{name: "http", input: "an HTTP request",
			write: func(c net.Conn, _ <-chan struct{}) { sendAll(c, []byte("GET / HTTP/1.1\r\nHost: slc\r\n\r\n")) },
			want:  func(err error) bool { return errors.Is(err, wire.ErrBadMagic) }, log: "bad magic"},
		{name: "wrong magic", input: `"SLC\x00" and a valid rest`,
			write: func(c net.Conn, _ <-chan struct{}) { sendAll(c, []byte("SLC\x00\x01\x01\x00\x00")) },
			want:  func(err error) bool { return errors.Is(err, wire.ErrBadMagic) }, log: "bad magic"},
		{name: "preamble, then garbage", input: "a valid preamble, then the 256 random bytes",
			write: func(c net.Conn, done <-chan struct{}) {
				sendAll(c, append(hostilePreamble(1, 1, 0), garbage...))
				<-done
			},
			want: func(err error) bool {
				// The random bytes are read as a frame header: its version
				// byte is not 1.
				return errors.Is(err, wire.ErrInvalidVersion)
			}, log: "frame version", reply: wire.CodeVersion},
		{name: "4 GiB frame", input: "preamble, HELLO header with length 0xFFFFFFFF",
			write: func(c net.Conn, _ <-chan struct{}) {
				sendAll(c, append(hostilePreamble(1, 1, 0),
					wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypeHello, Length: 0xFFFFFFFF})...))
			},
			want: func(err error) bool { return errors.Is(err, wire.ErrFrameTooLarge) }, log: "frame too large"},
		{name: "truncated hello", input: "preamble, HELLO header for 100 bytes, 10 bytes, close",
			write: func(c net.Conn, _ <-chan struct{}) {
				b := append(hostilePreamble(1, 1, 0), wire.AppendHeader(nil, wire.Header{Version: 1, Type: wire.TypeHello, Length: 100})...)
				sendAll(c, append(b, wire.AppendHello(nil, 1, hostileHello("x"))[wire.HeaderLen:wire.HeaderLen+10]...))
				c.(*net.TCPConn).CloseWrite()
			},
			want: func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }, log: "unexpected EOF"},
		{name: "hello without a name", input: "preamble, HELLO with an empty name",
			write: func(c net.Conn, _ <-chan struct{}) {
				h := hostileHello("")
				sendAll(c, append(hostilePreamble(1, 1, 0), wire.AppendHello(nil, 1, h)...))
			},
			want: hostileCode(wire.CodeBadHello), log: "bad hello", reply: wire.CodeBadHello},
		{name: "hello without limits", input: "preamble, HELLO with max frame 0 and no instance",
			write: func(c net.Conn, _ <-chan struct{}) {
				h := hostileHello("hostile-client")
				h.MaxFrame, h.Instance = 0, 0
				sendAll(c, append(hostilePreamble(1, 1, 0), wire.AppendHello(nil, 1, h)...))
			},
			want: hostileCode(wire.CodeBadHello), log: "bad hello", reply: wire.CodeBadHello},
		{name: "hello with the listener's name", input: `preamble, valid HELLO named "hostile-srv"`,
			write: func(c net.Conn, _ <-chan struct{}) {
				sendAll(c, append(hostilePreamble(1, 1, 0), wire.AppendHello(nil, 1, hostileHello("hostile-srv"))...))
			},
			want: func(err error) bool {
				pe, ok := wire.AsProtocolError(err)
				return ok && !pe.Remote && strings.Contains(pe.Reason, "own name")
			}, log: "own name"},
		{name: "silent", input: "nothing at all",
			write: func(c net.Conn, done <-chan struct{}) { <-done },
			want:  hostileCode(wire.CodeTimeout), log: "handshake timeout", slow: true},
		{name: "slowloris", input: "the preamble, one byte per 100ms",
			write: func(c net.Conn, done <-chan struct{}) {
				for _, b := range hostilePreamble(1, 1, 0) {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					select {
					case <-done:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
				<-done
			},
			want: hostileCode(wire.CodeTimeout), log: "handshake timeout", slow: true},
		{name: "version range", input: "preamble speaking versions 7..9",
			write: func(c net.Conn, _ <-chan struct{}) { sendAll(c, hostilePreamble(7, 9, 0)) },
			want:  func(err error) bool { return errors.Is(err, wire.ErrInvalidVersion) }, log: "version mismatch"},
		{name: "secure mode", input: "preamble asking for secure mode 1",
			write: func(c net.Conn, _ <-chan struct{}) { sendAll(c, hostilePreamble(1, 1, wire.ModeNoiseXX)) },
			want:  hostileCode(wire.CodeSecurityMismatch), log: "security mode mismatch"},
		{name: "hang up", input: "connect, close at once",
			write: func(c net.Conn, _ <-chan struct{}) { c.(*net.TCPConn).CloseWrite() },
			want:  func(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }, log: "EOF"},
	}

	type row struct{ name, input, reason, reply, closed string }
	var rows []row
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := up.count()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			local := c.LocalAddr().String()
			start := time.Now()
			done := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); tc.write(c, done) }()

			// The server closes the connection: EOF or a reset, never our
			// read deadline.
			c.SetReadDeadline(start.Add(5 * time.Second))
			got, rerr := io.ReadAll(c)
			closed := time.Since(start)
			close(done)
			wg.Wait()
			var ne net.Error
			if rerr != nil && (errors.As(rerr, &ne) && ne.Timeout() || !errors.Is(rerr, syscall.ECONNRESET)) {
				t.Fatalf("the server did not close the connection: %v", rerr)
			}
			if tc.slow {
				if closed < timeout-50*time.Millisecond || closed > 4*timeout {
					t.Errorf("closed after %v, want about the %v handshake timeout", closed, timeout)
				}
			} else if closed >= timeout {
				t.Errorf("closed after %v: bad input must be refused at once, not at the %v timeout", closed, timeout)
			}

			// The event, with the reason.
			evCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			ev := srvEv.wait(evCtx, t, "HandshakeRejected for "+local, func(ev any) bool {
				hr, ok := ev.(*actors.HandshakeRejected)
				return ok && hr.Addr == local
			}).(*actors.HandshakeRejected)
			if ev.Err == nil || !tc.want(ev.Err) {
				t.Errorf("HandshakeRejected reason %v does not match the case", ev.Err)
			}
			if ev.ByRemote {
				t.Errorf("HandshakeRejected marked ByRemote: %v", ev.Err)
			}

			// The log line, with the reason.
			lines := logs.lines(local)
			if len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), tc.log) {
				t.Errorf("log for %s: %q, want a line containing %q", local, lines, tc.log)
			}

			// What the client was told.
			reply := hostileReply(got)
			if tc.reply != 0 && !strings.Contains(reply, "REJECT("+tc.reply.String()+")") {
				t.Errorf("the client got %s, want a REJECT with %v", reply, tc.reply)
			}

			// The legitimate peer kept going.
			up.waitPast(t, before+1)
			down.waitPast(t, down.count()+1)

			rows = append(rows, row{tc.name, tc.input, fmt.Sprint(ev.Err), reply, closed.Round(time.Millisecond).String()})
		})
	}

	// Every hostile connection was reported exactly once: wait for the
	// events of all of them, then look again one heartbeat later (a
	// second report would come from the same goroutines, long done).
	rejected := func() map[string]int {
		perAddr := map[string]int{}
		srvEv.mu.Lock()
		defer srvEv.mu.Unlock()
		for _, ev := range srvEv.all {
			if hr, ok := ev.(*actors.HandshakeRejected); ok {
				perAddr[hr.Addr]++
			}
		}
		return perAddr
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(rejected()) >= len(cases) },
		"HandshakeRejected for %d connections, want %d", len(rejected()), len(cases))
	hostileHeartbeat(t)
	perAddr := rejected()
	if len(perAddr) != len(cases) {
		t.Errorf("HandshakeRejected for %d connections, want %d", len(perAddr), len(cases))
	}
	for a, n := range perAddr {
		if n != 1 {
			t.Errorf("%d HandshakeRejected events for %s, want 1", n, a)
		}
	}

	// A new peer can still connect and exchange messages.
	late := newComm(t, "hostile-late")
	if id, err := late.Connect(ctx, addr); err != nil || id != "hostile-srv" {
		t.Fatalf("a new peer cannot connect after the hostile inputs: %q, %v", id, err)
	}
	if _, err := late.Send(ctx, Seq{N: 1}, "hostile-srv"); err != nil {
		t.Fatal(err)
	}
	if m, err := srv.Receive(ctx, "hostile-late"); err != nil || m.Body.(Seq).N != 1 {
		t.Fatalf("receive from the new peer: %+v, %v", m, err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return slices.Contains(srv.Peers(), "hostile-late") },
		"the new peer is not listed")
	if _, err := srv.Send(ctx, Seq{N: 2}, "hostile-late"); err != nil {
		t.Fatal(err)
	}
	if m, err := late.Receive(ctx); err != nil || m.Body.(Seq).N != 2 {
		t.Fatalf("receive at the new peer: %+v, %v", m, err)
	}

	// The two streams arrived whole and in order.
	upTally, downTally := up.finish(t), down.finish(t)
	t.Logf("legitimate traffic during the test: hostile-old -> hostile-srv %s; hostile-srv -> hostile-old %s", upTally, downTally)

	// Nothing else happened to the legitimate peers or the listener, and
	// nothing panicked (protoactor logs a recovered panic as "Recovering").
	for _, e := range []*events{srvEv, oldEv} {
		if n := e.count(func(ev any) bool {
			switch ev.(type) {
			case *actors.PeerDisconnected, *actors.PeerLost, *actors.PeerReconnecting, *actors.ListenerFailed:
				return true
			}
			return false
		}); n != 0 {
			t.Errorf("%d disconnect, loss, reconnect or listener events during the test", n)
		}
	}
	if peers := srv.Peers(); !slices.Equal(peers, []slc.PeerID{"hostile-late", "hostile-old"}) {
		t.Errorf("peers of the listener's node: %v; the hostile inputs must not have created sessions", peers)
	}
	if l := logs.String(); strings.Contains(l, "Recovering") || strings.Contains(strings.ToLower(l), "panic") {
		t.Errorf("a panic was logged:\n%s", l)
	}

	t.Logf("%-28s | %-52s | %-13s | %-34s | %s", "case", "input", "closed within", "server sent", "HandshakeRejected reason")
	for _, r := range rows {
		t.Logf("%-28s | %-52s | %-13s | %-34s | %s", r.name, r.input, r.closed, r.reply, r.reason)
	}
}

// hostileHeartbeat waits one heartbeat interval of the test nodes (fast's
// 100 ms): after the awaited event has arrived, the time in which a
// duplicate of it would have shown up. Only the absence of an event is
// checked this way; what must happen is waited for by event.
func hostileHeartbeat(t *testing.T) {
	t.Helper()
	<-time.After(100 * time.Millisecond)
}

// hostileReply summarizes what the server sent a hostile client.
func hostileReply(b []byte) string {
	if len(b) < wire.PreambleLen {
		if len(b) == 0 {
			return "nothing"
		}
		return fmt.Sprintf("%d bytes", len(b))
	}
	parts := []string{"preamble"}
	b = b[wire.PreambleLen:]
	for len(b) >= wire.HeaderLen {
		h, err := wire.ParseHeader(b, 1, wire.MaxFrameLimit)
		if err != nil || len(b) < wire.HeaderLen+int(h.Length) {
			break
		}
		p := b[wire.HeaderLen : wire.HeaderLen+int(h.Length)]
		if h.Type == wire.TypeReject || h.Type == wire.TypeGoodbye {
			c, _ := wire.ParseClose(p)
			parts = append(parts, fmt.Sprintf("%s(%v)", wire.TypeName(h.Type), c.Code))
		} else {
			parts = append(parts, wire.TypeName(h.Type))
		}
		b = b[wire.HeaderLen+int(h.Length):]
	}
	return strings.Join(parts, "+")
}

// hostileStream sends numbered messages from one communicator to another
// until finished, and records what arrives.
type hostileStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	sendOK chan struct{} // closed when the sender has stopped
	sent   atomic.Int64
	mu     sync.Mutex
	got    []uint64
	sig    chan struct{}
	wg     sync.WaitGroup
	err    error
}

func newHostileStream(ctx context.Context, t *testing.T, from, to *slc.Communicator, toID, fromID slc.PeerID) *hostileStream {
	s := &hostileStream{stop: make(chan struct{}), sendOK: make(chan struct{}), sig: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		defer close(s.sendOK)
		for n := 1; ; n++ {
			select {
			case <-s.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := from.Send(s.ctx, Seq{N: n}, toID); err != nil {
				s.mu.Lock()
				s.err = fmt.Errorf("send %d: %w", n, err)
				s.mu.Unlock()
				return
			}
			s.sent.Store(int64(n))
		}
	}()
	go func() {
		defer s.wg.Done()
		for {
			m, err := to.Receive(s.ctx, fromID)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, uint64(m.Body.(Seq).N))
			s.mu.Unlock()
			select {
			case s.sig <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { s.cancel(); s.wg.Wait() })
	return s
}

func (s *hostileStream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// waitPast waits until at least n messages arrived.
func (s *hostileStream) waitPast(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for s.count() < n {
		select {
		case <-s.sig:
		case <-deadline:
			s.mu.Lock()
			err := s.err
			s.mu.Unlock()
			t.Fatalf("the legitimate peer's messages stopped at %d (sender: %v)", s.count(), err)
		}
	}
}

// finish stops sending, waits for everything sent to arrive and checks it.
func (s *hostileStream) finish(t *testing.T) testutil.Tally {
	t.Helper()
	close(s.stop)
	<-s.sendOK // a Send in progress counts once it returns
	for {
		if s.count() >= int(s.sent.Load()) {
			break
		}
		select {
		case <-s.sig:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d messages arrived", s.count(), s.sent.Load())
		}
	}
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Fatalf("legitimate sender: %v", s.err)
	}
	tally := testutil.CheckSequence(int(s.sent.Load()), s.got)
	if !tally.Exact() {
		t.Errorf("legitimate traffic damaged: %s", tally)
	}
	return tally
}

// TestHostileImpersonation: a client that claims the name of a connected
// peer (another instance of it) is refused, reported once, and the real
// peer is not disturbed.
func TestHostileImpersonation(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	srv := newComm(t, "hostile-srv", slc.WithTimeout(500*time.Millisecond))
	addr := listen(t, srv)
	srvEv := watch(t, srv)
	old := newComm(t, "hostile-old")
	if _, err := old.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	srvEv.wait(ctx, t, "PeerConnected", isType[*actors.PeerConnected])

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	c.Write(append(hostilePreamble(1, 1, 0), wire.AppendHello(nil, 1, hostileHello("hostile-old"))...))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the impostor's connection was not closed: %v", err)
	}
	if reply := hostileReply(got); !strings.Contains(reply, "REJECT("+wire.CodeNameInUse.String()+")") {
		t.Fatalf("the impostor got %s, want a REJECT with %v", reply, wire.CodeNameInUse)
	}
	// The real peer still works.
	if _, err := old.Send(ctx, Seq{N: 1}, "hostile-srv"); err != nil {
		t.Fatal(err)
	}
	if m, err := srv.Receive(ctx, "hostile-old"); err != nil || m.Body.(Seq).N != 1 {
		t.Fatalf("receive: %+v %v", m, err)
	}
	// One connection, one event: wait for it, then look again one
	// heartbeat later.
	impostor := func(ev any) bool {
		hr, ok := ev.(*actors.HandshakeRejected)
		return ok && hr.Addr == local
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return srvEv.count(impostor) >= 1 },
		"no HandshakeRejected for the impostor")
	hostileHeartbeat(t)
	n := srvEv.count(impostor)
	if n != 1 {
		t.Errorf("%d HandshakeRejected events for the impostor's one connection, want 1", n)
	}
	if n := srvEv.count(func(ev any) bool {
		_, ok := ev.(*actors.PeerDisconnected)
		return ok
	}); n != 0 {
		t.Errorf("the real peer was disconnected")
	}
}

// TestHostileHelloThenSilence: a client that completes the hello and then
// says nothing (no RESUME) is cut at the handshake timeout like any other
// silent client. It never became a peer, so it must not be left behind as
// one: listed by Peers, counted by broadcasts, holding their messages (and,
// once its BufferCap is full, blocking them) until the linger time ends.
func TestHostileHelloThenSilence(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ctx := testCtx(t, 30*time.Second)
	srv := newComm(t, "hostile-srv", slc.WithTimeout(timeout))
	addr := listen(t, srv)
	srvEv := watch(t, srv)
	old := newComm(t, "hostile-old")
	if _, err := old.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	srvEv.wait(ctx, t, "PeerConnected", isType[*actors.PeerConnected])

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	start := time.Now()
	c.Write(append(hostilePreamble(1, 1, 0), wire.AppendHello(nil, 1, hostileHello("ghost"))...))
	c.SetReadDeadline(start.Add(5 * time.Second))
	got, err := io.ReadAll(c)
	closed := time.Since(start)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the connection was not closed: %v", err)
	}
	t.Logf("server sent %s, closed after %v", hostileReply(got), closed.Round(time.Millisecond))
	if closed > 4*timeout {
		t.Fatalf("closed after %v with a %v timeout", closed, timeout)
	}
	ev := srvEv.wait(ctx, t, "HandshakeRejected", func(ev any) bool {
		hr, ok := ev.(*actors.HandshakeRejected)
		return ok && hr.Addr == local
	}).(*actors.HandshakeRejected)
	if !hostileCode(wire.CodeTimeout)(ev.Err) {
		t.Errorf("HandshakeRejected reason %v, want a handshake timeout", ev.Err)
	}

	// The legitimate peer is unaffected.
	if _, err := old.Send(ctx, Seq{N: 1}, "hostile-srv"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Receive(ctx, "hostile-old"); err != nil {
		t.Fatal(err)
	}
	// No ghost peer is left behind: its session ends with the failed
	// connection.
	testutil.Eventually(t, 5*time.Second, func() bool { return !slices.Contains(srv.Peers(), "ghost") },
		"Peers() = %v: the client that never completed its handshake is listed as a peer", srv.Peers())
	if _, err := srv.Send(ctx, Seq{N: 2}); err != nil {
		t.Fatal(err)
	}
	if st, ok := srv.PeerStats("ghost"); ok {
		t.Errorf("a broadcast was queued for the ghost (stats %+v); it stays there until the linger time ends", st)
	}
}
