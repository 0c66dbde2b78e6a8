package peer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/wire"
)

// Defaults for Config fields left at zero.
const (
	DefaultBufferCap        = 16 << 20
	DefaultMaxFrame         = 16 << 20
	DefaultChunkSize        = 4 << 20
	DefaultMaxMessage       = 256 << 20
	DefaultCompressMin      = 1024
	DefaultTimeout          = 5 * time.Second
	DefaultHeartbeat        = 1 * time.Second
	DefaultHeartbeatTimeout = 5 * time.Second
	DefaultLinger           = time.Minute
	DefaultReadBuffer       = 256 << 10
	// DefaultReadBufferStored is DefaultReadBuffer with a store: each
	// batch the reader takes from its buffer is one commit (and fsync), so
	// a larger buffer gives more messages per commit. The buffer grows
	// only while reads fill it and shrinks again when the connection
	// quiets, so an idle connection keeps a few KiB either way.
	DefaultReadBufferStored = 2 << 20
	DefaultWriteBatch       = 4 << 20
)

// Sink receives decoded messages in order. mailbox.Inbox implements it.
// Push may block to apply backpressure; it returns how many messages it
// placed, and an error when done closed or the sink closed first.
type Sink interface {
	Push(done <-chan struct{}, from ID, msgs []Message) (int, error)
}

// Identity is what a security handshake proved about the remote side.
type Identity interface {
	// Fingerprint is a short, stable text form of the remote's key.
	Fingerprint() string
}

// Security upgrades a connection after the preamble. The secure package
// implements it; a nil Security means plain mode.
type Security interface {
	// Mode is the preamble's security mode byte (wire.ModeNoiseXX, ...).
	Mode() uint8
	// Handshake authenticates both sides on conn and returns the
	// connection to use from then on (which encrypts) and the remote's
	// proven identity. initiator is true on the dialing side. conn is a
	// *PreambleConn, which also carries the preambles both sides sent.
	Handshake(ctx context.Context, conn net.Conn, initiator bool) (net.Conn, Identity, error)
	// Authorize decides whether the proven identity may use the name the
	// remote's hello claims. It returns a *wire.ProtocolError with
	// wire.CodeUnauthorized (or another code) to reject.
	Authorize(name string, id Identity) error
}

// PreambleFlagger is implemented by a Security that announces options in
// the preamble's flags byte (wire.PreambleAESGCM, ...). RunHandshake sends
// PreambleFlags in its preamble; a Security without it, and plain mode,
// send 0. Handshake finds both sides' flags in the preambles of its
// *PreambleConn.
type PreambleFlagger interface {
	PreambleFlags() uint8
}

// Store keeps what a node must not lose when its process dies: the
// messages it sent that a peer has not acknowledged, and what it placed
// in its mailbox from each peer. Package store implements it; a nil Store
// keeps everything in memory only. Every method is safe for concurrent
// use. Sessions call Append and Release with their outbound log locked,
// so a Store must never call back into a session.
type Store interface {
	// ReserveID makes sure message ID id is covered by a committed
	// reservation, so that a restarted node never issues it again. It
	// blocks (for one commit) only when a new block of IDs is needed.
	ReserveID(id uint64) error
	// WaitRoom blocks until n more bytes of outbound messages fit in the
	// store, ctx ends, or the store fails.
	WaitRoom(ctx context.Context, n int) error
	// HasRoom reports whether n more bytes fit now.
	HasRoom(n int) bool
	// Append queues one encoded DATA frame (hdr, then body) of message seq
	// to peer for the next commit, and returns that commit's number.
	Append(peer ID, hdr, body []byte, seq, chunk uint64) uint64
	// WaitCommit blocks until commit n is done, and returns the store's
	// error if it failed.
	WaitCommit(n uint64) error
	// SendWaits reports whether Send returns only once its message is
	// committed (otherwise it returns at once and the message is
	// committed with the next batch).
	SendWaits() bool
	// Release records that peer holds every message up to acked, and the
	// first chunks chunks of message partial: their frames may go.
	Release(peer ID, acked, partial, chunks uint64)
	// Delivered returns the highest message ID from instance inst of peer
	// that this node placed in its mailbox, and the chunks it holds of a
	// partly received message from it (nil if none).
	Delivered(peer ID, inst uint64) (uint64, *Partial)
	// SaveChunk commits one more chunk of a partly received message before
	// the sender is told it may release it. p describes the message with
	// this chunk counted; body is the chunk, which SaveChunk copies.
	SaveChunk(peer ID, inst uint64, p Partial, body []byte) error
	// DropPartial forgets the partly received message from peer (its
	// sender aborted it).
	DropPartial(peer ID)
}

// Partial is a chunked message partly received.
type Partial struct {
	Seq    uint64
	Ser    uint8 // the serializer, as the sender numbered it on the wire
	Type   string
	Chunks uint64
	Data   []byte // the chunks received, in order
}

// Hooks are callbacks the owner of the sessions installs to observe the
// data path. They run on a connection's reader goroutine: keep them short
// and never block.
type Hooks struct {
	// Acked is called when a peer's cumulative acknowledgement advances.
	Acked func(peer ID, upTo MsgID)
}

// Config holds the settings every session and connection of a node share.
// It is read-only once the first session exists.
type Config struct {
	// Name is this node's unique name; Instance identifies this run of it.
	Name     string
	Instance uint64

	// Serializer and Compressor are used for Send; raw sends use
	// codec.Raw. CompressMin is the smallest body that is compressed.
	Serializer  codec.ID
	Compressor  codec.ID
	CompressMin int

	// BufferCap bounds the unacknowledged bytes kept per peer. Send blocks
	// while a peer is over it.
	BufferCap int64
	// MaxFrame is the largest frame payload this node accepts; ChunkSize
	// the largest DATA body it sends in one frame; MaxMessage the largest
	// message it accepts after reassembly and decompression.
	MaxFrame   uint32
	ChunkSize  int
	MaxMessage uint64

	// Timeout bounds one connection attempt: dial plus handshake.
	Timeout time.Duration
	// Heartbeat is how often an idle connection sends a PING.
	// HeartbeatTimeout is how long a connection may stay silent before it
	// is declared dead (at least three of the remote's heartbeat intervals).
	Heartbeat        time.Duration
	HeartbeatTimeout time.Duration
	// Linger is how long a session whose remote dialed us waits for the
	// remote to come back after its connection drops.
	Linger time.Duration

	// ReadBuffer is the reader's largest buffer (DefaultReadBuffer; a
	// facade with a store uses DefaultReadBufferStored unless one is
	// chosen); WriteBatch bounds the bytes handed to one write call.
	ReadBuffer int
	WriteBatch int

	Transport Transport
	Security  Security
	Inbox     Sink
	Store     Store
	Logger    *slog.Logger
	Hooks     Hooks

	// IDs is the node's message ID counter (the one Send takes IDs
	// from). Sessions check acknowledgements against it: a peer cannot
	// know an ID this node never issued.
	IDs *atomic.Uint64
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Serializer == 0 {
		c.Serializer = codec.Msgpack
	}
	if c.CompressMin == 0 {
		c.CompressMin = DefaultCompressMin
	}
	if c.BufferCap == 0 {
		c.BufferCap = DefaultBufferCap
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = DefaultReadBuffer
	}
	if c.WriteBatch == 0 {
		c.WriteBatch = DefaultWriteBatch
	}
	if c.Transport == nil {
		c.Transport = NetTransport{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch {
	case !wire.ValidName(c.Name):
		return fmt.Errorf("slc: invalid node name %q: 1 to %d bytes of UTF-8, no control characters", c.Name, wire.MaxNameLen)
	case c.Instance == 0:
		return fmt.Errorf("slc: instance ID must not be 0")
	case c.BufferCap < 0:
		return fmt.Errorf("slc: negative buffer cap %d", c.BufferCap)
	case c.MaxFrame < wire.MinFrameLimit || c.MaxFrame > wire.MaxFrameLimit:
		return fmt.Errorf("slc: maximum frame size %d outside %d..%d", c.MaxFrame, wire.MinFrameLimit, wire.MaxFrameLimit)
	case c.ChunkSize < 1024 || c.ChunkSize+wire.HeaderLen+wire.DataPrefixLen+wire.MaxTypeName > wire.MaxFrameLimit:
		return fmt.Errorf("slc: chunk size %d outside 1024..%d", c.ChunkSize, wire.MaxFrameLimit-wire.HeaderLen-wire.DataPrefixLen-wire.MaxTypeName)
	case c.MaxMessage == 0:
		return fmt.Errorf("slc: maximum message size must not be 0")
	case c.Timeout < 0 || c.Heartbeat <= 0 || c.HeartbeatTimeout <= 0 || c.Linger < 0:
		return fmt.Errorf("slc: timeouts must be positive")
	case c.Heartbeat >= c.HeartbeatTimeout:
		return fmt.Errorf("slc: heartbeat interval %v must be shorter than the heartbeat timeout %v", c.Heartbeat, c.HeartbeatTimeout)
	case c.Heartbeat > 24*time.Hour:
		return fmt.Errorf("slc: heartbeat interval %v too long", c.Heartbeat)
	case c.Inbox == nil:
		return fmt.Errorf("slc: no inbox")
	}
	if _, ok := codec.SerializerByID(c.Serializer); !ok {
		return fmt.Errorf("slc: unknown serializer ID %d", c.Serializer)
	}
	if _, ok := codec.CompressorByID(c.Compressor); !ok {
		return fmt.Errorf("slc: unknown compressor ID %d", c.Compressor)
	}
	return nil
}

// maxChunkFrame is the largest frame payload this node sends.
func (c *Config) maxChunkFrame() uint64 {
	return uint64(c.ChunkSize + wire.DataPrefixLen + wire.MaxTypeName)
}
