package slc_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
)

// TestExactlyOnceAcrossResets sends 10,000 messages through a proxy that
// resets the connection 20 times, landing mid-frame, and checks that every
// message arrives once, in order.
func TestExactlyOnceAcrossResets(t *testing.T) {
	const total, resets = 10000, 20
	ctx := testCtx(t, 60*time.Second)
	a := newComm(t, "receiver")
	b := newComm(t, "sender", slc.WithRetries(slc.RetryForever))
	proxy, err := testutil.NewProxy(listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ev := watch(t, b)
	p, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}

	sendErr := make(chan error, 1)
	go func() {
		payload := bytes.Repeat([]byte{0xab}, 40)
		for i := 1; i <= total; i++ {
			if _, err := b.Send(ctx, Seq{N: i, Payload: payload}, p); err != nil {
				sendErr <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		sendErr <- nil
	}()

	got, done := receiveWithResets(ctx, t, a, proxy, ev, total, resets, sendErr, func(m slc.Message) (int, error) {
		s, ok := m.Body.(Seq)
		if !ok || len(s.Payload) != 40 {
			return 0, fmt.Errorf("body %T %+v (%v)", m.Body, m.Body, m.Err)
		}
		return s.N, nil
	})
	tally := testutil.CheckSequence(total, got)
	// The session comes back after the last reset too.
	ev.waitCount(ctx, t, "PeerConnected", resets+1, isType[*actors.PeerConnected])
	reconnects := ev.count(isType[*actors.PeerConnected]) - 1
	t.Logf("%s resets=%d proxy-resets=%d reconnections=%d", tally, done, proxy.Stats().Resets, reconnects)
	if tally.Lost != 0 || tally.Duplicated != 0 || tally.Reordered != 0 || tally.Received != total {
		t.Fatalf("delivery broken: %s", tally)
	}
	if done != resets || proxy.Stats().Resets != resets {
		t.Fatalf("%d resets forced, %d at the proxy; want %d", done, proxy.Stats().Resets, resets)
	}
}

// TestResetsMidFrame cuts the connection at many byte offsets, so cuts land
// inside headers, type names and bodies, and checks delivery again.
func TestResetsMidFrame(t *testing.T) {
	const total = 2000
	ctx := testCtx(t, 60*time.Second)
	a := newComm(t, "receiver")
	b := newComm(t, "sender", slc.WithRetries(slc.RetryForever))
	proxy, err := testutil.NewProxy(listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	// Every connection is cut after 7919 bytes from the sender: a prime,
	// so the cut falls at a different place in the frame each time.
	proxy.ResetEvery(7919)
	p, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := 1; i <= total; i++ {
			if _, err := b.Send(ctx, Seq{N: i, Payload: make([]byte, i%300)}, p); err != nil {
				return
			}
		}
	}()
	got := make([]uint64, 0, total)
	for len(got) < total {
		m, err := a.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d: %v", len(got), err)
		}
		s := m.Body.(Seq)
		if len(s.Payload) != s.N%300 {
			t.Fatalf("message %d has a payload of %d bytes", s.N, len(s.Payload))
		}
		got = append(got, uint64(s.N))
	}
	tally := testutil.CheckSequence(total, got)
	t.Logf("%s resets=%d", tally, proxy.Stats().Resets)
	if tally.Lost+tally.Duplicated+tally.Reordered != 0 {
		t.Fatalf("delivery broken: %s", tally)
	}
	if proxy.Stats().Resets < 10 {
		t.Fatalf("only %d resets: the test did not exercise reconnects", proxy.Stats().Resets)
	}
}

// A large message resumes at the next chunk after a reset. The proxy
// resets every connection after 1 MiB, so an 8 MiB message arrives only if
// each connection carries on where the last one stopped.
func TestLargeMessageResumesMidway(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	a := newComm(t, "receiver", slc.WithMaxMessage(16<<20))
	b := newComm(t, "sender", slc.WithRetries(slc.RetryForever), slc.WithChunkSize(64<<10), slc.WithBufferCap(512<<10))
	proxy, err := testutil.NewProxy(listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	p, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	proxy.ResetEvery(1 << 20)
	blob := make([]byte, 8<<20)
	for i := range blob {
		blob[i] = byte(i * 7 / 13)
	}
	id, err := b.SendRaw(ctx, blob, p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != id || !bytes.Equal(m.Raw, blob) {
		t.Fatalf("received %d bytes (id %d), want the 8 MiB blob (id %d)", len(m.Raw), m.ID, id)
	}
	st := proxy.Stats()
	t.Logf("8 MiB through %d resets: %d bytes carried (%.2fx the message)", st.Resets, st.BytesUp, float64(st.BytesUp)/float64(len(blob)))
	if st.Resets < 7 {
		t.Fatalf("only %d resets", st.Resets)
	}
	if st.BytesUp > 2*int64(len(blob)) {
		t.Fatalf("%d bytes carried for an 8 MiB message: chunks were re-sent from the start", st.BytesUp)
	}
	if err := b.WaitAcknowledged(ctx, id, p); err != nil {
		t.Fatal(err)
	}
}

// TestGivenBodiesAcrossResets sends typed messages large enough that Send
// gives each encoded body to the outbound log instead of copying it, and
// resets the connection while they flow: every message must arrive once,
// in order, with its own content, so a body re-sent after a reset (or
// reused for a later message too early) would show.
func TestGivenBodiesAcrossResets(t *testing.T) {
	const total, resets, size = 240, 6, 100 << 10
	ctx := testCtx(t, 60*time.Second)
	a := newComm(t, "receiver")
	b := newComm(t, "sender", slc.WithRetries(slc.RetryForever))
	proxy, err := testutil.NewProxy(listen(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ev := watch(t, b)
	p, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	payload := func(n int) []byte { return bytes.Repeat([]byte{byte(n), byte(n >> 8), 0x5a}, size/3+n%7) }
	sendErr := make(chan error, 1)
	go func() {
		for i := 1; i <= total; i++ {
			if _, err := b.Send(ctx, Seq{N: i, Payload: payload(i)}, p); err != nil {
				sendErr <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		sendErr <- nil
	}()
	got, done := receiveWithResets(ctx, t, a, proxy, ev, total, resets, sendErr, func(m slc.Message) (int, error) {
		s, ok := m.Body.(Seq)
		if !ok || !bytes.Equal(s.Payload, payload(s.N)) {
			return 0, fmt.Errorf("body %T of %d bytes is not message %d's content (%v)", m.Body, len(s.Payload), s.N, m.Err)
		}
		return s.N, nil
	})
	tally := testutil.CheckSequence(total, got)
	t.Logf("%s resets=%d", tally, done)
	if tally.Lost != 0 || tally.Duplicated != 0 || tally.Reordered != 0 || tally.Received != total || done != resets {
		t.Fatalf("delivery broken: %s, %d resets", tally, done)
	}
}

// receiveWithResets receives total messages from a, each numbered by seq
// (which fails the test for a wrong one), and resets the connection at
// proxy resets times, spread over them: each once the connection after
// the previous reset is up (ev watches the sender), wherever the byte
// stream happens to be. Once the sender reports on sendErr, it takes
// whatever else arrived, so duplicates show. It returns the numbers
// received, in order, and the resets made.
func receiveWithResets(ctx context.Context, t *testing.T, a *slc.Communicator, proxy *testutil.Proxy, ev *events,
	total, resets int, sendErr <-chan error, seq func(slc.Message) (int, error)) (got []uint64, done int) {
	t.Helper()
	got = make([]uint64, 0, total)
	for len(got) < total {
		m, err := a.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		n, err := seq(m)
		if err != nil {
			t.Fatalf("message %d: %v", len(got), err)
		}
		got = append(got, uint64(n))
		if done < resets && len(got) >= (done+1)*total/(resets+1) {
			ev.waitCount(ctx, t, "PeerConnected", done+1, isType[*actors.PeerConnected])
			if proxy.Conns() == 0 {
				continue // the previous connection has not been replaced at the proxy yet
			}
			proxy.Reset()
			done++
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	// Nothing more must arrive: duplicates would show up here.
	for {
		m, ok := a.TryReceive()
		if !ok {
			return got, done
		}
		n, err := seq(m)
		if err != nil {
			t.Fatalf("after the last message: %v", err)
		}
		got = append(got, uint64(n))
	}
}
