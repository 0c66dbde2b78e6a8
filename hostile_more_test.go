package slc_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
)

// A message whose body nests 100,000 msgpack arrays is refused by the
// decoder with an error on that message; it does not crash the process,
// does not close the connection, and the next message is delivered.
func TestHostileNestedMsgpack(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	a := newComm(t, "nest-srv")
	nested := bytes.Repeat([]byte{0x91}, 100000) // fixarray of 1, 100,000 deep
	nested = append(nested, 0xc0)
	// A hand-driven peer sends the nested bytes as a msgpack body.
	c, err := net.Dial("tcp", listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(append(hostilePreamble(1, 1, 0), wire.AppendHello(nil, 1, hostileHello("nester"))...))
	var pre [wire.PreambleLen]byte
	if _, err := io.ReadFull(c, pre[:]); err != nil {
		t.Fatal(err)
	}
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
	fr.MaxPayload = 16 << 20
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
	t.Logf("nested body refused: %v", m.Err)
	m, err = a.Receive(ctx, "nester")
	if err != nil || m.Body != "ok" {
		t.Fatalf("the next message: %+v, %v", m.Body, err)
	}
}

// 10,000 connections that connect and say nothing: the listener keeps at
// most MaxHandshakes of them, closes the rest at once as busy, cuts the
// others at the handshake timeout, serves a legitimate peer throughout,
// and its goroutines come back to their level.
func TestHostileHalfOpenFlood(t *testing.T) {
	const flood = 10000
	ctx := testCtx(t, 2*time.Minute)
	srv := newComm(t, "flood-srv", slc.WithTimeout(time.Second), slc.WithMaxHandshakes(256))
	addr := listen(t, srv)
	legit := newComm(t, "flood-legit")
	id, err := legit.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	base := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	refused := 0
	for i := 0; i < flood; i++ {
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
	peak := runtime.NumGoroutine()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	// Every flood connection is closed by the server: at once (busy) or
	// at the handshake timeout.
	buf := make([]byte, 64)
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return runtime.NumGoroutine() <= base+10 },
		"goroutines %d after the flood, %d before", runtime.NumGoroutine(), base)
	t.Logf("%d connections (%d refused by the kernel backlog); goroutines %d -> peak %d -> %d; heap %d KiB -> %d KiB during",
		flood, refused, base, peak, runtime.NumGoroutine(), before.HeapAlloc>>10, during.HeapAlloc>>10)
	if peak > base+256+300 {
		t.Fatalf("goroutines peaked at %d (base %d): handshakes are not bounded", peak, base)
	}
	if during.HeapAlloc > before.HeapAlloc+64<<20 {
		t.Fatalf("heap grew by %d MiB during the flood", (during.HeapAlloc-before.HeapAlloc)>>20)
	}
}
