package actors

import (
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/peer"
)

// Commands: send them to the facade PID with Request (or RequestFuture) to
// get the reply named in each comment. A Timeout of 0 means the
// communicator's default (its connect Timeout for Connect, no limit for
// blocking sends).
type (
	// Listen opens a listener. Reply: *ListenResult.
	Listen struct {
		Addr string // "host:port", "[::1]:0", "unix:/path"
	}
	// ListenResult answers Listen with the bound address.
	ListenResult struct {
		Addr net.Addr
		Err  error
	}

	// Unlisten closes the listener bound to Addr (as ListenResult gave
	// it). Reply: *Unlistened.
	Unlisten struct {
		Addr string
	}
	// Unlistened answers Unlisten.
	Unlistened struct {
		Err error
	}

	// Connect connects to a node and waits until the session is up, the
	// retry budget is spent or Timeout passes. Reply: *ConnectResult.
	Connect struct {
		Addr    string
		Timeout time.Duration
	}
	// ConnectResult answers Connect with the remote node's name.
	ConnectResult struct {
		Peer peer.ID
		Err  error
	}

	// Send sends Body, serialized with the communicator's serializer, to
	// the named peers (none = every peer). With Raw set, Body must be a
	// []byte and goes as it is. Sends from actors are queued in order on a
	// worker: one blocked by BufferCap delays the ones behind it.
	// Reply: *SendResult.
	Send struct {
		To      []peer.ID
		Body    any
		Raw     bool
		Timeout time.Duration
	}
	// SendResult answers Send.
	SendResult struct {
		ID  peer.MsgID
		Err error
	}

	// WaitAcknowledged waits until the message is acknowledged by the
	// named peers (none = every peer it was sent to).
	// Reply: *AckResult.
	WaitAcknowledged struct {
		ID      peer.MsgID
		Peers   []peer.ID
		Timeout time.Duration
	}
	// AckResult answers WaitAcknowledged.
	AckResult struct {
		ID  peer.MsgID
		Err error
	}

	// IsAcknowledged asks, without waiting, whether the message is
	// acknowledged. Reply: *AckStatus.
	IsAcknowledged struct {
		ID    peer.MsgID
		Peers []peer.ID
	}
	// AckStatus answers IsAcknowledged.
	AckStatus struct {
		ID           peer.MsgID
		Acknowledged bool
	}

	// Forward re-sends the messages waiting in the mailbox from From to
	// To. Reply: *ForwardResult.
	Forward struct {
		From, To peer.ID
		Timeout  time.Duration
	}
	// ForwardResult answers Forward.
	ForwardResult struct {
		N   int
		Err error
	}

	// Disconnect waits (up to Timeout) until everything sent to the named
	// peers (none = every peer) is acknowledged, then says goodbye and
	// ends their sessions. Reply: *DisconnectResult.
	Disconnect struct {
		Peers   []peer.ID
		Timeout time.Duration
	}
	// DisconnectResult answers Disconnect. Err is set when the flush did
	// not finish (the undelivered messages are in PeerDisconnected).
	DisconnectResult struct {
		Err error
	}

	// Subscribe pushes every message from the named peers (none = every
	// peer) to Subscriber as *Received, instead of queueing it for
	// Receive. Messages already waiting are pushed first. The facade
	// watches the subscriber and unsubscribes it when it stops.
	// Reply: *Subscribed.
	Subscribe struct {
		Subscriber *actor.PID
		From       []peer.ID
	}
	// Subscribed answers Subscribe.
	Subscribed struct{}

	// Unsubscribe ends Subscriber's subscriptions. Reply: *Unsubscribed.
	Unsubscribe struct {
		Subscriber *actor.PID
	}
	// Unsubscribed answers Unsubscribe.
	Unsubscribed struct{}

	// Received carries one message to a subscriber.
	Received struct {
		Message peer.Message
	}

	// GetPeers lists the peers. Reply: *Peers.
	GetPeers struct{}
	// Peers answers GetPeers.
	Peers struct {
		Peers []PeerInfo
	}
)

// PeerInfo describes one peer.
type PeerInfo struct {
	ID      peer.ID
	Addr    string // the remote address of the current or last connection
	Dial    string // the address the session reconnects to, "" if the peer dialed us
	State   peer.State
	Session peer.Stats
}

// Events, published on the actor system's EventStream. Names are past
// tense. EventStream handlers run synchronously on the publishing
// goroutine: keep them short and never block in them.
type (
	// PeerConnected: a connection to Peer completed its handshake.
	// Resumed is true when the session existed before (a reconnect);
	// Restarted when the remote is a new instance of the node (it
	// restarted, so messages it had not acknowledged were re-sent).
	// Abandoned lists large messages the remote had received part of
	// before it restarted: they cannot be resumed and are not delivered.
	PeerConnected struct {
		Peer      peer.ID
		Addr      string
		Inbound   bool
		Resumed   bool
		Restarted bool
		Instance  uint64 // the remote's instance: it changes when the remote restarts
		Key       string // secure mode: the fingerprint of the key the peer proved
		Abandoned []peer.MsgID
	}

	// PeerDisconnected: a connection to Peer ended. With Reconnecting the
	// session goes on (this side redials, or waits for the remote). Final
	// marks the end of the session by a goodbye from either side;
	// Undelivered lists what was still unacknowledged then.
	PeerDisconnected struct {
		Peer         peer.ID
		Err          error
		Reconnecting bool
		Final        bool
		Undelivered  []peer.MsgID
	}

	// PeerReconnecting: the supervisor scheduled reconnect attempt
	// Attempt to Addr after Delay. Peer is "" for a first connect whose
	// name is not known yet.
	PeerReconnecting struct {
		Peer    peer.ID
		Addr    string
		Attempt int
		Delay   time.Duration
		Err     error
	}

	// PeerLost: the session with Peer ended without a goodbye: the retry
	// budget is spent, the error is permanent, or an inbound peer did not
	// come back within the linger time. Undelivered lists the messages
	// that will never be delivered; sends to Peer now fail.
	PeerLost struct {
		Peer        peer.ID
		Addr        string
		Err         error
		Undelivered []peer.MsgID
	}

	// HandshakeRejected: a connection failed before it carried messages:
	// bad preamble, wrong version or security mode, a malformed hello, an
	// unauthorized key, a name conflict, a client that said nothing. Peer
	// is the name from the hello when one arrived. ByRemote is true when
	// the other side rejected this one.
	HandshakeRejected struct {
		Addr     string
		Peer     peer.ID
		Err      error
		ByRemote bool
	}

	// MessagesAcknowledged: Peer acknowledged every message up to and
	// including UpTo that was sent to it. Acknowledgements are cumulative
	// and batched: one event may cover many messages.
	MessagesAcknowledged struct {
		Peer peer.ID
		UpTo peer.MsgID
	}

	// ListenerFailed: a listener stopped accepting and is being restarted
	// (or stopped, when its supervisor gives up).
	ListenerFailed struct {
		Addr string
		Err  error
	}
)
