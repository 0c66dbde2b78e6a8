package slc

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
	"github.com/slc-go/slc/store"
	"github.com/slc-go/slc/supervisor"
)

// Defaults.
const (
	DefaultBufferCap        = peer.DefaultBufferCap
	DefaultInboxBytes       = 64 << 20
	DefaultInboxMessages    = 1 << 16
	DefaultMaxMessage       = peer.DefaultMaxMessage
	DefaultMaxFrame         = peer.DefaultMaxFrame
	DefaultChunkSize        = peer.DefaultChunkSize
	DefaultCompressMin      = peer.DefaultCompressMin
	DefaultTimeout          = peer.DefaultTimeout
	DefaultRetries          = supervisor.DefaultRetries
	DefaultHeartbeat        = peer.DefaultHeartbeat
	DefaultHeartbeatTimeout = peer.DefaultHeartbeatTimeout
	DefaultLinger           = peer.DefaultLinger
	DefaultMaxHandshakes    = 256
	DefaultMaxPeers         = 4096
)

// RetryForever, passed to WithRetries, reconnects without limit.
const RetryForever = -1

// Config is everything New needs. Build one with DefaultConfig and
// Options; Validate checks it.
type Config struct {
	// Name is this node's unique name (default: host name, process ID and
	// a random suffix).
	Name string
	// Serializer and Compressor are codec names ("msgpack", "json",
	// "raw"; "none", "s2", "zstd", "gzip", or registered ones).
	// CompressMin is the smallest body compressed.
	Serializer  string
	Compressor  string
	CompressMin int
	// BufferCap bounds the unacknowledged bytes per peer; Send blocks past
	// it. InboxBytes and InboxMessages bound each peer's queue in the
	// mailbox; a full queue stops reading that peer's connection.
	BufferCap     int64
	InboxBytes    int
	InboxMessages int
	// MaxMessage is the largest message accepted; ChunkSize the largest
	// piece of one sent in a frame; MaxFrame the largest frame accepted.
	MaxMessage uint64
	ChunkSize  int
	MaxFrame   uint32
	// Timeout bounds each connection attempt (dial and handshake).
	Timeout time.Duration
	// Retries bounds consecutive reconnect attempts (RetryForever = no
	// limit, 0 = never reconnect). Ignored when Supervisor is set.
	Retries int
	// Heartbeat and HeartbeatTimeout: how often an idle connection pings,
	// and how long silence means a dead peer.
	Heartbeat        time.Duration
	HeartbeatTimeout time.Duration
	// Linger is how long a session a remote dialed waits for it to come
	// back after its connection dropped.
	Linger time.Duration
	// MaxHandshakes bounds each listener's handshakes in progress.
	MaxHandshakes int
	// MaxPeers bounds the sessions a node keeps; a node that connects
	// past it is refused as busy.
	MaxPeers int
	// Supervisor replaces the default reconnect strategy (a
	// supervisor.Backoff with Retries) for peer and listener actors.
	Supervisor actor.SupervisorStrategy
	// Logger receives slc's and protoactor's logs (default: discarded).
	Logger *slog.Logger
	// ActorSystem, when set, is used instead of a system of slc's own;
	// Close then leaves it running.
	ActorSystem *actor.ActorSystem
	// Transport dials and listens (default: TCP and Unix sockets).
	Transport peer.Transport
	// Security upgrades connections (secure mode); nil is plain mode.
	Security peer.Security
	// Instance identifies this run of the node (default: random).
	Instance uint64
	// Interfaces names the network interfaces mDNS discovery uses
	// (default: every multicast-capable interface that is up); see
	// WithInterfaces.
	Interfaces []string
	// StoreDir, if set, makes delivery durable: see WithStore.
	StoreDir     string
	StoreOptions store.Options
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Serializer:       "msgpack",
		Compressor:       "none",
		CompressMin:      DefaultCompressMin,
		BufferCap:        DefaultBufferCap,
		InboxBytes:       DefaultInboxBytes,
		InboxMessages:    DefaultInboxMessages,
		MaxMessage:       DefaultMaxMessage,
		ChunkSize:        DefaultChunkSize,
		MaxFrame:         DefaultMaxFrame,
		Timeout:          DefaultTimeout,
		Retries:          DefaultRetries,
		Heartbeat:        DefaultHeartbeat,
		HeartbeatTimeout: DefaultHeartbeatTimeout,
		Linger:           DefaultLinger,
		MaxHandshakes:    DefaultMaxHandshakes,
		MaxPeers:         DefaultMaxPeers,
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	if c.Name != "" && !wire.ValidName(c.Name) {
		return fmt.Errorf("slc: invalid name %q: 1 to %d bytes of UTF-8 without control characters", c.Name, wire.MaxNameLen)
	}
	if _, _, ok := codec.SerializerByName(c.Serializer); !ok {
		return fmt.Errorf("slc: unknown serializer %q", c.Serializer)
	}
	if _, err := codec.ParseCompressor(c.Compressor); err != nil {
		return err
	}
	switch {
	case c.BufferCap <= 0:
		return fmt.Errorf("slc: buffer cap must be positive, got %d", c.BufferCap)
	case c.InboxBytes <= 0 || c.InboxMessages <= 0:
		return fmt.Errorf("slc: inbox capacity must be positive")
	case c.Timeout <= 0:
		return fmt.Errorf("slc: timeout must be positive, got %v", c.Timeout)
	case c.Retries < RetryForever:
		return fmt.Errorf("slc: retries must be >= -1, got %d", c.Retries)
	case c.Heartbeat <= 0 || c.HeartbeatTimeout <= c.Heartbeat:
		return fmt.Errorf("slc: heartbeat %v must be positive and shorter than its timeout %v", c.Heartbeat, c.HeartbeatTimeout)
	case c.Linger <= 0:
		return fmt.Errorf("slc: linger must be positive, got %v", c.Linger)
	case c.MaxHandshakes <= 0:
		return fmt.Errorf("slc: max handshakes must be positive")
	case c.MaxPeers <= 0:
		return fmt.Errorf("slc: max peers must be positive")
	case c.CompressMin < 0:
		return fmt.Errorf("slc: negative compression threshold")
	}
	// A security layer checks its own settings: an identity without a
	// way to trust peers, say, is refused here rather than at the first
	// handshake.
	if v, ok := c.Security.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	pc := c.peerConfig()
	pc.Inbox = noInbox{}
	if pc.Name == "" {
		pc.Name = "x"
	}
	if pc.Instance == 0 {
		pc.Instance = 1
	}
	return pc.Validate()
}

type noInbox struct{}

func (noInbox) Push(<-chan struct{}, peer.ID, []peer.Message) (int, error) { return 0, nil }

func (c *Config) peerConfig() peer.Config {
	ser, _, _ := codec.SerializerByName(c.Serializer)
	comp, _ := codec.ParseCompressor(c.Compressor)
	return peer.Config{
		Name: c.Name, Instance: c.Instance,
		Serializer: ser, Compressor: comp, CompressMin: max(c.CompressMin, 1),
		BufferCap: c.BufferCap, MaxFrame: c.MaxFrame, ChunkSize: c.ChunkSize, MaxMessage: c.MaxMessage,
		Timeout: c.Timeout, Heartbeat: c.Heartbeat, HeartbeatTimeout: c.HeartbeatTimeout, Linger: c.Linger,
		Transport: c.Transport, Security: c.Security, Logger: c.Logger,
	}
}

// Option changes a Config.
type Option func(*Config) error

// WithName sets the node's unique name.
func WithName(name string) Option {
	return func(c *Config) error { c.Name = name; return nil }
}

// WithSerializer selects the serializer for Send by name: "msgpack"
// (default), "json", "raw", or one registered with codec.RegisterSerializer.
func WithSerializer(name string) Option {
	return func(c *Config) error {
		if _, _, ok := codec.SerializerByName(name); !ok {
			return fmt.Errorf("slc: unknown serializer %q", name)
		}
		c.Serializer = name
		return nil
	}
}

// WithCompressor selects per-frame compression: "none" (default), "s2",
// "zstd", "gzip", or a registered compressor. Bodies shorter than the
// threshold (WithCompressThreshold) and bodies that do not shrink go
// uncompressed.
func WithCompressor(name string) Option {
	return func(c *Config) error {
		if _, err := codec.ParseCompressor(name); err != nil {
			return err
		}
		c.Compressor = name
		return nil
	}
}

// WithCompressThreshold sets the smallest body that is compressed.
func WithCompressThreshold(n int) Option {
	return func(c *Config) error { c.CompressMin = n; return nil }
}

// WithBufferCap bounds the unacknowledged bytes kept per peer.
func WithBufferCap(n int64) Option {
	return func(c *Config) error { c.BufferCap = n; return nil }
}

// WithInboxCap bounds each peer's queue in the mailbox, in bytes and in
// messages. A full queue stops reading that peer's connection; TCP then
// pushes back on the sender.
func WithInboxCap(bytes, messages int) Option {
	return func(c *Config) error { c.InboxBytes, c.InboxMessages = bytes, messages; return nil }
}

// WithMaxMessage sets the largest message this node accepts.
func WithMaxMessage(n uint64) Option {
	return func(c *Config) error { c.MaxMessage = n; return nil }
}

// WithChunkSize sets the largest piece of a message sent in one frame.
func WithChunkSize(n int) Option {
	return func(c *Config) error { c.ChunkSize = n; return nil }
}

// WithMaxFrame sets the largest frame this node accepts.
func WithMaxFrame(n uint32) Option {
	return func(c *Config) error { c.MaxFrame = n; return nil }
}

// WithTimeout bounds each connection attempt (dial and handshake). For no
// limit on a blocking call, pass a context without a deadline.
func WithTimeout(d time.Duration) Option {
	return func(c *Config) error { c.Timeout = d; return nil }
}

// WithRetries bounds consecutive reconnect attempts: RetryForever (-1)
// retries without limit, 0 never reconnects. When they are spent the
// session ends, PeerLost is published and sends to the peer fail.
func WithRetries(n int) Option {
	return func(c *Config) error { c.Retries = n; return nil }
}

// WithHeartbeat sets how often an idle connection pings and how long a
// silent connection lives before it is declared dead.
func WithHeartbeat(interval, timeout time.Duration) Option {
	return func(c *Config) error { c.Heartbeat, c.HeartbeatTimeout = interval, timeout; return nil }
}

// WithLinger sets how long a session the remote dialed waits for the
// remote to come back after its connection dropped.
func WithLinger(d time.Duration) Option {
	return func(c *Config) error { c.Linger = d; return nil }
}

// WithMaxPeers bounds the sessions a node keeps (default 4096). A node
// that connects past the limit is refused as busy and retries later; with
// the per-peer buffer limits this bounds the memory a crowd of peers, or a
// hostile one, can take.
func WithMaxPeers(n int) Option {
	return func(c *Config) error { c.MaxPeers = n; return nil }
}

// WithMaxHandshakes bounds each listener's handshakes in progress.
func WithMaxHandshakes(n int) Option {
	return func(c *Config) error { c.MaxHandshakes = n; return nil }
}

// WithSupervisor sets the strategy that supervises peer and listener
// actors, replacing the default supervisor.Backoff. A strategy decides
// whether a failed connection is retried (restart), and when.
func WithSupervisor(s actor.SupervisorStrategy) Option {
	return func(c *Config) error {
		if s == nil {
			return errors.New("slc: nil supervisor strategy")
		}
		c.Supervisor = s
		return nil
	}
}

// WithLogger sends slc's and protoactor's logs to l.
func WithLogger(l *slog.Logger) Option {
	return func(c *Config) error { c.Logger = l; return nil }
}

// WithActorSystem runs the communicator's actors on sys instead of a
// system of its own. Close stops the communicator's actors only.
func WithActorSystem(sys *actor.ActorSystem) Option {
	return func(c *Config) error { c.ActorSystem = sys; return nil }
}

// WithTransport replaces how connections are dialed and listened for.
func WithTransport(t peer.Transport) Option {
	return func(c *Config) error { c.Transport = t; return nil }
}

// WithSecurity installs a connection upgrade (secure mode).
func WithSecurity(s peer.Security) Option {
	return func(c *Config) error { c.Security = s; return nil }
}

// WithInstance fixes the instance ID (normally random per New). Two runs
// with the same name and instance are one node to their peers, so only
// reuse an instance with the state that goes with it.
func WithInstance(id uint64) Option {
	return func(c *Config) error {
		if id == 0 {
			return errors.New("slc: instance ID must not be 0")
		}
		c.Instance = id
		return nil
	}
}

func defaultName() string {
	host, err := os.Hostname()
	if err != nil || !wire.ValidName(host) {
		host = "slc"
	}
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), b)
}

func randomInstance() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}
