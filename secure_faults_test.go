package slc_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/secure"
)

// secureProxied starts a listener and a dialer that trust each other's keys
// (the dialer reconnects forever) with a fault proxy between them, and
// connects them.
func secureProxied(t *testing.T, extra ...slc.Option) (rx, tx *slc.Communicator, proxy *testutil.Proxy, to slc.PeerID) {
	t.Helper()
	ir, it := newIdentity(t), newIdentity(t)
	rx = newComm(t, "sec-receiver", append([]slc.Option{slc.WithIdentity(ir), slc.WithAuthorizedPeer("sec-sender", it.PublicKey())}, extra...)...)
	tx = newComm(t, "sec-sender", append([]slc.Option{slc.WithIdentity(it), slc.WithAuthorizedPeer("sec-receiver", ir.PublicKey()),
		slc.WithRetries(slc.RetryForever)}, extra...)...)
	proxy, err := testutil.NewProxy(listen(t, rx))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	to, err = tx.Connect(testCtx(t, 10*time.Second), proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return rx, tx, proxy, to
}

// TestSecureCorruptionReconnects flips one byte of an encrypted record in
// transit on each of several connections, in both directions, at different
// places (record lengths, ciphertexts, tags). Each time the receiving side
// fails that connection with an authentication error, the sender
// reconnects, and the session resumes: every message arrives exactly once,
// in order.
func TestSecureCorruptionReconnects(t *testing.T) {
	const minTotal, maxTotal = 3000, 200000
	ctx := testCtx(t, 90*time.Second)
	rx, tx, proxy, to := secureProxied(t)
	rxEv, txEv := watch(t, rx), watch(t, tx)

	// Connection k (counted from 1) gets one bit flipped at offset at of
	// its stream in direction dir; later connections are left alone. The
	// handshake and the hello and resume records take the first ~330 bytes
	// of either direction, so every flip lands in an encrypted record that
	// follows: DATA from the sender, ACKs and PINGs from the receiver.
	flips := []struct {
		dir testutil.Direction
		at  int64
		bit byte
	}{
		{testutil.ClientToServer, 400, 0x01}, {testutil.ClientToServer, 1397, 0x80}, {testutil.ServerToClient, 345, 0x04},
		{testutil.ClientToServer, 2391, 0x10}, {testutil.ClientToServer, 588, 0x02}, {testutil.ServerToClient, 371, 0x40},
		{testutil.ClientToServer, 3001, 0x08},
	}
	var mu sync.Mutex
	conns := map[testutil.Direction]int{}
	flipped := 0
	proxy.CorruptFunc(func(dir testutil.Direction, off int64, b []byte) {
		mu.Lock()
		defer mu.Unlock()
		if off == 0 {
			conns[dir]++ // a new connection's first bytes in this direction
		}
		k := conns[dir]
		if k == 0 || k > len(flips) || flips[k-1].dir != dir {
			return
		}
		if at := flips[k-1].at; at >= off && at < off+int64(len(b)) {
			b[at-off] ^= flips[k-1].bit
			flipped++
		}
	})
	allFlipped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return flipped == len(flips)
	}
	// The hook counts connections from their first byte: break the one
	// that is up, so that the next one is connection 1.
	proxy.Reset()

	// The sender goes on until every flip has happened, so that every
	// connection carries traffic; then it sends an end marker (N = 0) and
	// says how many it sent.
	sent := make(chan int, 1)
	go func() {
		for i := 1; i <= maxTotal; i++ {
			if _, err := tx.Send(ctx, Seq{N: i, Payload: bytes.Repeat([]byte{byte(i)}, 20+i%50)}, to); err != nil {
				t.Errorf("send %d: %v", i, err)
				sent <- -1
				return
			}
			if i >= minTotal && allFlipped() {
				if _, err := tx.Send(ctx, Seq{N: 0, Payload: []byte{0}}, to); err != nil {
					t.Errorf("send the end: %v", err)
				}
				sent <- i
				return
			}
		}
		t.Errorf("%d messages sent and only some of the flips happened", maxTotal)
		sent <- -1
	}()
	got := make([]uint64, 0, minTotal)
	for {
		m, err := rx.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		s := m.Body.(Seq)
		if s.N == 0 {
			break
		}
		if len(s.Payload) != 20+s.N%50 || s.Payload[0] != byte(s.N) {
			t.Fatalf("message %d arrived damaged", s.N)
		}
		got = append(got, uint64(s.N))
	}
	total := <-sent
	if total < 0 {
		t.FailNow()
	}
	// Anything after the end marker would be a duplicate.
	last, err := tx.Send(ctx, Seq{N: -1}, to)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.WaitAcknowledged(ctx, last, to); err != nil {
		t.Fatal(err)
	}
	for {
		m, ok := rx.TryReceive()
		if !ok {
			break
		}
		if n := m.Body.(Seq).N; n != -1 {
			got = append(got, uint64(n))
		}
	}
	tally := testutil.CheckSequence(total, got)
	t.Logf("%s flips=%d", tally, len(flips))
	if !tally.Exact() {
		t.Fatalf("delivery broken: %s", tally)
	}

	// Each flipped connection ended with an authentication error on the
	// side that received the flip (the other side saw the connection
	// close), and none ended the session.
	authDown := func(ev any) bool {
		pd, ok := ev.(*actors.PeerDisconnected)
		return ok && errors.Is(pd.Err, secure.ErrAuthFailed) && !pd.Final
	}
	up, down := 0, 0
	for _, f := range flips {
		if f.dir == testutil.ClientToServer {
			up++
		} else {
			down++
		}
	}
	if n := rxEv.count(authDown); n != up {
		t.Errorf("receiver: %d disconnections with an authentication error, want %d", n, up)
	}
	if n := txEv.count(authDown); n != down {
		t.Errorf("sender: %d disconnections with an authentication error, want %d", n, down)
	}
	for _, ev := range append(rxEv.all, txEv.all...) {
		if pd, ok := ev.(*actors.PeerDisconnected); ok && errors.Is(pd.Err, secure.ErrAuthFailed) &&
			!strings.Contains(pd.Err.Error(), "authentication failed") {
			t.Errorf("unclear reason: %v", pd.Err)
		}
	}
	if n := rxEv.count(isType[*actors.PeerLost]) + txEv.count(isType[*actors.PeerLost]); n != 0 {
		t.Errorf("%d PeerLost events", n)
	}
}

// TestSecureCompressors: secure mode works with every compressor in the
// codec registry (a new one is tested without touching this test), and
// compresses before it encrypts: compressible messages take far fewer
// bytes on the wire than their size (ciphertext does not compress), and
// uncompressed ones take more.
func TestSecureCompressors(t *testing.T) {
	const n, size = 30, 16 << 10
	body := []byte(strings.Repeat("temperature=21.5C humidity=40% pressure=1013hPa; ", size/50))
	entries := codec.Compressors()
	if len(entries) < 4 {
		t.Fatalf("the codec registry lists %d compressors: %+v", len(entries), entries)
	}
	for _, e := range entries {
		comp := e.Name
		t.Run(comp, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			rx, tx, proxy, to := secureProxied(t, slc.WithCompressor(comp))
			before := proxy.Stats().BytesUp
			var last slc.MsgID
			for i := 1; i <= n; i++ {
				id, err := tx.Send(ctx, Seq{N: i, Payload: body}, to)
				if err != nil {
					t.Fatal(err)
				}
				last = id
			}
			if err := tx.WaitAcknowledged(ctx, last, to); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= n; i++ {
				m, err := rx.Receive(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if s := m.Body.(Seq); s.N != i || !bytes.Equal(s.Payload, body) {
					t.Fatalf("message %d damaged", i)
				}
			}
			sent := proxy.Stats().BytesUp - before
			payload := int64(n * len(body))
			t.Logf("%s: %d bytes of payload, %d bytes on the wire", comp, payload, sent)
			if comp == "none" && sent < payload {
				t.Fatalf("uncompressed: %d bytes on the wire for %d of payload", sent, payload)
			}
			if comp != "none" && sent > payload/4 {
				t.Fatalf("%s: %d bytes on the wire for %d of payload: not compressed before encryption", comp, sent, payload)
			}
		})
	}
}
