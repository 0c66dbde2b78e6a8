package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/slc-go/slc/peer"
)

// File names inside a store directory.
const (
	DBName = "slc.db"
	// LogName is the consumption log.
	LogName = logName
)

// idBlock is how many message IDs one reservation covers: a restarted
// node skips what is left of its last block.
const idBlock = 1 << 20

// Errors.
var (
	// ErrClosed is returned by operations on a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrInUse is returned by Open when another process (or another
	// Communicator in this one) has the store open.
	ErrInUse = errors.New("store: in use by another process or Communicator")
)

// Store is a node's durable state: see the package documentation. It is
// created by Open (slc.WithStore does it for a Communicator) and used by
// the node's sessions and mailbox through the peer.Store interface, the
// Sink wrapper and the Taken hook. All methods are safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	db   *bolt.DB
	clog *consumedLog

	name     string
	instance uint64
	firstID  uint64
	idLimit  atomic.Uint64

	restoredOut []RestoredPeer
	restoredIn  []RestoredMessages
	damage      []Damage

	mu        sync.Mutex
	cur       *batch // the batch being filled
	inflight  *batch // the batch being committed
	failed    error
	closed    bool
	out       map[peer.ID]*outPeer
	outBytes  int64
	spare     [][]byte      // committed outbound entry buffers, for reuse (see Append)
	room      chan struct{} // closed when outBytes drops; nil when nobody waits
	in        map[peer.ID]*sender
	byIdx     map[uint32]*sender
	nextIdx   uint32
	nextIn    uint64 // key of the next inbound record
	reserveTo uint64 // ID reservation for the next commit
	logWait   chan struct{}
	consumed  bool // consumption recorded since the last checkpoint

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	commits  atomic.Uint64
	syncs    atomic.Uint64
	appended atomic.Uint64
	received atomic.Uint64
}

type batch struct {
	n    uint64
	done chan struct{}
	err  error
}

// Open opens the store in dir, creating dir and the store when missing,
// and recovers what a previous run left: see Restored and RestoredInbox.
// name is the node's name: a new store takes it, and an existing store
// must have been created with it; "" accepts the stored name (and fails
// for a new store).
//
// Open fails with a *CorruptError when the store fails its checks (unless
// opts.Salvage), and with ErrInUse when another process has it open.
func Open(dir, name string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	st := &Store{
		dir: dir, opts: opts,
		out: map[peer.ID]*outPeer{}, in: map[peer.ID]*sender{}, byIdx: map[uint32]*sender{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	if fi, err := os.Stat(filepath.Join(dir, DBName)); err == nil && fi.Size() == 0 {
		if _, err := os.Stat(filepath.Join(dir, LogName)); err == nil {
			// A store was here (its consumption log is): bbolt would
			// make the empty file a new database, and the node a new
			// node, silently.
			return nil, &CorruptError{Dir: dir, Fatal: true, Damage: []Damage{{Where: DBName, What: "the file is empty", Loses: "everything the database held"}}}
		}
	}
	db, err := openDB(filepath.Join(dir, DBName), false, opts.Sync != SyncBatch)
	if err != nil {
		return nil, st.openErr(err)
	}
	st.db = db
	if err := st.recover(name); err != nil {
		st.closeFiles()
		return nil, err
	}
	st.cur = &batch{n: 1, done: make(chan struct{})}
	st.wg.Add(1)
	go st.run()
	return st, nil
}

// openErr turns a bbolt open failure into the store's error.
func (st *Store) openErr(err error) error {
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return fmt.Errorf("%w: %s", ErrInUse, st.dir)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch), isFault(err):
		return &CorruptError{Dir: st.dir, Fatal: true, Damage: []Damage{{Where: DBName, What: err.Error(), Loses: "everything the database held"}}}
	}
	return fmt.Errorf("store: %w", err)
}

// faultError is a memory fault (a truncated file, a page outside it)
// caught while reading the database.
type faultError struct{ v any }

func (e *faultError) Error() string { return fmt.Sprintf("unreadable database: %v", e.v) }

func isFault(err error) bool {
	var f *faultError
	return errors.As(err, &f)
}

// guard runs fn, turning a panic or memory fault inside bbolt (a damaged
// file) into an error.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if v := recover(); v != nil {
			err = &faultError{v: v}
		}
	}()
	return fn()
}

func openDB(path string, readOnly, noSync bool) (db *bolt.DB, err error) {
	err = guard(func() error {
		var e error
		db, e = bolt.Open(path, 0o600, &bolt.Options{
			Timeout: time.Second,
			// The free list is written with each commit: without it,
			// bbolt rebuilds it at open by walking the file in a
			// goroutine of its own, where a damaged page crashes the
			// process instead of failing Open.
			NoFreelistSync: false,
			FreelistType:   bolt.FreelistMapType,
			NoSync:         noSync,
			ReadOnly:       readOnly,
		})
		return e
	})
	return db, err
}

// Name returns the node's name.
func (st *Store) Name() string { return st.name }

// Instance returns the node's instance ID, the same in every run.
func (st *Store) Instance() uint64 { return st.instance }

// FirstID returns the value the node's message ID counter starts from:
// the IDs the previous runs may have used are all at or below it.
func (st *Store) FirstID() uint64 { return st.firstID }

// Dir returns the store's directory.
func (st *Store) Dir() string { return st.dir }

// Damage lists what a salvaging Open set aside.
func (st *Store) Damage() []Damage { return st.damage }

// SendWaits implements peer.Store.
func (st *Store) SendWaits() bool { return !st.opts.SendQueues }

// Stats are a store's counters.
type Stats struct {
	Commits  uint64 // database commits
	Syncs    uint64 // fdatasync calls (two per commit under SyncBatch; one per periodic sync)
	Frames   uint64 // outbound frames appended
	Received uint64 // inbound messages committed
	OutBytes int64  // outbound bytes kept
}

// Stats returns the store's counters.
func (st *Store) Stats() Stats {
	st.mu.Lock()
	ob := st.outBytes
	st.mu.Unlock()
	return Stats{Commits: st.commits.Load(), Syncs: st.syncs.Load(), Frames: st.appended.Load(), Received: st.received.Load(), OutBytes: ob}
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

// --- the committer ---

// run is the committer: it commits whatever accumulated, one commit at a
// time, so everything appended while a commit runs goes into the next
// one (group commit).
func (st *Store) run() {
	defer st.wg.Done()
	var tick <-chan time.Time
	period := DefaultCheckpoint
	if st.opts.Sync == SyncInterval {
		period = min(period, st.opts.Interval)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	tick = t.C
	lastSync := time.Now()
	for {
		select {
		case <-st.kick:
		case <-tick:
			if st.opts.Sync == SyncInterval && time.Since(lastSync) >= st.opts.Interval {
				if err := st.syncFiles(); err != nil {
					st.fail(err)
				}
				lastSync = time.Now()
			}
		case <-st.stop:
			st.commit()
			return
		}
		st.commit()
	}
}

func (st *Store) syncFiles() error {
	if err := st.db.Sync(); err != nil {
		return err
	}
	st.syncs.Add(1)
	return nil
}

func (st *Store) signal() {
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// fail records the store's first I/O error: every later operation
// reports it.
func (st *Store) fail(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failLocked(err)
}

func (st *Store) failLocked(err error) {
	if st.failed == nil {
		st.failed = fmt.Errorf("store: %w", err)
		st.opts.Logger.Error("slc store failed; durability is lost", "dir", st.dir, "err", err)
	}
	st.wakeRoomLocked()
	st.wakeLogLocked()
}

// wait blocks until batch n is committed and returns its error.
func (st *Store) wait(n uint64) error {
	st.mu.Lock()
	var b *batch
	switch {
	case st.cur != nil && st.cur.n == n:
		b = st.cur
	case st.inflight != nil && st.inflight.n == n:
		b = st.inflight
	default:
		err := st.failed
		st.mu.Unlock()
		return err // committed already (or failed)
	}
	st.mu.Unlock()
	st.signal()
	<-b.done
	return b.err
}

// WaitCommit implements peer.Store.
func (st *Store) WaitCommit(n uint64) error { return st.wait(n) }

// Flush blocks until everything appended so far is committed (and, under
// SyncBatch, on disk), or ctx ends.
func (st *Store) Flush(ctx context.Context) error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return ErrClosed
	}
	b := st.cur
	st.mu.Unlock()
	st.signal()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close commits what is pending, syncs the files and closes them. Calls
// waiting on the store return ErrClosed. Close is idempotent.
func (st *Store) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	st.wakeRoomLocked()
	st.wakeLogLocked()
	st.mu.Unlock()
	close(st.stop)
	st.wg.Wait()
	var err error
	if st.opts.Sync != SyncBatch {
		err = st.syncFiles()
	}
	st.mu.Lock()
	if st.cur != nil {
		// Anything appended after the final commit is not kept.
		st.cur.err = ErrClosed
		close(st.cur.done)
		st.cur = nil
	}
	failed := st.failed
	st.mu.Unlock()
	if cerr := st.closeFiles(); err == nil {
		err = cerr
	}
	if err == nil && failed != nil {
		err = failed
	}
	return err
}

func (st *Store) closeFiles() error {
	var err error
	if st.clog != nil {
		if e := st.clog.r.sync(); e != nil {
			err = e
		}
		if e := st.clog.close(); err == nil {
			err = e
		}
	}
	if st.db != nil {
		if e := st.db.Close(); err == nil {
			err = e
		}
	}
	return err
}

// commit writes one batch: outbound frames and releases, inbound records,
// partial messages, the consumption checkpoint, the ID reservation.
func (st *Store) commit() {
	st.mu.Lock()
	b := st.cur
	if b == nil || st.failed != nil {
		if b != nil && st.failed != nil {
			b.err = st.failed
			close(b.done)
			st.cur = &batch{n: b.n + 1, done: make(chan struct{})}
		}
		st.mu.Unlock()
		return
	}
	w := st.collectLocked()
	st.cur = &batch{n: b.n + 1, done: make(chan struct{})}
	if w.empty() {
		// Nothing to write: whoever waits on this batch (Flush) waits
		// for data that is committed already.
		close(b.done)
		st.mu.Unlock()
		return
	}
	st.inflight = b
	st.mu.Unlock()

	err := guard(func() error { return st.db.Update(w.apply) })
	if err == nil {
		st.commits.Add(1)
		if st.opts.Sync == SyncBatch {
			// bbolt syncs a commit twice: the pages, then the meta page.
			st.syncs.Add(2)
		}
	}

	st.mu.Lock()
	st.inflight = nil
	st.recycleLocked(w)
	if err != nil {
		if st.failed == nil {
			st.failed = fmt.Errorf("store: commit: %w", err)
			st.opts.Logger.Error("slc store failed; durability is lost", "dir", st.dir, "err", err)
		}
		b.err = st.failed
	} else {
		st.settleLocked(w)
	}
	close(b.done)
	st.wakeRoomLocked()
	st.wakeLogLocked()
	st.mu.Unlock()
}

func (st *Store) wakeRoomLocked() {
	if st.room != nil {
		close(st.room)
		st.room = nil
	}
}

func (st *Store) wakeLogLocked() {
	if st.logWait != nil {
		close(st.logWait)
		st.logWait = nil
	}
}
