// Package testutil holds test infrastructure for slc: a fault-injecting TCP
// proxy, an in-memory network for testing/synctest bubbles, and small
// helpers for checking delivery.
//
// # Fault proxy
//
// [NewProxy] listens on 127.0.0.1:0 and forwards every accepted connection,
// byte for byte and in both directions, to a target address. Point a client
// at [Proxy.Addr] instead of the server, then inject faults while traffic
// flows:
//
//   - [Proxy.Reset] aborts every open connection with a TCP RST.
//   - [Proxy.ResetAfter] and [Proxy.ResetEvery] abort a connection right
//     after a given number of client->server bytes, once or on every
//     connection; the reset usually lands mid-frame.
//   - [Proxy.Cut] forwards a given number of client->server bytes and then
//     closes both sides normally (truncation).
//   - [Proxy.Stall] and [Proxy.Unstall] freeze and resume forwarding without
//     closing anything: a peer that is connected but silent.
//   - [Proxy.Delay] adds latency to every forwarded chunk.
//   - [Proxy.Corrupt] flips one byte of the next connection's client->server
//     stream; [Proxy.CorruptFunc] installs a general hook over all chunks.
//   - [Proxy.Refuse] resets new connections at once (service down) and
//     [Proxy.SetTarget] redirects new connections.
//
// [Proxy.Stats] and [Proxy.Conns] report what happened. [Proxy.Close] ends
// every connection and waits for every goroutine of the proxy. The proxy
// reads with a 32 KiB buffer and runs one goroutine per direction per
// connection.
//
// A reset discards whatever the proxy's socket had not yet transmitted, as a
// real reset does; with a peer that keeps reading on loopback, the byte
// counts of ResetAfter, ResetEvery and Cut are exact.
//
// # In-memory network
//
// Real sockets cannot be used inside a testing/synctest bubble. [Network]
// provides listeners and dialling over in-memory connections instead:
// [Network.Listen] takes any address string, [Network.Dial] fails with
// syscall.ECONNREFUSED (in a *net.OpError) when nobody listens and honours
// its context, and connections carry distinct [MemAddr] addresses on each
// end.
//
// [NewNetwork] connects with buffered pipes ([NewBufferedPipe]): each
// direction has its own buffer and Write blocks only while it is full, as
// with a TCP socket. [NewNetworkUnbuffered] uses net.Pipe, where every Write
// waits for the peer to read, which can hide or create deadlocks that a real
// socket would not. Buffered pipes support deadlines (driven by the bubble's
// fake clock inside synctest), half-close with CloseWrite, and TCP-like
// close: the peer reads what was buffered and then io.EOF.
//
// # Helpers
//
// [Quiet] returns a logger that discards everything. [Eventually] polls a
// condition until it holds or fails the test; it is meant for waiting on real
// sockets. [CheckSequence] compares received sequence numbers against
// 1..sent and returns a [Tally] of lost, duplicated and reordered messages.
package testutil
