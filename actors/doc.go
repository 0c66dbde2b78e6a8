// Package actors is slc's actor-level API: the typed commands, replies and
// events, and the facade actor that owns a node's tree of listeners and
// peers.
//
// # The tree
//
//	facade (one per Communicator)   owns the sessions; supervises its children
//	├── listener-N (one per Listen)  accept loop and handshakes
//	└── peer-N (one per remote node) owns the session's connection; restarted to reconnect
//
// The facade is the peers' supervisor: the configured strategy (by default
// a supervisor.Backoff) decides whether a failed connection is restarted
// (redialed) and after how long. A restart keeps the PID and the session;
// only the connection is new.
//
// # Commands
//
// Send the commands to the facade's PID (Communicator.PID) with Request or
// RequestFuture and read the reply named in each type's comment:
//
//	res, err := root.RequestFuture(c.PID(), &actors.Connect{Addr: addr}, 5*time.Second).Result()
//	peer := res.(*actors.ConnectResult).Peer
//
// Commands that may block (Send under BufferCap, WaitAcknowledged,
// Forward, Disconnect) run in order on a worker, off the facade's mailbox.
//
// # Subscriptions
//
// Subscribe pushes received messages to an actor as *Received, in order
// per sender, instead of queueing them for Communicator.Receive. Messages
// already waiting are pushed first. A subscriber's mailbox is unbounded,
// so a subscription gives up the mailbox's backpressure: use Receive when
// the consumer may fall behind. The facade watches subscribers; messages
// pushed to one that stopped before the facade noticed are lost with it.
//
// # Events
//
// PeerConnected, PeerDisconnected, PeerReconnecting, PeerLost,
// HandshakeRejected, MessagesAcknowledged and ListenerFailed are published
// on the actor system's EventStream. MessagesAcknowledged is published
// once per acknowledgement frame, which covers every message up to UpTo.
//
// # The data path
//
// Core is the data path the facade and the blocking Communicator share.
// Sends, acknowledgement queries and receives go straight to the sessions
// and the mailbox, with no actor hop per message; only the control plane
// (listen, connect, bind, disconnect, events) goes through the facade.
//
// # Concurrency
//
// Core's methods are safe for concurrent use. The facade's state belongs to
// its mailbox goroutine.
package actors
