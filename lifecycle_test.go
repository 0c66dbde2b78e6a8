package slc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
)

// Disconnect waits for outstanding acknowledgements, then says goodbye: the
// remote sees a final disconnect, nothing is lost.
func TestDisconnectFlushes(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	a, b, aID := connectPair(t, ctx, nil, nil)
	evA, evB := watch(t, a), watch(t, b)
	for i := 1; i <= 500; i++ {
		if _, err := b.Send(ctx, Seq{N: i}, aID); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Disconnect(ctx, aID); err != nil {
		t.Fatal(err)
	}
	if n := a.Pending(); n != 500 {
		t.Fatalf("after Disconnect returned, %d of 500 messages are in the mailbox", n)
	}
	d := evB.wait(ctx, t, "PeerDisconnected", isType[*actors.PeerDisconnected]).(*actors.PeerDisconnected)
	if !d.Final || len(d.Undelivered) != 0 {
		t.Fatalf("local PeerDisconnected = %+v; want final with nothing undelivered", d)
	}
	r := evA.wait(ctx, t, "PeerDisconnected", isType[*actors.PeerDisconnected]).(*actors.PeerDisconnected)
	if !r.Final || r.Peer != "b" {
		t.Fatalf("remote PeerDisconnected = %+v; want final from b", r)
	}
	if len(b.Peers()) != 0 || len(a.Peers()) != 0 {
		t.Fatalf("peers after disconnect: %v / %v", b.Peers(), a.Peers())
	}
	if _, err := b.Send(ctx, Seq{N: 501}, aID); !errors.Is(err, slc.ErrDisconnected) {
		t.Fatalf("Send after Disconnect = %v; want ErrDisconnected", err)
	}
	// The messages are still there to be received.
	for i := 1; i <= 500; i++ {
		m, err := a.Receive(ctx, "b")
		if err != nil || m.Body.(Seq).N != i {
			t.Fatalf("message %d: %+v, %v", i, m.Body, err)
		}
	}
}

// Disconnect gives up when its context ends, drops what is unacknowledged
// and reports it.
func TestDisconnectDeadlineDrops(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	a := newComm(t, "a", slc.WithHeartbeat(100*time.Millisecond, 30*time.Second))
	b := newComm(t, "b")
	proxy, err := testutil.NewProxy(listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ev := watch(t, b)
	aID, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	proxy.Stall()
	var ids []slc.MsgID
	for i := 1; i <= 3; i++ {
		id, err := b.Send(ctx, Seq{N: i}, aID)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = b.Disconnect(short, aID)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Disconnect with a stalled peer = %v; want the deadline", err)
	}
	d := ev.wait(ctx, t, "PeerDisconnected", isType[*actors.PeerDisconnected]).(*actors.PeerDisconnected)
	if fmt.Sprint(d.Undelivered) != fmt.Sprint(ids) {
		t.Fatalf("undelivered %v; want %v", d.Undelivered, ids)
	}
	for _, id := range ids {
		if b.IsAcknowledged(id) {
			t.Fatalf("message %d reported acknowledged after it was dropped", id)
		}
	}
}

// Forward re-sends the messages waiting from one peer to another, in order
// and with their types.
func TestForward(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	relay := newComm(t, "relay")
	src := newComm(t, "src")
	dst := newComm(t, "dst")
	addr := listen(t, relay)
	relayID, err := src.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	var last slc.MsgID
	for i := 1; i <= 100; i++ {
		if last, err = src.Send(ctx, Seq{N: i, Payload: []byte{byte(i)}}, relayID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.SendRaw(ctx, []byte("raw tail"), relayID); err != nil {
		t.Fatal(err)
	}
	if err := src.WaitAcknowledged(ctx, last+1, relayID); err != nil {
		t.Fatal(err)
	}
	n, err := relay.Forward(ctx, "src", "dst")
	if err != nil || n != 101 {
		t.Fatalf("Forward = %d, %v; want 101", n, err)
	}
	if relay.Pending("src") != 0 {
		t.Fatalf("%d messages left in the relay", relay.Pending("src"))
	}
	for i := 1; i <= 100; i++ {
		m, err := dst.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, ok := m.Body.(Seq)
		if !ok || s.N != i || s.Payload[0] != byte(i) || m.From != "relay" || m.Type != "test.Seq" {
			t.Fatalf("forwarded message %d: %+v", i, m)
		}
	}
	m, err := dst.Receive(ctx)
	if err != nil || !bytes.Equal(m.Raw, []byte("raw tail")) {
		t.Fatalf("forwarded raw message: %+v, %v", m, err)
	}
	if _, err := relay.Forward(ctx, "src", "nobody"); !errors.Is(err, slc.ErrUnknownPeer) {
		t.Fatalf("Forward to an unknown peer = %v", err)
	}
}

// Close is idempotent, says goodbye, and makes later calls fail cleanly.
func TestCloseIdempotent(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	a, b, aID := connectPair(t, ctx, nil, nil)
	evA := watch(t, a)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	d := evA.wait(ctx, t, "PeerDisconnected", isType[*actors.PeerDisconnected]).(*actors.PeerDisconnected)
	if !d.Final {
		t.Fatalf("remote saw %+v; want a final goodbye", d)
	}
	if _, err := b.Send(ctx, Seq{N: 1}, aID); !errors.Is(err, slc.ErrClosed) {
		t.Fatalf("Send after Close = %v", err)
	}
	if _, err := b.Receive(ctx); !errors.Is(err, slc.ErrClosed) {
		t.Fatalf("Receive after Close = %v", err)
	}
	if _, err := b.Connect(ctx, "127.0.0.1:1"); !errors.Is(err, slc.ErrClosed) {
		t.Fatalf("Connect after Close = %v", err)
	}
	if _, err := b.Listen(ctx, "127.0.0.1:0"); !errors.Is(err, slc.ErrClosed) {
		t.Fatalf("Listen after Close = %v", err)
	}
}

// Listen and Connect take IPv6 and Unix socket addresses.
func TestAddresses(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	sock := filepath.Join(t.TempDir(), "node.sock")
	addrs := []string{"unix:" + sock}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		addrs = append(addrs, "[::1]:0")
	} else {
		t.Logf("no IPv6 loopback here: %v", err)
	}
	for _, addr := range addrs {
		a := newComm(t, "a-"+addr[:4])
		b := newComm(t, "b-"+addr[:4])
		bound, err := a.Listen(ctx, addr)
		if err != nil {
			t.Fatalf("Listen(%s): %v", addr, err)
		}
		target := bound.String()
		if bound.Network() == "unix" {
			target = "unix:" + target
		}
		id, err := b.Connect(ctx, target)
		if err != nil {
			t.Fatalf("Connect(%s): %v", target, err)
		}
		if _, err := b.Send(ctx, Seq{N: 42}, id); err != nil {
			t.Fatal(err)
		}
		m, err := a.Receive(ctx)
		if err != nil || m.Body.(Seq).N != 42 {
			t.Fatalf("over %s: %+v, %v", addr, m, err)
		}
	}
	// A stale socket file left by a dead process is replaced; a live one
	// is not.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("no stale socket file to test with: %v", err)
	}
	a := newComm(t, "stale")
	if _, err := a.Listen(ctx, "unix:"+stale); err != nil {
		t.Fatalf("listen on a stale socket file: %v", err)
	}
	b := newComm(t, "second")
	if _, err := b.Listen(ctx, "unix:"+stale); err == nil {
		t.Fatal("second listener took over a live socket")
	}
	if _, err := b.Connect(ctx, "nonsense"); err == nil {
		t.Fatal("Connect accepted an address without a port")
	}
}

// A remote that restarts (a new instance with the same name) gets the
// messages it had not acknowledged again: at-least-once across restarts.
func TestRemoteRestartResends(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	a1 := newComm(t, "a", slc.WithHeartbeat(100*time.Millisecond, 30*time.Second))
	addr := listen(t, a1)
	b := newComm(t, "b", slc.WithRetries(slc.RetryForever))
	ev := watch(t, b)
	proxy, err := testutil.NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	aID, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	proxy.Stall()
	id, err := b.Send(ctx, Seq{N: 1}, aID)
	if err != nil {
		t.Fatal(err)
	}
	// a "crashes" (its connection is cut without a goodbye) and a new
	// instance of a comes up behind the proxy.
	a2 := newComm(t, "a")
	proxy.SetTarget(listen(t, a2))
	proxy.Reset()
	proxy.Unstall()
	c := ev.wait(ctx, t, "restarted PeerConnected", func(e any) bool {
		pc, ok := e.(*actors.PeerConnected)
		return ok && pc.Restarted
	}).(*actors.PeerConnected)
	if !c.Resumed {
		t.Fatalf("%+v: the session should resume", c)
	}
	m, err := a2.Receive(ctx)
	if err != nil || m.ID != id || m.Body.(Seq).N != 1 {
		t.Fatalf("new instance got %+v, %v", m, err)
	}
	if err := b.WaitAcknowledged(ctx, id, aID); err != nil {
		t.Fatal(err)
	}
}

// Two nodes that connect to each other at the same time end up with one
// session each way, and messages flow.
func TestSimultaneousConnect(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	for round := 0; round < 5; round++ {
		a := newComm(t, fmt.Sprintf("left-%d", round))
		b := newComm(t, fmt.Sprintf("right-%d", round))
		aAddr, bAddr := listen(t, a), listen(t, b)
		errs := make(chan error, 2)
		go func() { _, err := a.Connect(ctx, bAddr); errs <- err }()
		go func() { _, err := b.Connect(ctx, aAddr); errs <- err }()
		for i := 0; i < 2; i++ {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if len(a.Peers()) != 1 || len(b.Peers()) != 1 {
			t.Fatalf("round %d: peers %v / %v", round, a.Peers(), b.Peers())
		}
		for i := 1; i <= 50; i++ {
			if _, err := a.Send(ctx, Seq{N: i}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Send(ctx, Seq{N: i}); err != nil {
				t.Fatal(err)
			}
		}
		for i := 1; i <= 50; i++ {
			ma, err := a.Receive(ctx)
			if err != nil || ma.Body.(Seq).N != i {
				t.Fatalf("round %d: a got %+v, %v", round, ma.Body, err)
			}
			mb, err := b.Receive(ctx)
			if err != nil || mb.Body.(Seq).N != i {
				t.Fatalf("round %d: b got %+v, %v", round, mb.Body, err)
			}
		}
		a.Close()
		b.Close()
	}
}

// Connecting twice to the same node returns the same peer.
func TestConnectTwice(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	a := newComm(t, "a")
	b := newComm(t, "b")
	addr := listen(t, a)
	id1, err := b.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := b.Connect(ctx, addr)
	if err != nil || id2 != id1 {
		t.Fatalf("second Connect = %q, %v; want %q", id2, err, id1)
	}
	// The same node under another address form.
	_, port, _ := net.SplitHostPort(addr)
	id3, err := b.Connect(ctx, "localhost:"+port)
	if err != nil || id3 != id1 {
		t.Fatalf("Connect via localhost = %q, %v; want %q", id3, err, id1)
	}
	if len(b.Peers()) != 1 || len(a.Peers()) != 1 {
		t.Fatalf("peers %v / %v", b.Peers(), a.Peers())
	}
	if _, err := b.Send(ctx, Seq{N: 9}, id1); err != nil {
		t.Fatal(err)
	}
	if m, err := a.Receive(ctx); err != nil || m.Body.(Seq).N != 9 {
		t.Fatalf("%+v, %v", m, err)
	}
}

// A message the application took just before closing is acknowledged by the
// goodbye: the sender's WaitAcknowledged succeeds. The last ACK is written
// only after the reader has finished placing messages in the mailbox.
func TestReceiveThenCloseAcknowledges(t *testing.T) {
	for i := 0; i < 50; i++ {
		ctx := testCtx(t, 20*time.Second)
		a, b, aID := connectPair(t, ctx, nil, nil)
		id, err := b.Send(ctx, Seq{N: i}, aID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		a.Close()
		if err := b.WaitAcknowledged(ctx, id, aID); err != nil {
			t.Fatalf("round %d: a received message %d and closed, but the sender saw %v", i, id, err)
		}
		b.Close()
	}
}

// Disconnecting from a peer that already said goodbye, with everything
// acknowledged, succeeds.
func TestDisconnectAfterRemoteGoodbye(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	a, b, aID := connectPair(t, ctx, nil, nil)
	ev := watch(t, b)
	id, _ := b.Send(ctx, Seq{N: 1}, aID)
	if err := b.WaitAcknowledged(ctx, id, aID); err != nil {
		t.Fatal(err)
	}
	a.Close()
	ev.wait(ctx, t, "final PeerDisconnected", func(e any) bool {
		d, ok := e.(*actors.PeerDisconnected)
		return ok && d.Final
	})
	if err := b.Disconnect(ctx, aID); err != nil {
		t.Fatalf("Disconnect after the peer's goodbye = %v; want nil (nothing was lost)", err)
	}
}
