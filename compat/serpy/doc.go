// Package serpy speaks the wire protocols of serpy, the Python module
// (standard library only) that lab instruments use to talk to data
// processing workstations over TCP: the original serpy protocol (V1) and
// serpy2 (V2). It has a Server and a Client with auto-restart, so a Go
// program can stand in for either side of a Python instrument.
//
//	c, err := serpy.Dial(ctx, "127.0.0.1:7000", serpy.WithProtocol(serpy.V2))
//	defer c.Close()
//	err = c.Send(ctx, 42)          // int, float64, string or []byte
//	v, err := c.Receive(ctx)       // int64, float64, string or []byte
//
// # Specification
//
// serpy has no written specification; its source is the specification.
// This package follows serpy.py and serpy/serpy.py (modes 0 to 5) and
// serpy2/serpy2.py of the serpy repository (github.com/ArthurLuciani/serpy,
// GPL-2.0; no code of it is copied here), and Python's base64.b85encode,
// b85decode, float.hex, float.fromhex and int.to_bytes, whose behaviour is
// reproduced exactly.
//
// # serpy2
//
// Each value is one frame:
//
//	DE CA FE CA FE   magic
//	type             0x01 int, 0x11 float, 0x21 str, 0x81 bytes
//	uint32 LE        checksum: the sum of the data bytes modulo 2^32
//	uint32 LE        length of the data
//	data             int: 8 bytes little-endian two's complement
//	                 float: the ASCII of Python's float.hex() ("0x1.8000000000000p+0")
//	                 str: UTF-8
//	                 bytes: as they are
//
// Encode and Decode convert between Go values and frame data; FrameReader
// reads frames from a stream. There is no handshake and no
// acknowledgement.
//
// # serpy (V1)
//
// A stream of blocks, each ended by the unit separator 0x1F. A block that
// starts with 0x01 is a control block: "\x01SETMODE<n>" announces the mode
// of the blocks that follow and is answered by "\x01ACKMODCG";
// "\x01ACKEOT!!" acknowledges a message of mode 1 or 3. The sender starts
// in mode 0 and announces every change, waiting for ACKMODCG before it
// goes on. Modes:
//
//	0  the bytes
//	1  the bytes, then EOT (0x04); the receiver answers ACKEOT and the
//	   sender waits for it
//	2  base85 of the bytes (Python's RFC 1924 alphabet, B85Encode)
//	3  base85, then EOT, acknowledged like mode 1
//	4  pickle in base85     refused
//	5  pickle, acknowledged refused
//
// Python's sendData turns int and float into their str() text and sends
// bytes in mode 2 (or 3); ToBytesV1 and Conn.SendMode do the same. The
// receiver gets bytes.
//
// # What is refused
//
// Pickle (modes 4 and 5, and Go values serpy would pickle) is refused in
// both directions with ErrPickleRefused: unpickling network data runs
// arbitrary code. A peer that switches to mode 4 or 5 has its connection
// closed with that error.
//
// # Ambiguities, and the choices made
//
// The Python code leaves these cases to chance; this package decides:
//
//   - A serpy2 stream that does not start with the magic: serpy2 throws
//     away its whole input buffer and carries on, which desynchronises the
//     stream. Here the connection is closed with ErrBadMagic.
//   - A serpy2 checksum mismatch: serpy2 prints a warning and drops the
//     value. Here the connection is closed with ErrChecksum, so nothing is
//     lost silently.
//   - An unknown serpy2 type byte: serpy2's receiving thread dies with a
//     TypeError. Here the connection is closed with ErrUnknownType.
//   - A serpy2 int of other than 8 bytes: serpy2 sends 8, and decodes any
//     length. Here any length is accepted if the value fits in an int64.
//   - float data that is not ASCII, str data that is not UTF-8: Python
//     raises in its thread. Here: ErrBadValue, connection closed.
//   - Frame and block sizes: the protocols allow up to 4 GiB. Here the
//     length is checked against WithMaxFrame (64 MiB) before allocating.
//   - Mode 0 and 1 data containing 0x1F (cut in two), starting with 0x01
//     (taken for a control block), mode 1 data containing 0x04 (cut, or an
//     exception in the receiver), and empty data in modes 0 and 2 (an empty
//     block is skipped by the receiver): serpy sends them and the receiver
//     mangles or drops them. Here EncodeBlock refuses them with
//     ErrUnsafeData; use mode 2 or 3 for arbitrary bytes.
//   - A control block that starts with 0x01 but is none of the three:
//     serpy strips the 0x01 and delivers the rest as a Python str (mode 0)
//     or crashes (mode 1). Here: ErrBadControl, connection closed.
//   - SETMODE: serpy takes the mode from the block's last character and
//     crashes on a non-digit; modes above 5 make it drop every later data
//     block silently. Here exactly one digit 0 to 5 is accepted, anything
//     else is ErrBadControl.
//   - More than one EOT in a message of mode 1 or 3: serpy's receiving
//     thread dies (a ValueError). Here: ErrBadMessage, connection closed.
//   - ACKEOT when no message waits for one, and ACKMODCG when no mode
//     change waits: serpy sets an event that a later send then finds set,
//     and returns early. Here they are counted (Stats.Unsolicited) and
//     ignored, and each acknowledged message waits for its own ACKEOT, in
//     order.
//   - When the acknowledgement is sent: serpy acknowledges before it
//     queues the message. Here a message is acknowledged once it is in the
//     inbox where Receive finds it.
//   - Mode after a reconnect: serpy's auto-restart keeps the mode it was
//     in, while the new server connection starts in mode 0, so blocks
//     arrive in the wrong mode until the next change. Here a new
//     connection starts in mode 0 on both sides and the client announces
//     its mode again. A Python client reconnecting to a Go server may
//     therefore send base85 text that is delivered as mode 0 bytes; that
//     is serpy's behaviour and cannot be detected.
//   - serpy2's server asserts (and stops accepting) when more than
//     nb_conn clients connect. Here WithMaxConns closes only the
//     connections over the bound.
//   - Text encoding: serpy encodes str with the connection's encoding
//     (ASCII by default). Go strings are sent as their UTF-8 bytes; the
//     receiver of serpy gets bytes either way.
//
// # Reconnecting and delivery
//
// A Client dials again after a broken connection (WithAutoRestart, on by
// default), with exponential backoff and jitter (WithBackoff, a
// compat.Backoff), until its retry budget is spent; then it ends with
// ErrLost. Protocol errors end it at once. Messages of modes 1 and 3 whose
// acknowledgement did not arrive are sent again on the new connection:
// they arrive at least once. Other messages in flight when a connection
// breaks may be lost, as with serpy.
//
// # Concurrency
//
// Conn, Client and Server are safe for concurrent use. Each connection
// runs one reader and one writer goroutine; Close waits for them. The
// reader never waits for the writer: control replies have their own
// queue. When the inbox (WithInbox) is full, the reader stops reading and
// TCP pushes back; control blocks behind the waiting data are then not
// read either, so keep receiving while sending in modes that wait for an
// answer.
package serpy
