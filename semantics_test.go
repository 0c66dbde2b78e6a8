package slc_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

// connectPair returns a listener node a and a node b connected to it
// (directly, or through proxy when one is given).
func connectPair(t *testing.T, ctx context.Context, aOpts, bOpts []slc.Option) (a, b *slc.Communicator, aID slc.PeerID) {
	t.Helper()
	a = newComm(t, "a", aOpts...)
	b = newComm(t, "b", bOpts...)
	id, err := b.Connect(ctx, listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	return a, b, id
}

// A message is acknowledged once it is in the receiver's mailbox, before
// the application calls Receive.
func TestAckWhenInMailbox(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	a, b, aID := connectPair(t, ctx, nil, nil)
	id, err := b.Send(ctx, Seq{N: 1}, aID)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitAcknowledged(ctx, id, aID); err != nil {
		t.Fatal(err)
	}
	if n := a.Pending(); n != 1 {
		t.Fatalf("acknowledged, but %d messages wait in the mailbox; want 1 (not yet received)", n)
	}
	if !b.IsAcknowledged(id, aID) || !b.IsAcknowledged(id) {
		t.Fatal("IsAcknowledged false after WaitAcknowledged")
	}
	if b.IsAcknowledged(id + 1) {
		t.Fatal("IsAcknowledged true for a message never sent")
	}
	if _, err := a.Receive(ctx); err != nil {
		t.Fatal(err)
	}
}

// IsAcknowledged and WaitAcknowledged need every target: one that holds
// the message back keeps the answer false.
func TestAckNeedsEveryTarget(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	hub := newComm(t, "hub")
	fastPeer := newComm(t, "fast")
	slowPeer := newComm(t, "slow", slc.WithHeartbeat(100*time.Millisecond, 30*time.Second))
	fastID, err := hub.Connect(ctx, listen(t, fastPeer))
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := testutil.NewProxy(listen(t, slowPeer))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	slowID, err := hub.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	proxy.Stall()
	id, err := hub.Send(ctx, Seq{N: 7}) // to every peer
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.WaitAcknowledged(ctx, id, fastID); err != nil {
		t.Fatal(err)
	}
	if !hub.IsAcknowledged(id, fastID) {
		t.Fatal("fast peer's ack not reported")
	}
	if hub.IsAcknowledged(id, slowID) || hub.IsAcknowledged(id, fastID, slowID) || hub.IsAcknowledged(id) {
		t.Fatal("IsAcknowledged true while the stalled peer has not acknowledged")
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = hub.WaitAcknowledged(short, id)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitAcknowledged(all) = %v while one peer is stalled; want deadline", err)
	}
	proxy.Unstall()
	if err := hub.WaitAcknowledged(ctx, id); err != nil {
		t.Fatal(err)
	}
	if !hub.IsAcknowledged(id) || !hub.IsAcknowledged(id, fastID, slowID) {
		t.Fatal("not acknowledged by all after the stall")
	}
}

// BufferCap bounds unacknowledged bytes: past it Send blocks until acks
// free room, or its context ends.
func TestBufferCapBlocksSend(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	a := newComm(t, "a", slc.WithHeartbeat(100*time.Millisecond, 30*time.Second))
	b := newComm(t, "b", slc.WithBufferCap(64<<10))
	proxy, err := testutil.NewProxy(listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	aID, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	proxy.Stall()
	payload := make([]byte, 1000)
	sent := 0
	var blockErr error
	for i := 1; i <= 1000; i++ {
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := b.Send(sctx, Seq{N: i, Payload: payload}, aID)
		cancel()
		if err != nil {
			blockErr = err
			break
		}
		sent++
	}
	if !errors.Is(blockErr, context.DeadlineExceeded) {
		t.Fatalf("Send never blocked (sent %d, err %v)", sent, blockErr)
	}
	st, _ := b.PeerStats(aID)
	if sent < 60 || st.Unacked > 64<<10+2000 {
		t.Fatalf("blocked after %d messages with %d bytes unacknowledged; cap is 64 KiB", sent, st.Unacked)
	}
	t.Logf("Send blocked after %d messages, %d bytes unacknowledged", sent, st.Unacked)
	proxy.Unstall()
	// Room frees as acks arrive: the next send goes through, and every
	// message sent before arrives once, in order.
	if _, err := b.Send(ctx, Seq{N: sent + 1, Payload: payload}, aID); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for len(got) < sent+1 {
		m, err := a.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, uint64(m.Body.(Seq).N))
	}
	if tally := testutil.CheckSequence(sent+1, got); !tally.Exact() {
		t.Fatalf("after the stall: %s", tally)
	}
}

// A full mailbox stops reading the socket instead of dropping: the sender
// fills its BufferCap and blocks, and nothing is lost.
func TestFullMailboxPushesBack(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	const total = 3000
	a, b, aID := connectPair(t, ctx,
		[]slc.Option{slc.WithInboxCap(1<<20, 100)},
		[]slc.Option{slc.WithBufferCap(32 << 10)})
	payload := make([]byte, 100)
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= total; i++ {
			if _, err := b.Send(ctx, Seq{N: i, Payload: payload}, aID); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// The application does not receive: the sender must end up blocked
	// with its buffer full while the mailbox holds its cap.
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, _ := b.PeerStats(aID)
		return a.Pending() == 100 && st.Unacked >= 32<<10
	}, "mailbox never filled (pending %d)", a.Pending())
	select {
	case err := <-done:
		t.Fatalf("all sends returned while the receiver's mailbox was full: %v", err)
	default:
	}
	var got []uint64
	for len(got) < total {
		m, err := a.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, uint64(m.Body.(Seq).N))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if tally := testutil.CheckSequence(total, got); !tally.Exact() {
		t.Fatalf("with backpressure: %s", tally)
	}
}

// Timeout bounds each connect attempt; Retries bounds the attempts.
func TestConnectTimeoutAndRetries(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	// A server that accepts and says nothing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	b := newComm(t, "b", slc.WithTimeout(200*time.Millisecond), slc.WithRetries(2))
	ev := watch(t, b)
	start := time.Now()
	_, err = b.Connect(ctx, ln.Addr().String())
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "handshake timeout") {
		t.Fatalf("Connect to a silent server = %v; want a handshake timeout", err)
	}
	if !errors.Is(err, slc.ErrPeerLost) {
		t.Fatalf("Connect error %v does not wrap ErrPeerLost after the retries were spent", err)
	}
	// 1 attempt + 2 retries, each bounded by 200ms, plus backoff.
	attempts := ev.count(isType[*actors.PeerReconnecting])
	if attempts != 2 {
		t.Fatalf("%d PeerReconnecting events, want 2 (retries)", attempts)
	}
	if elapsed > 3*time.Second {
		t.Fatalf("3 attempts of 200ms took %v: Timeout does not bound each attempt", elapsed)
	}
	t.Logf("gave up after %v: %v", elapsed, err)
}

// When the retries are spent, PeerLost is published and Send to that peer
// fails with an error naming it.
func TestRetriesSpentPeerLost(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	a := newComm(t, "a")
	b := newComm(t, "b", slc.WithRetries(3))
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
	// The remote vanishes without a goodbye (as when its host dies): the
	// connection resets and every reconnect is refused.
	proxy.Refuse(true)
	proxy.Reset()
	ev.wait(ctx, t, "PeerDisconnected", isType[*actors.PeerDisconnected])
	id, err := b.Send(ctx, Seq{N: 1}, aID)
	if err != nil {
		t.Fatalf("Send while reconnecting = %v; want it queued", err)
	}
	lost := ev.wait(ctx, t, "PeerLost", isType[*actors.PeerLost]).(*actors.PeerLost)
	if lost.Peer != aID || len(lost.Undelivered) != 1 || lost.Undelivered[0] != id {
		t.Fatalf("PeerLost = %+v; want peer %s with message %d undelivered", lost, aID, id)
	}
	if n := ev.count(isType[*actors.PeerReconnecting]); n != 3 {
		t.Fatalf("%d reconnect attempts, want 3", n)
	}
	_, err = b.Send(ctx, Seq{N: 2}, aID)
	if !errors.Is(err, slc.ErrPeerLost) || !strings.Contains(err.Error(), string(aID)) {
		t.Fatalf("Send to a lost peer = %v; want ErrPeerLost naming %s", err, aID)
	}
	if err := b.WaitAcknowledged(ctx, id, aID); !errors.Is(err, slc.ErrPeerLost) {
		t.Fatalf("WaitAcknowledged of an undelivered message = %v; want ErrPeerLost", err)
	}
	if b.IsAcknowledged(id) {
		t.Fatal("IsAcknowledged true for a message lost with its peer")
	}
	if len(b.Peers()) != 0 {
		t.Fatalf("Peers() = %v after the peer was lost", b.Peers())
	}
}

// Heartbeats detect a stalled (half-open) connection within the configured
// timeout, and the session reconnects.
func TestHeartbeatDetectsStall(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	const timeout = 400 * time.Millisecond
	a := newComm(t, "a", slc.WithHeartbeat(50*time.Millisecond, timeout))
	b := newComm(t, "b", slc.WithHeartbeat(50*time.Millisecond, timeout), slc.WithRetries(slc.RetryForever))
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
	stalled := time.Now()
	proxy.Stall()
	d := ev.wait(ctx, t, "PeerDisconnected", isType[*actors.PeerDisconnected]).(*actors.PeerDisconnected)
	detected := time.Since(stalled)
	var hb *peer.HeartbeatError
	if !errors.As(d.Err, &hb) {
		t.Fatalf("disconnect reason %v; want a heartbeat timeout", d.Err)
	}
	// Detection takes at least the timeout and not much more.
	if detected < timeout || detected > timeout+time.Second {
		t.Fatalf("stall detected after %v; timeout is %v", detected, timeout)
	}
	t.Logf("stall detected after %v (timeout %v)", detected, timeout)
	proxy.Unstall()
	ev.waitCount(ctx, t, "PeerConnected", 2, isType[*actors.PeerConnected])
	if _, err := b.Send(ctx, Seq{N: 1}, aID); err != nil {
		t.Fatal(err)
	}
	if m, err := a.Receive(ctx); err != nil || m.Body.(Seq).N != 1 {
		t.Fatalf("after reconnect: %+v, %v", m, err)
	}
}

// A connection refused in its handshake is reported on both sides, with
// the reason, and a permanent refusal is not retried.
func TestHandshakeRejectedBothSides(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	a := newComm(t, "twin")
	b := newComm(t, "twin")
	evA, evB := watch(t, a), watch(t, b)
	_, err := b.Connect(ctx, listen(t, a))
	var pe *slc.ProtocolError
	if !errors.As(err, &pe) || pe.Code != wire.CodeSameName {
		t.Fatalf("Connect to a node with the same name = %v; want a same-name refusal", err)
	}
	local := evB.wait(ctx, t, "HandshakeRejected", isType[*actors.HandshakeRejected]).(*actors.HandshakeRejected)
	remote := evA.wait(ctx, t, "HandshakeRejected", isType[*actors.HandshakeRejected]).(*actors.HandshakeRejected)
	for _, ev := range []*actors.HandshakeRejected{local, remote} {
		if !strings.Contains(ev.Err.Error(), "own name") {
			t.Fatalf("HandshakeRejected reason %v does not say why", ev.Err)
		}
	}
	if n := evB.count(isType[*actors.PeerReconnecting]); n != 0 {
		t.Fatalf("a permanent refusal was retried %d times", n)
	}
}

// Handle takes a layer's message types out of the mailbox, in order per
// sender, while other messages still reach Receive.
func TestHandleRoutesTypes(t *testing.T) {
	type Call struct{ N int }
	slc.Register[Call]("test.HandleCall")
	ctx := testCtx(t, 20*time.Second)
	a, b, aID := connectPair(t, ctx, nil, nil)
	got := make(chan int, 100)
	cancel := a.Handle(func(m slc.Message) { got <- m.Body.(Call).N }, "test.HandleCall")
	for i := 1; i <= 10; i++ {
		if _, err := b.Send(ctx, Call{N: i}, aID); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Send(ctx, Seq{N: i}, aID); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 10; i++ {
		if n := <-got; n != i {
			t.Fatalf("handled call %d; want %d", n, i)
		}
		m, err := a.Receive(ctx)
		if err != nil || m.Body.(Seq).N != i {
			t.Fatalf("received %+v, %v; want Seq %d", m.Body, err, i)
		}
	}
	cancel()
	id, _ := b.Send(ctx, Call{N: 11}, aID)
	if m, err := a.Receive(ctx); err != nil || m.ID != id {
		t.Fatalf("after cancel the call should reach Receive: %+v, %v", m, err)
	}
}

// A node at its peer limit refuses newcomers as busy; the peers it has are
// unaffected, and a newcomer gets in once a place frees.
func TestMaxPeers(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	hub := newComm(t, "hub", slc.WithMaxPeers(2))
	addr := listen(t, hub)
	for _, name := range []string{"p1", "p2"} {
		c := newComm(t, name)
		if _, err := c.Connect(ctx, addr); err != nil {
			t.Fatal(err)
		}
	}
	late := newComm(t, "p3", slc.WithRetries(0))
	_, err := late.Connect(ctx, addr)
	var pe *slc.ProtocolError
	if !errors.As(err, &pe) || pe.Code != wire.CodeBusy {
		t.Fatalf("third peer = %v; want busy", err)
	}
	if n := len(hub.Peers()); n != 2 {
		t.Fatalf("hub has %d peers", n)
	}
	if err := hub.Disconnect(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := late.Connect(ctx, addr); err != nil {
		t.Fatalf("after a place freed: %v", err)
	}
}
