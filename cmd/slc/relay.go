package main

import (
	"errors"
	"net"
	"sync"
	"time"
)

const (
	// relayDialTimeout bounds the relay's dial to its target.
	relayDialTimeout = 5 * time.Second
	relayBufSize     = 32 << 10
)

// relay is a TCP relay on loopback: it forwards every connection it
// accepts to a target, and can cut the connections it carries, as a
// network failure would, in the middle of the byte stream.
type relay struct {
	ln     net.Listener
	target string
	// onAccept, when set before the first connection, is called with the
	// number of each connection the relay opens to the target (1, 2, ...).
	onAccept func(n int)

	wg       sync.WaitGroup
	mu       sync.Mutex
	closed   bool
	accepted int
	pairs    map[*relayed]struct{}
	down     int64       // bytes forwarded from the target to clients
	budget   int64       // bytes until an armed cut, 0 when disarmed
	onCut    func(n int) // called after an armed cut
}

// relayed is one relayed connection: the accepted one and the one to the
// target.
type relayed struct{ client, server net.Conn }

// abort closes both connections; with reset, with a TCP RST instead of a
// FIN, as when a network path fails.
func (p *relayed) abort(reset bool) {
	for _, c := range []net.Conn{p.client, p.server} {
		if tc, ok := c.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// newRelay listens on 127.0.0.1 and relays to target.
func newRelay(target string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, target: target, pairs: map[*relayed]struct{}{}}
	r.wg.Go(r.accept)
	return r, nil
}

// Addr is the address to dial instead of the target.
func (r *relay) Addr() string { return r.ln.Addr().String() }

// Down returns how many bytes the relay has forwarded from the target.
func (r *relay) Down() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down
}

// CutAfter arms a one-shot cut: once n more bytes have come from the
// target, the relay forwards up to the n-th byte, cuts every connection
// (Cut) and calls then with the number cut. n <= 0 disarms it.
func (r *relay) CutAfter(n int64, then func(cut int)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.budget, r.onCut = max(n, 0), then
}

// CutPending reports whether a cut armed by CutAfter has not happened yet.
func (r *relay) CutPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.budget > 0
}

// Cut resets every connection the relay carries, on both sides, and
// returns how many relayed connections it cut. New connections are
// relayed as before.
func (r *relay) Cut() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cutLocked()
}

func (r *relay) cutLocked() int {
	n := len(r.pairs)
	for p := range r.pairs {
		p.abort(true)
		delete(r.pairs, p)
	}
	return n
}

func (r *relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return // closed
		}
		r.wg.Go(func() { r.serve(c) })
	}
}

func (r *relay) serve(client net.Conn) {
	server, err := net.DialTimeout("tcp", r.target, relayDialTimeout)
	if err != nil {
		client.Close()
		return
	}
	p := &relayed{client: client, server: server}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		p.abort(false)
		return
	}
	r.pairs[p] = struct{}{}
	r.accepted++
	n, onAccept := r.accepted, r.onAccept
	r.mu.Unlock()
	if onAccept != nil {
		onAccept(n)
	}
	var both sync.WaitGroup
	both.Go(func() { r.forward(client, server, true) })
	both.Go(func() { r.forward(server, client, false) })
	both.Wait()
	r.mu.Lock()
	delete(r.pairs, p)
	r.mu.Unlock()
}

// forward copies src to dst until either fails, then closes both so that
// the other direction ends too. down is the direction from the target.
func (r *relay) forward(dst, src net.Conn, down bool) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, relayBufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk, cut := buf[:n], false
			if down {
				chunk, cut = r.count(chunk)
			}
			if _, werr := dst.Write(chunk); werr != nil {
				return
			}
			if cut {
				r.mu.Lock()
				k, then := r.cutLocked(), r.onCut
				r.onCut = nil
				r.mu.Unlock()
				if then != nil {
					then(k)
				}
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// count adds b to the bytes forwarded from the target and returns the part
// of b to forward, and whether an armed cut is due after it.
func (r *relay) count(b []byte) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.budget > 0 && int64(len(b)) >= r.budget {
		b = b[:r.budget]
		r.budget = 0
		r.down += int64(len(b))
		return b, true
	}
	if r.budget > 0 {
		r.budget -= int64(len(b))
	}
	r.down += int64(len(b))
	return b, false
}

// Close stops the relay, closes its connections and waits for its
// goroutines. It is idempotent.
func (r *relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for p := range r.pairs {
		p.abort(false)
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
