package rsb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one socket-transport connection: a server's connection to a
// client, or a client's connection to the server. It runs one reader and
// one writer goroutine; Close waits for both. All methods are safe for
// concurrent use.
type Conn struct {
	nc       net.Conn
	maxFrame int
	linger   time.Duration
	deliver  func(*Conn, []byte, *Notification) // called by the reader, in order: the encoded and the decoded notification
	local    atomic.Bool                        // Close was called here

	out chan []byte

	gate   sync.RWMutex // senders shared, shutdown exclusive
	closed bool         // under gate

	closing    chan struct{} // closed once: the writer drains, then shuts the write side
	closingOne sync.Once
	writerDone chan struct{}
	done       chan struct{}
	failOnce   sync.Once
	err        error
	wg         sync.WaitGroup
	onDone     func(*Conn)
}

type connConfig struct {
	maxFrame int
	queue    int
	linger   time.Duration
}

func newConn(nc net.Conn, cc connConfig, deliver func(*Conn, []byte, *Notification), onDone func(*Conn)) *Conn {
	c := &Conn{
		nc:         nc,
		maxFrame:   cc.maxFrame,
		linger:     cc.linger,
		deliver:    deliver,
		out:        make(chan []byte, cc.queue),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		done:       make(chan struct{}),
		onDone:     onDone,
	}
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Done is closed when the connection is over.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

func (c *Conn) fail(err error) {
	c.failOnce.Do(func() {
		c.err = err
		close(c.done)
		c.nc.Close()
		if c.onDone != nil {
			c.onDone(c)
		}
	})
}

// startClosing stops new sends and lets the writer drain its queue and
// shut the write side down.
func (c *Conn) startClosing() {
	c.closingOne.Do(func() {
		c.gate.Lock()
		c.closed = true
		c.gate.Unlock()
		c.nc.SetWriteDeadline(time.Now().Add(c.linger))
		close(c.closing)
	})
}

// Close shuts the connection down in order: it writes what is queued,
// shuts the write side down, waits (up to the linger time) for the peer's
// end of stream, and closes. It is idempotent and returns nil.
func (c *Conn) Close() error {
	c.local.Store(true)
	c.startClosing()
	<-c.writerDone
	t := time.NewTimer(c.linger)
	select {
	case <-c.done: // the reader saw the peer's EOF (or an error)
	case <-t.C:
	}
	t.Stop()
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// send queues a frame, waiting while the queue is full.
func (c *Conn) send(ctx context.Context, frame []byte) error {
	c.gate.RLock()
	defer c.gate.RUnlock()
	if c.closed {
		return ErrClosed
	}
	select {
	case c.out <- frame:
		return nil
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// trySend queues a frame if there is room; it reports false on a full
// queue or a closed connection.
func (c *Conn) trySend(frame []byte) bool {
	c.gate.RLock()
	defer c.gate.RUnlock()
	if c.closed {
		return false
	}
	select {
	case c.out <- frame:
		return true
	default:
		return false
	}
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	defer close(c.writerDone)
	w := bufio.NewWriterSize(c.nc, 32<<10)
	write := func(f []byte) bool {
		if _, err := w.Write(f); err != nil {
			c.fail(fmt.Errorf("%w: write: %w", ErrConnLost, err))
			return false
		}
		return true
	}
	flush := func() bool {
		if err := w.Flush(); err != nil {
			c.fail(fmt.Errorf("%w: write: %w", ErrConnLost, err))
			return false
		}
		return true
	}
	for {
		select {
		case f := <-c.out:
			if !write(f) {
				return
			}
			if len(c.out) == 0 && !flush() {
				return
			}
		case <-c.closing:
			for {
				select {
				case f := <-c.out:
					if !write(f) {
						return
					}
					continue
				default:
				}
				break
			}
			if !flush() {
				return
			}
			if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		case <-c.done:
			return
		}
	}
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	r := bufio.NewReaderSize(c.nc, 32<<10)
	for {
		b, err := ReadFrame(r, c.maxFrame)
		if err != nil {
			switch {
			case errors.Is(err, ErrFrameTooLarge):
				c.fail(err)
			case err == io.EOF:
				// The peer shut its write side down: answer in kind.
				c.startClosing()
				<-c.writerDone
				if c.local.Load() {
					c.fail(ErrClosed)
				} else {
					c.fail(fmt.Errorf("%w: the peer closed the connection", ErrConnLost))
				}
			default:
				c.fail(fmt.Errorf("%w: read: %w", ErrConnLost, err))
			}
			return
		}
		n := new(Notification)
		if err := n.Unmarshal(b); err != nil {
			c.fail(err)
			return
		}
		c.deliver(c, b, n)
	}
}
