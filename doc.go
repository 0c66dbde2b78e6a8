// Package slc connects programs with supervised, self-healing connections
// that carry typed messages, exactly once and in order, without a broker.
//
// A Communicator is a node. It listens, connects, sends and receives.
// Connections are actors (github.com/asynkron/protoactor-go) under a
// supervisor: when one breaks, the supervisor restarts it with exponential
// backoff and the session resumes where it left off. Messages that were
// not acknowledged are sent again, and the receiver drops what it already
// has.
//
// # Quick start
//
//	camera, _ := slc.New(slc.WithName("lab-camera"))
//	defer camera.Close()
//	addr, _ := camera.Listen(ctx, "127.0.0.1:0")
//
//	station, _ := slc.New(slc.WithName("workstation"))
//	defer station.Close()
//	peer, _ := station.Connect(ctx, addr.String())
//	id, _ := station.Send(ctx, Temperature{Sensor: "t1", Celsius: 21.5}, peer)
//	_ = station.WaitAcknowledged(ctx, id, peer)
//
//	msg, _ := camera.Receive(ctx)
//	t := msg.Body.(Temperature)
//
// # Addresses
//
// Listen and Connect take "host:port" (IPv4, "[::1]:port" for IPv6, or a
// host name) and "unix:/path" for Unix domain sockets. Port 0 lets the
// system pick; Listen returns the bound address.
//
// # Typed messages
//
// Register a Go type once under a wire name:
//
//	slc.Register[Temperature]("lab.Temperature")
//
// A message whose body is a Temperature (or *Temperature) carries the name,
// and a receiver that registered it gets a Temperature value in
// Message.Body. Unregistered values arrive as generic maps and slices, and
// SendRaw bodies as []byte (in Message.Raw and Message.Body). A body the
// receiver cannot decode arrives with Message.Err set and its bytes in Raw.
// The serializer (msgpack by default, json, raw, or one registered in
// package codec) and per-frame compression (none, s2, zstd, gzip) are
// options; both ends agree on them in the handshake.
//
// # Delivery
//
// Per sender, messages arrive in order and exactly once while both
// processes live, across any number of connection resets: a session
// outlives its connections, unacknowledged messages are kept and re-sent
// after a reconnect, and the receiver drops duplicates by sequence number.
// A message larger than the chunk size travels in chunks; a reset in the
// middle resumes at the next chunk. When a process restarts, its peers see
// a new instance of it and re-send what it had not acknowledged, so
// delivery across restarts is at-least-once. Nothing is dropped silently:
// a message that cannot be delivered ends in an error returned to the
// caller or in the Undelivered list of a PeerLost or PeerDisconnected
// event.
//
// # Acknowledgements
//
// A peer acknowledges a message once it is in the peer's mailbox, not when
// the application calls Receive. Acknowledgements are cumulative and
// batched. WaitAcknowledged blocks until every named target (or every peer
// the message went to) has acknowledged it; IsAcknowledged asks without
// waiting.
//
// # Backpressure
//
// BufferCap (WithBufferCap) bounds each peer's unacknowledged bytes; past
// it, Send blocks until acknowledgements free room or its context ends.
// Each peer's queue in the mailbox is bounded too (WithInboxCap); a full
// queue stops reading that peer's connection, and TCP pushes back on the
// sender. Messages are never dropped to make room.
//
// # Reconnects and supervision
//
// Connect retries failed attempts with exponential backoff and jitter;
// each attempt is bounded by WithTimeout, and WithRetries bounds the
// attempts (RetryForever for no limit). A session whose connection drops
// is redialed the same way; a session the remote dialed waits for it to
// come back (WithLinger). Heartbeats (WithHeartbeat) detect a stalled,
// half-open connection. When the retries are spent the session ends: a
// PeerLost event lists the undelivered messages, and Send to the peer
// fails with an error that names it and wraps ErrPeerLost. WithSupervisor
// replaces the strategy with any actor.SupervisorStrategy; package
// supervisor has the default one.
//
// # Events
//
// The actor system's EventStream (ActorSystem().EventStream) carries the
// events of package actors: PeerConnected, PeerDisconnected,
// PeerReconnecting, PeerLost, HandshakeRejected, MessagesAcknowledged and
// ListenerFailed. EventStream handlers run on the publishing goroutine:
// keep them short and never block in them.
//
// # Actor users
//
// PID returns the facade actor. Send it the commands of package actors
// (Listen, Connect, Send, WaitAcknowledged, Subscribe, ...) and get the
// replies; Subscribe pushes received messages to an actor of your own.
//
// # Bad input
//
// Malformed frames, oversize lengths, wrong versions or security modes,
// failed or silent handshakes close only that connection, with a logged
// reason and a HandshakeRejected event (or, on an established session, a
// GOODBYE that carries the reason). They never panic the process.
//
// # Concurrency
//
// Every Communicator method is safe for concurrent use. Calls that can
// block take a context; "forever" is a context without a deadline and
// "non-blocking" is TryReceive. Close is idempotent and ends every
// goroutine the communicator started. By default a Communicator runs its
// own actor system and logs nothing; WithActorSystem and WithLogger change
// that.
//
// The wire protocol is specified in docs/protocol.md, the architecture in
// docs/architecture.md.
package slc
