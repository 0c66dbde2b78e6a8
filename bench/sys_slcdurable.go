package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/store"
)

// slc with a durable store on every node (slc.WithStore, bbolt): the
// sender commits each message before Send returns (group commit, an fsync
// per commit), or queues it for the next commit (SendQueues); the receiver
// commits what it places in its mailbox before it acknowledges it. Every
// node gets a fresh store in a temporary directory, removed at exit. They
// have no idle workload: a thousand stores measure the disk, not slc.
func init() {
	for _, v := range []struct {
		name, about string
		opts        store.Options
	}{
		{"slc-durable", "slc with a store on both sides, fsync per group commit, Send waits for its commit", store.Options{}},
		{"slc-durable-queued", "slc with a store on both sides, fsync per group commit, Send returns once queued (SendQueues)", store.Options{SendQueues: true}},
	} {
		opts := v.opts
		cfg := slcSystem{opts: func(name string, _ int) ([]slc.Option, error) {
			dir, err := durableDir(name)
			if err != nil {
				return nil, err
			}
			return []slc.Option{slc.WithStore(dir), slc.WithStoreOptions(opts)}, nil
		}}
		register(&System{
			Name:  v.name,
			Typed: true,
			About: v.about,
			OneWay: func(c Cell, rxs int, got Deliver) (Sender, error) {
				return cfg.newSender(c, rxs, got)
			},
			Echo: cfg.newEcho,
		})
	}
}

var durable struct {
	once sync.Once
	root string
	err  error
	n    atomic.Int64
}

// durableDir returns a new store directory for node name.
func durableDir(name string) (string, error) {
	durable.once.Do(func() {
		durable.root, durable.err = os.MkdirTemp("", "slc-bench-store-")
		if durable.err == nil {
			atExit(func() { os.RemoveAll(durable.root) })
		}
	})
	if durable.err != nil {
		return "", durable.err
	}
	return filepath.Join(durable.root, fmt.Sprintf("%s-%d", name, durable.n.Add(1))), nil
}

var exitFuncs struct {
	sync.Mutex
	fns []func()
}

// atExit registers fn to run when the benchmark ends.
func atExit(fn func()) {
	exitFuncs.Lock()
	exitFuncs.fns = append(exitFuncs.fns, fn)
	exitFuncs.Unlock()
}

func runAtExit() {
	exitFuncs.Lock()
	defer exitFuncs.Unlock()
	for _, fn := range exitFuncs.fns {
		fn()
	}
	exitFuncs.fns = nil
}
