package store

import (
	"encoding/binary"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
)

// sender is the inbound state kept for one peer that sends to this node.
type sender struct {
	id       peer.ID
	idx      uint32 // its number in the consumption log
	idxDirty bool
	inst     uint64 // the instance of the latest delivery
	dlv      uint64 // the highest message ID placed in the mailbox from inst
	dlvDirty bool
	recs     []inRec // records holding messages not all consumed, in key order
	cons     map[uint64]*consState
	asm      *asmState
	drop     uint64 // chunk keys of dropped partial messages to delete, +1 (0: none)
	pend     []kv   // records and chunks for the next commit
	pendMsgs int    // messages in the records of pend
}

// inRec is an inbound record: the instance and ID of its last message.
type inRec struct {
	key, inst, lastSeq uint64
}

// consState tracks what the application consumed from one instance of a
// sender. Messages from one sender are consumed in the order they arrived,
// except that two goroutines receiving at once may report them out of
// turn: ooo holds those until the ones before them are reported.
type consState struct {
	w       uint64              // every arrival at or below w is consumed
	arrived []uint64            // arrivals above w, in order
	ooo     map[uint64]struct{} // arrivals consumed out of turn
	dirty   bool
}

func (c *consState) consume(seq uint64) bool {
	i := sort.Search(len(c.arrived), func(i int) bool { return c.arrived[i] >= seq })
	if i == len(c.arrived) || c.arrived[i] != seq {
		return false // not a stored arrival, or consumed already
	}
	if i > 0 {
		if c.ooo == nil {
			c.ooo = map[uint64]struct{}{}
		}
		c.ooo[seq] = struct{}{}
		c.dirty = true
		return true
	}
	c.w = seq
	c.arrived = c.arrived[1:]
	for len(c.arrived) > 0 {
		if _, ok := c.ooo[c.arrived[0]]; !ok {
			break
		}
		delete(c.ooo, c.arrived[0])
		c.w = c.arrived[0]
		c.arrived = c.arrived[1:]
	}
	c.dirty = true
	return true
}

// consumed reports whether seq, a stored arrival, was consumed.
func (c *consState) consumed(seq uint64) bool {
	if seq <= c.w {
		return true
	}
	_, ok := c.ooo[seq]
	return ok
}

func (c *consState) encode() []byte {
	ooo := make([]uint64, 0, len(c.ooo))
	for s := range c.ooo {
		ooo = append(ooo, s)
	}
	sort.Slice(ooo, func(i, j int) bool { return ooo[i] < ooo[j] })
	return encodeCons(c.w, ooo)
}

// asmState is a chunked message partly received and committed.
type asmState struct {
	inst   uint64
	p      peer.Partial // without Data
	chunks uint64       // chunk keys on disk
}

type kv struct{ k, v []byte }

func (st *Store) senderLocked(id peer.ID) *sender {
	s := st.in[id]
	if s == nil {
		st.nextIdx++
		s = &sender{id: id, idx: st.nextIdx, idxDirty: true, cons: map[uint64]*consState{}}
		st.in[id] = s
		st.byIdx[s.idx] = s
	}
	return s
}

func (s *sender) consFor(inst uint64) *consState {
	c := s.cons[inst]
	if c == nil {
		c = &consState{}
		s.cons[inst] = c
	}
	return c
}

// Sink wraps ib so that every message a connection delivers is committed
// to the store before it is placed in the mailbox and acknowledged. Use
// the result as the sessions' peer.Config.Inbox, and st.Taken as ib's
// mailbox.Config.Taken.
func (st *Store) Sink(ib *mailbox.Inbox) peer.Sink { return &sink{st: st, ib: ib} }

type sink struct {
	st *Store
	ib *mailbox.Inbox
}

// Push waits for room in the sender's mailbox queue, commits the messages
// (one record, shared with whatever else the commit holds), then places
// them all.
func (k *sink) Push(done <-chan struct{}, from peer.ID, msgs []peer.Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	if err := k.ib.WaitRoom(done, from); err != nil {
		return 0, err
	}
	n, err := k.st.record(from, msgs)
	if err != nil {
		return 0, err
	}
	if err := k.st.wait(n); err != nil {
		return 0, err
	}
	k.st.arrive(from, msgs)
	if err := k.ib.PushAll(from, msgs); err != nil {
		return 0, err
	}
	return len(msgs), nil
}

// record queues inbound records holding msgs for the next commit and
// returns the commit's number. The messages are grouped in records of at
// most recordSize bytes, CRC included (a message larger than that has a
// record of its own).
func (st *Store) record(from peer.ID, msgs []peer.Message) (uint64, error) {
	size := 0
	for i := range msgs {
		size += 15 + len(msgs[i].Type) + len(msgs[i].Raw) + 16
	}
	type piece struct {
		start, end int
		lastSeq    uint64
	}
	var arr [4]piece
	pieces := arr[:0]
	b := make([]byte, 0, size+12*(size/(recordSize/2)+1))
	inst := msgs[0].Instance
	start, lastSeq := -1, uint64(0)
	for i := range msgs {
		// A message whose serializer this node lacks is kept with no
		// serializer name, and restored with the same error.
		name := ""
		if ser, ok := codec.SerializerByID(msgs[i].Serializer); ok && (msgs[i].Err == nil || msgs[i].Serializer != codec.Raw) {
			name = ser.Name()
		}
		n := 14 + len(name) + len(msgs[i].Type) + len(msgs[i].Raw)
		if start >= 0 && len(b)-start+n+4 > recordSize {
			b = sealFrom(b, start)
			pieces = append(pieces, piece{start: start, end: len(b), lastSeq: lastSeq})
			start = -1
		}
		if start < 0 {
			start = len(b)
			b = binary.BigEndian.AppendUint64(b, inst)
		}
		b = appendMessage(b, &msgs[i], name)
		lastSeq = uint64(msgs[i].ID)
	}
	b = sealFrom(b, start)
	pieces = append(pieces, piece{start: start, end: len(b), lastSeq: lastSeq})

	st.mu.Lock()
	defer st.mu.Unlock()
	if st.failed != nil {
		return 0, st.failed
	}
	if st.closed || st.cur == nil {
		return 0, ErrClosed
	}
	s := st.senderLocked(from)
	for _, pc := range pieces {
		st.nextIn++
		s.pend = append(s.pend, kv{key(recPrefix, st.nextIn), b[pc.start:pc.end:pc.end]})
		s.recs = append(s.recs, inRec{key: st.nextIn, inst: inst, lastSeq: pc.lastSeq})
	}
	s.pendMsgs += len(msgs)
	if s.inst != inst {
		s.inst = inst
	}
	s.dlv, s.dlvDirty = lastSeq, true
	if a := s.asm; a != nil && (a.inst != inst || a.p.Seq <= lastSeq) {
		// The chunked message is complete (it is in these records), or
		// belongs to an earlier instance of the sender.
		s.dropLocked()
	}
	n := st.cur.n
	st.signal()
	return n, nil
}

// arrive registers committed messages as arrivals, before the mailbox
// gets them, so Taken can mark them consumed.
func (st *Store) arrive(from peer.ID, msgs []peer.Message) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.in[from]
	if s == nil {
		return
	}
	c := s.consFor(msgs[0].Instance)
	for i := range msgs {
		if seq := uint64(msgs[i].ID); len(c.arrived) == 0 || seq > c.arrived[len(c.arrived)-1] {
			if seq > c.w {
				c.arrived = append(c.arrived, seq)
			}
		}
	}
}

// Taken records that the application consumed m: use it as the mailbox's
// mailbox.Config.Taken. The mark is written to the consumption log at
// once (it survives a crash of the process) and folded into the database
// at the next commit.
func (st *Store) Taken(m peer.Message) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for {
		if st.closed || st.failed != nil || st.clog == nil {
			return
		}
		s := st.in[m.From]
		if s == nil {
			return
		}
		c := s.cons[m.Instance]
		if c == nil {
			return
		}
		seq := uint64(m.ID)
		i := sort.Search(len(c.arrived), func(i int) bool { return c.arrived[i] >= seq })
		if i == len(c.arrived) || c.arrived[i] != seq {
			return
		}
		ok, err := st.clog.add(s.idx, m.Instance, seq)
		if err != nil {
			st.failLocked(err)
			return
		}
		if ok {
			c.consume(seq)
			st.consumed = true
			return
		}
		// The log's half is full: the next commit switches halves.
		st.consumed = true
		if st.logWait == nil {
			st.logWait = make(chan struct{})
		}
		ch := st.logWait
		st.signal()
		st.mu.Unlock()
		<-ch
		st.mu.Lock()
	}
}

// Delivered implements peer.Store.
func (st *Store) Delivered(id peer.ID, inst uint64) (uint64, *peer.Partial) {
	st.mu.Lock()
	s := st.in[id]
	if s == nil || s.inst != inst {
		st.mu.Unlock()
		return 0, nil
	}
	dlv := s.dlv
	a := s.asm
	st.mu.Unlock()
	if a == nil || a.inst != inst || a.p.Seq <= dlv {
		return dlv, nil
	}
	p := a.p
	bkt := inBucketPath(id)
	err := guard(func() error {
		return st.db.View(func(tx *bolt.Tx) error {
			b := nested(tx, bkt)
			if b == nil {
				return errMissing
			}
			for i := uint64(0); i < p.Chunks; i++ {
				v, ok := unseal(b.Get(key(chunkPrefix, i)))
				if !ok {
					return errMissing
				}
				p.Data = append(p.Data, v...)
			}
			return nil
		})
	})
	if err != nil {
		// The chunks cannot be read back: the sender re-sends the message
		// from its first chunk.
		st.DropPartial(id)
		return dlv, nil
	}
	return dlv, &p
}

// SaveChunk implements peer.Store: it commits one more chunk of a chunked
// message, and returns once the commit is done.
func (st *Store) SaveChunk(id peer.ID, inst uint64, p peer.Partial, body []byte) error {
	if p.Chunks == 0 {
		return nil
	}
	st.mu.Lock()
	if st.failed != nil {
		err := st.failed
		st.mu.Unlock()
		return err
	}
	if st.closed || st.cur == nil {
		st.mu.Unlock()
		return ErrClosed
	}
	s := st.senderLocked(id)
	if s.inst != inst {
		// The first message from this instance of the sender.
		s.inst, s.dlv, s.dlvDirty = inst, 0, true
	}
	if a := s.asm; a != nil && (a.inst != inst || a.p.Seq != p.Seq) {
		s.dropLocked()
	}
	if s.asm == nil {
		s.asm = &asmState{inst: inst}
	}
	s.asm.p = peer.Partial{Seq: p.Seq, Ser: p.Ser, Type: p.Type, Chunks: p.Chunks}
	s.asm.chunks = p.Chunks
	s.pend = append(s.pend,
		kv{key(chunkPrefix, p.Chunks-1), seal(append([]byte(nil), body...))},
		kv{kAsm, encodeAsm(inst, &s.asm.p)})
	n := st.cur.n
	st.mu.Unlock()
	return st.wait(n)
}

// DropPartial implements peer.Store.
func (st *Store) DropPartial(id peer.ID) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.in[id]
	if s == nil || s.asm == nil {
		return
	}
	s.dropLocked()
	st.signal()
}

// dropLocked schedules the deletion of the partial message: its chunks
// were committed (SaveChunk waits), so the deletion runs before anything
// the next commit writes for a new one.
func (s *sender) dropLocked() {
	s.drop = max(s.drop, s.asm.chunks+1)
	s.asm = nil
}

// inWork is what one commit writes for one sender, in bucket in/<sender>.
type inWork struct {
	id       peer.ID
	pre      [][]byte // deleted before the puts: a dropped partial message
	puts     []kv
	dels     [][]byte // deleted after the puts: consumed records (possibly put by this commit)
	received int
}

func (w *inWork) empty() bool { return len(w.pre) == 0 && len(w.puts) == 0 && len(w.dels) == 0 }

// collectInLocked takes what sender s has for the next commit.
func (st *Store) collectInLocked(s *sender) inWork {
	w := inWork{id: s.id}
	if s.idxDirty {
		w.puts = append(w.puts, kv{kIdx, seal(binary.BigEndian.AppendUint32(nil, s.idx))})
		s.idxDirty = false
	}
	if s.dlvDirty {
		w.puts = append(w.puts, kv{kDlv, sealedU64s(s.inst, s.dlv)})
		s.dlvDirty = false
	}
	if s.drop > 0 {
		w.pre = append(w.pre, kAsm)
		for i := uint64(0); i+1 < s.drop; i++ {
			w.pre = append(w.pre, key(chunkPrefix, i))
		}
		s.drop = 0
	}
	w.received, s.pendMsgs = s.pendMsgs, 0
	w.puts = append(w.puts, s.pend...)
	s.pend = nil
	// Records whose messages were all consumed go, with the
	// consumption state that says so written in the same commit.
	i := 0
	for _, r := range s.recs {
		c := s.cons[r.inst]
		if c != nil && r.lastSeq <= c.w {
			w.dels = append(w.dels, key(recPrefix, r.key))
			continue
		}
		s.recs[i] = r
		i++
	}
	clear(s.recs[i:])
	s.recs = s.recs[:i]
	for inst, c := range s.cons {
		live := inst == s.inst
		for _, r := range s.recs {
			if r.inst == inst {
				live = true
				break
			}
		}
		switch {
		case !live && len(c.arrived) == 0:
			delete(s.cons, inst)
			w.dels = append(w.dels, consKey(inst))
		case c.dirty:
			w.puts = append(w.puts, kv{consKey(inst), c.encode()})
			c.dirty = false
		}
	}
	return w
}

func (w *inWork) apply(tx *bolt.Tx) error {
	b, err := createNested(tx, inBucketPath(w.id))
	if err != nil {
		return err
	}
	// Records are appended in key order: full pages split off as they are.
	b.FillPercent = 1
	for _, k := range w.pre {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	for _, p := range w.puts {
		if err := b.Put(p.k, p.v); err != nil {
			return err
		}
	}
	for _, k := range w.dels {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func inBucketPath(id peer.ID) [][]byte  { return [][]byte{bIn, []byte(id)} }
func outBucketPath(id peer.ID) [][]byte { return [][]byte{bOut, []byte(id)} }
