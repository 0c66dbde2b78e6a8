package testutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
)

// DefaultMemBuffer is the per-direction buffer size of connections made by a
// Network from NewNetwork.
const DefaultMemBuffer = 256 << 10

// memBacklog is how many dialled connections a memnet listener holds before
// Accept takes them; further dials block until there is room.
const memBacklog = 64

// Network is an in-memory network of listeners and connections, for tests
// that run inside a testing/synctest bubble where real sockets cannot be
// used. Addresses are arbitrary strings. A Network and everything made from
// it should be created inside the bubble that uses it.
type Network struct {
	bufSize int // 0: use net.Pipe

	mu        sync.Mutex
	listeners map[string]*memListener
	seq       int
}

// NewNetwork returns a Network whose connections are buffered pipes
// (see NewBufferedPipe) with DefaultMemBuffer bytes per direction.
func NewNetwork() *Network { return NewNetworkBuffered(DefaultMemBuffer) }

// NewNetworkBuffered returns a Network whose connections are buffered pipes
// with size bytes per direction.
func NewNetworkBuffered(size int) *Network {
	return &Network{bufSize: max(size, 1), listeners: make(map[string]*memListener)}
}

// NewNetworkUnbuffered returns a Network whose connections are net.Pipe
// pairs: every Write waits until the peer has read all of it.
func NewNetworkUnbuffered() *Network {
	return &Network{listeners: make(map[string]*memListener)}
}

// Listen starts listening on addr. An empty addr picks a fresh one (see the
// listener's Addr). It fails with an error wrapping syscall.EADDRINUSE if
// the address is taken by a listener that is not closed.
func (n *Network) Listen(addr string) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr == "" {
		n.seq++
		addr = fmt.Sprintf("mem:%d", n.seq)
	}
	if _, ok := n.listeners[addr]; ok {
		return nil, &net.OpError{Op: "listen", Net: memNetwork, Addr: MemAddr(addr),
			Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	}
	ln := &memListener{n: n, addr: MemAddr(addr), changed: make(chan struct{})}
	n.listeners[addr] = ln
	return ln, nil
}

// Dial connects to the listener on addr. It fails with a *net.OpError
// wrapping syscall.ECONNREFUSED if nobody listens there, and with one
// wrapping ctx.Err() if ctx ends first. Like a TCP connect it returns once
// the connection is queued for Accept, which may happen later; it only
// waits while the listener's backlog is full.
func (n *Network) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, n.dialError(addr, err)
	}
	n.mu.Lock()
	ln := n.listeners[addr]
	n.seq++
	local := MemAddr(fmt.Sprintf("%s.%d", memNetwork, n.seq))
	n.mu.Unlock()
	if ln == nil {
		return nil, n.dialError(addr, os.NewSyscallError("connect", syscall.ECONNREFUSED))
	}

	client, server := n.pipe(local, ln.addr)
	for {
		ln.mu.Lock()
		if ln.closed {
			ln.mu.Unlock()
			return nil, n.dialError(addr, os.NewSyscallError("connect", syscall.ECONNREFUSED))
		}
		if len(ln.queue) < memBacklog {
			ln.queue = append(ln.queue, server)
			ln.broadcastLocked()
			ln.mu.Unlock()
			return client, nil
		}
		wake := ln.changed
		ln.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, n.dialError(addr, ctx.Err())
		}
	}
}

func (n *Network) dialError(addr string, err error) error {
	return &net.OpError{Op: "dial", Net: memNetwork, Addr: MemAddr(addr), Err: err}
}

// pipe makes a connected pair; the first end has address local, the second
// address remote.
func (n *Network) pipe(local, remote net.Addr) (net.Conn, net.Conn) {
	if n.bufSize > 0 {
		return newBufferedPipe(n.bufSize, local, remote)
	}
	a, b := net.Pipe()
	return &addrConn{Conn: a, local: local, remote: remote},
		&addrConn{Conn: b, local: remote, remote: local}
}

// addrConn gives a net.Pipe end memnet addresses.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// memListener is a Network listener.
type memListener struct {
	n    *Network
	addr MemAddr

	mu      sync.Mutex
	closed  bool
	queue   []net.Conn    // server ends waiting for Accept
	changed chan struct{} // closed and replaced on every state change
}

func (l *memListener) broadcastLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Accept waits for the next dialled connection. After Close it returns an
// error wrapping net.ErrClosed.
func (l *memListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: memNetwork, Addr: l.addr, Err: net.ErrClosed}
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			l.broadcastLocked()
			l.mu.Unlock()
			return c, nil
		}
		wake := l.changed
		l.mu.Unlock()
		<-wake
	}
}

// Close stops listening: blocked Accept calls return, later dials are
// refused, the address becomes free again, and connections dialled but not
// yet accepted are closed (their clients read io.EOF).
func (l *memListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: memNetwork, Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	pending := l.queue
	l.queue = nil
	l.broadcastLocked()
	l.mu.Unlock()

	l.n.mu.Lock()
	if l.n.listeners[string(l.addr)] == l {
		delete(l.n.listeners, string(l.addr))
	}
	l.n.mu.Unlock()

	for _, c := range pending {
		c.Close()
	}
	return nil
}

// Addr returns the listening address.
func (l *memListener) Addr() net.Addr { return l.addr }
