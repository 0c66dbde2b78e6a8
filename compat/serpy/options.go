package serpy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/slc-go/slc/compat"
)

// Protocol selects the wire protocol: the original serpy (v1) or serpy2.
// The two are not compatible; both ends must use the same.
type Protocol int

// The protocols.
const (
	V1 Protocol = 1 // serpy: blocks ended by 0x1F, modes 0 to 3
	V2 Protocol = 2 // serpy2: typed frames starting with DE CA FE CA FE
)

func (p Protocol) String() string {
	switch p {
	case V1:
		return "serpy"
	case V2:
		return "serpy2"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// Defaults.
const (
	DefaultInbox       = 256
	DefaultLinger      = time.Second
	DefaultDialTimeout = 5 * time.Second
)

type config struct {
	protocol    Protocol
	maxFrame    int
	inbox       int
	linger      time.Duration
	backoff     compat.Backoff
	autoRestart bool
	dialTimeout time.Duration
	dial        func(ctx context.Context, addr string) (net.Conn, error)
	maxConns    int
}

func newConfig(opts []Option) (config, error) {
	c := config{
		protocol:    V2,
		maxFrame:    DefaultMaxFrame,
		inbox:       DefaultInbox,
		linger:      DefaultLinger,
		autoRestart: true,
		dialTimeout: DefaultDialTimeout,
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return config{}, err
		}
	}
	if c.dial == nil {
		c.dial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return c, nil
}

// Option configures a Client, a Server and their connections.
type Option func(*config) error

// WithProtocol chooses serpy (V1) or serpy2 (V2, the default).
func WithProtocol(p Protocol) Option {
	return func(c *config) error {
		if p != V1 && p != V2 {
			return fmt.Errorf("serpy: unknown protocol %d", int(p))
		}
		c.protocol = p
		return nil
	}
}

// WithMaxFrame bounds the size of one received frame, block or message
// (DefaultMaxFrame). Larger ones end the connection with ErrFrameTooLarge.
func WithMaxFrame(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return errors.New("serpy: WithMaxFrame needs a positive size")
		}
		c.maxFrame = n
		return nil
	}
}

// WithInbox sets how many received messages wait for Receive
// (DefaultInbox). When they are that many, the connection stops reading
// and TCP pushes back on the sender.
func WithInbox(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("serpy: WithInbox needs at least 1")
		}
		c.inbox = n
		return nil
	}
}

// WithLinger bounds how long Close spends writing what Send queued
// (DefaultLinger).
func WithLinger(d time.Duration) Option {
	return func(c *config) error {
		c.linger = d
		return nil
	}
}

// WithAutoRestart turns the client's reconnection on (the default) or off.
// With it a broken connection is dialled again after the backoff delays
// (WithBackoff), as serpy's auto_restart does; without it the client ends
// with the connection.
func WithAutoRestart(on bool) Option {
	return func(c *config) error {
		c.autoRestart = on
		return nil
	}
}

// WithBackoff sets the client's reconnect policy.
func WithBackoff(b compat.Backoff) Option {
	return func(c *config) error {
		c.backoff = b
		return nil
	}
}

// WithDialTimeout bounds each connection attempt (DefaultDialTimeout).
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) error {
		c.dialTimeout = d
		return nil
	}
}

// WithDialer replaces the TCP dialer (for tests, proxies or Unix
// sockets).
func WithDialer(dial func(ctx context.Context, addr string) (net.Conn, error)) Option {
	return func(c *config) error {
		c.dial = dial
		return nil
	}
}

// WithMaxConns bounds the connections a Server keeps at once (0: no
// bound). A connection over the bound is closed as soon as it is
// accepted.
func WithMaxConns(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return errors.New("serpy: WithMaxConns needs 0 or more")
		}
		c.maxConns = n
		return nil
	}
}
