package store

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

var errMissing = errors.New("missing or damaged value")

// work is what one commit writes.
type work struct {
	out     []outWork
	in      []inWork
	ids     uint64 // the new ID reservation, or 0
	cgen    uint64 // the consumption-log generation folded in
	setCGen bool
	aside   []aside // damaged values a salvaging Open moves aside
}

// aside is a damaged value to move to the damaged bucket.
type aside struct {
	path [][]byte // bucket path
	key  []byte   // nil: the whole bucket path[len-1] is unreadable
	val  []byte
	name string
}

func (w *work) empty() bool {
	return len(w.out) == 0 && len(w.in) == 0 && w.ids == 0 && !w.setCGen && len(w.aside) == 0
}

// collectLocked takes everything pending for the next commit.
func (st *Store) collectLocked() *work {
	w := &work{}
	for _, p := range st.out {
		if o := st.collectOutLocked(p); !o.empty() {
			w.out = append(w.out, o)
		}
	}
	if st.consumed && st.clog != nil {
		// Marks recorded so far are in the active half: switch halves,
		// and write the state they produced (collected below) with the
		// old half's generation, which then need not be replayed.
		gen, err := st.clog.flip()
		if err != nil {
			st.failLocked(err)
		} else {
			w.cgen, w.setCGen = gen, true
		}
		st.consumed = false
		st.wakeLogLocked()
	}
	for _, s := range st.in {
		if i := st.collectInLocked(s); !i.empty() {
			w.in = append(w.in, i)
		}
	}
	if st.reserveTo > st.idLimit.Load() {
		w.ids = st.reserveTo
	}
	return w
}

// apply writes w in one transaction.
func (w *work) apply(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	if meta == nil {
		return errMissing
	}
	for _, a := range w.aside {
		if err := a.apply(tx); err != nil {
			return err
		}
	}
	if w.ids != 0 {
		if err := meta.Put(kIDs, sealedU64s(w.ids)); err != nil {
			return err
		}
	}
	if w.setCGen {
		if err := meta.Put(kCGen, sealedU64s(w.cgen)); err != nil {
			return err
		}
	}
	for i := range w.out {
		if err := w.out[i].apply(tx); err != nil {
			return err
		}
	}
	for i := range w.in {
		if err := w.in[i].apply(tx); err != nil {
			return err
		}
	}
	return nil
}

func (a *aside) apply(tx *bolt.Tx) error {
	d, err := tx.CreateBucketIfNotExists(bDamaged)
	if err != nil {
		return err
	}
	if err := d.Put([]byte(a.name), a.val); err != nil {
		return err
	}
	if a.key == nil {
		parent := nested(tx, a.path[:len(a.path)-1])
		if parent == nil {
			return nil
		}
		if err := parent.DeleteBucket(a.path[len(a.path)-1]); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		return nil
	}
	if b := nested(tx, a.path); b != nil {
		return b.Delete(a.key)
	}
	return nil
}

// settleLocked applies a committed w to the in-memory state.
func (st *Store) settleLocked(w *work) {
	for i := range w.out {
		st.outBytes = max(0, st.outBytes-w.out[i].delSize)
	}
	for i := range w.in {
		st.received.Add(uint64(w.in[i].received))
	}
	if w.ids > st.idLimit.Load() {
		st.idLimit.Store(w.ids)
	}
}

func (o *outWork) apply(tx *bolt.Tx) error {
	root := tx.Bucket(bOut)
	if root == nil {
		return errMissing
	}
	if o.forget {
		if err := root.DeleteBucket([]byte(o.id)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		if o.addr == nil && o.rel == nil && len(o.puts) == 0 {
			return nil
		}
	}
	b, err := root.CreateBucketIfNotExists([]byte(o.id))
	if err != nil {
		return err
	}
	if o.addr != nil {
		if err := b.Put(kAddr, seal([]byte(*o.addr))); err != nil {
			return err
		}
	}
	if o.rel != nil {
		if err := b.Put(kRel, sealedU64s(o.rel[0], o.rel[1], o.rel[2])); err != nil {
			return err
		}
	}
	for _, k := range o.del {
		if err := b.Delete(key(recPrefix, k)); err != nil {
			return err
		}
	}
	// Records are appended in key order: full pages split off as they are.
	b.FillPercent = 1
	for _, p := range o.puts {
		if err := b.Put(p.k, p.v); err != nil {
			return err
		}
	}
	return nil
}

// nested returns the bucket at path, or nil.
func nested(tx *bolt.Tx, path [][]byte) *bolt.Bucket {
	if len(path) == 0 {
		return nil
	}
	b := tx.Bucket(path[0])
	for _, p := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(p)
	}
	return b
}

// createNested returns the bucket at path, creating what is missing.
func createNested(tx *bolt.Tx, path [][]byte) (*bolt.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists(path[0])
	if err != nil {
		return nil, err
	}
	for _, p := range path[1:] {
		if b, err = b.CreateBucketIfNotExists(p); err != nil {
			return nil, err
		}
	}
	return b, nil
}
