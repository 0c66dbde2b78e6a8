package rsb

import (
	"errors"
	"net"
	"testing"
)

func startServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Listen(testCtx(t), "127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawClient connects to s like an RSB client and checks the handshake.
func rawClient(t testing.TB, s *Server) net.Conn {
	t.Helper()
	c := rawDial(t, s.Addr().String())
	expectBytes(t, c, []byte{0, 0, 0, 0})
	return c
}

// TestScriptedClients plays RSB clients byte by byte against Server: the
// handshake, re-broadcast of the exact bytes to the other clients and not
// to the sender, Publish to all, orderly shutdown both ways.
func TestScriptedClients(t *testing.T) {
	ctx := testCtx(t)
	s := startServer(t)
	a, b := rawClient(t, s), rawClient(t, s)

	// a sends; the server's participant gets it; b gets the same bytes.
	if _, err := a.Write(goldenFrame(t, 0)); err != nil {
		t.Fatal(err)
	}
	n, err := s.Receive(ctx)
	if err != nil || !notificationsEqual(n, &goldenNotifications[0].n) {
		t.Fatalf("Receive = %+v, %v", n, err)
	}
	// b's registration is certain once b's own frame reached the server.
	if _, err := b.Write(goldenFrame(t, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	// a gets b's frame; b may or may not have been registered when a's
	// frame was re-broadcast, so it is not checked for it.
	expectBytes(t, a, goldenFrame(t, 1))

	// Publish reaches both; nothing of a's own came back to a before.
	if err := s.Publish(ctx, &goldenNotifications[0].n); err != nil {
		t.Fatal(err)
	}
	expectBytes(t, a, goldenFrame(t, 0))

	// a leaves in order: shut down its write side, the server answers
	// with its EOF.
	a.(*net.TCPConn).CloseWrite()
	expectEOF(t, a)

	// Close: b gets the server's EOF; b answers with its own.
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	// b may first get a's frame (if it was registered in time) and the
	// published one; read until EOF.
	drainToEOF(t, b)
	b.(*net.TCPConn).CloseWrite()
	<-closed
	if _, err := s.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close = %v; want ErrClosed", err)
	}
	if err := s.Publish(ctx, &goldenNotifications[0].n); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v; want ErrClosed", err)
	}
}

func drainToEOF(t testing.TB, c net.Conn) {
	t.Helper()
	for {
		if _, err := ReadFrame(c, 0); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("reading to EOF: %v", err)
			}
			return
		}
	}
}

// TestServerBadClient: a client that sends garbage is disconnected; the
// others carry on.
func TestServerBadClient(t *testing.T) {
	ctx := testCtx(t)
	s := startServer(t, WithMaxFrame(1<<10))
	good := rawClient(t, s)
	for _, garbage := range [][]byte{
		{0x00, 0x08, 0x00, 0x00}, // 2 KiB > 1 KiB
		{3, 0, 0, 0, 0x32, 0x05, 0x2f},
		{2, 0, 0, 0, 0xff, 0xff},
	} {
		bad := rawClient(t, s)
		bad.Write(garbage)
		expectEOF(t, bad)
	}
	if _, err := good.Write(goldenFrame(t, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Receive(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestServerSlowClient: a client whose queue is full is disconnected
// with ErrSlowPeer instead of stalling the bus.
func TestServerSlowClient(t *testing.T) {
	ctx := testCtx(t)
	s := startServer(t, WithQueue(1))
	slow := rawClient(t, s)
	slow.Write(goldenFrame(t, 0))
	if _, err := s.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	big := goldenNotifications[0].n
	big.Data = make([]byte, 1<<20)
	// slow never reads: its socket buffers fill, then its queue.
	for s.NumClients() > 0 {
		if err := s.Publish(ctx, &big); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClientServer runs Clients against a Server.
func TestClientServer(t *testing.T) {
	ctx := testCtx(t)
	s := startServer(t)
	addr := s.Addr().String()
	a, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Register both for sure: each publishes once and the server sees it.
	for _, c := range []*Client{a, b} {
		if err := c.Publish(ctx, &goldenNotifications[0].n); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// a's first may have reached b; b's first reached a.
	if _, err := a.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	n := goldenNotifications[1].n
	if err := a.Publish(ctx, &n); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := b.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if notificationsEqual(got, &n) {
			break
		}
	}
}

func TestOpenAuto(t *testing.T) {
	ctx := testCtx(t)
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close() // free the port for the first Open
	first, err := Open(ctx, addr, Auto)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, ok := first.(*Server); !ok {
		t.Fatalf("first Open = %T; want *Server", first)
	}
	second, err := Open(ctx, addr, Auto)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, ok := second.(*Client); !ok {
		t.Fatalf("second Open = %T; want *Client", second)
	}
	if _, err := Open(ctx, addr, Mode(9)); err == nil {
		t.Error("Open with a bad mode succeeded")
	}
}
