package store

import (
	"fmt"
	"log/slog"
	"time"
)

// Sync says when the store's writes reach the disk.
type Sync int

const (
	// SyncBatch fsyncs every commit (the default). Commits are group
	// commits: everything appended while one commit runs goes into the
	// next, so concurrent senders and every message a connection
	// delivers at once share one fsync. A committed message survives a
	// crash of the process and of the machine.
	SyncBatch Sync = iota
	// SyncInterval writes every commit to the file at once but fsyncs it
	// only every Options.Interval. A committed message survives a crash
	// of the process (the operating system has it); a crash of the
	// machine loses what was committed since the last fsync.
	SyncInterval
	// SyncNever writes every commit to the file and never fsyncs it
	// (except at Close). A committed message survives a crash of the
	// process, not of the machine.
	SyncNever
)

func (s Sync) String() string {
	switch s {
	case SyncBatch:
		return "batch"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("sync(%d)", int(s))
}

// ParseSync parses "batch", "interval" or "never".
func ParseSync(s string) (Sync, error) {
	for _, v := range []Sync{SyncBatch, SyncInterval, SyncNever} {
		if v.String() == s {
			return v, nil
		}
	}
	return 0, fmt.Errorf("store: unknown sync policy %q (want batch, interval or never)", s)
}

// Defaults for Options fields left at zero.
const (
	DefaultInterval = 100 * time.Millisecond
	DefaultMaxBytes = 1 << 30
	// DefaultCheckpoint is how often consumption marks are folded into
	// the database when nothing else causes a commit.
	DefaultCheckpoint = time.Second
)

// Options configure a store. The zero value is the default: group commit
// with an fsync per commit, Send waiting for its commit, 1 GiB of
// outbound messages.
type Options struct {
	// Sync is the fsync policy.
	Sync Sync
	// Interval is the fsync period of SyncInterval.
	Interval time.Duration
	// MaxBytes bounds the outbound messages the store keeps (encoded
	// frames of messages not yet acknowledged). When it is reached, Send
	// blocks until acknowledgements free room or its context ends, as it
	// does for BufferCap. It is never trimmed.
	MaxBytes int64
	// SendQueues makes Send return as soon as its message is queued for
	// the next commit, instead of once it is committed. Send is then as
	// fast as without a store, and a message is safe from a crash of this
	// process once the commit that holds it is done (see Store.Flush) or
	// the peer acknowledged it. By default Send returns only once its
	// message is committed.
	SendQueues bool
	// Salvage opens a damaged store: records that fail their checks are
	// moved aside (Store.Damage lists them; they are not sent or
	// delivered) instead of Open failing.
	Salvage bool
	// Logger receives warnings (a salvaged store). Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate() error {
	switch o.Sync {
	case SyncBatch, SyncInterval, SyncNever:
	default:
		return fmt.Errorf("store: unknown sync policy %d", int(o.Sync))
	}
	return nil
}
