package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/wire"
)

// Handshake is a connection that has passed the preamble, the security
// upgrade (in secure mode) and the hello exchange. What remains is the
// RESUME exchange, which the session's connection loops perform.
type Handshake struct {
	Conn     net.Conn
	Reader   *wire.Reader // may already hold frames that followed the hello
	Version  uint8
	Remote   *wire.Hello
	Dialed   bool   // true on the side that dialed
	Addr     string // the remote address
	Identity Identity
	Deadline time.Time // when the rest of the handshake must be done

	ser  [256]codec.Serializer // by the remote's serializer ID
	sid  [256]codec.ID         // local ID of each of them
	comp [256]codec.Compressor // by the remote's compressor ID

	// owner settles, once, whether a session took the connection (Claim)
	// or whoever handed it over gave up on it (Abandon).
	owner atomic.Int32 // 0 open, 1 claimed, 2 abandoned
}

// Close closes the connection.
func (h *Handshake) Close() error { return h.Conn.Close() }

// Claim marks the connection as taken by a session, which will serve it.
// It reports false when Abandon came first: the connection is being
// refused and must not be served. A connection nobody abandons (one this
// node dialed) is claimed at once.
func (h *Handshake) Claim() bool {
	return h.owner.CompareAndSwap(0, 1) || h.owner.Load() == 1
}

// Abandon marks the connection as refused unless a session claimed it
// first, and reports whether the caller may refuse it (Reject). A listener
// that stops waiting for its owner's answer calls it: by then the owner
// may have taken the connection and be serving it, and a REJECT written
// after the session's RESUME would break a good connection.
func (h *Handshake) Abandon() bool {
	return h.owner.CompareAndSwap(0, 2) || h.owner.Load() == 2
}

// RunHandshake performs the first part of a connection's handshake on
// conn: preamble, security upgrade and hello exchange. It honors ctx and
// cfg.Timeout, whichever ends first. On failure the connection is closed
// and the error says why; a rejection this side decided is also sent to
// the remote in a REJECT frame so both sides report the same reason. When
// the failure comes after the remote's hello was read, the returned
// Handshake (closed) still carries it in Remote, to name the remote in
// reports.
func RunHandshake(ctx context.Context, conn net.Conn, cfg *Config, dialed bool) (_ *Handshake, err error) {
	deadline := time.Now().Add(cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	hs := &Handshake{Conn: conn, Dialed: dialed, Deadline: deadline}
	if a := conn.RemoteAddr(); a != nil {
		hs.Addr = FormatAddr(a)
	}
	defer func() {
		if err != nil {
			hs.Conn.Close()
		}
	}()
	// A context canceled mid-handshake interrupts blocked reads and writes.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}

	local := wire.Preamble{Min: wire.MinVersion, Max: wire.MaxVersion, Mode: wire.ModePlain}
	if cfg.Security != nil {
		local.Mode = cfg.Security.Mode()
		if f, ok := cfg.Security.(PreambleFlagger); ok {
			local.Flags = f.PreambleFlags()
		}
	}
	sent := wire.AppendPreamble(make([]byte, 0, wire.PreambleLen), local)
	if _, err := conn.Write(sent); err != nil {
		return nil, hsErr(ctx, "preamble", err)
	}
	var pre [wire.PreambleLen]byte
	if _, err := io.ReadFull(conn, pre[:]); err != nil {
		return nil, hsErr(ctx, "preamble", err)
	}
	remote, err := wire.ParsePreamble(pre[:])
	if err != nil {
		return nil, err
	}
	if hs.Version, err = wire.Negotiate(local, remote); err != nil {
		return nil, err
	}

	if cfg.Security != nil {
		sc, id, err := cfg.Security.Handshake(ctx, &PreambleConn{Conn: conn, Local: [wire.PreambleLen]byte(sent), Remote: pre}, dialed)
		if err != nil {
			return nil, hsErr(ctx, "security handshake", err)
		}
		hs.Conn, hs.Identity = sc, id
		if err := sc.SetDeadline(deadline); err != nil {
			return nil, err
		}
	}

	hello := cfg.hello()
	if _, err := hs.Conn.Write(wire.AppendHello(nil, hs.Version, hello)); err != nil {
		return nil, hsErr(ctx, "hello", err)
	}
	hs.Reader = wire.NewReader(hs.Conn, cfg.ReadBuffer)
	hs.Reader.Version, hs.Reader.MaxPayload = hs.Version, wire.MaxHello
	h, p, err := hs.Reader.ReadFrame()
	if err != nil {
		if pe, ok := wire.AsProtocolError(err); ok && !pe.Remote {
			return nil, hs.reject(err) // a bad frame header: tell the remote why
		}
		return nil, hsErr(ctx, "hello", err)
	}
	switch h.Type {
	case wire.TypeHello:
	case wire.TypeReject, wire.TypeGoodbye:
		c, perr := wire.ParseClose(p)
		if perr != nil {
			return nil, perr
		}
		return nil, c.Err()
	default:
		return nil, hs.reject(&wire.ProtocolError{Code: wire.CodeUnexpectedFrame,
			Reason: fmt.Sprintf("%s frame before HELLO", wire.TypeName(h.Type))})
	}
	if hs.Remote, err = wire.ParseHello(p); err != nil {
		return nil, hs.reject(err)
	}
	if err := hs.check(cfg); err != nil {
		return hs, hs.reject(err)
	}
	hs.Reader.MaxPayload = cfg.MaxFrame
	return hs, nil
}

// PreambleConn is the connection Security.Handshake receives: the
// transport connection, and the preambles exchanged on it as this side
// sent (Local) and received (Remote) them, for the security handshake to
// bind, so that a preamble altered in transit fails authentication.
type PreambleConn struct {
	net.Conn
	Local, Remote [wire.PreambleLen]byte
}

// NetConn returns the transport connection.
func (c *PreambleConn) NetConn() net.Conn { return c.Conn }

// Preambles returns the preamble this side sent and the one it received.
func (c *PreambleConn) Preambles() (local, remote [wire.PreambleLen]byte) { return c.Local, c.Remote }

// hsErr turns a timeout into a clear handshake timeout error.
func hsErr(ctx context.Context, stage string, err error) error {
	// A cancel interrupts blocked I/O by moving the deadline into the
	// past, so it must be told apart from a real timeout first.
	if cerr := ctx.Err(); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", stage, cerr)
	}
	var ne net.Error
	if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
		return &wire.ProtocolError{Code: wire.CodeTimeout, Reason: "no " + stage + " from the remote within the connect timeout"}
	}
	return fmt.Errorf("%s: %w", stage, err)
}

// check decides whether this side can talk to the remote described by its
// hello, and builds the codec tables.
func (hs *Handshake) check(cfg *Config) error {
	r := hs.Remote
	if cfg.Security != nil {
		if err := cfg.Security.Authorize(r.Name, hs.Identity); err != nil {
			return err
		}
	}
	if r.Name == cfg.Name {
		return &wire.ProtocolError{Code: wire.CodeSameName, Reason: fmt.Sprintf("remote uses this node's own name %q", r.Name)}
	}
	if uint64(r.MaxFrame) < cfg.maxChunkFrame() {
		return &wire.ProtocolError{Code: wire.CodeFrameTooLarge, Reason: fmt.Sprintf(
			"remote accepts frame payloads up to %d bytes, this node sends up to %d (chunk size %d): lower the chunk size or raise the remote's maximum frame",
			r.MaxFrame, cfg.maxChunkFrame(), cfg.ChunkSize)}
	}
	for _, e := range r.Serializers {
		if id, s, ok := codec.SerializerByName(e.Name); ok && s.Version() == e.Version {
			hs.ser[e.ID], hs.sid[e.ID] = s, id
		}
	}
	for _, e := range r.Compressors {
		if _, c, ok := codec.CompressorByName(e.Name); ok && c.Version() == e.Version {
			hs.comp[e.ID] = c
		}
	}
	// The remote must be able to decode what this node sends.
	if s, _ := codec.SerializerByID(cfg.Serializer); !offers(r.Serializers, s.Name(), s.Version()) {
		return &wire.ProtocolError{Code: wire.CodeUnsupportedCodec, Reason: fmt.Sprintf("remote cannot decode serializer %s v%d", s.Name(), s.Version())}
	}
	if cfg.Compressor != codec.None {
		if c, _ := codec.CompressorByID(cfg.Compressor); !offers(r.Compressors, c.Name(), c.Version()) {
			return &wire.ProtocolError{Code: wire.CodeUnsupportedCodec, Reason: fmt.Sprintf("remote cannot decompress %s v%d", c.Name(), c.Version())}
		}
	}
	return nil
}

func offers(list []wire.CodecEntry, name string, version uint8) bool {
	for _, e := range list {
		if e.Name == name && e.Version == version {
			return true
		}
	}
	return false
}

// reject sends a REJECT frame carrying err's code and reason, best effort.
func (hs *Handshake) reject(err error) error {
	pe, ok := wire.AsProtocolError(err)
	if !ok || pe.Remote {
		return err
	}
	hs.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	hs.Conn.Write(wire.AppendClose(nil, hs.Version, wire.TypeReject, wire.Close{Code: pe.Code, Reason: pe.Reason}))
	return err
}

// Reject refuses the connection with code and reason, then closes it. The
// owner of the sessions calls it when the hello was fine but the session
// cannot be bound (a name held by another live instance, for example).
func (hs *Handshake) Reject(code wire.Code, reason string) error {
	err := hs.reject(&wire.ProtocolError{Code: code, Reason: reason})
	hs.Conn.Close()
	return err
}

// hello builds this node's hello.
func (c *Config) hello() *wire.Hello {
	h := &wire.Hello{
		Name:        c.Name,
		Instance:    c.Instance,
		MaxFrame:    c.MaxFrame,
		MaxMessage:  c.MaxMessage,
		HeartbeatMS: uint32(max(1, c.Heartbeat.Milliseconds())),
	}
	for _, e := range codec.Serializers() {
		h.Serializers = append(h.Serializers, wire.CodecEntry{ID: uint8(e.ID), Name: e.Name, Version: e.Version})
	}
	for _, e := range codec.Compressors() {
		h.Compressors = append(h.Compressors, wire.CodecEntry{ID: uint8(e.ID), Name: e.Name, Version: e.Version})
	}
	return h
}
