package slc

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/slc-go/slc/store"
)

// WithStore makes delivery durable across restarts of this process: the
// node keeps its identity, its message counter, every message it sent
// that a peer has not acknowledged, and what it placed in its mailbox and
// the application has not consumed, in dir (package store; the default
// policy commits each batch with an fsync before Send returns). A node
// that starts with the store of an earlier run reconnects to its peers,
// re-sends what they never acknowledged, and hands the application the
// messages it had not consumed; duplicates are dropped on both sides.
//
// The store keeps the node's name and instance: a new store takes the
// name from WithName (or the default name), and an existing one must be
// opened with the same name or none. WithInstance cannot be combined with
// WithStore. One store serves one Communicator at a time.
//
// See docs/durability.md for what each fsync policy guarantees.
func WithStore(dir string) Option {
	return func(c *Config) error {
		if dir == "" {
			return errors.New("slc: WithStore needs a directory")
		}
		c.StoreDir = dir
		return nil
	}
}

// WithStoreOptions sets the store's fsync policy, size bound and
// recovery behaviour (store.Options); it takes effect with WithStore.
func WithStoreOptions(o store.Options) Option {
	return func(c *Config) error { c.StoreOptions = o; return nil }
}

// Store returns the communicator's store, or nil without WithStore.
func (c *Communicator) Store() *store.Store { return c.store }

// openStore opens the store cfg names, and takes the node's name and
// instance from it.
func openStore(cfg *Config, logger *slog.Logger) (*store.Store, error) {
	if cfg.StoreDir == "" {
		return nil, nil
	}
	if cfg.Instance != 0 {
		return nil, errors.New("slc: WithInstance cannot be combined with WithStore: the store keeps the instance")
	}
	name := cfg.Name
	if name == "" {
		if _, err := os.Stat(filepath.Join(cfg.StoreDir, store.DBName)); err != nil {
			name = defaultName() // a new store
		}
	}
	opts := cfg.StoreOptions
	if opts.Logger == nil {
		opts.Logger = logger
	}
	st, err := store.Open(cfg.StoreDir, name, opts)
	if err != nil {
		return nil, err
	}
	cfg.Name, cfg.Instance = st.Name(), st.Instance()
	return st, nil
}
