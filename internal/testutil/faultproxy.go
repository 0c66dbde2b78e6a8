package testutil

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxyBufSize is the size of the buffer each forwarding goroutine reads into.
const proxyBufSize = 32 << 10

// proxyDialTimeout bounds how long the proxy waits for its target to answer.
const proxyDialTimeout = 5 * time.Second

// Direction names one half of a proxied connection.
type Direction int

const (
	// ClientToServer is the direction from the peer that dialled the proxy
	// towards the target.
	ClientToServer Direction = iota
	// ServerToClient is the direction from the target back to the peer that
	// dialled the proxy.
	ServerToClient
)

// String returns "client->server" or "server->client".
func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "client->server"
	case ServerToClient:
		return "server->client"
	default:
		return "direction(?)"
	}
}

// ProxyStats are cumulative counters of a [Proxy].
type ProxyStats struct {
	// Accepted counts every connection the proxy accepted, including the
	// ones closed at once because of Refuse or because the target could
	// not be dialled.
	Accepted int64
	// Refused counts connections closed at once because of Refuse.
	Refused int64
	// DialFailures counts connections closed because the target could not
	// be dialled.
	DialFailures int64
	// Resets counts connections aborted with a TCP RST by Reset,
	// ResetAfter or ResetEvery.
	Resets int64
	// Cuts counts connections closed by Cut.
	Cuts int64
	// BytesUp counts bytes forwarded client->server.
	BytesUp int64
	// BytesDown counts bytes forwarded server->client.
	BytesDown int64
	// Delayed counts chunks held by Delay or Jitter.
	Delayed int64
	// Throttled counts chunks held back by Throttle.
	Throttled int64
}

// Proxy is a userspace TCP proxy on 127.0.0.1 that forwards every accepted
// connection to a target address and can inject faults into the traffic.
// All methods are safe for concurrent use, including while traffic flows.
//
// The proxy works on the byte streams the kernel hands it, after TCP has
// put segments in order, so it can delay, hold back, cut, corrupt and
// reset, but it cannot reorder or drop segments: that needs a packet-level
// tool such as netem. Each direction forwards its chunks one at a time, in
// order, whatever the delays.
type Proxy struct {
	ln     net.Listener
	ctx    context.Context // cancelled by Close; bounds dials to the target
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once

	mu          sync.Mutex
	closed      bool
	target      string // forward new connections here
	conns       map[*proxyConn]struct{}
	refuse      bool
	delay       time.Duration
	jitter      time.Duration // random extra delay in [0, jitter)
	throttle    int64         // bytes per second each way, 0 if off
	stall       chan struct{} // non-nil while stalled; closed by Unstall
	hook        func(dir Direction, off int64, b []byte)
	corruptNext int64 // offset for the next connection, -1 if none
	resetBudget int64 // bytes until a one-shot reset, 0 if disarmed
	cutBudget   int64 // bytes until a one-shot cut, 0 if disarmed
	resetEvery  int64 // per-connection reset threshold, 0 if disarmed

	accepted, refused, dialFailures atomic.Int64
	resets, cuts                    atomic.Int64
	bytesUp, bytesDown              atomic.Int64
	delayed, throttled              atomic.Int64
}

// NewProxy listens on 127.0.0.1:0 and forwards each accepted connection to
// target, a "host:port" address that should itself be on loopback.
func NewProxy(target string) (*Proxy, error) {
	return NewProxyOn("127.0.0.1:0", target)
}

// NewProxyOn is NewProxy listening on listen (a "host:port"), for tests
// whose clients live in network namespaces and reach the test process on
// a bridge address.
func NewProxyOn(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln:          ln,
		ctx:         ctx,
		cancel:      cancel,
		target:      target,
		conns:       make(map[*proxyConn]struct{}),
		corruptNext: -1,
	}
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr returns the proxy's listening address ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the listener, closes every proxied connection and waits for
// all of the proxy's goroutines to return. It is idempotent and always
// returns nil after the first call.
func (p *Proxy) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		conns := p.takeConnsLocked()
		p.mu.Unlock()

		p.cancel()
		err = p.ln.Close()
		for _, pc := range conns {
			pc.shutdown(endClose)
		}
		p.wg.Wait()
	})
	return err
}

// Reset aborts every current connection on both sides with a TCP RST.
// Connections accepted afterwards are not affected.
func (p *Proxy) Reset() {
	p.mu.Lock()
	conns := p.takeConnsLocked()
	p.mu.Unlock()
	for _, pc := range conns {
		pc.shutdown(endReset)
	}
}

// ResetAfter arms a one-shot reset: once n more bytes have been forwarded
// client->server (counted from this call, on whichever connection carries
// them), the connection carrying the n-th byte is aborted with a TCP RST
// right after that byte. n <= 0 disarms it.
func (p *Proxy) ResetAfter(n int64) {
	p.mu.Lock()
	p.resetBudget = max(n, 0)
	p.mu.Unlock()
}

// ResetEvery aborts each connection with a TCP RST once n bytes have been
// forwarded client->server on it. New connections count from their first
// byte; connections already open count from this call. The reset is placed
// exactly after the n-th byte, so it usually lands mid-frame. n <= 0
// disarms it for current and future connections.
func (p *Proxy) ResetEvery(n int64) {
	n = max(n, 0)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetEvery = n
	for pc := range p.conns {
		if n == 0 {
			pc.resetAt = 0
		} else {
			pc.resetAt = pc.up + n
		}
	}
}

// Stall stops forwarding in both directions on all current and future
// connections without closing anything: the connections stay established
// but no byte moves until Unstall. A chunk that was already past the gate
// when Stall was called may still be delivered. Calling Stall while stalled
// has no effect.
func (p *Proxy) Stall() {
	p.mu.Lock()
	if p.stall == nil {
		p.stall = make(chan struct{})
	}
	p.mu.Unlock()
}

// Unstall resumes forwarding after Stall. It has no effect when not stalled.
func (p *Proxy) Unstall() {
	p.mu.Lock()
	if p.stall != nil {
		close(p.stall)
		p.stall = nil
	}
	p.mu.Unlock()
}

// Cut arms a one-shot truncation: once n more bytes have been forwarded
// client->server (counted from this call), both sides of the connection
// carrying the n-th byte are closed normally (FIN, not RST) right after
// that byte. The target then reads exactly those bytes followed by EOF,
// provided it keeps reading. n <= 0 disarms it.
func (p *Proxy) Cut(n int64) {
	p.mu.Lock()
	p.cutBudget = max(n, 0)
	p.mu.Unlock()
}

// Delay holds every forwarded chunk for d before writing it on, in both
// directions. Since each direction forwards one chunk at a time this also
// limits throughput to about 32 KiB per d. Zero or negative d disables it.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = max(d, 0)
	p.mu.Unlock()
}

// Jitter adds a random extra delay, uniform in [0, d), to every forwarded
// chunk in both directions, on top of Delay: the latency varies from
// chunk to chunk. Chunks still leave in order (see Proxy). Zero or
// negative d disables it.
func (p *Proxy) Jitter(d time.Duration) {
	p.mu.Lock()
	p.jitter = max(d, 0)
	p.mu.Unlock()
}

// Throttle limits each direction of every connection to bytesPerSec: a
// chunk is held back until the bytes forwarded so far fit the rate since
// the throttle applied to that direction, so the rate holds on average
// with bursts of at most one chunk (32 KiB). Zero or negative turns it off.
func (p *Proxy) Throttle(bytesPerSec int64) {
	p.mu.Lock()
	p.throttle = max(bytesPerSec, 0)
	p.mu.Unlock()
}

// Corrupt flips (XOR 0xFF) the byte at the given offset of the
// client->server stream of the next connection the proxy accepts. Offsets
// start at 0 with the first byte the client sends on that connection. A
// negative offset disarms it.
func (p *Proxy) Corrupt(offset int64) {
	p.mu.Lock()
	p.corruptNext = max(offset, -1)
	p.mu.Unlock()
}

// CorruptFunc installs a hook that sees every chunk about to be forwarded,
// on all current and future connections, and may modify it in place. off is
// the offset of b[0] in that connection's stream for dir. The hook must not
// retain b and must be safe for concurrent use: the two directions of every
// connection call it from their own goroutines. nil removes the hook.
func (p *Proxy) CorruptFunc(f func(dir Direction, off int64, b []byte)) {
	p.mu.Lock()
	p.hook = f
	p.mu.Unlock()
}

// Refuse makes the proxy close every connection it accepts at once, with a
// TCP RST, while on is true, as when the service behind a port is down: the
// client's dial either fails with ECONNRESET or succeeds and the connection
// fails on first use. The target is not dialled. Connections already open
// are not affected.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// SetTarget changes the address connections accepted from now on are
// forwarded to. Open connections keep their target.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{
		Accepted:     p.accepted.Load(),
		Refused:      p.refused.Load(),
		DialFailures: p.dialFailures.Load(),
		Resets:       p.resets.Load(),
		Cuts:         p.cuts.Load(),
		BytesUp:      p.bytesUp.Load(),
		BytesDown:    p.bytesDown.Load(),
		Delayed:      p.delayed.Load(),
		Throttled:    p.throttled.Load(),
	}
}

// Conns returns the number of connections currently being forwarded.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *Proxy) takeConnsLocked() []*proxyConn {
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	clear(p.conns)
	return conns
}

func (p *Proxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (for example too many open files): back
			// off briefly, unless the proxy is closing.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		p.mu.Lock()
		refuse, closed := p.refuse, p.closed
		p.mu.Unlock()
		if refuse || closed {
			if refuse {
				p.refused.Add(1)
			}
			abort(c)
			continue
		}
		p.wg.Go(func() { p.handle(c) })
	}
}

// handle dials the target for client, registers the connection and runs its
// client->server direction; the other direction runs in a second goroutine.
func (p *Proxy) handle(client net.Conn) {
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()

	d := net.Dialer{Timeout: proxyDialTimeout}
	server, err := d.DialContext(p.ctx, "tcp", target)
	if err != nil {
		if p.ctx.Err() == nil { // not just Close cancelling the dial
			p.dialFailures.Add(1)
		}
		abort(client)
		return
	}

	pc := &proxyConn{
		p:         p,
		client:    client,
		server:    server,
		done:      make(chan struct{}),
		corruptAt: -1,
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	pc.corruptAt, p.corruptNext = p.corruptNext, -1
	if p.resetEvery > 0 {
		pc.resetAt = p.resetEvery
	}
	p.conns[pc] = struct{}{}
	p.mu.Unlock()

	downDone := make(chan struct{})
	p.wg.Go(func() {
		defer close(downDone)
		pc.forward(ServerToClient)
	})
	pc.forward(ClientToServer)
	select {
	case <-downDone:
	case <-pc.done:
	}
	pc.shutdown(endClose)
	<-downDone
}

// proxyConn is one proxied connection: the accepted client side and the
// dialled server side.
type proxyConn struct {
	p      *Proxy
	client net.Conn
	server net.Conn

	once sync.Once
	done chan struct{} // closed by shutdown

	// Guarded by p.mu.
	up        int64 // bytes forwarded client->server
	resetAt   int64 // reset when up reaches this, 0 if disarmed
	corruptAt int64 // client->server offset to flip, -1 if none
}

// endKind says how a connection ends.
type endKind int

const (
	endClose endKind = iota // close both sides normally
	endAbort                // close both sides with a TCP RST
	endReset                // injected reset: an abort counted in Resets
	endCut                  // injected cut: a close counted in Cuts
)

// shutdown ends the connection as k says, unregisters it and wakes its
// goroutines. Only the first call has an effect. Counters are updated
// before the sockets are closed, so a peer that sees the fault also sees
// it counted.
func (pc *proxyConn) shutdown(k endKind) {
	pc.once.Do(func() {
		pc.p.mu.Lock()
		delete(pc.p.conns, pc)
		pc.p.mu.Unlock()
		switch k {
		case endReset:
			pc.p.resets.Add(1)
		case endCut:
			pc.p.cuts.Add(1)
		}
		close(pc.done)
		if k == endAbort || k == endReset {
			abort(pc.client)
			abort(pc.server)
		} else {
			pc.client.Close()
			pc.server.Close()
		}
	})
}

// abort closes c with a TCP RST instead of a FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// closeWrite half-closes c (sends FIN) if it supports it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

type chunkAction int

const (
	actNone chunkAction = iota
	actReset
	actCut
)

// forward copies one direction until EOF, an error, or shutdown.
func (pc *proxyConn) forward(dir Direction) {
	src, dst := pc.client, pc.server
	counter := &pc.p.bytesUp
	if dir == ServerToClient {
		src, dst = pc.server, pc.client
		counter = &pc.p.bytesDown
	}
	buf := make([]byte, proxyBufSize)
	var off int64 // offset of the next byte in this direction's stream
	var th throttleState
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if !pc.wait() {
				return
			}
			chunk := buf[:nr]
			var act chunkAction
			var hook func(Direction, int64, []byte)
			if dir == ClientToServer {
				chunk, act, hook = pc.admitUp(chunk, off)
			} else {
				pc.p.mu.Lock()
				hook = pc.p.hook
				pc.p.mu.Unlock()
			}
			if hook != nil {
				hook(dir, off, chunk)
			}
			if !pc.throttleWait(&th, len(chunk)) {
				return
			}
			// Count before writing so that a peer that has read the
			// bytes also sees them counted; take back what was not
			// written.
			counter.Add(int64(len(chunk)))
			nw, werr := dst.Write(chunk)
			if nw < len(chunk) {
				counter.Add(int64(nw - len(chunk)))
			}
			off += int64(nw)
			switch act {
			case actReset:
				pc.shutdown(endReset)
				return
			case actCut:
				pc.shutdown(endCut)
				return
			}
			if werr != nil {
				pc.shutdown(endAbort)
				return
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				// Orderly half-close: pass the FIN on and let the other
				// direction finish.
				closeWrite(dst)
			} else {
				// The peer reset the connection or it was shut down:
				// propagate as a reset (a no-op after shutdown).
				pc.shutdown(endAbort)
			}
			return
		}
	}
}

// throttleState is one direction's account for Throttle: the rate in
// force, when it began to apply, and the bytes forwarded since.
type throttleState struct {
	rate  int64
	since time.Time
	bytes int64
}

// throttleWait holds a chunk of n bytes until it fits the Throttle rate.
// It returns false if the connection was shut down meanwhile.
func (pc *proxyConn) throttleWait(th *throttleState, n int) bool {
	pc.p.mu.Lock()
	rate := pc.p.throttle
	pc.p.mu.Unlock()
	if rate != th.rate {
		*th = throttleState{rate: rate, since: time.Now()}
	}
	if rate == 0 {
		return true
	}
	// The chunk may leave once the bytes before it took their time. A
	// direction that fell idle starts a new account, so idle time is not
	// saved up for a burst.
	now := time.Now()
	due := th.since.Add(time.Duration(float64(th.bytes) / float64(rate) * float64(time.Second)))
	if due.Before(now) {
		th.since, th.bytes, due = now, 0, now
	}
	th.bytes += int64(n)
	wait := due.Sub(now)
	if wait <= 0 {
		return true
	}
	pc.p.throttled.Add(1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-pc.done:
		return false
	}
}

// wait applies Stall, Delay and Jitter before a chunk is forwarded. It
// returns false if the connection was shut down meanwhile.
func (pc *proxyConn) wait() bool {
	for {
		pc.p.mu.Lock()
		stall := pc.p.stall
		delay := pc.p.delay
		if pc.p.jitter > 0 {
			delay += rand.N(pc.p.jitter)
		}
		pc.p.mu.Unlock()
		if stall != nil {
			select {
			case <-stall:
				continue // re-check: Stall may have been called again
			case <-pc.done:
				return false
			}
		}
		if delay > 0 {
			pc.p.delayed.Add(1)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-pc.done:
				t.Stop()
				return false
			}
			// Check the stall gate again: Stall may have been called
			// while this chunk was delayed.
			pc.p.mu.Lock()
			stalled := pc.p.stall != nil
			pc.p.mu.Unlock()
			if stalled {
				continue
			}
		}
		select {
		case <-pc.done:
			return false
		default:
			return true
		}
	}
}

// admitUp decides how much of a client->server chunk at stream offset off is
// forwarded and what happens after it, consuming the one-shot budgets and
// applying Corrupt. It returns the (possibly shortened) chunk, the action to
// take once it is written, and the hook to call.
func (pc *proxyConn) admitUp(chunk []byte, off int64) ([]byte, chunkAction, func(Direction, int64, []byte)) {
	p := pc.p
	p.mu.Lock()
	defer p.mu.Unlock()

	take := int64(len(chunk))
	if pc.resetAt > 0 {
		take = min(take, pc.resetAt-pc.up)
	}
	if p.resetBudget > 0 {
		take = min(take, p.resetBudget)
	}
	if p.cutBudget > 0 {
		take = min(take, p.cutBudget)
	}
	take = max(take, 1) // every armed limit is at least 1 byte away

	act := actNone
	if p.cutBudget > 0 {
		p.cutBudget -= take
		if p.cutBudget == 0 {
			act = actCut
		}
	}
	if p.resetBudget > 0 {
		p.resetBudget -= take
		if p.resetBudget == 0 {
			act = actReset
		}
	}
	pc.up += take
	if pc.resetAt > 0 && pc.up >= pc.resetAt {
		act = actReset
	}

	chunk = chunk[:take]
	if pc.corruptAt >= off && pc.corruptAt < off+take {
		chunk[pc.corruptAt-off] ^= 0xFF
		pc.corruptAt = -1
	}
	return chunk, act, p.hook
}
