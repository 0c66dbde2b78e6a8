// Package rsb speaks the socket transport of RSB, the Robotics Service
// Bus, byte for byte: a Go program can serve an RSB socket bus or join
// one, next to RSB's C++, Python, Java and Common Lisp implementations,
// and a Bridge carries the events between an RSB socket bus and slc's own
// bus (package bus).
//
//	c, err := rsb.Dial(ctx, rsb.DefaultAddr) // localhost:55555
//	defer c.Close()
//	schema, data, _ := rsb.EncodeValue("hello")
//	err = c.Publish(ctx, &rsb.Notification{Scope: "/robot/", WireSchema: schema, Data: data, ...})
//	n, err := c.Receive(ctx)
//
// # Specification
//
// RSB's socket transport is specified by its manual ("Socket Transport",
// docs.cor-lab.org/rsb-manual) and its implementations (rsb-cpp
// src/rsb/transport/socket, rsb-python rsb/transport/socket); the
// messages by rsb-protocol's proto2 files Notification.proto,
// EventId.proto and EventMetaData.proto. No code of them is copied here.
//
// # Wire format
//
// A client connects over TCP (default localhost:55555). Right after
// accepting, the server sends 4 zero bytes; the client reads them before
// anything else. Then each side sends frames:
//
//	uint32 LE   length of the notification
//	bytes       a protobuf (proto2) rsb.protocol.Notification
//
// with these fields (field numbers):
//
//	Notification   scope 6, wire_schema 7, data 9, causes 13 (EventId),
//	               method 14, meta_data 15, event_id 108 (required)
//	EventId        sender_id 1 (16-byte UUID), sequence_number 2 (uint32)
//	EventMetaData  create_time 2, send_time 3, receive_time 4,
//	               deliver_time 5 (int64 microseconds since the UNIX
//	               epoch), user_times 6 (key 1, timestamp 2),
//	               user_infos 7 (key 1, value 2)
//
// The server passes each notification it receives on to every other
// client (not back to its sender) and to its own process (Receive); what
// the server's process publishes goes to every client. Shutdown is
// orderly: a side that leaves writes what it has queued, shuts down its
// write side, and waits for the other side's end of stream; a side that
// reads an end of stream answers in kind.
//
// Marshal writes fields in field-number order, as the protobuf libraries
// do: a test checks its output against google.golang.org/protobuf on
// descriptors of the .proto files. Unmarshal accepts any order, skips
// unknown fields and merges repeated embedded messages, as proto2 parsers
// do.
//
// # Converters
//
// EncodeValue and DecodeValue are RSB's built-in converters: void, bool,
// int32, int64, uint32, uint64, float, double (little-endian numbers),
// utf-8-string, ascii-string and bytes. Data of other schemas (for
// example RST's protobuf types, ".rst.vision.Image") stays bytes.
//
// # Roles
//
// Server (Listen, Serve) and Client (Dial) are both an Endpoint; Open
// serves or joins according to a Mode, and Auto does what RSB's
// transport.socket.server=auto does: serve if the port can be bound, join
// otherwise. A Client reconnects after its connection breaks
// (WithAutoRestart, with the backoff of WithBackoff), and Publish waits
// meanwhile; notifications in flight when a connection breaks are lost,
// as with RSB, which has no acknowledgements on this transport.
//
// # Bridge to slc's bus
//
// JoinBus serves or joins an RSB socket bus (localhost:55555 by default)
// and bridges it to a *bus.Participant; NewBridge bridges an Endpoint the
// caller opened. Events that other slc participants publish go to RSB;
// RSB's notifications are published on the slc bus by the bridge's
// participant (its own events are not sent back). Data under RSB's
// built-in schemas decodes into the same Go values on both sides; other
// data passes as bytes under its wire schema. slc's bus also defaults to
// port 55555, on 127.0.0.1: on one host, move one of them.
//
// The bridge is built on bus's public API. Its listener runs on the
// bridge's participant, so a better hook in bus would be a raw tap (the
// encoded data and the publisher's own event ID, without decoding and
// re-encoding), which would also spare the ID map below.
//
// # Ambiguities, and the choices made
//
//   - Handshake: the client checks that the 4 bytes are zero; anything
//     else fails Dial with ErrHandshake. The server sends them before it
//     reads anything.
//   - Frame size: the protocol allows 4 GiB. Here a frame over
//     WithMaxFrame (64 MiB) closes that connection with ErrFrameTooLarge,
//     checked before allocating. RSB's fragmentation (FragmentedNotification)
//     is not used by the socket transport and is not supported.
//   - A frame that does not decode, or lacks a required field (event_id,
//     sender_id, sequence_number, and create_time and send_time when
//     meta_data is there), closes that connection with ErrMalformed; a
//     sender_id must be 16 bytes. A server keeps serving its other
//     clients.
//   - Unknown fields are skipped on receipt. The server re-broadcasts the
//     bytes it received, unknown fields included, unchanged.
//   - Scope, wire_schema and data are always written, empty or not, and
//     meta_data with create_time and send_time (0 when unknown): RSB's
//     implementations always set them. method is written only when set.
//   - Slow clients: the server never waits for one; a client whose send
//     queue (WithQueue) is full is disconnected with ErrSlowPeer.
//   - Reconnect: a client reconnects after ErrConnLost or ErrSlowPeer; a
//     protocol error (bad handshake, ErrMalformed, ErrFrameTooLarge) ends
//     it, since reconnecting would repeat it.
//   - Event IDs across the bridge: slc IDs are a name, an instance and a
//     uint64; RSB IDs a UUID and a uint32. An slc participant gets a UUID
//     derived from its name and instance (SHA-1, version-5 layout) and
//     its sequence number's low 32 bits. A sender that is a UUID with
//     instance 0 is that UUID. The bridge remembers the last 4096 pairs
//     of IDs it translated, so that a reply's cause names the request's
//     ID on each side; older causes are translated as above.
//   - Times: slc's time.Time and RSB's microseconds convert both ways;
//     zero times are absent (0). receive and deliver times of an RSB
//     notification are not carried onto the slc bus, which sets its own.
//   - Scopes the slc bus refuses (other characters than letters, digits,
//     '-' and '_', or slc's reserved /__slc/) are dropped by the bridge
//     and counted (BridgeStats.Dropped).
//   - Numbers across the bridge: RSB encodes int32, int64, uint32,
//     uint64, float and double little-endian (rsb-python's struct "<i"
//     and so on), and slc's bus encodes the same schema names the same
//     way, so the bytes cross unchanged; data of the wrong size is
//     dropped.
//   - Loops: the bridge does not send its own participant's events to
//     RSB (they are the ones it brought from RSB). Events that other code
//     publishes through the same participant therefore stay on the slc
//     side: give the bridge a participant of its own. Two bridges between
//     the same two buses loop events forever: run one.
//
// # Concurrency
//
// Server, Client, Conn and Bridge are safe for concurrent use. Each
// connection runs one reader and one writer goroutine; Close waits for
// every goroutine it started.
package rsb
