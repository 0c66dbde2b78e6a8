package slc_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
)

// Messages larger than a write batch, with control frames flowing the
// other way, arrive intact: a batch never ends inside a frame.
func TestLargeMessagesWithReverseTraffic(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	a, b, aID := connectPair(t, ctx, nil, nil)
	bID := slc.PeerID("b")
	blob := func(i int) []byte {
		b := bytes.Repeat([]byte{byte(i + 1)}, 3<<20+i)
		b[i] = 0xee
		return b
	}
	blobs := make([][32]byte, 8)
	for i := range blobs {
		blobs[i] = sha256.Sum256(blob(i))
	}
	done := make(chan error, 1)
	go func() {
		for i := range blobs {
			if _, err := b.SendRaw(ctx, blob(i), aID); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// Small messages the other way make the receiver's writer send ACKs
	// and data between the sender's large batches.
	go func() {
		for i := 0; i < 2000; i++ {
			if _, err := a.Send(ctx, Seq{N: i}, bID); err != nil {
				return
			}
		}
	}()
	for i := range blobs {
		m, err := a.Receive(ctx, bID)
		if err != nil {
			t.Fatalf("blob %d: %v", i, err)
		}
		if sha256.Sum256(m.Raw) != blobs[i] {
			t.Fatalf("blob %d (%d bytes) corrupted", i, len(m.Raw))
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		m, err := b.Receive(ctx)
		if err != nil || m.Body.(Seq).N != i {
			t.Fatalf("reverse message %d: %+v %v", i, m.Body, err)
		}
	}
}

// Messages waiting for room in a full mailbox are not acknowledged early by
// the progress of a chunked message behind them: after a reset, all of
// them still arrive.
func TestProgressWaitsForEarlierMessages(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	a := newComm(t, "receiver", slc.WithInboxCap(64<<20, 1))
	b := newComm(t, "sender", slc.WithRetries(slc.RetryForever), slc.WithChunkSize(16<<10))
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
	var ids []slc.MsgID
	for i := 1; i <= 3; i++ {
		id, err := b.Send(ctx, Seq{N: i}, aID)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	big := bytes.Repeat([]byte("chunk"), 20000) // 100 KB: 7 chunks
	id, err := b.SendRaw(ctx, big, aID)
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, id)
	testutil.Eventually(t, 10*time.Second, func() bool { return a.Pending() == 1 }, "the mailbox never filled")
	// Message 2 and 3 wait behind the full queue: they are not acknowledged.
	if b.IsAcknowledged(ids[1], aID) {
		t.Fatalf("message %d acknowledged while it waits outside the mailbox", ids[1])
	}
	proxy.Reset()
	ev.waitCount(ctx, t, "PeerConnected", 2, isType[*actors.PeerConnected])
	for i := 1; i <= 3; i++ {
		m, err := a.Receive(ctx)
		if err != nil || m.Body.(Seq).N != i {
			t.Fatalf("message %d: %+v %v", i, m.Body, err)
		}
	}
	m, err := a.Receive(ctx)
	if err != nil || !bytes.Equal(m.Raw, big) {
		t.Fatalf("the chunked message: %d bytes, %v", len(m.Raw), err)
	}
	if err := b.WaitAcknowledged(ctx, id, aID); err != nil {
		t.Fatal(err)
	}
}

// A receiver that restarts in the middle of a large message never gets its
// tail as if it were whole: the sender abandons the message, reports it,
// and the session carries on.
func TestRestartMidMessageAbandons(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	a1 := newComm(t, "receiver", slc.WithHeartbeat(100*time.Millisecond, 30*time.Second))
	b := newComm(t, "sender", slc.WithRetries(slc.RetryForever), slc.WithChunkSize(16<<10), slc.WithBufferCap(64<<10))
	proxy, err := testutil.NewProxy(listen(t, a1))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ev := watch(t, b)
	aID, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// The proxy cuts the connection after 300 KB: a1 holds the first
	// chunks of the 1 MiB message and has reported them.
	proxy.Refuse(true)
	proxy.Cut(300 << 10)
	big := make([]byte, 1<<20)
	var id slc.MsgID
	sent := make(chan error, 1)
	go func() {
		var err error
		id, err = b.SendRaw(ctx, big, aID)
		sent <- err
	}()
	ev.wait(ctx, t, "PeerDisconnected", isType[*actors.PeerDisconnected])
	// a1 is gone for good; a new instance of "receiver" takes its place.
	a2 := newComm(t, "receiver")
	proxy.SetTarget(listen(t, a2))
	proxy.Refuse(false)
	c := ev.wait(ctx, t, "PeerConnected with a restarted peer", func(e any) bool {
		pc, ok := e.(*actors.PeerConnected)
		return ok && pc.Restarted
	}).(*actors.PeerConnected)
	// The sender was still appending chunks when the message was given
	// up: Send reports it.
	if err := <-sent; !errors.Is(err, slc.ErrAbandoned) {
		t.Fatalf("Send of the abandoned message = %v; want ErrAbandoned", err)
	}
	if len(c.Abandoned) != 1 || c.Abandoned[0] != id {
		t.Fatalf("PeerConnected.Abandoned = %v; want [%d]", c.Abandoned, id)
	}
	if err := b.WaitAcknowledged(ctx, id, aID); err == nil {
		t.Fatal("WaitAcknowledged succeeded for an abandoned message")
	}
	if b.IsAcknowledged(id, aID) {
		t.Fatal("abandoned message reported acknowledged")
	}
	// The session carries on, and nothing partial was delivered.
	next, err := b.Send(ctx, Seq{N: 77}, aID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a2.Receive(ctx)
	if err != nil || m.ID != next || m.Body.(Seq).N != 77 {
		t.Fatalf("a2 got %+v (%d bytes raw), %v; want only message %d", m.Body, len(m.Raw), err, next)
	}
	if a2.Pending() != 0 {
		t.Fatalf("a2 holds %d more messages", a2.Pending())
	}
}

// A node whose session with a peer ended (it lingered out) accepts the
// peer back even though the peer remembers messages from before.
func TestResumeAfterSessionForgotten(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	a := newComm(t, "a", slc.WithLinger(200*time.Millisecond), slc.WithHeartbeat(100*time.Millisecond, 30*time.Second))
	b := newComm(t, "b", slc.WithRetries(slc.RetryForever))
	proxy, err := testutil.NewProxy(listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	evA, evB := watch(t, a), watch(t, b)
	aID, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// a sends b a few messages: b's watermark for a is above 0.
	for i := 1; i <= 5; i++ {
		id, err := a.Send(ctx, Seq{N: i}, "b")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.WaitAcknowledged(ctx, id, "b"); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Refuse(true)
	proxy.Reset()
	lost := evA.wait(ctx, t, "PeerLost at a", isType[*actors.PeerLost]).(*actors.PeerLost)
	if lost.Peer != "b" {
		t.Fatalf("%+v", lost)
	}
	proxy.Refuse(false)
	evB.waitCount(ctx, t, "PeerConnected at b", 2, isType[*actors.PeerConnected])
	if _, err := b.Send(ctx, Seq{N: 100}, aID); err != nil {
		t.Fatal(err)
	}
	m, err := a.Receive(ctx)
	if err != nil || m.Body.(Seq).N != 100 {
		t.Fatalf("a got %+v, %v", m.Body, err)
	}
	if _, err := a.Send(ctx, Seq{N: 6}, "b"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		m, err := b.Receive(ctx)
		if err != nil || m.Body.(Seq).N != i {
			t.Fatalf("b message %d: %+v, %v", i, m.Body, err)
		}
	}
	if n := evB.count(isType[*actors.PeerLost]); n != 0 {
		t.Fatalf("b lost its session %d times", n)
	}
}

// A sender that lost its session (retries spent) and connects again no
// longer holds the large typed message the receiver has part of: its first
// frame aborts that message at the receiver, and new messages flow.
func TestReceiverPartialUnknownToSender(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	a := newComm(t, "receiver", slc.WithHeartbeat(100*time.Millisecond, 30*time.Second))
	b := newComm(t, "sender", slc.WithRetries(1), slc.WithChunkSize(16<<10), slc.WithBufferCap(64<<10))
	proxy, err := testutil.NewProxy(listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	evB := watch(t, b)
	aID, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// The connection dies after 200 KB of a 1 MiB typed message, and the
	// sender's retries run out: it forgets the session; the receiver, which
	// was dialed, keeps it with the message's first chunks.
	proxy.Refuse(true)
	proxy.Cut(200 << 10)
	sent := make(chan error, 1)
	go func() {
		_, err := b.Send(ctx, Seq{N: 1, Payload: make([]byte, 1<<20)}, aID)
		sent <- err
	}()
	evB.wait(ctx, t, "PeerLost", isType[*actors.PeerLost])
	if err := <-sent; err == nil {
		t.Fatal("Send to a peer lost mid-message succeeded")
	}
	proxy.Refuse(false)
	if _, err := b.Connect(ctx, proxy.Addr()); err != nil {
		t.Fatal(err)
	}
	id, err := b.Send(ctx, Seq{N: 2}, aID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Receive(ctx)
	if err != nil || m.ID != id || m.Body.(Seq).N != 2 {
		t.Fatalf("receiver got %+v (%v)", m, err)
	}
}
