package testutil

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// memNetwork is the network name of every in-memory address.
const memNetwork = "memnet"

// MemAddr is the address of one end of an in-memory connection or of an
// in-memory listener.
type MemAddr string

// Network returns "memnet".
func (MemAddr) Network() string { return memNetwork }

// String returns the address itself.
func (a MemAddr) String() string { return string(a) }

// NewBufferedPipe returns the two ends of an in-memory, full-duplex
// connection with a buffer of size bytes in each direction (size < 1 is
// treated as 1). Unlike net.Pipe, Write blocks only while the buffer towards
// the peer is full, which is closer to a TCP socket.
//
// Both ends implement net.Conn, including deadlines, plus CloseWrite.
// Closing follows TCP: the peer reads what was buffered, then io.EOF; writing
// to a closed peer fails with an error wrapping syscall.EPIPE (unread bytes
// are discarded); operations on the closed end itself fail with an error
// wrapping net.ErrClosed. Deadline expiry fails with an error wrapping
// os.ErrDeadlineExceeded whose Timeout method reports true.
//
// The pipe only blocks on channels and timers, so it works inside a
// testing/synctest bubble, where timeouts follow the bubble's fake clock.
// Create it inside the bubble that uses it.
func NewBufferedPipe(size int) (net.Conn, net.Conn) {
	a, b := newBufferedPipe(size, MemAddr("pipe-a"), MemAddr("pipe-b"))
	return a, b
}

func newBufferedPipe(size int, addrA, addrB net.Addr) (*pipeConn, *pipeConn) {
	size = max(size, 1)
	ab := &pipeBuf{size: size, changed: make(chan struct{})}
	ba := &pipeBuf{size: size, changed: make(chan struct{})}
	a := &pipeConn{rx: ba, tx: ab, local: addrA, remote: addrB}
	b := &pipeConn{rx: ab, tx: ba, local: addrB, remote: addrA}
	for _, c := range []*pipeConn{a, b} {
		c.rd.changed = make(chan struct{})
		c.wd.changed = make(chan struct{})
		c.closing = make(chan struct{})
	}
	return a, b
}

// pipeBuf is one direction of a buffered pipe.
type pipeBuf struct {
	size int

	mu      sync.Mutex
	data    []byte
	off     int           // data[off:] is unread
	wclosed bool          // writer closed: reader gets EOF after draining
	rclosed bool          // reader closed: writer gets EPIPE
	changed chan struct{} // closed and replaced on every state change
}

// broadcastLocked wakes every goroutine waiting for a change.
func (b *pipeBuf) broadcastLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// deadline is a settable read or write deadline.
type deadline struct {
	mu      sync.Mutex
	t       time.Time
	changed chan struct{} // closed and replaced when t changes
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	d.t = t
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func (d *deadline) get() (time.Time, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.t, d.changed
}

// pipeConn is one end of a buffered pipe.
type pipeConn struct {
	rx, tx        *pipeBuf
	local, remote net.Addr
	rd, wd        deadline

	closeOnce sync.Once
	closing   chan struct{} // closed by Close
}

func (c *pipeConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: memNetwork, Source: c.local, Addr: c.remote, Err: err}
}

func (c *pipeConn) isClosed() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// block waits until wake is closed, the deadline changes or expires, or the
// connection is closed. It returns a non-nil error for expiry or closure.
func (c *pipeConn) block(wake <-chan struct{}, d *deadline) error {
	t, dchanged := d.get()
	var timeout <-chan time.Time
	if !t.IsZero() {
		wait := time.Until(t)
		if wait <= 0 {
			return os.ErrDeadlineExceeded
		}
		timer := time.NewTimer(wait)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-wake:
	case <-dchanged:
	case <-timeout:
		return os.ErrDeadlineExceeded
	case <-c.closing:
		return net.ErrClosed
	}
	return nil
}

func expired(d *deadline) bool {
	t, _ := d.get()
	return !t.IsZero() && !time.Now().Before(t)
}

// Read reads buffered bytes sent by the peer, blocking while there are none.
func (c *pipeConn) Read(p []byte) (int, error) {
	b := c.rx
	for {
		if c.isClosed() {
			return 0, c.opError("read", net.ErrClosed)
		}
		if expired(&c.rd) {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		b.mu.Lock()
		if b.off < len(b.data) {
			n := copy(p, b.data[b.off:])
			b.off += n
			if b.off == len(b.data) {
				b.data, b.off = b.data[:0], 0
			}
			if n > 0 {
				b.broadcastLocked()
			}
			b.mu.Unlock()
			return n, nil
		}
		if b.wclosed {
			b.mu.Unlock()
			return 0, io.EOF
		}
		if len(p) == 0 {
			b.mu.Unlock()
			return 0, nil
		}
		wake := b.changed
		b.mu.Unlock()
		err := c.block(wake, &c.rd)
		if err != nil {
			return 0, c.opError("read", err)
		}
	}
}

// Write buffers p for the peer, blocking while the buffer is full. It
// returns early, with the count written so far, on an error.
func (c *pipeConn) Write(p []byte) (int, error) {
	b := c.tx
	written := 0
	for {
		if c.isClosed() {
			return written, c.opError("write", net.ErrClosed)
		}
		if expired(&c.wd) {
			return written, c.opError("write", os.ErrDeadlineExceeded)
		}
		b.mu.Lock()
		if b.wclosed {
			b.mu.Unlock()
			// Shut down for writing with CloseWrite.
			return written, c.opError("write", syscall.EPIPE)
		}
		if b.rclosed {
			b.mu.Unlock()
			return written, c.opError("write", syscall.EPIPE)
		}
		if written == len(p) {
			b.mu.Unlock()
			return written, nil
		}
		if free := b.size - (len(b.data) - b.off); free > 0 {
			n := min(free, len(p)-written)
			if b.off > 0 && len(b.data)+n > cap(b.data) {
				// Reuse the consumed front of the buffer.
				b.data = b.data[:copy(b.data, b.data[b.off:])]
				b.off = 0
			}
			b.data = append(b.data, p[written:written+n]...)
			written += n
			b.broadcastLocked()
			b.mu.Unlock()
			if written == len(p) {
				// Done: what the reader does next (even closing) does
				// not undo a write that completed, as with TCP.
				return written, nil
			}
			continue
		}
		wake := b.changed
		b.mu.Unlock()
		err := c.block(wake, &c.wd)
		if err != nil {
			return written, c.opError("write", err)
		}
	}
}

// CloseWrite shuts down the writing side: once the peer has read what is
// buffered it gets io.EOF. Reading is not affected.
func (c *pipeConn) CloseWrite() error {
	if c.isClosed() {
		return c.opError("close", net.ErrClosed)
	}
	c.tx.mu.Lock()
	if !c.tx.wclosed {
		c.tx.wclosed = true
		c.tx.broadcastLocked()
	}
	c.tx.mu.Unlock()
	return nil
}

// Close closes this end. Blocked Read and Write calls on it return an error
// wrapping net.ErrClosed; the peer reads what is buffered and then io.EOF,
// and its writes fail.
func (c *pipeConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closing)
		c.tx.mu.Lock()
		c.tx.wclosed = true
		c.tx.broadcastLocked()
		c.tx.mu.Unlock()
		c.rx.mu.Lock()
		c.rx.rclosed = true
		c.rx.data, c.rx.off = nil, 0 // unread bytes are lost, as with TCP
		c.rx.broadcastLocked()
		c.rx.mu.Unlock()
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

func (c *pipeConn) LocalAddr() net.Addr  { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr { return c.remote }

func (c *pipeConn) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

func (c *pipeConn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

func (c *pipeConn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}
