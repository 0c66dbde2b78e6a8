package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Transport opens connections and listeners for addresses. NetTransport is
// the default; tests substitute an in-memory network.
type Transport interface {
	Dial(ctx context.Context, addr string) (net.Conn, error)
	Listen(ctx context.Context, addr string) (net.Listener, error)
}

// NetTransport dials and listens with the net package. Addresses are
// "host:port" (IPv4, IPv6 in brackets, or a host name) for TCP, and
// "unix:/path" for a Unix domain socket. "tcp:host:port" is accepted too.
type NetTransport struct {
	// Dialer is used for TCP and Unix dials; the zero value is fine.
	Dialer net.Dialer
	// ListenConfig is used for listeners; the zero value is fine.
	ListenConfig net.ListenConfig
}

// SplitAddr returns the network ("tcp" or "unix") and address for addr.
func SplitAddr(addr string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(addr, "unix:"):
		p := strings.TrimPrefix(addr, "unix:")
		if p == "" {
			return "", "", fmt.Errorf("slc: empty unix socket path in %q", addr)
		}
		return "unix", p, nil
	case strings.HasPrefix(addr, "tcp:"):
		addr = strings.TrimPrefix(addr, "tcp:")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", "", fmt.Errorf("slc: address %q: want host:port or unix:/path: %w", addr, err)
	}
	return "tcp", addr, nil
}

// Dial opens a connection to addr.
func (t NetTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	network, address, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	return t.Dialer.DialContext(ctx, network, address)
}

// Listen opens a listener on addr. For a Unix socket, a stale socket file
// left by a process that died is removed first; a socket someone still
// listens on is not.
func (t NetTransport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	network, address, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := t.ListenConfig.Listen(ctx, network, address)
	if err == nil || network != "unix" || !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	if fi, serr := os.Stat(address); serr != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, err
	}
	c, derr := net.Dial("unix", address)
	if derr == nil {
		c.Close()
		return nil, err // someone is listening: keep the error
	}
	if rerr := os.Remove(address); rerr != nil {
		return nil, err
	}
	return t.ListenConfig.Listen(ctx, network, address)
}

// FormatAddr renders a listener's address in the form Dial accepts.
func FormatAddr(a net.Addr) string {
	if a == nil {
		return ""
	}
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}
