package peer

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/slc-go/slc/internal/wire"
)

// segSize is the size of the pooled byte segments the outbound log is made of.
const segSize = 256 << 10

var segPool = sync.Pool{New: func() any { return &segment{buf: make([]byte, 0, segSize)} }}

// segment is a run of encoded frames. Its bytes never move once appended:
// the writer reads from them while senders append after them.
type segment struct {
	buf   []byte // len is the bytes used; cap is fixed
	off   int64  // absolute log offset of buf[0]
	given bool   // buf is a message body the sender gave up (see appendGiven): nothing is appended to it
}

// free gives a segment no longer needed back for reuse.
func (s *segment) free() {
	if s.given {
		wire.PutLarge(s.buf)
		return
	}
	segPool.Put(s)
}

func (s *segment) end() int64 { return s.off + int64(len(s.buf)) }

// entry locates one unacknowledged frame of a message in the log: a whole
// message, or one chunk of a chunked one.
type entry struct {
	seq   uint64
	chunk uint64 // index of the chunk within its message, from 0
	start int64  // absolute offset of the frame
}

// ackWaiter is a WaitAcknowledged caller.
type ackWaiter struct {
	seq uint64
	ch  chan struct{}
}

// outLog is a session's outbound stream: the encoded DATA frames of every
// message not yet acknowledged, in order. It is at once the send batch (the
// writer sends everything from wpos to tail in one write), the resend
// buffer (after a reconnect the writer rewinds to the first message the
// remote has not delivered) and the BufferCap account (tail - head bytes are
// unacknowledged).
//
// Senders append under mu, either holding the session's send semaphore
// (between enter and leave) or, for a single frame, taking the ID under mu
// while no semaphore holder is inside (sendFast); the connection's writer
// takes ranges to send and reports what it wrote; the reader applies
// acknowledgements. All methods are safe for concurrent use.
type outLog struct {
	mu      sync.Mutex
	segs    []*segment // oldest first; the last one is appended to
	ents    []entry    // unacknowledged messages, ents[eh:] live
	eh      int
	tail    int64 // absolute end of the log
	wpos    int64 // next byte to send
	wend    int64 // end of the range being written now (== wpos when idle)
	acked   uint64
	last    uint64
	err     error         // set once the session ends: appends and waits fail with it
	lost    []MsgID       // unacknowledged when the session ended
	aborted []MsgID       // chunked messages whose sender gave up part way
	room    chan struct{} // closed when room frees; nil when nobody waits
	waiters []ackWaiter   // sorted by seq
	kick    chan struct{} // wakes the writer; capacity 1
	version uint8
	ids     *atomic.Uint64 // the node's message ID counter: no peer can know a higher ID
	prefix  []byte         // frames to send before the log on this connection (aborts)
	senders int            // Send calls holding the session's semaphore (see enter)
	pfxEnd  bool           // the range in flight includes the prefix

	// With a store: persist hands every appended frame to it and returns
	// the commit that will hold it; released reports what the remote
	// holds, so the store can drop it. Both run with mu held.
	persist  func(hdr, body []byte, seq, chunk uint64) uint64
	released func(acked, partial, chunks uint64)
	phdr     []byte // the header handed to persist (it copies it), reused
}

func newOutLog(ids *atomic.Uint64) *outLog {
	if ids == nil {
		ids = new(atomic.Uint64)
	}
	return &outLog{kick: make(chan struct{}, 1), version: wire.MaxVersion, ids: ids}
}

// head is the absolute offset of the first unacknowledged byte.
func (l *outLog) head() int64 {
	if l.eh < len(l.ents) {
		return l.ents[l.eh].start
	}
	return l.tail
}

// idle reports whether nothing waits to be written.
func (l *outLog) idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wpos >= l.tail
}

// unacked returns the unacknowledged bytes.
func (l *outLog) unacked() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tail - l.head()
}

// waitRoom blocks until fewer than limit bytes are unacknowledged, ctx ends
// or the log fails.
func (l *outLog) waitRoom(ctx context.Context, limit int64) error {
	for {
		l.mu.Lock()
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return err
		}
		if limit <= 0 || l.tail-l.head() < limit {
			l.mu.Unlock()
			return nil
		}
		if l.room == nil {
			l.room = make(chan struct{})
		}
		ch := l.room
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeBytes appends b to the log, filling the last segment and starting
// pooled ones as needed: a frame may span segments (the writer sends
// ranges with writev), so every segment has the same size and is reused.
// Called with mu held.
func (l *outLog) writeBytes(b []byte) {
	for len(b) > 0 {
		var s *segment
		if k := len(l.segs); k > 0 && !l.segs[k-1].given && len(l.segs[k-1].buf) < cap(l.segs[k-1].buf) {
			s = l.segs[k-1]
		} else {
			s = segPool.Get().(*segment)
			s.buf, s.off = s.buf[:0], l.tail
			l.segs = append(l.segs, s)
		}
		n := min(len(b), cap(s.buf)-len(s.buf))
		s.buf = append(s.buf, b[:n]...)
		l.tail += int64(n)
		b = b[n:]
	}
}

// appendData appends one DATA frame: chunk number chunk of message seq.
// The caller holds the session's send semaphore, so the frames of one
// message are contiguous.
// It returns the store commit that holds the frame (0 without a store).
func (l *outLog) appendData(chunk uint64, flags uint8, seq uint64, ser, comp uint8, typ string, body []byte) (uint64, error) {
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	if chunk > 0 && flags&wire.FlagAbort == 0 && has(l.aborted, MsgID(seq)) {
		// A reconnect abandoned this message while its sender was still
		// appending chunks: stop here.
		l.mu.Unlock()
		return 0, ErrAbandoned
	}
	commit := l.appendLocked(chunk, flags, seq, ser, comp, typ, body)
	l.mu.Unlock()
	l.kickWriter()
	return commit, nil
}

// appendLocked appends a frame and hands it to the store, if any; it
// returns the store commit that holds it. Called with mu held.
func (l *outLog) appendLocked(chunk uint64, flags uint8, seq uint64, ser, comp uint8, typ string, body []byte) uint64 {
	return l.appendGiven(chunk, flags, seq, ser, comp, typ, body, false)
}

// appendGiven is appendLocked that, with give, keeps body itself instead
// of a copy: the caller gives it up, and it comes back to the large
// buffer pool (wire.GetLarge) once acknowledged.
func (l *outLog) appendGiven(chunk uint64, flags uint8, seq uint64, ser, comp uint8, typ string, body []byte, give bool) uint64 {
	var hdr [wire.HeaderLen + wire.DataPrefixLen + wire.MaxTypeName]byte
	h := wire.AppendData(hdr[:0], l.version, flags, seq, ser, comp, typ, nil)
	// AppendData wrote the length of an empty body; patch in the real one.
	n := len(h) - wire.HeaderLen + len(body)
	h[4], h[5], h[6], h[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	l.appendFrame(h, body, seq, chunk, give)
	if l.persist != nil {
		// Through a reused heap copy, so that hdr stays on the stack
		// when there is no store; persist copies what it keeps.
		l.phdr = append(l.phdr[:0], h...)
		return l.persist(l.phdr, body, seq, chunk)
	}
	return 0
}

// appendFrame appends an encoded frame of chunk chunk of message seq: its
// body copied, or with give kept itself (see appendGiven).
// Called with mu held.
func (l *outLog) appendFrame(hdr, body []byte, seq, chunk uint64, give bool) {
	l.ents = append(l.ents, entry{seq: seq, chunk: chunk, start: l.tail})
	if chunk == 0 {
		l.last = seq
	}
	l.writeBytes(hdr)
	if give {
		l.segs = append(l.segs, &segment{buf: body, off: l.tail, given: true})
		l.tail += int64(len(body))
		return
	}
	l.writeBytes(body)
}

// enter and leave bracket a Send that holds the session's send semaphore.
// While one does, sendFast (which does not take the semaphore) stays out,
// so that the frames of a chunked message stay together and every frame
// is appended in ID order: such a Send takes its ID after entering.
func (l *outLog) enter() {
	l.mu.Lock()
	l.senders++
	l.mu.Unlock()
}

func (l *outLog) leave() {
	l.mu.Lock()
	l.senders--
	l.mu.Unlock()
}

// kickWriter wakes the connection's writer.
func (l *outLog) kickWriter() {
	if len(l.kick) > 0 {
		// A wake-up is pending: the writer has not taken it yet, and
		// takes everything appended before it does (an append and the
		// writer's take both hold mu, which orders this check after the
		// writer's receive when the writer took the log first).
		return
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// take returns the byte ranges from wpos on, appended to bufs, marked in
// flight until wrote or abandon. It cuts only between frames: the batch
// ends at the first frame boundary at or after max bytes, so control
// frames the writer sends between batches never land inside a frame. A
// prefix (abort frames queued by rewind) goes first. ok is false when
// nothing is pending.
func (l *outLog) take(bufs [][]byte, max int) ([][]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pfxEnd = false
	if len(l.prefix) > 0 {
		bufs = append(bufs, l.prefix)
		l.pfxEnd = true
	}
	if l.wpos >= l.tail {
		l.wend = l.wpos
		return bufs, l.pfxEnd
	}
	end := l.tail
	if l.tail-l.wpos > int64(max) {
		// The first frame starting at or after wpos+max; frames are the
		// unacknowledged entries from wpos on.
		limit := l.wpos + int64(max)
		live := l.ents[l.eh:]
		i := sort.Search(len(live), func(i int) bool { return live[i].start >= limit })
		if i < len(live) {
			end = live[i].start
		}
	}
	pos := l.wpos
	for _, s := range l.segs {
		if s.end() <= pos {
			continue
		}
		if pos >= end {
			break
		}
		b := s.buf[pos-s.off:]
		if rest := end - pos; int64(len(b)) > rest {
			b = b[:rest]
		}
		bufs = append(bufs, b)
		pos += int64(len(b))
	}
	l.wend = pos
	return bufs, true
}

// wrote records that the range handed out by take was written.
func (l *outLog) wrote() {
	l.mu.Lock()
	if l.pfxEnd {
		l.prefix, l.pfxEnd = nil, false
	}
	l.wpos = l.wend
	l.release()
	l.mu.Unlock()
}

// abandon records that the range handed out by take was not (fully)
// written: the connection failed. The next connection rewinds anyway.
func (l *outLog) abandon() {
	l.mu.Lock()
	l.wend = l.wpos
	l.mu.Unlock()
}

// release returns segments that are acknowledged and not in flight. Called
// with mu held.
func (l *outLog) release() {
	limit := min(l.head(), l.wpos)
	i := 0
	for i < len(l.segs)-1 && l.segs[i].end() <= limit {
		l.segs[i].free()
		l.segs[i] = nil
		i++
	}
	if i > 0 {
		l.segs = append(l.segs[:0], l.segs[i:]...)
	}
	// The last segment is reused in place once everything in it is done
	// (a given one is freed: the next append takes a pooled segment).
	if len(l.segs) == 1 && l.segs[0].end() <= limit && l.wend == l.wpos {
		if l.segs[0].given {
			l.segs[0].free()
			l.segs[0] = nil
			l.segs = l.segs[:0]
		} else {
			l.segs[0].buf = l.segs[0].buf[:0]
			l.segs[0].off = l.tail
		}
	}
	if l.eh > 1024 && l.eh*2 > len(l.ents) {
		l.ents = append(l.ents[:0], l.ents[l.eh:]...)
		l.eh = 0
	}
}

// ack applies a cumulative acknowledgement. It reports whether the
// watermark advanced. An ID above any this node has issued is a protocol
// error; one above this log's last message (the remote remembers an
// earlier session with this node) acknowledges the whole log.
func (l *outLog) ack(seq uint64) (bool, error) {
	if seq > l.ids.Load() {
		return false, &wire.ProtocolError{Code: wire.CodeSequence, Reason: fmt.Sprintf("acknowledgement of message %d, which was never sent", seq)}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	seq = min(seq, l.last)
	if seq <= l.acked {
		return false, nil
	}
	l.advance(seq, 0, 0)
	return true, nil
}

// progress applies a PROGRESS: the remote holds every message before seq
// and the first chunks chunks of seq. It reports whether the message
// watermark advanced. Progress on a message this log no longer holds is
// ignored.
func (l *outLog) progress(seq, chunks uint64) (bool, error) {
	if seq > l.ids.Load() {
		return false, &wire.ProtocolError{Code: wire.CodeSequence, Reason: fmt.Sprintf("progress on message %d, which was never sent", seq)}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.search(seq) < 0 {
		return false, nil
	}
	before := l.acked
	l.advance(max(l.acked, seq-1), seq, chunks)
	return l.acked > before, nil
}

// advance releases every frame of the messages up to acked, and the first
// chunks chunks of message partial, then wakes whoever waits for room or
// acknowledgements. Called with mu held.
func (l *outLog) advance(acked, partial, chunks uint64) {
	l.acked = max(l.acked, acked)
	if l.released != nil {
		l.released(l.acked, partial, chunks)
	}
	for l.eh < len(l.ents) {
		e := l.ents[l.eh]
		if e.seq > l.acked && (e.seq != partial || e.chunk >= chunks) {
			break
		}
		l.eh++
	}
	l.release()
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
	n := 0
	for n < len(l.waiters) && l.waiters[n].seq <= l.acked {
		close(l.waiters[n].ch)
		n++
	}
	if n > 0 {
		l.waiters = append(l.waiters[:0], l.waiters[n:]...)
	}
}

// rewind prepares the log for a new connection from the remote's RESUME:
// what it holds counts as acknowledged, and the writer starts again at the
// first frame it lacks. It returns the messages it had to abandon: a
// chunked message whose first chunks the log already released (the
// remote had reported them) cannot be sent again whole to a remote that
// no longer holds them, because it restarted or forgot the session. Such
// a message is reported as never delivered, and an abort frame goes first
// so the remote, too, drops whatever it holds of it.
func (l *outLog) rewind(r wire.Resume) ([]MsgID, error) {
	if top := l.ids.Load(); r.Delivered > top || r.Partial > top {
		return nil, &wire.ProtocolError{Code: wire.CodeSequence, Reason: "RESUME names messages never sent"}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prefix = nil
	partial := r.Partial
	if partial != 0 && l.search(partial) < 0 {
		// The remote holds part of a message this log does not have.
		l.prefix = wire.AppendData(l.prefix, l.version, wire.FlagAbort, partial, 0, 0, "", nil)
		partial = 0
	}
	l.advance(min(r.Delivered, l.last), partial, r.Chunks)
	var abandoned []MsgID
	if l.eh < len(l.ents) {
		if e := l.ents[l.eh]; e.chunk > 0 && !(partial == e.seq && r.Chunks >= e.chunk) {
			for l.eh < len(l.ents) && l.ents[l.eh].seq == e.seq {
				l.eh++
			}
			l.aborted = insertID(l.aborted, MsgID(e.seq))
			abandoned = append(abandoned, MsgID(e.seq))
			l.prefix = wire.AppendData(l.prefix, l.version, wire.FlagAbort, e.seq, 0, 0, "", nil)
			l.release()
		}
	}
	l.wpos = l.head()
	l.wend = l.wpos
	l.release()
	return abandoned, nil
}

// search returns the index in ents of seq, or -1.
func (l *outLog) search(seq uint64) int {
	live := l.ents[l.eh:]
	i := sort.Search(len(live), func(i int) bool { return live[i].seq >= seq })
	if i < len(live) && live[i].seq == seq {
		return l.eh + i
	}
	return -1
}

// status reports what the log knows of seq: acked when the remote's
// cumulative acknowledgement covers it, pending while it waits for one, and
// failed when it will never be acknowledged (the session ended first, or
// its sender abandoned it part way).
func (l *outLog) status(seq uint64) (acked, pending, failed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if has(l.aborted, MsgID(seq)) || has(l.lost, MsgID(seq)) {
		return false, false, true
	}
	if l.search(seq) >= 0 {
		return false, true, false
	}
	return seq <= l.acked, false, false
}

func has(ids []MsgID, id MsgID) bool {
	i := sort.Search(len(ids), func(i int) bool { return ids[i] >= id })
	return i < len(ids) && ids[i] == id
}

// markAborted records a message its sender gave up on part way.
func (l *outLog) markAborted(seq uint64) {
	l.mu.Lock()
	l.aborted = insertID(l.aborted, MsgID(seq))
	l.mu.Unlock()
}

// insertID adds id to the sorted list ids.
func insertID(ids []MsgID, id MsgID) []MsgID {
	i := sort.Search(len(ids), func(i int) bool { return ids[i] >= id })
	if i < len(ids) && ids[i] == id {
		return ids
	}
	ids = append(ids, 0)
	copy(ids[i+1:], ids[i:])
	ids[i] = id
	return ids
}

// waitAck returns a channel closed once seq is acknowledged (nil if it
// already is), or the log's error.
func (l *outLog) waitAck(seq uint64) (<-chan struct{}, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if has(l.aborted, MsgID(seq)) {
		return nil, ErrAbandoned
	}
	if seq <= l.acked {
		return nil, nil
	}
	if l.err != nil {
		return nil, l.err
	}
	ch := make(chan struct{})
	i := sort.Search(len(l.waiters), func(i int) bool { return l.waiters[i].seq > seq })
	l.waiters = append(l.waiters, ackWaiter{})
	copy(l.waiters[i+1:], l.waiters[i:])
	l.waiters[i] = ackWaiter{seq: seq, ch: ch}
	return ch, nil
}

// ackErr returns the error to report to a waiter woken without an ack.
func (l *outLog) ackErr(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if has(l.aborted, MsgID(seq)) {
		return ErrAbandoned
	}
	if seq <= l.acked {
		return nil
	}
	return l.err
}

// lastSeq returns the highest sequence number appended.
func (l *outLog) lastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// ackedSeq returns the acknowledgement watermark.
func (l *outLog) ackedSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}

// fail ends the log: pending and future operations return err. It returns
// the IDs of the messages that were never acknowledged, and releases the
// memory that held them.
func (l *outLog) fail(err error) []MsgID {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil
	}
	l.err = err
	var lost []MsgID
	for _, e := range l.ents[l.eh:] {
		if len(lost) == 0 || lost[len(lost)-1] != MsgID(e.seq) {
			lost = append(lost, MsgID(e.seq))
		}
	}
	l.lost = lost
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
	for _, w := range l.waiters {
		close(w.ch)
	}
	l.waiters = nil
	// The writer may still hold ranges of the segments; let the garbage
	// collector have them rather than the pool.
	l.segs, l.ents, l.eh = nil, nil, 0
	l.wpos, l.wend = l.tail, l.tail
	return lost
}
