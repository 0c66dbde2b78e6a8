package rsb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/slc-go/slc/compat"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func accept(t testing.TB, ln net.Listener) net.Conn {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func rawDial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func readN(t testing.TB, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

func expectBytes(t testing.TB, r io.Reader, want []byte) {
	t.Helper()
	if got := readN(t, r, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("read\n% x\nwant\n% x", got, want)
	}
}

func expectEOF(t testing.TB, r io.Reader) {
	t.Helper()
	var b [1]byte
	if n, err := r.Read(b[:]); err != io.EOF {
		t.Fatalf("read %d bytes, %v; want EOF", n, err)
	}
}

func goldenFrame(t testing.TB, i int) []byte {
	body := unhexs(t, goldenNotifications[i].hex)
	return append([]byte{byte(len(body)), 0, 0, 0}, body...)
}

var fast = compat.Backoff{Initial: -1, Retries: 3}

// dialAsync dials in the background: Dial returns only once the
// scripted server has sent its handshake.
func dialAsync(ctx context.Context, addr string, opts ...Option) <-chan dialResult {
	ch := make(chan dialResult, 1)
	go func() {
		c, err := Dial(ctx, addr, opts...)
		ch <- dialResult{c, err}
	}()
	return ch
}

type dialResult struct {
	c   *Client
	err error
}

func mustClient(t testing.TB, ch <-chan dialResult) *Client {
	t.Helper()
	r := <-ch
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

// TestScriptedServerExchange plays an RSB server byte by byte against a
// Client: handshake, a notification each way, orderly shutdown.
func TestScriptedServerExchange(t *testing.T) {
	ctx := testCtx(t)
	ln := listen(t)
	ch := dialAsync(ctx, ln.Addr().String(), WithBackoff(fast))
	srv := accept(t, ln)
	if _, err := srv.Write([]byte{0, 0, 0, 0}); err != nil { // the handshake
		t.Fatal(err)
	}
	c := mustClient(t, ch)

	// Client to server: exactly the golden frame.
	if err := c.Publish(ctx, &goldenNotifications[0].n); err != nil {
		t.Fatal(err)
	}
	expectBytes(t, srv, goldenFrame(t, 0))

	// Server to client.
	if _, err := srv.Write(goldenFrame(t, 1)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !notificationsEqual(n, &goldenNotifications[1].n) {
		t.Errorf("Receive = %+v; want %+v", n, goldenNotifications[1].n)
	}

	// Orderly shutdown: the client shuts its write side (the server reads
	// EOF), then waits for the server's EOF.
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	expectEOF(t, srv)
	select {
	case <-closed:
		t.Fatal("Close returned before the server's EOF")
	default:
	}
	srv.(*net.TCPConn).CloseWrite()
	<-closed
	if err := c.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err() = %v; want ErrClosed", err)
	}
	if _, err := c.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close = %v; want ErrClosed", err)
	}
	if err := c.Publish(ctx, &goldenNotifications[0].n); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v; want ErrClosed", err)
	}
}

// TestScriptedServerErrors: a bad handshake fails Dial; a frame that is
// too large or does not decode ends the client with that error (a
// protocol error: no reconnect).
func TestScriptedServerErrors(t *testing.T) {
	t.Run("handshake", func(t *testing.T) {
		ctx := testCtx(t)
		ln := listen(t)
		ch := dialAsync(ctx, ln.Addr().String())
		srv := accept(t, ln)
		srv.Write([]byte{0, 0, 0, 1})
		if r := <-ch; !errors.Is(r.err, ErrHandshake) {
			t.Errorf("Dial = %v; want ErrHandshake", r.err)
		}
	})
	t.Run("handshake cut", func(t *testing.T) {
		ctx := testCtx(t)
		ln := listen(t)
		ch := dialAsync(ctx, ln.Addr().String())
		srv := accept(t, ln)
		srv.Write([]byte{0, 0})
		srv.Close()
		if r := <-ch; !errors.Is(r.err, io.ErrUnexpectedEOF) {
			t.Errorf("Dial = %v; want io.ErrUnexpectedEOF", r.err)
		}
	})
	for _, tt := range []struct {
		name  string
		frame []byte
		want  error
	}{
		{"too large", []byte{0x01, 0x00, 0x00, 0x01}, ErrFrameTooLarge}, // 16 MiB + 1 > 1 MiB
		{"malformed", []byte{3, 0, 0, 0, 0x32, 0x05, 0x2f}, ErrMalformed},
		{"no event id", []byte{3, 0, 0, 0, 0x32, 0x01, 0x2f}, ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			ln := listen(t)
			ch := dialAsync(ctx, ln.Addr().String(), WithMaxFrame(1<<20), WithBackoff(fast))
			srv := accept(t, ln)
			srv.Write([]byte{0, 0, 0, 0})
			c := mustClient(t, ch)
			srv.Write(tt.frame)
			if _, err := c.Receive(ctx); !errors.Is(err, tt.want) {
				t.Errorf("Receive = %v; want %v", err, tt.want)
			}
			<-c.Done()
			expectEOF(t, srv) // the connection is closed
		})
	}
}

// TestClientReconnects: the server drops the connection; the client dials
// again, and Publish goes to the new connection.
func TestClientReconnects(t *testing.T) {
	ctx := testCtx(t)
	ln := listen(t)
	ch := dialAsync(ctx, ln.Addr().String(), WithBackoff(fast))
	srv := accept(t, ln)
	srv.Write([]byte{0, 0, 0, 0})
	c := mustClient(t, ch)
	srv.Close() // reset

	srv2 := accept(t, ln)
	srv2.Write([]byte{0, 0, 0, 0})
	// A notification over the new connection shows that the old one is
	// gone, so that Publish cannot hand its frame to the old one.
	srv2.Write(goldenFrame(t, 1))
	if _, err := c.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, &goldenNotifications[0].n); err != nil {
		t.Fatal(err)
	}
	expectBytes(t, srv2, goldenFrame(t, 0))
}

// TestClientGivesUp: with no server, the client spends its budget and
// ends with ErrLost.
func TestClientGivesUp(t *testing.T) {
	ctx := testCtx(t)
	ln := listen(t)
	addr := ln.Addr().String()
	ch := dialAsync(ctx, addr, WithBackoff(compat.Backoff{Initial: -1, Retries: 2}))
	srv := accept(t, ln)
	srv.Write([]byte{0, 0, 0, 0})
	c := mustClient(t, ch)
	ln.Close()
	srv.Close()
	<-c.Done()
	if err := c.Err(); !errors.Is(err, ErrLost) {
		t.Errorf("Err() = %v; want ErrLost", err)
	}
	if err := c.Publish(ctx, &goldenNotifications[0].n); !errors.Is(err, ErrLost) {
		t.Errorf("Publish = %v; want ErrLost", err)
	}
}

func TestNoAutoRestart(t *testing.T) {
	ctx := testCtx(t)
	ln := listen(t)
	ch := dialAsync(ctx, ln.Addr().String(), WithAutoRestart(false))
	srv := accept(t, ln)
	srv.Write([]byte{0, 0, 0, 0})
	c := mustClient(t, ch)
	srv.Close()
	<-c.Done()
	if err := c.Err(); !errors.Is(err, ErrLost) || !errors.Is(err, ErrConnLost) {
		t.Errorf("Err() = %v; want ErrLost and ErrConnLost", err)
	}
}
