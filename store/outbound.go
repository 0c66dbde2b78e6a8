package store

import (
	"context"

	"github.com/slc-go/slc/peer"
)

const (
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
		b := w.out[i].buf
		if b == nil || cap(b) > maxSpareSize || len(st.spare) >= maxSpares {
			continue
		}
		st.spare = append(st.spare, b[:0])
		w.out[i].buf, w.out[i].put = nil, nil
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
	id       peer.ID
	forget   bool
	addr     *string
	rel      *[3]uint64
	del      []uint64
	delSize  int64
	putKey   uint64
	put      []byte
	putFrame int
	buf      []byte // the entries' buffer (put is in it), reused once committed
}

func (w *outWork) empty() bool {
	return !w.forget && w.addr == nil && w.rel == nil && len(w.del) == 0 && w.put == nil
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
		var lastSeq, lastChunk uint64
		n := 0
		parseFrames(p.pend, func(seq, chunk uint64, frame []byte) {
			if n == 0 && p.released(seq, chunk) {
				rest = rest[frameOverhead+len(frame):]
				return
			}
			n++
			lastSeq, lastChunk = seq, chunk
		})
		st.outBytes -= int64(len(p.pend) - len(rest))
		if n > 0 {
			w.putKey, w.put, w.putFrame = p.nextKey, seal(rest), n
			p.nextKey++
			p.recs = append(p.recs, outRec{key: w.putKey, lastSeq: lastSeq, lastChunk: lastChunk, size: int64(len(rest))})
		}
		p.pendHint = len(p.pend)
		w.buf = p.pend
		p.pend = nil
	}
	return w
}
