package rsb

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/slc-go/slc/compat"
)

// Defaults of the options.
const (
	DefaultQueue  = 1024 // notifications queued per connection for sending
	DefaultInbox  = 1024 // notifications waiting for Receive
	DefaultLinger = 2 * time.Second
)

// Option configures a Server or a Client.
type Option func(*config) error

type config struct {
	maxFrame    int
	queue       int
	inbox       int
	linger      time.Duration
	backoff     compat.Backoff
	autoRestart bool
	dial        func(ctx context.Context, addr string) (net.Conn, error)
}

func defaultConfig() config {
	return config{
		maxFrame:    DefaultMaxFrame,
		queue:       DefaultQueue,
		inbox:       DefaultInbox,
		linger:      DefaultLinger,
		autoRestart: true,
	}
}

func newConfig(opts []Option) (*config, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.dial == nil {
		var d net.Dialer
		cfg.dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	return &cfg, nil
}

func (c *config) conn() connConfig {
	return connConfig{maxFrame: c.maxFrame, queue: c.queue, linger: c.linger}
}

// WithMaxFrame bounds the size of a received notification
// (DefaultMaxFrame). A larger one closes the connection with
// ErrFrameTooLarge.
func WithMaxFrame(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("rsb: WithMaxFrame(%d): must be positive", n)
		}
		c.maxFrame = n
		return nil
	}
}

// WithQueue sets how many notifications each connection queues for
// sending (DefaultQueue). A client's Publish waits while its queue is
// full; a server closes a client whose queue is full (ErrSlowPeer).
func WithQueue(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("rsb: WithQueue(%d): must be positive", n)
		}
		c.queue = n
		return nil
	}
}

// WithInbox sets how many received notifications wait for Receive
// (DefaultInbox). When it is full the connections stop reading, and TCP
// pushes back on the senders.
func WithInbox(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("rsb: WithInbox(%d): must be positive", n)
		}
		c.inbox = n
		return nil
	}
}

// WithLinger bounds how long Close writes what is queued and waits for the
// peer's end of stream (DefaultLinger).
func WithLinger(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("rsb: WithLinger(%v): must be positive", d)
		}
		c.linger = d
		return nil
	}
}

// WithBackoff sets a Client's reconnect policy (compat.DefaultBackoff).
func WithBackoff(b compat.Backoff) Option {
	return func(c *config) error { c.backoff = b; return nil }
}

// WithAutoRestart says whether a Client reconnects after its connection
// breaks (true by default).
func WithAutoRestart(on bool) Option {
	return func(c *config) error { c.autoRestart = on; return nil }
}

// WithDialer replaces how a Client dials (net.Dialer over TCP by
// default): tests use it, as do programs that tunnel.
func WithDialer(dial func(ctx context.Context, addr string) (net.Conn, error)) Option {
	return func(c *config) error {
		if dial == nil {
			return fmt.Errorf("rsb: WithDialer(nil)")
		}
		c.dial = dial
		return nil
	}
}
