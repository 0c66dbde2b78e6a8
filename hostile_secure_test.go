package slc_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
)

// hostileReason matches a protocol error with code whose reason contains
// text.
func hostileReason(code wire.Code, text string) func(error) bool {
	return func(err error) bool {
		pe, ok := wire.AsProtocolError(err)
		return ok && pe.Code == code && strings.Contains(pe.Reason, text)
	}
}

// The hostile-input catalogue against a secure listener: every case
// closes that connection, at once or at the handshake timeout, with the
// expected reason in a HandshakeRejected event, while an authenticated
// peer keeps exchanging messages.
func TestHostileInputSecure(t *testing.T) {
	const timeout = 500 * time.Millisecond
	ctx := testCtx(t, 60*time.Second)
	lid, pid := newIdentity(t), newIdentity(t)
	srv := newComm(t, "sec-srv", slc.WithTimeout(timeout), slc.WithIdentity(lid), slc.WithAuthorizedKeys(pid.PublicKey()))
	addr := listen(t, srv)
	ev := watch(t, srv)

	// The good peer connects through a proxy that records what it sends,
	// so its handshake can be replayed below.
	const hsLen = wire.PreambleLen + (2 + 32) + (2 + 48 + 16) // preamble, Noise messages 1 and 3
	var tapMu sync.Mutex
	var tap []byte
	proxy, err := testutil.NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.CorruptFunc(func(dir testutil.Direction, off int64, b []byte) {
		if dir == testutil.ClientToServer && off < hsLen {
			tapMu.Lock()
			tap = append(tap, b...)
			tapMu.Unlock()
		}
	})
	good := newComm(t, "sec-good", slc.WithIdentity(pid), slc.WithAuthorizedKeys(lid.PublicKey()))
	gid, err := good.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	tapMu.Lock()
	if len(tap) < hsLen {
		t.Fatalf("recorded %d bytes of the good peer's handshake, want %d", len(tap), hsLen)
	}
	replay := append([]byte(nil), tap[:hsLen]...)
	tapMu.Unlock()

	secure := hostilePreamble(1, 1, wire.ModeNoiseXX)
	rng := rand.New(rand.NewSource(3))
	random := make([]byte, 512)
	rng.Read(random)
	// Well-framed random Noise messages: a 32-byte message 1 (any 32
	// bytes pass as an ephemeral key), then a 64-byte message 3.
	framed := append([]byte{0, 32}, random[:32]...)
	framed = append(append(framed, 0, 64), random[32:96]...)
	wait := func(done <-chan struct{}) { <-done }
	cases := []struct {
		name, input string
		write       func(c net.Conn, done <-chan struct{})
		want        func(error) bool
		slow        bool
	}{
		{"garbage", "512 random bytes", func(c net.Conn, _ <-chan struct{}) { c.Write(random) },
			func(err error) bool { return errors.Is(err, wire.ErrBadMagic) }, false},
		{"plain client", "a plain preamble and hello", func(c net.Conn, _ <-chan struct{}) {
			c.Write(append(hostilePreamble(1, 1, 0), wire.AppendHello(nil, 1, hostileHello("plain"))...))
		}, hostileCode(wire.CodeSecurityMismatch), false},
		{"noise garbage", "secure preamble, well-framed random Noise messages 1 and 3", func(c net.Conn, done <-chan struct{}) {
			c.Write(append(append([]byte{}, secure...), framed...))
			wait(done)
		}, hostileReason(wire.CodeAuthFailed, "message 3"), false},
		{"noise length bomb", "secure preamble, Noise message of 65535 bytes announced, 10 sent", func(c net.Conn, done <-chan struct{}) {
			c.Write(append(append([]byte{}, secure...), 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
			wait(done)
		}, hostileReason(wire.CodeAuthFailed, "65535 bytes announced"), false},
		{"noise truncated", "secure preamble, half a first Noise message, close", func(c net.Conn, _ <-chan struct{}) {
			c.Write(append(append([]byte{}, secure...), 0x00, 0x20, 1, 2, 3))
			c.(*net.TCPConn).CloseWrite()
		}, func(err error) bool {
			return errors.Is(err, io.ErrUnexpectedEOF) && strings.Contains(err.Error(), "security handshake")
		}, false},
		{"handshake replay", "the good peer's recorded preamble and Noise messages 1 and 3, replayed", func(c net.Conn, done <-chan struct{}) {
			c.Write(replay)
			wait(done)
		}, hostileReason(wire.CodeAuthFailed, "message 3"), false},
		{"silent", "secure preamble, then nothing", func(c net.Conn, done <-chan struct{}) {
			c.Write(secure)
			wait(done)
		}, hostileReason(wire.CodeTimeout, "security handshake"), true},
		{"slowloris, preamble", "the secure preamble, one byte per 100ms", func(c net.Conn, done <-chan struct{}) {
			hostileTrickle(c, secure, done)
		}, hostileReason(wire.CodeTimeout, "preamble"), true},
		{"slowloris, Noise", "the secure preamble, then Noise message 1 one byte per 100ms", func(c net.Conn, done <-chan struct{}) {
			c.Write(secure)
			hostileTrickle(c, framed[:34], done)
		}, hostileReason(wire.CodeTimeout, "security handshake"), true},
	}
	type row struct{ name, input, closed, reason string }
	var rows []row
	sent := 0
	for _, tc := range cases {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		local := c.LocalAddr().String()
		start := time.Now()
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { tc.write(c, done) })
		// The server closes the connection: EOF or a reset, never this
		// side's deadline.
		c.SetReadDeadline(start.Add(5 * time.Second))
		_, err = io.Copy(io.Discard, c)
		closed := time.Since(start)
		close(done)
		wg.Wait()
		c.Close()
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%s: the server did not close the connection: %v", tc.name, err)
		}
		if tc.slow && (closed < timeout-50*time.Millisecond || closed > 4*timeout) {
			t.Errorf("%s: closed after %v, want about the %v handshake timeout", tc.name, closed, timeout)
		} else if !tc.slow && closed >= timeout {
			t.Errorf("%s: closed after %v: bad input must be refused at once, not at the %v timeout", tc.name, closed, timeout)
		}
		rej := ev.wait(ctx, t, "HandshakeRejected for "+tc.name, func(e any) bool {
			hr, ok := e.(*actors.HandshakeRejected)
			return ok && hr.Addr == local
		}).(*actors.HandshakeRejected)
		if rej.Err == nil || !tc.want(rej.Err) {
			t.Errorf("%s: HandshakeRejected reason %v does not match the case", tc.name, rej.Err)
		}
		if rej.ByRemote {
			t.Errorf("%s: HandshakeRejected marked ByRemote: %v", tc.name, rej.Err)
		}
		rows = append(rows, row{tc.name, tc.input, closed.Round(time.Millisecond).String(), fmt.Sprint(rej.Err)})
		// The authenticated peer is unaffected.
		sent++
		if _, err := good.Send(ctx, Seq{N: sent}, gid); err != nil {
			t.Fatal(err)
		}
		m, err := srv.Receive(ctx, "sec-good")
		if err != nil || m.Body.(Seq).N != sent {
			t.Fatalf("after %s the good peer's message: %+v, %v", tc.name, m.Body, err)
		}
	}
	if n := ev.count(isType[*actors.PeerDisconnected]); n != 0 {
		t.Fatalf("the good peer was disconnected %d times", n)
	}
	t.Logf("%-20s | %-72s | %-13s | %s", "case", "input", "closed within", "HandshakeRejected reason")
	for _, r := range rows {
		t.Logf("%-20s | %-72s | %-13s | %s", r.name, r.input, r.closed, r.reason)
	}
}

// hostileTrickle writes b one byte per 100 ms, then waits for done.
func hostileTrickle(c net.Conn, b []byte, done <-chan struct{}) {
	for _, x := range b {
		if _, err := c.Write([]byte{x}); err != nil {
			return
		}
		select {
		case <-done:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	<-done
}

// The half-open flood against a secure listener: the handshake slots are
// the same, and a secure handshake holds one as long as a plain one.
func TestHostileHalfOpenFloodSecure(t *testing.T) {
	testHostileFlood(t, true)
}
