package serpy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrLost reports a client whose reconnect budget is spent, or which
// ended because its connection failed without auto-restart.
var ErrLost = errors.New("serpy: connection lost for good")

// Client is a connection to a serpy or serpy2 server that heals itself:
// with auto-restart (the default), a broken connection is dialled again
// after the backoff delays, as serpy's Connection(auto_restart=True)
// does, and Send and Receive carry on over the new connection. All
// methods are safe for concurrent use.
//
// Delivery across a reconnect: messages of modes 1 and 3 (serpy) are sent
// again on the new connection until the peer acknowledges them, so they
// arrive at least once; messages of modes 0 and 2, and serpy2 frames,
// queued when the connection broke may be lost, as with serpy itself
// (the protocols have no way to tell what arrived).
type Client struct {
	cfg   config
	addr  string
	inbox chan any

	ctx    context.Context // ends when Close is called
	cancel context.CancelFunc

	mu         sync.Mutex
	conn       *Conn         // nil while reconnecting or ended
	changed    chan struct{} // closed and replaced whenever conn changes
	ended      chan struct{}
	endErr     error
	reconnects int

	wg sync.WaitGroup
}

// Dial connects to a serpy or serpy2 server at addr (host:port). With
// auto-restart it tries again after the backoff delays until it connects,
// the budget is spent or ctx ends; without it, it tries once.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:     cfg,
		addr:    addr,
		inbox:   make(chan any, cfg.inbox),
		changed: make(chan struct{}),
		ended:   make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	nc, err := c.dialRetry(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.setConn(newConn(nc, &c.cfg, c.inbox, nil))
	c.wg.Add(1)
	go c.supervise()
	return c, nil
}

// dialRetry dials addr, with the backoff between attempts when
// auto-restart is on.
func (c *Client) dialRetry(ctx context.Context) (net.Conn, error) {
	budget := c.cfg.backoff.Budget()
	var lastErr error
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if !c.cfg.autoRestart || budget >= 0 && attempt > budget+1 {
				return nil, fmt.Errorf("%w: %d attempts: %w", ErrLost, attempt-1, lastErr)
			}
			if !c.cfg.backoff.Wait(ctx, c.ctx.Done(), attempt-1) {
				if c.ctx.Err() != nil {
					return nil, ErrClosed
				}
				return nil, fmt.Errorf("serpy: dial %s: %w (last error: %w)", c.addr, ctx.Err(), lastErr)
			}
		}
		dctx, cancel := context.WithTimeout(ctx, c.cfg.dialTimeout)
		stop := context.AfterFunc(c.ctx, cancel)
		nc, err := c.cfg.dial(dctx, c.addr)
		stop()
		cancel()
		if err == nil {
			return nc, nil
		}
		lastErr = err
		if c.ctx.Err() != nil {
			return nil, ErrClosed
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("serpy: dial %s: %w", c.addr, err)
		}
	}
}

// setConn replaces the current connection (nil while reconnecting).
func (c *Client) setConn(conn *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	close(c.changed)
	c.changed = make(chan struct{})
}

// supervise waits for the current connection to end and replaces it.
func (c *Client) supervise() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		select {
		case <-conn.Done():
		case <-c.ctx.Done():
			return
		}
		err := conn.Err()
		conn.Close()
		if c.ctx.Err() != nil {
			return
		}
		if !c.cfg.autoRestart || !errors.Is(err, ErrConnLost) {
			c.end(fmt.Errorf("%w: %w", ErrLost, err))
			return
		}
		c.setConn(nil)
		nc, err := c.dialRetry(c.ctx)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.end(err)
			return
		}
		c.mu.Lock()
		c.reconnects++
		c.mu.Unlock()
		c.setConn(newConn(nc, &c.cfg, c.inbox, nil))
	}
}

// end ends the client with err.
func (c *Client) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.ended:
		return
	default:
	}
	c.endErr = err
	close(c.ended)
}

// current waits for a live connection.
func (c *Client) current(ctx context.Context) (*Conn, error) {
	for {
		c.mu.Lock()
		conn, changed := c.conn, c.changed
		c.mu.Unlock()
		select {
		case <-c.ended:
			return nil, c.endErr
		default:
		}
		if conn != nil && conn.Err() == nil {
			return conn, nil
		}
		select {
		case <-changed:
		case <-c.ended:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Send sends v (see Conn.Send), waiting for a connection while the client
// reconnects.
func (c *Client) Send(ctx context.Context, v any) error {
	return c.send(ctx, func(conn *Conn) error { return conn.Send(ctx, v) })
}

// SendMode sends v in mode m on a serpy connection (see Conn.SendMode).
// In modes 1 and 3 a message whose connection breaks before its
// acknowledgement is sent again on the next connection.
func (c *Client) SendMode(ctx context.Context, v any, m Mode) error {
	return c.send(ctx, func(conn *Conn) error { return conn.SendMode(ctx, v, m) })
}

func (c *Client) send(ctx context.Context, f func(*Conn) error) error {
	for {
		conn, err := c.current(ctx)
		if err != nil {
			return err
		}
		err = f(conn)
		if err == nil || !c.cfg.autoRestart || !errors.Is(err, ErrConnLost) {
			return err
		}
		// The connection broke under us: the supervisor replaces it, and
		// current waits for that.
	}
}

// Receive returns the next message (see Conn.Receive), from whichever
// connection it came. Once the client has ended and its messages are
// read, it returns why it ended.
func (c *Client) Receive(ctx context.Context) (any, error) {
	select {
	case v := <-c.inbox:
		return v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ended:
		select {
		case v := <-c.inbox:
			return v, nil
		default:
			return nil, c.endErr
		}
	}
}

// TryReceive returns the next message if one is waiting.
func (c *Client) TryReceive() (any, bool) {
	select {
	case v := <-c.inbox:
		return v, true
	default:
		return nil, false
	}
}

// Connected reports whether the client has a live connection now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && c.conn.Err() == nil
}

// Reconnects returns how many times the client reconnected.
func (c *Client) Reconnects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnects
}

// Done is closed when the client has ended: closed, or lost for good.
func (c *Client) Done() <-chan struct{} { return c.ended }

// Err returns why the client ended, or nil while it runs.
func (c *Client) Err() error {
	select {
	case <-c.ended:
		return c.endErr
	default:
		return nil
	}
}

// Close writes what Send queued (up to the linger time), closes the
// connection, stops reconnecting and waits for every goroutine the client
// started. It is idempotent.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	c.end(ErrClosed)
	return nil
}
