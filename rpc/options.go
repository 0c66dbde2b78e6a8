package rpc

import (
	"errors"
	"log/slog"
	"time"
)

// Defaults.
const (
	// DefaultMaxResults bounds, per caller instance, the calls a node
	// keeps: those running and the results its caller has not
	// acknowledged yet. Past it, the caller's new calls fail with
	// KindBusy.
	DefaultMaxResults = 10000
	// DefaultMaxCalls bounds the calls a node runs at once; past it, calls
	// fail with KindBusy.
	DefaultMaxCalls = 10000
	// DefaultEventQueue bounds the events a node holds for its event
	// handlers; past it, events are dropped (see WithEventQueue).
	DefaultEventQueue = 10000

	// DefaultResultTTL is no longer used: results are kept until their
	// caller has them, not for a time.
	//
	// Deprecated: results are not dropped by age; see WithMaxResults.
	DefaultResultTTL = 5 * time.Minute
)

// Clock tells the time. The node uses it for the start time it
// announces; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

type config struct {
	clock      Clock
	maxResults int
	maxCalls   int
	eventQueue int
	logger     *slog.Logger
}

func defaultConfig() config {
	return config{
		clock:      systemClock{},
		maxResults: DefaultMaxResults,
		maxCalls:   DefaultMaxCalls,
		eventQueue: DefaultEventQueue,
		logger:     slog.New(slog.DiscardHandler),
	}
}

// Option configures a Node.
type Option func(*config) error

// WithClock sets the clock (default: the system clock).
func WithClock(c Clock) Option {
	return func(cfg *config) error {
		if c == nil {
			return errors.New("rpc: nil clock")
		}
		cfg.clock = c
		return nil
	}
}

// WithMaxResults bounds the calls the node keeps for one caller instance
// (default DefaultMaxResults): the calls running and the finished ones
// whose results the caller has not acknowledged.
//
// A node keeps the result of each call until the caller's watermark,
// which comes with every call (the lowest ID of the caller's calls whose
// results it still awaits from this node), passes it, so that a copy of a
// call that arrives again is answered from there and never runs twice.
// It never drops a result before that: when a caller has max calls kept,
// its new calls fail with KindBusy, without running, until results are
// acknowledged.
func WithMaxResults(max int) Option {
	return func(cfg *config) error {
		if max <= 0 {
			return errors.New("rpc: max results must be positive")
		}
		cfg.maxResults = max
		return nil
	}
}

// WithResultCache sets the bound of WithMaxResults; ttl is ignored.
//
// Deprecated: results are kept until the caller has them, not for a
// time; use WithMaxResults.
func WithResultCache(ttl time.Duration, max int) Option {
	return func(cfg *config) error {
		if ttl <= 0 || max <= 0 {
			return errors.New("rpc: result cache TTL and size must be positive")
		}
		cfg.maxResults = max
		return nil
	}
}

// WithEventQueue bounds the events the node holds for its subscriptions'
// handlers (default DefaultEventQueue), counting the one being handled.
// Handlers run one event at a time; when they fall behind and the queue
// is full, further events are dropped: never the connection's reader
// blocked, so calls and results keep flowing. Each drop is counted on the
// subscriptions it was for (Subscription.Dropped), and an EventsDropped
// is published on the event stream when drops start.
func WithEventQueue(max int) Option {
	return func(cfg *config) error {
		if max <= 0 {
			return errors.New("rpc: event queue size must be positive")
		}
		cfg.eventQueue = max
		return nil
	}
}

// WithMaxCalls bounds the calls the node runs at once. A call past the
// bound fails at once with KindBusy, without running.
func WithMaxCalls(n int) Option {
	return func(cfg *config) error {
		if n <= 0 {
			return errors.New("rpc: max calls must be positive")
		}
		cfg.maxCalls = n
		return nil
	}
}

// WithLogger sends the node's logs (undecodable messages, failed sends)
// to l (default: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(cfg *config) error {
		if l == nil {
			return errors.New("rpc: nil logger")
		}
		cfg.logger = l
		return nil
	}
}
