package slc

import (
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

// Errors. Compare with errors.Is.
var (
	// ErrPeerLost: the session with the peer ended without a goodbye (the
	// retry budget was spent, or the error was permanent).
	ErrPeerLost = peer.ErrPeerLost
	// ErrUnknownPeer: no session with a peer of that name.
	ErrUnknownPeer = peer.ErrUnknownPeer
	// ErrDisconnected: the session ended by a goodbye from either side.
	ErrDisconnected = peer.ErrDisconnected
	// ErrClosed: the communicator is closed.
	ErrClosed = peer.ErrClosed
	// ErrTooLarge: the message exceeds what the peer accepts.
	ErrTooLarge = peer.ErrTooLarge
	// ErrNoPeers: Send without targets while no peer is connected.
	ErrNoPeers = peer.ErrNoPeers
	// ErrAbandoned: a large message was given up part way and is never
	// delivered (see PeerConnected.Abandoned).
	ErrAbandoned = peer.ErrAbandoned
)

// PeerError reports a failure concerning one peer; it unwraps to the
// cause. Its Timeout method makes timeouts recognizable as net.Error's are.
type PeerError = peer.PeerError

// SendError reports a message that reached some targets and not others.
type SendError = peer.SendError

// ProtocolError is a wire protocol violation or a handshake rejection,
// with a Code; Remote tells whether the other side reported it.
type ProtocolError = wire.ProtocolError
