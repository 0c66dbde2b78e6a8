// Package peer is the connection layer: sessions, the peer actor that owns
// a session's connection, the handshake, and the reader and writer loops.
//
// # Sessions
//
// A Session is everything a node keeps about one remote node across
// connections: the outbound log of unacknowledged messages, the delivered
// watermark of the remote's messages, the chunked message being
// reassembled, and the state. It is created by the facade when a Connect
// starts or an unknown node connects, and ends when the remote says
// goodbye, when its retries are spent, or when the node disconnects or
// closes.
//
// # The outbound log
//
// Send encodes each message once and appends its DATA frames to every
// target session's log (the log is a list of pooled 256 KiB segments;
// frames may span them). The log is at once:
//
//   - the send batch: the writer sends everything appended since its last
//     write in one writev, and flushes when the log is drained;
//   - the resend buffer: after a reconnect the writer rewinds to the first
//     frame the remote does not hold, as its RESUME says;
//   - the BufferCap account: bytes from the first unacknowledged frame to
//     the end.
//
// Message IDs come from one counter per node and are taken while every
// target's send semaphore is held (or, on the single-frame fast path,
// under the log's lock while no semaphore holder is appending), so each
// log is in ID order; IDs may have gaps on a given session, which the
// receiver tolerates.
//
// # Connections
//
// RunHandshake does the preamble, the security upgrade (in secure mode)
// and the HELLO exchange. Then a conn runs one reader and one writer
// goroutine. The writer sends RESUME first, then control frames (ACK,
// PROGRESS, PONG, PING) and the log. The reader expects the remote's
// RESUME, then decodes DATA frames into Messages in batches and pushes
// each batch to the mailbox (which may block: backpressure), advances the
// delivered watermark and asks the writer for an ACK. Heartbeat deadlines
// are armed before each read, so time blocked on a full mailbox does not
// count as silence.
//
// # The actor
//
// Actor owns a session's connection. On a connection failure a session
// that dials panics with a *PeerError whose Attempt method reports its
// consecutive failures; its supervisor (see package supervisor) restarts
// it after a backoff, and the new instance dials again. A session the
// remote dialed waits up to Linger for the remote to come back. The actor
// reports Up and Down to its parent, the facade, and asks it to bind each
// connection it dials (BindRequest), so that the facade's rule for
// duplicate and simultaneous connections applies to every connection.
//
// # Concurrency
//
// Send, Session.WaitAcked, Session.AckStatus, Session.Stats and the other
// exported Session methods are safe for concurrent use. Connection state
// belongs to the actor and its two loops.
package peer
