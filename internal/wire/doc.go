// Package wire is slc's wire protocol, version 1: the preamble, the frame
// header, the frame payloads and a frame reader. docs/protocol.md is the
// specification; the golden-byte tests in this package pin the encoding to
// it.
//
// # Connection
//
// Each side sends an 8-byte preamble as soon as the connection opens and
// reads the other's. Negotiate picks the version (the highest both speak)
// and refuses mismatched security modes, so both sides fail at once with
// the same reason:
//
//	b := wire.AppendPreamble(nil, wire.Preamble{Min: 1, Max: 1, Mode: wire.ModePlain})
//	v, err := wire.Negotiate(local, remote)
//
// Then each side sends a HELLO frame and, once it accepts the other's
// hello, a RESUME frame (or a REJECT with a code and reason).
//
// # Frames
//
// Every frame is an 8-byte header (version, type, flags, reserved, payload
// length as uint32 big-endian) and a payload. Frame types are append-only;
// types with the high bit set are extensions that receivers skip when they
// do not know them, any other unknown type is a protocol error. DATA frames
// carry a message, or a chunk of one (FlagMore), with its sequence number,
// serializer, compressor and type name. ACK frames carry a cumulative
// sequence number. PING is answered by PONG. GOODBYE ends a session.
//
// # Limits
//
// ParseHeader checks every length against the receiver's maximum before
// anything is allocated, and the msgpack bodies of HELLO, REJECT and
// GOODBYE are parsed by a small bounded decoder that never allocates more
// than its input holds.
//
// # Errors
//
// Violations are *ProtocolError values with a Code; errors.Is matches them
// against the sentinels (ErrBadMagic, ErrInvalidVersion, ErrFrameTooLarge,
// ErrUnknownFrame, ErrMalformed). Permanent reports whether retrying could
// help, which is how supervisors decide between restart and stop.
//
// # Concurrency
//
// The encode and parse functions are pure. A Reader belongs to one
// goroutine.
package wire
