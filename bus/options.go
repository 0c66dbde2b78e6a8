package bus

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/slc-go/slc"
)

// DefaultAddr is the bus address when none is given.
const DefaultAddr = "127.0.0.1:55555"

// Defaults.
const (
	DefaultWindow        = 16384
	DefaultQueueLimit    = 1 << 16
	DefaultFailoverGrace = 2 * time.Second
	DefaultRejoinTimeout = 10 * time.Second
	// DefaultLinger is the linger of the communicators the bus creates:
	// how long a server waits for a participant whose connection dropped
	// before it drops the participant.
	DefaultLinger = 10 * time.Second
)

// Mode says whether a participant may serve the bus.
type Mode int

const (
	// Auto: the first participant binds the bus address and serves; the
	// others connect. When the server goes, one of the others serves.
	Auto Mode = iota
	// ServerMode: bind the bus address and serve, or fail.
	ServerMode
	// ClientMode: connect to the bus address; never serve.
	ClientMode
)

func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case ServerMode:
		return "server"
	case ClientMode:
		return "client"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Reliability is one half of the quality of service.
type Reliability int

const (
	// Reliable events reach every listener whose participant stays on
	// the bus, once, across server changeovers: the publishing
	// participant keeps each event until the server has delivered it to
	// every listening participant, sends it again to a new server, and
	// receivers drop the duplicates. Publish waits when Window events
	// are unacknowledged.
	Reliable Reliability = iota
	// Unreliable events are sent once: those in flight when the server
	// goes are lost, and queues over their limit drop them. Publish does
	// not wait for acknowledgements.
	Unreliable
)

func (r Reliability) String() string {
	if r == Unreliable {
		return "unreliable"
	}
	return "reliable"
}

// Ordering is the other half of the quality of service.
type Ordering int

const (
	// Ordered listeners get the events of each publisher in the order
	// they were published, one at a time.
	Ordered Ordering = iota
	// Unordered listeners may run their handler for several events at
	// once (up to the listener's Workers), so events may complete out of
	// order.
	Unordered
)

func (o Ordering) String() string {
	if o == Unordered {
		return "unordered"
	}
	return "ordered"
}

// QoS is a quality of service: informers use its Reliability, listeners
// its Ordering. The zero QoS is reliable and ordered.
type QoS struct {
	Reliability Reliability
	Ordering    Ordering
}

func (q QoS) String() string { return q.Reliability.String() + "," + q.Ordering.String() }

// config is what Join needs.
type config struct {
	addr          string
	mode          Mode
	comm          *slc.Communicator
	nodeOpts      []slc.Option
	qos           QoS
	conv          *Converters
	clock         func() time.Time
	window        int
	queueLimit    int
	failoverGrace time.Duration
	rejoinTimeout time.Duration
	workers       int
}

func defaultConfig() config {
	return config{
		addr:          DefaultAddr,
		window:        DefaultWindow,
		queueLimit:    DefaultQueueLimit,
		failoverGrace: DefaultFailoverGrace,
		rejoinTimeout: DefaultRejoinTimeout,
		workers:       runtime.GOMAXPROCS(0),
	}
}

// Option configures Join.
type Option func(*config) error

// WithAddr sets the bus address, host:port (default DefaultAddr). Every
// participant of a bus uses the same address: the server listens on it
// and the others connect to it. Port 0 is for ServerMode only; Addr
// reports the bound address.
func WithAddr(addr string) Option {
	return func(c *config) error { c.addr = addr; return nil }
}

// WithMode sets whether the participant may serve (default Auto).
func WithMode(m Mode) Option {
	return func(c *config) error {
		if m < Auto || m > ClientMode {
			return fmt.Errorf("bus: invalid mode %d", int(m))
		}
		c.mode = m
		return nil
	}
}

// WithCommunicator runs the participant on c instead of a communicator of
// its own. Close then leaves c open. c must not be connected to the bus
// yet: Join installs its handlers first. The bus follows the events on c's
// actor system: when that system is shared with other communicators
// (slc.WithActorSystem), their peers must not share names with the bus's.
func WithCommunicator(c *slc.Communicator) Option {
	return func(cfg *config) error {
		if c == nil {
			return errors.New("bus: nil communicator")
		}
		cfg.comm = c
		return nil
	}
}

// WithNodeOptions passes options to the communicator the participant
// creates (its name, security, timeouts...). The bus sets a linger of
// DefaultLinger unless these options set one.
func WithNodeOptions(opts ...slc.Option) Option {
	return func(c *config) error { c.nodeOpts = append(c.nodeOpts, opts...); return nil }
}

// WithQoS sets the participant's quality of service: the default of its
// informers and listeners.
func WithQoS(q QoS) Option {
	return func(c *config) error { c.qos = q; return nil }
}

// WithConverters sets the converter registry (default: DefaultConverters).
func WithConverters(r *Converters) Option {
	return func(c *config) error {
		if r == nil {
			return errors.New("bus: nil converter registry")
		}
		c.conv = r
		return nil
	}
}

// WithClock replaces the clock of the event timestamps this participant
// sets. The default, shared by the participants of a process, reads the
// wall clock once, at the process's first Join, and advances it with the
// monotonic clock: one clock read per timestamp, and timestamps that
// never go back within the process. A step of the system clock after
// that Join is not followed, so another process that joins after a step
// stamps times offset by the step. now must not call the participant.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("bus: nil clock")
		}
		c.clock = now
		return nil
	}
}

// WithWindow bounds the reliable events a participant has published and
// the server has not acknowledged yet (default DefaultWindow). Publish
// waits for room.
func WithWindow(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("bus: window must be positive, got %d", n)
		}
		c.window = n
		return nil
	}
}

// WithQueueLimit bounds, in events, each queue that unreliable events
// wait in: the publisher's outgoing queue, the server's queue for each
// participant, each listener's queue (default DefaultQueueLimit).
// Unreliable events over the limit are dropped and counted; reliable
// events are never dropped.
func WithQueueLimit(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("bus: queue limit must be positive, got %d", n)
		}
		c.queueLimit = n
		return nil
	}
}

// WithFailover sets the timing of a changeover. grace: a participant
// that is not the elected successor waits this long per place behind it
// before it tries to serve itself (for when the successor is gone too).
// rejoin: how long a new server waits for the members of the old one to
// join it, keeping their events, before dropping them.
func WithFailover(grace, rejoin time.Duration) Option {
	return func(c *config) error {
		if grace <= 0 || rejoin <= 0 {
			return errors.New("bus: failover durations must be positive")
		}
		c.failoverGrace, c.rejoinTimeout = grace, rejoin
		return nil
	}
}

// ListenerOption configures a listener.
type ListenerOption func(*listenerConfig)

type listenerConfig struct {
	filters  []Filter
	ordering Ordering
	ordSet   bool
	workers  int
	buffer   int
}

// WithFilter adds filters: the listener gets only the events every
// filter accepts.
func WithFilter(f ...Filter) ListenerOption {
	return func(c *listenerConfig) { c.filters = append(c.filters, f...) }
}

// WithOrdering overrides the participant's QoS ordering for the listener.
func WithOrdering(o Ordering) ListenerOption {
	return func(c *listenerConfig) { c.ordering, c.ordSet = o, true }
}

// WithWorkers sets how many handler calls an Unordered listener runs at
// once (default GOMAXPROCS).
func WithWorkers(n int) ListenerOption {
	return func(c *listenerConfig) { c.workers = n }
}

// WithBuffer sets the capacity of a channel listener's channel (default
// 64).
func WithBuffer(n int) ListenerOption {
	return func(c *listenerConfig) { c.buffer = n }
}

// InformerOption configures an informer.
type InformerOption func(*informerConfig)

type informerConfig struct {
	reliability Reliability
	relSet      bool
}

// WithReliability overrides the participant's QoS reliability for the
// informer.
func WithReliability(r Reliability) InformerOption {
	return func(c *informerConfig) { c.reliability, c.relSet = r, true }
}
