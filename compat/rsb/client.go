package rsb

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrLost reports a Client that gave up reconnecting: its retry budget
// (WithBackoff) is spent, or auto-restart is off.
var ErrLost = errors.New("rsb: connection lost for good")

// Client is the client side of an RSB socket bus. After its connection
// breaks it dials again (WithAutoRestart, on by default) with the backoff
// of WithBackoff; notifications in flight when a connection breaks are
// lost, as with RSB. All methods are safe for concurrent use.
type Client struct {
	addr  string
	cfg   *config
	inbox chan *Notification

	mu      sync.Mutex
	cur     *Conn         // nil while reconnecting
	changed chan struct{} // closed when cur changes

	ctx    context.Context // ends with Close: bounds the reconnecting dials
	cancel context.CancelFunc

	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{} // the client is over
	err       error         // set before done is closed
	wg        sync.WaitGroup
}

// Dial connects to the server at addr (DefaultAddr when empty) and reads
// its handshake. The first connection must succeed within ctx; later ones
// are the client's own business.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		addr:    addr,
		cfg:     cfg,
		inbox:   make(chan *Notification, cfg.inbox),
		changed: make(chan struct{}),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.setConn(conn)
	c.wg.Add(1)
	go c.supervise(conn)
	return c, nil
}

func (c *Client) connect(ctx context.Context) (*Conn, error) {
	nc, err := c.cfg.dial(ctx, c.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	err = readHandshake(nc)
	if !stop() {
		nc.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return newConn(nc, c.cfg.conn(), c.deliver, nil), nil
}

func (c *Client) deliver(from *Conn, _ []byte, n *Notification) {
	select {
	case c.inbox <- n:
	case <-from.done:
	case <-c.closing:
	}
}

func (c *Client) setConn(conn *Conn) {
	c.mu.Lock()
	c.cur = conn
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// supervise waits for the connection to end and dials again.
func (c *Client) supervise(conn *Conn) {
	defer c.wg.Done()
	for {
		select {
		case <-conn.done:
		case <-c.closing:
			conn.Close()
			c.finish(ErrClosed)
			return
		}
		c.setConn(nil)
		conn.Close() // waits for its goroutines
		err := conn.Err()
		if !errors.Is(err, ErrConnLost) && !errors.Is(err, ErrSlowPeer) {
			c.finish(err) // a protocol error: reconnecting would repeat it
			return
		}
		if !c.cfg.autoRestart {
			c.finish(fmt.Errorf("%w: %w", ErrLost, err))
			return
		}
		conn = c.reconnect(err)
		if conn == nil {
			return
		}
		c.setConn(conn)
	}
}

// reconnect dials until it succeeds, the budget is spent or Close; nil
// means the client is finished.
func (c *Client) reconnect(cause error) *Conn {
	ctx := c.ctx
	budget := c.cfg.backoff.Budget()
	for n := 1; budget < 0 || n <= budget; n++ {
		if !c.cfg.backoff.Wait(ctx, c.closing, n) {
			c.finish(ErrClosed)
			return nil
		}
		conn, err := c.connect(ctx)
		if err == nil {
			return conn
		}
		cause = err
		select {
		case <-c.closing:
			c.finish(ErrClosed)
			return nil
		default:
		}
	}
	c.finish(fmt.Errorf("%w after %d attempts: %w", ErrLost, budget, cause))
	return nil
}

func (c *Client) finish(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.done)
}

// Done is closed when the client is over: closed, or lost for good.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client is over, or nil while it runs.
func (c *Client) Err() error {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	default:
		return nil
	}
}

// Connected reports whether the client has a connection now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil
}

// Publish sends n to the server, which passes it on to the other clients.
// While the client reconnects, Publish waits for the new connection, up
// to ctx. It returns once n is queued for the socket.
func (c *Client) Publish(ctx context.Context, n *Notification) error {
	frame := AppendFrame(nil, n)
	for {
		c.mu.Lock()
		conn, changed := c.cur, c.changed
		c.mu.Unlock()
		if conn != nil {
			err := conn.send(ctx, frame)
			if err == nil || ctx.Err() != nil {
				return err
			}
			// The connection ended before taking the frame: wait for
			// the next one.
		}
		select {
		case <-changed:
		case <-c.done:
			return c.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Receive returns the next notification from the bus. Once the client is
// over and its notifications are read, it returns why it ended.
func (c *Client) Receive(ctx context.Context) (*Notification, error) {
	select {
	case n := <-c.inbox:
		return n, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		select {
		case n := <-c.inbox:
			return n, nil
		default:
			return nil, c.Err()
		}
	}
}

// Close closes the connection in order (see Conn.Close), stops
// reconnecting and waits for the client's goroutines. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.cancel()
	})
	c.wg.Wait()
	return nil
}
