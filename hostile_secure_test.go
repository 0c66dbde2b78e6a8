package slc_test

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/wire"
)

// The hostile-input catalogue against a secure listener: every case
// closes that connection with a reason and an event, while an
// authenticated peer keeps exchanging messages.
func TestHostileInputSecure(t *testing.T) {
	const timeout = 500 * time.Millisecond
	ctx := testCtx(t, 60*time.Second)
	lid, pid := newIdentity(t), newIdentity(t)
	srv := newComm(t, "sec-srv", slc.WithTimeout(timeout), slc.WithIdentity(lid), slc.WithAuthorizedKeys(pid.PublicKey()))
	addr := listen(t, srv)
	ev := watch(t, srv)
	good := newComm(t, "sec-good", slc.WithIdentity(pid), slc.WithAuthorizedKeys(lid.PublicKey()))
	gid, err := good.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	secure := hostilePreamble(1, 1, wire.ModeNoiseXX)
	random := make([]byte, 512)
	rand.Read(random)
	cases := []struct {
		name, input string
		send        func(c net.Conn)
		slow        bool
	}{
		{"garbage", "512 random bytes", func(c net.Conn) { c.Write(random) }, false},
		{"plain client", "a plain preamble and hello", func(c net.Conn) {
			c.Write(append(hostilePreamble(1, 1, 0), wire.AppendHello(nil, 1, hostileHello("plain"))...))
		}, false},
		{"noise garbage", "secure preamble, then random bytes as Noise messages", func(c net.Conn) {
			c.Write(append(append([]byte{}, secure...), random...))
		}, false},
		{"noise length bomb", "secure preamble, Noise message of 65535 bytes announced, 10 sent", func(c net.Conn) {
			c.Write(append(append([]byte{}, secure...), 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
		}, false},
		{"noise truncated", "secure preamble, half a first Noise message, close", func(c net.Conn) {
			c.Write(append(append([]byte{}, secure...), 0x00, 0x20, 1, 2, 3))
			c.(*net.TCPConn).CloseWrite()
		}, false},
		{"silent", "secure preamble, then nothing", func(c net.Conn) { c.Write(secure) }, true},
		{"slowloris", "the secure preamble, one byte per 100ms", func(c net.Conn) {
			for _, b := range secure {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, true},
	}
	sent := 0
	for _, tc := range cases {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		local := c.LocalAddr().String()
		start := time.Now()
		go tc.send(c)
		c.SetReadDeadline(start.Add(5 * time.Second))
		_, err = io.Copy(io.Discard, c)
		closed := time.Since(start)
		c.Close()
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%s: the server did not close the connection: %v", tc.name, err)
		}
		if closed > 4*timeout || !tc.slow && closed > timeout {
			t.Fatalf("%s: closed after %v (timeout %v)", tc.name, closed, timeout)
		}
		rej := ev.wait(ctx, t, "HandshakeRejected for "+tc.name, func(e any) bool {
			hr, ok := e.(*actors.HandshakeRejected)
			return ok && hr.Addr == local
		}).(*actors.HandshakeRejected)
		t.Logf("%-18s | %-58s | %-6v | %v", tc.name, tc.input, closed.Round(time.Millisecond), rej.Err)
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
}
