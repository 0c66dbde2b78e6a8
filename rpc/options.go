package rpc

import (
	"errors"
	"log/slog"
	"time"
)

// Defaults.
const (
	// DefaultResultTTL is how long a node keeps the result of a finished
	// call, to answer a copy of the call without running it again.
	DefaultResultTTL = 5 * time.Minute
	// DefaultMaxResults bounds the results kept.
	DefaultMaxResults = 10000
	// DefaultMaxCalls bounds the calls a node runs at once; past it, calls
	// fail with KindBusy.
	DefaultMaxCalls = 10000
)

// Clock tells the time. The node uses it for the start time it announces
// and to expire the results it keeps; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

type config struct {
	clock      Clock
	resultTTL  time.Duration
	maxResults int
	maxCalls   int
	logger     *slog.Logger
}

func defaultConfig() config {
	return config{
		clock:      systemClock{},
		resultTTL:  DefaultResultTTL,
		maxResults: DefaultMaxResults,
		maxCalls:   DefaultMaxCalls,
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

// WithResultCache sets how long the results of finished calls are kept,
// and how many at most, to answer a call that arrives again (a retry, or
// a copy re-sent by slc) without running it twice. A copy that arrives
// after its result was dropped runs again.
func WithResultCache(ttl time.Duration, max int) Option {
	return func(cfg *config) error {
		if ttl <= 0 || max <= 0 {
			return errors.New("rpc: result cache TTL and size must be positive")
		}
		cfg.resultTTL, cfg.maxResults = ttl, max
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
