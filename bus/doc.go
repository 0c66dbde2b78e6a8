// Package bus is a scoped publish/subscribe bus on slc, after the model of
// RSB (the Robotics Service Bus): events are published on hierarchical
// scopes, and a listener on /robot/ receives the events of /robot/arm/ and
// /robot/arm/joint1/. Processes join one bus without caring whether they
// serve it or connect to it, and when the serving process dies the others
// elect a new server and carry on.
//
//	p, err := bus.Join(ctx) // serves 127.0.0.1:55555, or connects to whoever does
//	defer p.Close()
//	l, err := p.NewListener(ctx, "/robot/", func(e *bus.Event) { fmt.Println(e.Scope, e.Data) })
//	inf, err := p.NewInformer("/robot/sensors/lidar/")
//	id, err := inf.Publish(ctx, 1.25)
//
// # Scopes
//
// A scope is "/" or "/a/b/": components of letters, digits, '-' and '_',
// each followed by '/'. ParseScope adds a missing final '/' and rejects
// everything else with ErrInvalidScope. A listener on a scope receives the
// events published on it and on every subscope; never those of parents or
// siblings (/a/ does not receive /ab/). /__slc/ and its subscopes are
// reserved for the bus's own control messages: informers, listeners and
// servers cannot use them (ErrReservedScope), and a listener on / does not
// receive them.
//
// # Participants
//
// A Participant is a process's membership of the bus. It wraps an slc
// Communicator (its own, or one given with WithCommunicator) and routes
// the bus's two slc message types out of the mailbox with
// Communicator.Handle, so the application's Receive is untouched. One
// participant per process is the usual shape; its informers and listeners
// share it.
//
// In Auto mode (the default) Join binds the bus address (WithAddr; default
// 127.0.0.1:55555) and serves, or, if the port is taken, connects to the
// server. ServerMode must serve (port 0 picks a port; Addr reports it),
// ClientMode never serves. The server routes: participants send it their
// events and it forwards each event to the participants whose listener
// scopes match, which it learns from their control messages. It shares the
// membership (names, ranks, scopes) with every participant.
//
// # Events
//
// An Event carries an ID (the publishing participant's name and instance,
// and a sequence number), its scope, a wire schema and the data, an
// optional method (for remote calls), causes (the IDs of the events that
// caused it), and MetaData: four timestamps, user infos and user times.
// The timestamps are taken along the pipeline: create (Publish), send
// (handed to slc, or to the local dispatch), receive (the receiving
// participant got it), deliver (given to the listener). Create and send
// come from the publisher's clock, receive and deliver from the
// receiver's. The default clock is the wall clock read once per process,
// at the first Join, and advanced by the monotonic clock: in one process
// the times never decrease along the pipeline, from one participant to
// another too. Processes on one host agree unless the system clock was
// stepped between their first Joins, which offsets their times by the
// step; across hosts the times are only as consistent as the hosts'
// clocks. WithClock injects a clock.
//
// # Listeners and filters
//
// NewListener calls a handler for each event; NewChannelListener puts
// them on a channel. Both return once the server routes the scope to the
// participant, so that events published afterwards reach them. Filters
// (TypeFilter, SchemaFilter, OriginFilter, MethodFilter, CauseFilter, Not)
// narrow what a listener gets. Each listener has its own queue and
// goroutine: a slow listener never blocks the bus or the other listeners.
//
// # Converters
//
// Converters turn Go values into a schema and bytes and back. The default
// registry (DefaultConverters) handles nil (void), bool, int32, int64 and
// int, uint32, uint64 and uint, float32 (float), float64 (double), string
// (utf-8-string) and []byte (bytes). Types registered with slc.Register
// travel as msgpack under their registered name without a converter;
// MsgpackConverter gives a type a schema of its own, and NewConverter
// builds any converter from two functions. Data under a schema the
// receiver cannot decode arrives as []byte.
//
// # Quality of service
//
// QoS has two halves. Reliability is the informer's: Reliable events (the
// default) are kept by the publishing participant until the server
// acknowledges them, which it does once every participant it forwarded
// them to has them in its queues; after a changeover they are sent again
// to the new server, and receivers drop the duplicates by ID. A reliable
// event is therefore delivered once to every listener whose participant
// stays on the bus, across changeovers. Publish waits when WithWindow
// events are unacknowledged. Unreliable events are sent once: those in
// flight when the server dies are lost, and queues past WithQueueLimit
// drop them. Ordering is the listener's: Ordered listeners (the default)
// get each publisher's events in publication order, one at a time;
// Unordered ones run up to WithWorkers handler calls at once.
//
// # Changeover
//
// When a participant loses the server (slc reports PeerDisconnected or
// PeerLost for it, or the server leaves), it ends its session with the old
// server and looks for the new one. Every participant applies one rule to
// the last membership it received: the successor is the member with the
// lowest rank (join order: the longest-lived member first; ties by name)
// that can serve (not ClientMode, and the bus address's host is a
// loopback, unspecified or local address) and was not away, the old
// server excluded. The successor binds the bus address at once; the
// others connect to the address, and try to bind it themselves only after
// WithFailover's grace times their place in that order, for when the
// successor is gone too.
//
// The bus port is the lock: the operating system lets one process bind
// it, so there is at most one server per bus address on a host, whatever
// the timing and whatever each participant's view. If the old server is
// in fact alive (only a connection dropped), the successor's bind fails
// and everybody reconnects to the old server.
//
// The new server expects the members of the old one back: it keeps the
// events for them (and the publishers keep them too, unacknowledged) until
// they join, or until the rejoin timeout of WithFailover drops them.
// Limits: failover needs a survivor on the host of the bus address;
// participants on other hosts cannot bind it and reconnect when someone
// does. A wildcard address would let processes on several hosts each bind
// it (one server per host): use a specific address. A participant that
// joined in the moment before the server died may be missing from the
// successor's membership, and miss the events of the changeover.
//
// # In-process delivery
//
// A participant delivers its own events to its own listeners directly,
// without the network, in sequence order and with the same data (decoded
// through the converters, as remote listeners get it), IDs and timestamps.
// The server does not send them back. Two participants in one process are
// two members of the bus and talk over the network.
//
// # Request and reply
//
// A LocalServer exposes methods on a scope; a RemoteServer calls them. A
// call of method m is an event with Method REQUEST on scope/m/, and its
// reply an event with Method REPLY on the same scope, caused by the
// request. A method that returns an error, panics, is unknown, or gets or
// returns data of the wrong type produces a reply marked with the user
// info "rsb:error?" = "1", which the caller gets as a *RemoteError (Kind
// tells which). A call nobody answers waits for its context.
//
// Each request has a context of its own, which ends when the caller's
// context is canceled (Call then publishes a MethodCancel event caused by
// the request), when the caller's deadline passes (the request carries
// the time left, InfoTimeout), when the server closes, or when the
// handler returns. A request whose context ended gets no reply.
//
// # Introspection
//
// Participants and Membership list the participants on the bus: name,
// rank, host, process, whether each serves, and the scopes of its
// informers, listeners and servers.
//
// # Wire messages
//
// The bus sends two slc message types, encoded by the communicator's
// serializer:
//
//	slc.bus.Events   {Ack uint64, Events []byte}: event records, and an
//	                 acknowledgement from the server of the receiver's
//	                 own reliable events up to a sequence number
//	slc.bus.Control  {Scope, Member, Members, Server, Epoch}: control
//	                 messages, named by a reserved scope:
//	                 /__slc/join/     participant → server: join, with rank and scopes
//	                 /__slc/scopes/   participant → server: its scopes changed
//	                 /__slc/members/  server → every participant: the membership
//	                 /__slc/leave/    either way: leaving (on a shared communicator)
//
// An event record is a length, then flags, the send time (set as the
// batch leaves), sender, instance, sequence, scope, schema, an optional
// method, the create time, optional causes, user infos and user times,
// and the data. The server forwards records byte for byte, reading them
// only up to the scope. With msgpack (the default serializer) the
// receiver takes the records straight out of the received message's
// bytes. docs/bus.md has the byte layout.
//
// # Concurrency
//
// Every method is safe for concurrent use. The bus's handlers never block
// a connection: events go to per-listener queues and per-member send
// queues, each with its own goroutine. Close stops every goroutine the
// participant started.
package bus
