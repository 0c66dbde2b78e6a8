package slc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/secure"
)

// spliceRelay forwards TCP connections to a target one Noise message at a
// time: the 8-byte preamble, then each length-prefixed message (the
// handshake messages, then the records; docs/security.md 3.3 and 4). It
// keeps every record each connection carried, by direction, and can write
// records captured on one connection into another between two of that
// connection's own records, so that they arrive as whole records where the
// receiver expects its next one.
type spliceRelay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*spliceConn
}

type spliceConn struct {
	ends  [2]net.Conn // the client's and the target's
	close sync.Once
	mu    [2]sync.Mutex // by direction: one writer at a time, whole messages
	recs  [2][][]byte   // the records forwarded, by direction
}

// handshakeMsgs is the number of Noise handshake messages each direction
// carries before its records: messages 1 and 3 go from the client, 2
// from the target.
var handshakeMsgs = [2]int{testutil.ClientToServer: 2, testutil.ServerToClient: 1}

func newSpliceRelay(t *testing.T, target string) *spliceRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &spliceRelay{ln: ln, target: target}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.shutdown)
	return r
}

func (r *spliceRelay) Addr() string { return r.ln.Addr().String() }

func (r *spliceRelay) accept() {
	defer r.wg.Done()
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", r.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &spliceConn{ends: [2]net.Conn{client, server}}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.forward(c, testutil.ClientToServer)
		go r.forward(c, testutil.ServerToClient)
	}
}

func (c *spliceConn) shut() {
	c.close.Do(func() {
		c.ends[0].Close()
		c.ends[1].Close()
	})
}

// forward copies one direction of c, a whole message at a time.
func (r *spliceRelay) forward(c *spliceConn, dir testutil.Direction) {
	defer r.wg.Done()
	defer c.shut()
	src, dst := c.ends[0], c.ends[1]
	if dir == testutil.ServerToClient {
		src, dst = dst, src
	}
	pre := make([]byte, 8)
	if _, err := io.ReadFull(src, pre); err != nil {
		return
	}
	if _, err := dst.Write(pre); err != nil {
		return
	}
	for n := 0; ; n++ {
		var l [2]byte
		if _, err := io.ReadFull(src, l[:]); err != nil {
			return
		}
		msg := make([]byte, 2+int(binary.BigEndian.Uint16(l[:])))
		copy(msg, l[:])
		if _, err := io.ReadFull(src, msg[2:]); err != nil {
			return
		}
		c.mu[dir].Lock()
		_, err := dst.Write(msg)
		if n >= handshakeMsgs[dir] {
			c.recs[dir] = append(c.recs[dir], msg)
		}
		c.mu[dir].Unlock()
		if err != nil {
			return
		}
	}
}

// conn returns connection k (counted from 1), nil if there is none yet.
func (r *spliceRelay) conn(k int) *spliceConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k > len(r.conns) {
		return nil
	}
	return r.conns[k-1]
}

// count returns the number of connections accepted so far.
func (r *spliceRelay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// records returns the records connection k carried in direction dir.
func (c *spliceConn) records(dir testutil.Direction) [][]byte {
	c.mu[dir].Lock()
	defer c.mu[dir].Unlock()
	return append([][]byte(nil), c.recs[dir]...)
}

// splice writes the records of connection from, in direction dir, into
// connection to, starting with the one that has the index to's next
// record will have: the replayed record carries the very nonce the
// receiver expects, under the other connection's keys. It returns the
// number of records written.
func (r *spliceRelay) splice(t *testing.T, from, to int, dir testutil.Direction) int {
	t.Helper()
	captured := r.conn(from).records(dir)
	c := r.conn(to)
	c.mu[dir].Lock()
	defer c.mu[dir].Unlock()
	next := len(c.recs[dir])
	if next >= len(captured) {
		t.Fatalf("connection %d carried %d records %s, connection %d already %d", from, len(captured), dir, to, next)
	}
	dst := c.ends[1]
	if dir == testutil.ServerToClient {
		dst = c.ends[0]
	}
	for _, rec := range captured[next:] {
		if _, err := dst.Write(rec); err != nil {
			break // the receiver closed it after the first one
		}
	}
	return len(captured) - next
}

func (r *spliceRelay) shutdown() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.shut()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// spliceSend sends the Seq numbers in [from, to] from one node to another,
// waits for the last acknowledgement, and checks that the receiver gets
// exactly those, in order, and nothing else.
func spliceSend(ctx context.Context, t *testing.T, from, to *slc.Communicator, lo, hi int) {
	t.Helper()
	var last slc.MsgID
	for i := lo; i <= hi; i++ {
		id, err := from.Send(ctx, Seq{N: i, Payload: []byte("replayed? " + strings.Repeat("x", max(i, -i)))}, to.Name())
		if err != nil {
			t.Fatal(err)
		}
		last = id
	}
	if err := from.WaitAcknowledged(ctx, last, to.Name()); err != nil {
		t.Fatal(err)
	}
	for i := lo; i <= hi; i++ {
		m, err := to.Receive(ctx)
		if err != nil || m.From != from.Name() || m.Body.(Seq).N != i {
			t.Fatalf("%s: message %d: %+v %v", to.Name(), i, m, err)
		}
	}
	noMessages(t, to)
}

// TestSecureReplaySplicedRecords: the encrypted records of one connection,
// written into a later connection of the same two nodes right after its
// handshake and RESUME exchange, as whole records carrying the nonce the
// receiver expects next, fail authentication: the receiver closes that
// connection with an authentication error, the dialer reconnects, the
// session resumes, and none of the replayed messages is delivered again.
// Both directions: the dialer's records into the listener, and the
// listener's records into the dialer.
func TestSecureReplaySplicedRecords(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	ia, ib := newIdentity(t), newIdentity(t)
	a := newComm(t, "splice-a", slc.WithIdentity(ia), slc.WithAuthorizedKeys(ib.PublicKey()))
	b := newComm(t, "splice-b", slc.WithIdentity(ib), slc.WithAuthorizedKeys(ia.PublicKey()), slc.WithRetries(slc.RetryForever))
	relay := newSpliceRelay(t, listen(t, a))
	aEv, bEv := watch(t, a), watch(t, b)
	// ups waits until both sides have seen n connections come up: each
	// side has then read the other's RESUME.
	ups := func(n int) {
		t.Helper()
		aEv.waitCount(ctx, t, "PeerConnected (splice-a)", n, isType[*actors.PeerConnected])
		bEv.waitCount(ctx, t, "PeerConnected (splice-b)", n, isType[*actors.PeerConnected])
	}
	authDown := func(ev any) bool {
		pd, ok := ev.(*actors.PeerDisconnected)
		return ok && errors.Is(pd.Err, secure.ErrAuthFailed) && pd.Reconnecting && !pd.Final &&
			strings.Contains(pd.Err.Error(), "authentication failed")
	}
	if _, err := b.Connect(ctx, relay.Addr()); err != nil {
		t.Fatal(err)
	}
	ups(1)

	// Connection 1 carries messages both ways, one at a time, so that it
	// has more records in each direction than the next connections will
	// have carried when the splices come. Then it ends.
	for i := 1; i <= 20; i++ {
		spliceSend(ctx, t, b, a, i, i)
		spliceSend(ctx, t, a, b, -i, -i)
	}
	relay.conn(1).shut()
	ups(2)
	if n := relay.count(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}

	// Connection 1's records from b, into connection 2 towards a.
	n := relay.splice(t, 1, 2, testutil.ClientToServer)
	ev := aEv.wait(ctx, t, "PeerDisconnected with an authentication error (splice-a)", authDown).(*actors.PeerDisconnected)
	t.Logf("%d records spliced towards the listener: %v", n, ev.Err)
	ups(3)

	// Connection 1's records from a, into connection 3 towards b.
	n = relay.splice(t, 1, 3, testutil.ServerToClient)
	ev = bEv.wait(ctx, t, "PeerDisconnected with an authentication error (splice-b)", authDown).(*actors.PeerDisconnected)
	t.Logf("%d records spliced towards the dialer: %v", n, ev.Err)
	ups(4)

	// The session goes on, and nothing replayed was delivered again.
	spliceSend(ctx, t, b, a, 21, 40)
	spliceSend(ctx, t, a, b, -40, -21)

	// Each splice cost one connection and nothing else: no handshake was
	// refused, the session never ended, nothing was delivered twice (the
	// exact sequences above).
	if n := aEv.count(authDown) + bEv.count(authDown); n != 2 {
		t.Errorf("%d disconnections with an authentication error, want 2", n)
	}
	bad := func(ev any) bool {
		switch ev.(type) {
		case *actors.HandshakeRejected, *actors.PeerLost:
			t.Errorf("%T %+v", ev, ev)
			return true
		}
		return false
	}
	aEv.count(bad)
	bEv.count(bad)
}
