// Package listener is the listener actor: one per Listen call. It owns the
// net.Listener and an accept goroutine, runs each connection's handshake
// (preamble, security, hello) in its own tracked goroutine, and hands the
// connections that pass to its parent, the facade, with an Inbound message.
//
// # Limits
//
// At most Config.MaxHandshakes handshakes run at once; a connection beyond
// that is closed at once. Every handshake is bounded by the node's
// Timeout, so a client that connects and says nothing, or says one byte a
// second, costs one goroutine for at most that long.
//
// # Failures
//
// Every connection that fails before it is handed over is logged at Info
// with its reason and reported through Config.Rejected, which the facade
// turns into a HandshakeRejected event. Only that connection closes. If
// Accept itself fails for good, the actor fails and its supervisor restarts
// it, and the new instance listens again on the same address.
//
// # Concurrency
//
// The actor's goroutines all end when the actor stops or restarts.
package listener
