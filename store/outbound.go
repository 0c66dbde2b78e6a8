package store

import (
	"context"

	"github.com/slc-go/slc/peer"
)

const (
	// recordSize is the most bytes a record of outbound frames or of
	// inbound messages holds, CRC included, unless one entry alone is
	// larger. Two such records and their keys fill one 4 KiB database
	// page. The database rewrites a leaf page whole whenever it changes
	// it, and a leaf keeps at least two values however large: with one
	// large record per commit, every commit rewrote the previous
	// record, and every deletion the next one.
	recordSize = 2000
	// maxPendHint bounds the size a peer's next pending entries start
	// with when no spare buffer is at hand.
	maxPendHint = 1 << 20
	// maxSpares and maxSpareSize bound the committed entry buffers a
	// store keeps for reuse.
	maxSpares    = 4
	maxSpareSize = 8 << 20
)

// outPeer is the outbound state kept for one peer: the committed records
// of frames not yet released, the frames appended since the last commit,
// and what the peer is known to hold.
type outPeer struct {
	id        peer.ID
	addr      string
	addrDirty bool
	recs      []outRec // committed records, oldest first
	nextKey   uint64
	pend      []byte // frame entries since the last commit
	pendHint  int    // the size of the last commit's entries, to size the next pend
	rel       [3]uint64
	relDirty  bool
	forget    bool // delete what is on disk before writing anything
}

// outRec is a committed record: the position of its last frame and its size.
type outRec struct {
	key                uint64
	lastSeq, lastChunk uint64
	size               int64
}

// released reports whether the peer holds chunk chunk of message seq.
func (p *outPeer) released(seq, chunk uint64) bool {
	return seq <= p.rel[0] || (seq == p.rel[1] && chunk < p.rel[2])
}

// RestoredPeer is what a previous run left for one peer: the frames of the
// messages it had not acknowledged, to be re-sent.
type RestoredPeer struct {
	ID     peer.ID
	Addr   string // where to dial it, or "" when it dialed this node
	Acked  uint64 // its acknowledgement watermark
	Frames []peer.StoredFrame
}

// Restored returns the peers a previous run had unacknowledged messages
// for, with those messages, in the order they were sent.
func (st *Store) Restored() []RestoredPeer { return st.restoredOut }

func (st *Store) outPeerLocked(id peer.ID) *outPeer {
	p := st.out[id]
	if p == nil {
		p = &outPeer{id: id, nextKey: 1}
		st.out[id] = p
	}
	return p
}

// Append implements peer.Store: it queues one frame for the next commit.
func (st *Store) Append(id peer.ID, hdr, body []byte, seq, chunk uint64) uint64 {
	st.mu.Lock()
	if st.closed || st.cur == nil {
		st.mu.Unlock()
		return 0
	}
	p := st.outPeerLocked(id)
	before := len(p.pend)
	if p.pend == nil {
		p.pend = st.pendBufLocked(p.pendHint, frameOverhead+len(hdr)+len(body)+4)
	}
	p.pend = appendFrame(p.pend, seq, chunk, hdr, body)
	st.outBytes += int64(len(p.pend) - before)
	n := st.cur.n
	st.mu.Unlock()
	st.appended.Add(1)
	st.signal()
	return n
}

// pendBufLocked returns an empty buffer for a peer's pending entries: a
// spare one from an earlier commit, or a new one sized like the peer's
// last commit (up to maxPendHint), so that a steady stream neither
// allocates per commit nor grows its entries by doubling.
func (st *Store) pendBufLocked(hint, need int) []byte {
	if k := len(st.spare); k > 0 {
		b := st.spare[k-1]
		st.spare[k-1] = nil
		st.spare = st.spare[:k-1]
		if cap(b) >= need {
			return b
		}
	}
	return make([]byte, 0, max(min(2*hint, maxPendHint), need))
}

// recycleLocked keeps the entry buffers of a finished commit for reuse:
// the database copied what it needed from them during the commit.
func (st *Store) recycleLocked(w *work) {
	for i := range w.out {
		st.spareLocked(w.out[i].buf)
		w.out[i].buf, w.out[i].puts = nil, nil
	}
}

// splitOutLocked adds the records that hold entries (frame entries of p,
// none released) to w: sealed runs of whole entries of at most
// recordSize bytes each, CRC included (an entry larger than that is a
// record of its own), copied into one buffer.
func (st *Store) splitOutLocked(p *outPeer, w *outWork, entries []byte) {
	type cut struct {
		end                int // offset in entries
		lastSeq, lastChunk uint64
	}
	cuts := make([]cut, 0, len(entries)/(recordSize/2)+1)
	var c cut
	start, off := 0, 0
	parseFrames(entries, func(seq, chunk uint64, frame []byte) {
		n := frameOverhead + len(frame)
		if off > start && off-start+n+4 > recordSize {
			cuts = append(cuts, c)
			start = off
		}
		off += n
		c = cut{end: off, lastSeq: seq, lastChunk: chunk}
	})
	cuts = append(cuts, c)
	buf := st.pendBufLocked(0, len(entries)+4*len(cuts))
	w.puts = make([]kv, 0, len(cuts))
	start = 0
	for _, c := range cuts {
		at := len(buf)
		buf = sealFrom(append(buf, entries[start:c.end]...), at)
		w.puts = append(w.puts, kv{key(recPrefix, p.nextKey), buf[at:len(buf):len(buf)]})
		p.recs = append(p.recs, outRec{key: p.nextKey, lastSeq: c.lastSeq, lastChunk: c.lastChunk, size: int64(c.end - start)})
		p.nextKey++
		start = c.end
	}
	w.buf = buf
}

// spareLocked keeps b, emptied, for reuse, within the store's bounds.
func (st *Store) spareLocked(b []byte) {
	if b != nil && cap(b) <= maxSpareSize && len(st.spare) < maxSpares {
		st.spare = append(st.spare, b[:0])
	}
}

// HasRoom implements peer.Store.
func (st *Store) HasRoom(n int) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.outBytes < st.opts.MaxBytes && st.failed == nil && !st.closed
}

// WaitRoom implements peer.Store: it blocks while the outbound messages
// kept fill MaxBytes. Like BufferCap, the limit is checked before a
// message is added, so one message may take the store past it.
func (st *Store) WaitRoom(ctx context.Context, n int) error {
	for {
		st.mu.Lock()
		switch {
		case st.failed != nil:
			err := st.failed
			st.mu.Unlock()
			return err
		case st.closed:
			st.mu.Unlock()
			return ErrClosed
		case st.outBytes < st.opts.MaxBytes:
			st.mu.Unlock()
			return nil
		}
		if st.room == nil {
			st.room = make(chan struct{})
		}
		ch := st.room
		st.mu.Unlock()
		// Acknowledged frames are deleted by the next commit.
		st.signal()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ReserveID implements peer.Store.
func (st *Store) ReserveID(id uint64) error {
	for id > st.idLimit.Load() {
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
		if st.reserveTo < id {
			st.reserveTo = id + idBlock
		}
		n := st.cur.n
		st.mu.Unlock()
		if err := st.wait(n); err != nil {
			return err
		}
	}
	return nil
}

// Release implements peer.Store.
func (st *Store) Release(id peer.ID, acked, partial, chunks uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.out[id]
	if p == nil {
		return
	}
	if acked < p.rel[0] {
		return
	}
	p.rel = [3]uint64{acked, partial, chunks}
	p.relDirty = true
	if st.room != nil {
		st.signal()
	}
}

// SetAddr records where peer id is dialed, so a restarted node dials it
// again ("" when the peer dials this node).
func (st *Store) SetAddr(id peer.ID, addr string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return
	}
	p := st.outPeerLocked(id)
	if p.addr != addr || p.forget {
		p.addr, p.addrDirty = addr, true
	}
}

// Forget drops everything kept for peer id: its session ended for good
// (lost, or disconnected), and the messages it had not acknowledged were
// reported undelivered.
func (st *Store) Forget(id peer.ID) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.out[id]
	if p == nil || st.closed {
		return
	}
	freed := int64(len(p.pend))
	for _, r := range p.recs {
		freed += r.size
	}
	st.outBytes -= freed
	*p = outPeer{id: id, nextKey: p.nextKey, forget: true}
	st.wakeRoomLocked()
	st.signal()
}

// outWork is what one commit writes for one peer.
type outWork struct {
	id      peer.ID
	forget  bool
	addr    *string
	rel     *[3]uint64
	del     []uint64
	delSize int64
	puts    []kv   // records of frame entries, each at most recordSize bytes unless one entry is larger
	buf     []byte // the records' buffer (puts are in it), reused once committed
}

func (w *outWork) empty() bool {
	return !w.forget && w.addr == nil && w.rel == nil && len(w.del) == 0 && len(w.puts) == 0
}

// collectOutLocked takes what peer p has for the next commit.
func (st *Store) collectOutLocked(p *outPeer) outWork {
	w := outWork{id: p.id, forget: p.forget}
	p.forget = false
	if p.addrDirty {
		a := p.addr
		w.addr, p.addrDirty = &a, false
	}
	if p.relDirty {
		r := p.rel
		w.rel, p.relDirty = &r, false
		i := 0
		for i < len(p.recs) && p.released(p.recs[i].lastSeq, p.recs[i].lastChunk) {
			w.del = append(w.del, p.recs[i].key)
			w.delSize += p.recs[i].size
			i++
		}
		p.recs = p.recs[i:]
	}
	if len(p.pend) > 0 {
		// Frames the peer acknowledged before they were committed need
		// not be written.
		rest := p.pend
		skip := true
		parseFrames(p.pend, func(seq, chunk uint64, frame []byte) {
			if skip && p.released(seq, chunk) {
				rest = rest[frameOverhead+len(frame):]
				return
			}
			skip = false
		})
		st.outBytes -= int64(len(p.pend) - len(rest))
		if len(rest) > 0 {
			st.splitOutLocked(p, &w, rest)
		}
		// What is kept was copied into w.buf: the entries' buffer can
		// take the next frames (of any peer).
		p.pendHint = len(p.pend)
		st.spareLocked(p.pend)
		p.pend = nil
	}
	return w
}
