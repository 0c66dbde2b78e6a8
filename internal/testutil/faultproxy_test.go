package testutil

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ioTimeout bounds every blocking socket operation in these tests so that a
// broken proxy fails a test instead of hanging it.
const ioTimeout = 10 * time.Second

// quietWindow is how long a test waits to see that nothing arrives while
// the proxy is stalled.
const quietWindow = 300 * time.Millisecond

func newBackend(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func newTestProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func acceptTCP(t *testing.T, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	if err := ln.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("backend accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connect dials the proxy and accepts the forwarded connection on ln.
func connect(t *testing.T, p *Proxy, ln *net.TCPListener) (client, server *net.TCPConn) {
	t.Helper()
	client = dialTCP(t, p.Addr())
	server = acceptTCP(t, ln)
	return client, server
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return buf
}

func writeAll(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("writing %d bytes: %v", len(b), err)
	}
}

// readUntilError reads c until an error and returns what it read and the
// error (io.EOF for an orderly close).
func readUntilError(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// roundTrip checks that a message gets through the proxy both ways. Once it
// returns the proxy has registered the connection.
func roundTrip(t *testing.T, client, server net.Conn) {
	t.Helper()
	writeAll(t, client, []byte("ping"))
	if got := readN(t, server, 4); string(got) != "ping" {
		t.Fatalf("server got %q, want ping", got)
	}
	writeAll(t, server, []byte("pong"))
	if got := readN(t, client, 4); string(got) != "pong" {
		t.Fatalf("client got %q, want pong", got)
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// isResetOrEOF reports whether err is what a peer sees when its connection
// was aborted or closed: ECONNRESET, or EOF if the close arrived first.
func isResetOrEOF(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)
}

func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// dialAndRead dials addr and reads until an error, which it returns. A
// connection the proxy aborts at once may already fail in the dial.
func dialAndRead(addr string) error {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = readUntilError(c)
	return err
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProxyForwardsTransparently(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	const size = 10 << 20
	data := pattern(size, 1)

	client, server := connect(t, p, ln)
	client.SetDeadline(time.Now().Add(60 * time.Second))
	server.SetDeadline(time.Now().Add(60 * time.Second))

	var wg sync.WaitGroup
	var echoErr, writeErr error
	wg.Go(func() {
		// Echo everything, then pass the client's half-close back.
		_, echoErr = io.Copy(server, server)
		if echoErr == nil {
			echoErr = server.CloseWrite()
		}
	})
	wg.Go(func() {
		_, writeErr = client.Write(data)
		if writeErr == nil {
			writeErr = client.CloseWrite()
		}
	})
	got, err := io.ReadAll(client)
	wg.Wait()
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if echoErr != nil || writeErr != nil {
		t.Fatalf("echo: %v, client write: %v", echoErr, writeErr)
	}
	if len(got) != size {
		t.Fatalf("got %d bytes back, want %d", len(got), size)
	}
	if !bytes.Equal(got, data) {
		i := 0
		for got[i] == data[i] {
			i++
		}
		t.Fatalf("content differs first at byte %d", i)
	}
	st := p.Stats()
	if st.BytesUp != size || st.BytesDown != size || st.Accepted != 1 || st.Resets != 0 {
		t.Fatalf("stats = %+v, want %d bytes each way, 1 accepted, 0 resets", st, size)
	}
	// Both directions ended with a FIN, so the proxy drops the connection.
	Eventually(t, ioTimeout, func() bool { return p.Conns() == 0 }, "connection still open: %d", p.Conns())
}

func TestProxyReset(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	c1, s1 := connect(t, p, ln)
	c2, s2 := connect(t, p, ln)
	roundTrip(t, c1, s1)
	roundTrip(t, c2, s2)
	if n := p.Conns(); n != 2 {
		t.Fatalf("Conns() = %d, want 2", n)
	}

	p.Reset()
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() after Reset = %d, want 0", n)
	}
	for i, c := range []net.Conn{c1, c2, s1, s2} {
		got, err := readUntilError(c)
		if len(got) != 0 || !isResetOrEOF(err) {
			t.Fatalf("conn %d after Reset: read %q, %v; want ECONNRESET or EOF", i, got, err)
		}
		t.Logf("conn %d: %v", i, err)
	}
	if st := p.Stats(); st.Resets != 2 {
		t.Fatalf("Resets = %d, want 2", st.Resets)
	}

	// The proxy keeps accepting after a reset.
	c3, s3 := connect(t, p, ln)
	roundTrip(t, c3, s3)
}

// TestProxyResetIsRST checks that the client sees a real reset, not a
// normal close, when it has nothing unread.
func TestProxyResetIsRST(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	c, s := connect(t, p, ln)
	roundTrip(t, c, s)
	p.Reset()
	_, err := readUntilError(c)
	if !isReset(err) {
		t.Fatalf("client read after Reset: %v, want ECONNRESET", err)
	}
}

func TestProxyResetEvery(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	const n = 70_000 // spans several 32 KiB chunks
	data := pattern(200_000, 2)
	p.ResetEvery(n)

	const conns = 3
	for i := range conns {
		client, server := connect(t, p, ln)
		var wg sync.WaitGroup
		wg.Go(func() {
			client.SetWriteDeadline(time.Now().Add(ioTimeout))
			client.Write(data) // fails once the proxy resets
		})
		got, err := readUntilError(server)
		wg.Wait()
		if len(got) != n {
			t.Fatalf("conn %d: server received %d bytes, want exactly %d", i, len(got), n)
		}
		if !bytes.Equal(got, data[:n]) {
			t.Fatalf("conn %d: server received the wrong bytes", i)
		}
		if !isResetOrEOF(err) {
			t.Fatalf("conn %d: server read ended with %v, want ECONNRESET or EOF", i, err)
		}
		if _, err := readUntilError(client); !isResetOrEOF(err) {
			t.Fatalf("conn %d: client read ended with %v, want ECONNRESET or EOF", i, err)
		}
	}
	st := p.Stats()
	if st.Resets != conns || st.BytesUp != conns*n {
		t.Fatalf("stats = %+v, want %d resets and %d bytes up", st, conns, conns*n)
	}

	t.Run("counts from the call on open connections", func(t *testing.T) {
		p.ResetEvery(0)
		client, server := connect(t, p, ln)
		roundTrip(t, client, server) // 4 bytes before arming
		p.ResetEvery(100)
		var wg sync.WaitGroup
		wg.Go(func() {
			client.SetWriteDeadline(time.Now().Add(ioTimeout))
			client.Write(data[:1000])
		})
		got, err := readUntilError(server)
		wg.Wait()
		if len(got) != 100 || !bytes.Equal(got, data[:100]) || !isResetOrEOF(err) {
			t.Fatalf("server got %d bytes, %v; want the first 100 then a reset", len(got), err)
		}
	})

	t.Run("disarmed", func(t *testing.T) {
		p.ResetEvery(0)
		client, server := connect(t, p, ln)
		var wg sync.WaitGroup
		wg.Go(func() {
			client.SetWriteDeadline(time.Now().Add(ioTimeout))
			if _, err := client.Write(data); err == nil {
				client.CloseWrite()
			}
		})
		got, err := readUntilError(server)
		wg.Wait()
		if !bytes.Equal(got, data) || err != io.EOF {
			t.Fatalf("server got %d bytes, %v; want all %d then EOF", len(got), err, len(data))
		}
	})
}

func TestProxyResetAfter(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	data := pattern(20_000, 3)
	p.ResetAfter(5000)

	client, server := connect(t, p, ln)
	var wg sync.WaitGroup
	wg.Go(func() {
		client.SetWriteDeadline(time.Now().Add(ioTimeout))
		client.Write(data)
	})
	got, err := readUntilError(server)
	wg.Wait()
	if len(got) != 5000 || !bytes.Equal(got, data[:5000]) || !isResetOrEOF(err) {
		t.Fatalf("first conn: server got %d bytes, %v; want the first 5000 then a reset", len(got), err)
	}

	// One-shot: the next connection is not reset.
	client, server = connect(t, p, ln)
	wg.Go(func() {
		client.SetWriteDeadline(time.Now().Add(ioTimeout))
		if _, err := client.Write(data); err == nil {
			client.CloseWrite()
		}
	})
	got, err = readUntilError(server)
	wg.Wait()
	if !bytes.Equal(got, data) || err != io.EOF {
		t.Fatalf("second conn: server got %d bytes, %v; want all %d then EOF", len(got), err, len(data))
	}
	if st := p.Stats(); st.Resets != 1 {
		t.Fatalf("Resets = %d, want 1", st.Resets)
	}
}

func TestProxyStall(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	client, server := connect(t, p, ln)
	roundTrip(t, client, server)
	before := p.Stats()

	p.Stall()
	p.Stall() // no effect while stalled
	writeAll(t, client, []byte("up"))
	writeAll(t, server, []byte("down"))
	buf := make([]byte, 8)
	for name, c := range map[string]net.Conn{"server": server, "client": client} {
		c.SetReadDeadline(time.Now().Add(quietWindow))
		n, err := c.Read(buf)
		var ne net.Error
		if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%s read while stalled: %q, %v; want a timeout", name, buf[:n], err)
		}
	}
	if st := p.Stats(); st.BytesUp != before.BytesUp || st.BytesDown != before.BytesDown {
		t.Fatalf("bytes moved while stalled: before %+v, after %+v", before, st)
	}
	if n := p.Conns(); n != 1 {
		t.Fatalf("Conns() while stalled = %d, want 1 (the connection must stay open)", n)
	}

	p.Unstall()
	p.Unstall() // no effect when not stalled
	if got := readN(t, server, 2); string(got) != "up" {
		t.Fatalf("server got %q after Unstall, want up", got)
	}
	if got := readN(t, client, 4); string(got) != "down" {
		t.Fatalf("client got %q after Unstall, want down", got)
	}
	roundTrip(t, client, server)
}

func TestProxyStallThenReset(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	client, server := connect(t, p, ln)
	roundTrip(t, client, server)
	p.Stall()
	writeAll(t, client, []byte("stuck"))
	p.Reset() // must free the goroutine parked at the stall gate
	if _, err := readUntilError(server); !isResetOrEOF(err) {
		t.Fatalf("server read after Reset: %v", err)
	}
	p.Unstall()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestProxyCut(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	data := pattern(5000, 4)
	p.Cut(777)

	client, server := connect(t, p, ln)
	writeAll(t, client, data)
	got, err := readUntilError(server)
	if len(got) != 777 || !bytes.Equal(got, data[:777]) {
		t.Fatalf("server got %d bytes, want exactly the first 777", len(got))
	}
	if err != io.EOF {
		t.Fatalf("server read ended with %v, want EOF (a close, not a reset)", err)
	}
	if _, err := readUntilError(client); !isResetOrEOF(err) {
		t.Fatalf("client read ended with %v, want EOF or ECONNRESET", err)
	}
	if st := p.Stats(); st.Cuts != 1 || st.Resets != 0 || st.BytesUp != 777 {
		t.Fatalf("stats = %+v, want 1 cut, 0 resets, 777 bytes up", st)
	}

	// Once only.
	client, server = connect(t, p, ln)
	writeAll(t, client, data)
	if got := readN(t, server, len(data)); !bytes.Equal(got, data) {
		t.Fatal("second connection was altered")
	}
	roundTrip(t, client, server)
}

func TestProxyCorrupt(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	data := pattern(1000, 5)

	// A connection open before the call is not affected.
	oldClient, oldServer := connect(t, p, ln)
	roundTrip(t, oldClient, oldServer)
	p.Corrupt(100)
	writeAll(t, oldClient, data)
	if got := readN(t, oldServer, len(data)); !bytes.Equal(got, data) {
		t.Fatal("Corrupt altered a connection opened before the call")
	}

	client, server := connect(t, p, ln)
	writeAll(t, client, data)
	got := readN(t, server, len(data))
	for i := range data {
		want := data[i]
		if i == 100 {
			want ^= 0xFF
		}
		if got[i] != want {
			t.Fatalf("byte %d = %#x, want %#x", i, got[i], want)
		}
	}
	// Only the client->server direction is touched.
	writeAll(t, server, data)
	if got := readN(t, client, len(data)); !bytes.Equal(got, data) {
		t.Fatal("server->client bytes were altered")
	}

	// One-shot: the next connection is clean.
	client, server = connect(t, p, ln)
	writeAll(t, client, data)
	if got := readN(t, server, len(data)); !bytes.Equal(got, data) {
		t.Fatal("Corrupt altered a second connection")
	}
}

func TestProxyCorruptFunc(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	client, server := connect(t, p, ln)

	var mu sync.Mutex
	next := map[Direction]int64{}
	var gaps []string
	p.CorruptFunc(func(dir Direction, off int64, b []byte) {
		mu.Lock()
		defer mu.Unlock()
		if off != next[dir] {
			gaps = append(gaps, dir.String())
		}
		next[dir] = off + int64(len(b))
		if dir == ServerToClient && off <= 5 && 5 < off+int64(len(b)) {
			b[5-off] ^= 0xFF
		}
	})

	data := pattern(64<<10, 6)
	writeAll(t, client, data)
	if got := readN(t, server, len(data)); !bytes.Equal(got, data) {
		t.Fatal("client->server bytes were altered")
	}
	writeAll(t, server, data)
	got := readN(t, client, len(data))
	want := bytes.Clone(data)
	want[5] ^= 0xFF
	if !bytes.Equal(got, want) {
		t.Fatal("server->client stream does not have exactly byte 5 flipped")
	}

	p.CorruptFunc(nil)
	writeAll(t, server, data)
	if got := readN(t, client, len(data)); !bytes.Equal(got, data) {
		t.Fatal("bytes altered after the hook was removed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gaps) != 0 {
		t.Fatalf("hook offsets not contiguous in directions %v", gaps)
	}
	if next[ClientToServer] != int64(len(data)) || next[ServerToClient] != int64(len(data)) {
		t.Fatalf("hook saw %v bytes, want %d each way", next, len(data))
	}
}

func TestProxyDelay(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	client, server := connect(t, p, ln)
	roundTrip(t, client, server)

	const d = 50 * time.Millisecond
	p.Delay(d)
	start := time.Now()
	roundTrip(t, client, server)
	if el := time.Since(start); el < 2*d {
		t.Fatalf("round trip took %v with a %v delay each way, want at least %v", el, d, 2*d)
	}
	p.Delay(0)
	roundTrip(t, client, server)
}

// Jitter varies each chunk's delay within [Delay, Delay+Jitter) and keeps
// the order of the bytes.
func TestProxyJitter(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	client, server := connect(t, p, ln)
	roundTrip(t, client, server)

	const d, j = 5 * time.Millisecond, 20 * time.Millisecond
	p.Delay(d)
	p.Jitter(j)
	var lo, hi time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		roundTrip(t, client, server)
		el := time.Since(start)
		if el < 2*d {
			t.Fatalf("round trip %d took %v, want at least %v", i, el, 2*d)
		}
		if i == 0 || el < lo {
			lo = el
		}
		hi = max(hi, el)
	}
	if hi-lo < j/4 {
		t.Errorf("round trips between %v and %v: the jitter did not vary the delay", lo, hi)
	}
	// Order is kept: a stream written in many small pieces arrives whole.
	data := pattern(64<<10, 7)
	go func() {
		for b := data; len(b) > 0; b = b[min(len(b), 1000):] {
			client.Write(b[:min(len(b), 1000)])
		}
	}()
	if got := readN(t, server, len(data)); !bytes.Equal(got, data) {
		t.Fatal("the stream was changed or reordered under jitter")
	}
	if p.Stats().Delayed == 0 {
		t.Error("Stats().Delayed = 0")
	}
	p.Delay(0)
	p.Jitter(0)
	roundTrip(t, client, server)
}

// Throttle holds a direction to its rate.
func TestProxyThrottle(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	client, server := connect(t, p, ln)
	roundTrip(t, client, server)

	const rate = 256 << 10
	p.Throttle(rate)
	data := pattern(512<<10, 9)
	start := time.Now()
	go client.Write(data)
	if got := readN(t, server, len(data)); !bytes.Equal(got, data) {
		t.Fatal("the stream was changed under the throttle")
	}
	el := time.Since(start)
	// 512 KiB at 256 KiB/s: 2 s, less the first chunk's burst (32 KiB).
	if min := time.Duration(float64(len(data)-proxyBufSize) / rate * float64(time.Second)); el < min {
		t.Fatalf("512 KiB through a 256 KiB/s throttle in %v, want at least %v", el, min)
	}
	if p.Stats().Throttled == 0 {
		t.Error("Stats().Throttled = 0")
	}
	p.Throttle(0)
	roundTrip(t, client, server)
}

func TestProxyRefuse(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	p.Refuse(true)
	if err := dialAndRead(p.Addr()); !isResetOrEOF(err) {
		t.Fatalf("refused connection: %v, want ECONNRESET or EOF", err)
	}
	if st := p.Stats(); st.Refused != 1 || st.Accepted != 1 {
		t.Fatalf("stats = %+v, want 1 accepted and 1 refused", st)
	}

	p.Refuse(false)
	// The backend's first connection must be this one: the refused one was
	// never forwarded.
	client, server := connect(t, p, ln)
	roundTrip(t, client, server)
	if st := p.Stats(); st.Refused != 1 || st.Accepted != 2 {
		t.Fatalf("stats = %+v, want 2 accepted and 1 refused", st)
	}
}

func TestProxySetTarget(t *testing.T) {
	ln1, ln2 := newBackend(t), newBackend(t)
	p := newTestProxy(t, ln1.Addr().String())
	c1, s1 := connect(t, p, ln1)
	roundTrip(t, c1, s1)

	p.SetTarget(ln2.Addr().String())
	c2, s2 := connect(t, p, ln2)
	roundTrip(t, c2, s2)
	roundTrip(t, c1, s1) // the open connection keeps its target
}

func TestProxyTargetDown(t *testing.T) {
	p := newTestProxy(t, freePort(t))
	if err := dialAndRead(p.Addr()); !isResetOrEOF(err) {
		t.Fatalf("connection with the target down: %v, want ECONNRESET or EOF", err)
	}
	if st := p.Stats(); st.DialFailures != 1 {
		t.Fatalf("DialFailures = %d, want 1", st.DialFailures)
	}
}

func TestProxyPeerResetPropagates(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	client, server := connect(t, p, ln)
	roundTrip(t, client, server)
	client.SetLinger(0)
	client.Close()
	if _, err := readUntilError(server); !isResetOrEOF(err) {
		t.Fatalf("server read after the client reset: %v", err)
	}
	Eventually(t, ioTimeout, func() bool { return p.Conns() == 0 }, "connection still registered")
	if st := p.Stats(); st.Resets != 0 {
		t.Fatalf("Resets = %d, want 0: only injected resets count", st.Resets)
	}
}

// TestProxyCloseEndsGoroutines closes the proxy with connections in every
// state a goroutine can block in and checks none of its goroutines is left.
func TestProxyCloseEndsGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ln := newBackend(t)
	p, err := NewProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	idleC, idleS := connect(t, p, ln)
	roundTrip(t, idleC, idleS)

	// Mid-transfer: the backend never reads, so the proxy soon blocks
	// writing to it.
	fullC, _ := connect(t, p, ln)
	var writer sync.WaitGroup
	writer.Go(func() {
		fullC.SetWriteDeadline(time.Now().Add(ioTimeout))
		fullC.Write(make([]byte, 64<<20))
	})
	Eventually(t, ioTimeout, func() bool { return p.Stats().BytesUp > 0 }, "no bytes forwarded")

	// Parked in a long delay.
	delayC, delayS := connect(t, p, ln)
	roundTrip(t, delayC, delayS)
	p.Delay(time.Hour)
	writeAll(t, delayC, []byte("late"))

	// Parked at the stall gate.
	p.Delay(0)
	stallC, stallS := connect(t, p, ln)
	roundTrip(t, stallC, stallS)
	p.Stall()
	writeAll(t, stallC, []byte("stuck"))

	if n := p.Conns(); n != 4 {
		t.Fatalf("Conns() = %d, want 4", n)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() after Close = %d, want 0", n)
	}
	for i, c := range []net.Conn{idleC, delayC, stallC} {
		if _, err := readUntilError(c); !isResetOrEOF(err) {
			t.Fatalf("client %d read after Close: %v", i, err)
		}
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), ioTimeout); err == nil {
		t.Fatal("dial succeeded after Close")
	}
	fullC.Close()
	writer.Wait()
	goleak.VerifyNone(t, ignore)
}

// TestProxyFaultsUnderLoad forces a reset every resetEvery bytes across many
// connections while another goroutine flips the other faults on and off, and
// checks every connection carried exactly the expected bytes.
func TestProxyFaultsUnderLoad(t *testing.T) {
	ln := newBackend(t)
	p := newTestProxy(t, ln.Addr().String())
	const (
		conns      = 20
		resetEvery = 48 << 10
	)
	data := pattern(4*resetEvery, 7)
	p.ResetEvery(resetEvery)

	stop := make(chan struct{})
	var togglers sync.WaitGroup
	togglers.Go(func() {
		for {
			select {
			case <-stop:
				p.Unstall()
				return
			default:
			}
			p.Stall()
			p.Delay(time.Millisecond)
			p.CorruptFunc(func(Direction, int64, []byte) {})
			_ = p.Stats()
			_ = p.Conns()
			p.Unstall()
			p.Delay(0)
			p.CorruptFunc(nil)
			p.SetTarget(ln.Addr().String())
			time.Sleep(time.Millisecond) // pacing, not synchronization
		}
	})
	defer func() {
		close(stop)
		togglers.Wait()
	}()

	for i := range conns {
		client, server := connect(t, p, ln)
		var wg sync.WaitGroup
		wg.Go(func() {
			client.SetWriteDeadline(time.Now().Add(ioTimeout))
			for off := 0; off < len(data); off += 4096 {
				if _, err := client.Write(data[off : off+4096]); err != nil {
					return
				}
			}
		})
		got, err := readUntilError(server)
		wg.Wait()
		client.Close()
		if len(got) != resetEvery || !bytes.Equal(got, data[:resetEvery]) || !isResetOrEOF(err) {
			t.Fatalf("conn %d: server got %d bytes then %v; want exactly the first %d then a reset",
				i, len(got), err, resetEvery)
		}
	}
	if st := p.Stats(); st.Resets != conns {
		t.Fatalf("Resets = %d, want %d", st.Resets, conns)
	}
}

func TestDirectionString(t *testing.T) {
	if ClientToServer.String() != "client->server" || ServerToClient.String() != "server->client" {
		t.Fatalf("got %q and %q", ClientToServer, ServerToClient)
	}
}
