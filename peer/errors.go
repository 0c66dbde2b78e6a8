package peer

import (
	"errors"
	"fmt"
)

// Sentinel errors. The root package re-exports them.
var (
	ErrPeerLost     = errors.New("slc: peer lost")
	ErrUnknownPeer  = errors.New("slc: unknown peer")
	ErrDisconnected = errors.New("slc: peer disconnected")
	ErrClosed       = errors.New("slc: communicator closed")
	ErrTooLarge     = errors.New("slc: message too large for peer")
	ErrNoPeers      = errors.New("slc: no peers to send to")
	// ErrAbandoned: a large message was given up part way: its sender's
	// context ended between chunks, or the receiver restarted while it
	// held part of it. It is never delivered, in part or whole.
	ErrAbandoned = errors.New("slc: message abandoned part way")
)

// PeerError reports a failure concerning one peer. Attempt, when non-zero,
// is the number of consecutive failed connection attempts; supervisors use
// it for their retry budget.
type PeerError struct {
	Peer    ID     // "" when the name is not known yet (first dial)
	Addr    string // remote address, when known
	Op      string // "dial", "handshake", "read", "write", "send", "ack", ...
	Err     error
	attempt int
}

func (e *PeerError) Error() string {
	who := string(e.Peer)
	if who == "" {
		who = e.Addr
	} else if e.Addr != "" {
		who = fmt.Sprintf("%s (%s)", e.Peer, e.Addr)
	}
	if who == "" {
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("peer %s: %s: %v", who, e.Op, e.Err)
}

func (e *PeerError) Unwrap() error { return e.Err }

// Attempt is the number of consecutive failed attempts, for supervisors.
func (e *PeerError) Attempt() int { return e.attempt }

// Timeout reports whether the underlying error is a timeout, so a
// *PeerError satisfies the timeout half of net.Error.
func (e *PeerError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}
