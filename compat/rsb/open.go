package rsb

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/slc-go/slc/bus"
)

// Endpoint is one process's place on an RSB socket bus: a *Server or a
// *Client. Publish sends a notification to the other participants and
// Receive returns theirs.
type Endpoint interface {
	Publish(ctx context.Context, n *Notification) error
	Receive(ctx context.Context) (*Notification, error)
	Close() error
}

var (
	_ Endpoint = (*Server)(nil)
	_ Endpoint = (*Client)(nil)
)

// Mode says whether Open serves the bus, joins it, or decides, as RSB's
// transport.socket.server option (1, 0, auto). It is slc's bus.Mode.
type Mode = bus.Mode

// Modes.
const (
	// Auto serves if the address can be bound, and joins the server
	// that holds it otherwise.
	Auto = bus.Auto
	// ServerMode serves.
	ServerMode = bus.ServerMode
	// ClientMode joins.
	ClientMode = bus.ClientMode
)

// Open serves or joins the RSB socket bus at addr (DefaultAddr,
// localhost:55555, when empty).
func Open(ctx context.Context, addr string, mode Mode, opts ...Option) (Endpoint, error) {
	switch mode {
	case ServerMode:
		return Listen(ctx, addr, opts...)
	case ClientMode:
		return Dial(ctx, addr, opts...)
	case Auto:
		s, err := Listen(ctx, addr, opts...)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
		return Dial(ctx, addr, opts...)
	}
	return nil, fmt.Errorf("rsb: unknown mode %d", int(mode))
}
