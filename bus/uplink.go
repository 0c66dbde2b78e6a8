package bus

import (
	"context"
	"slices"
	"sync"

	"github.com/slc-go/slc"
)

// Bounds of one batch sent to the server.
const (
	maxUplinkEvents = 4096
	maxUplinkBytes  = 1 << 20
)

// uplink is the log of this participant's own events on their way to the
// server, as encoded records: reliable events stay in it until the server
// acknowledges them, and are sent again to a new server after a
// changeover. While this participant serves, the uplink routes its events
// itself. The log holds no pointers, so the garbage collector does not
// scan it.
type uplink struct {
	p *Participant

	mu       sync.Mutex
	seq      uint64   // the last sequence number given
	chunks   [][]byte // the records, in chunks; chunks[0] is chunk number chunk0
	chunk0   int
	free     [][]byte // spare chunks
	recs     []logRec // a deque: the log is recs[head:], by sequence
	head     int
	sent     int    // recs[head:head+sent] were sent to the current target
	sending  bool   // a batch taken from a chunk is being sent: do not recycle chunks
	reliable int    // reliable events in the log
	acked    uint64 // the server acknowledged every reliable event up to here
	target   string // the server; p.name when serving; "" during a changeover
	ctl      []*controlMsg
	wake     chan struct{}
	space    chan struct{} // closed when events leave the log or are sent
}

// logRec locates one record in the log.
type logRec struct {
	seq      uint64
	chunk    int // the chunk's number
	off, n   int // in the chunk
	reliable bool
}

// chunkSize is the size of the log's chunks. A record never spans two.
const chunkSize = 256 << 10

// size returns the number of records in the log.
func (u *uplink) size() int { return len(u.recs) - u.head }

// bytesOf returns r's record.
func (u *uplink) bytesOf(r logRec) []byte {
	c := u.chunks[r.chunk-u.chunk0]
	return c[r.off : r.off+r.n]
}

// appendLocked encodes e at the end of the log.
func (u *uplink) appendLocked(e *outEvent) {
	// A record that would not fit in the last chunk starts a new one
	// (appending past a chunk's capacity would copy it).
	if n := len(u.chunks); n == 0 || cap(u.chunks[n-1])-len(u.chunks[n-1]) < e.maxSize(len(u.p.name)) {
		var c []byte
		if k := len(u.free); k > 0 {
			c, u.free = u.free[k-1], u.free[:k-1]
		} else {
			c = make([]byte, 0, max(chunkSize, e.maxSize(len(u.p.name))))
		}
		u.chunks = append(u.chunks, c)
	}
	i := len(u.chunks) - 1
	off := len(u.chunks[i])
	u.chunks[i] = appendRecord(u.chunks[i], e, u.p.name, u.p.instance)
	u.recs = append(u.recs, logRec{seq: e.seq, chunk: u.chunk0 + i, off: off, n: len(u.chunks[i]) - off, reliable: e.reliable})
}

func newUplink(p *Participant) *uplink {
	return &uplink{p: p, wake: make(chan struct{}, 1), space: make(chan struct{})}
}

func (u *uplink) signal() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// wakeLocked wakes the publishers waiting for room.
func (u *uplink) wakeLocked() {
	close(u.space)
	u.space = make(chan struct{})
}

// publish gives e its sequence number and appends its record to the log.
// Reliable events wait for room in the window; unreliable ones for room
// in the queue, unless there is no server to send them to (a
// changeover): then they are dropped. local is called with the sequence
// number, under the log's lock, so that local listeners get events in
// sequence order.
func (u *uplink) publish(ctx context.Context, e *outEvent, local func(seq uint64)) (uint64, error) {
	p := u.p
	u.mu.Lock()
	for e.reliable && u.reliable >= p.cfg.window ||
		!e.reliable && u.target != "" && u.size()-u.sent >= p.cfg.queueLimit {
		ch := u.space
		u.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-p.ctx.Done():
			return 0, ErrClosed
		}
		u.mu.Lock()
	}
	if p.ctx.Err() != nil {
		u.mu.Unlock()
		return 0, ErrClosed
	}
	u.seq++
	e.seq = u.seq
	if local != nil {
		local(e.seq)
	}
	if !e.reliable && u.size()-u.sent >= p.cfg.queueLimit {
		p.stats.dropped.Add(1)
	} else {
		u.appendLocked(e)
		if e.reliable {
			u.reliable++
		}
	}
	// Counted under the lock: Stats().Published is then at least the
	// sequence number of every event that can have been sent.
	p.stats.published.Add(1)
	u.mu.Unlock()
	u.signal()
	return e.seq, nil
}

// setTarget switches to a new server (or to none, or to this participant
// when it serves). Unreliable events already sent are forgotten, reliable
// ones are sent again, after ctl.
func (u *uplink) setTarget(target string, ctl *controlMsg) {
	u.mu.Lock()
	u.target = target
	kept := u.recs[:0]
	for i, r := range u.recs[u.head:] {
		if i < u.sent && !r.reliable {
			continue
		}
		kept = append(kept, r)
	}
	u.recs, u.head = kept, 0
	u.sent = 0
	u.freeChunksLocked()
	u.ctl = nil
	if ctl != nil {
		u.ctl = append(u.ctl, ctl)
	}
	u.wakeLocked()
	u.mu.Unlock()
	u.signal()
}

// addControl queues a control message for the server.
func (u *uplink) addControl(m *controlMsg) {
	u.mu.Lock()
	u.ctl = append(u.ctl, m)
	u.mu.Unlock()
	u.signal()
}

// release applies an acknowledgement from the server.
func (u *uplink) release(upTo uint64) {
	u.mu.Lock()
	if upTo > u.acked {
		u.acked = upTo
		u.trimLocked()
	}
	u.mu.Unlock()
}

// trimLocked drops acknowledged reliable events and sent unreliable ones
// from the front of the log, and wakes waiting publishers.
func (u *uplink) trimLocked() {
	i := 0
	for i < u.size() {
		r := u.recs[u.head+i]
		if r.reliable && r.seq <= u.acked {
			u.reliable--
		} else if r.reliable || i >= u.sent {
			break
		}
		i++
	}
	if i == 0 {
		return
	}
	u.sent = max(u.sent-i, 0)
	clear(u.recs[u.head : u.head+i])
	u.head += i
	if u.head == len(u.recs) {
		u.recs, u.head = u.recs[:0], 0
	} else if u.head > 4096 && u.head*2 > len(u.recs) {
		u.recs = u.recs[:copy(u.recs, u.recs[u.head:])]
		u.head = 0
	}
	u.freeChunksLocked()
	u.wakeLocked()
}

// freeChunksLocked recycles the chunks before the first record's (all
// but the last when the log is empty).
func (u *uplink) freeChunksLocked() {
	keep := u.chunk0 + len(u.chunks) - 1
	if u.size() > 0 {
		keep = u.recs[u.head].chunk
	}
	for u.chunk0 < keep {
		if c := u.chunks[0]; !u.sending && cap(c) == chunkSize && len(u.free) < 4 {
			// Only regular chunks are kept; a chunk made for one large
			// record is not.
			u.free = append(u.free, c[:0])
		}
		u.chunks[0] = nil
		u.chunks = u.chunks[1:]
		u.chunk0++
	}
}

// flush waits until every reliable event published so far is
// acknowledged.
func (u *uplink) flush(ctx context.Context) error {
	u.mu.Lock()
	last := u.seq
	for {
		pending := slices.ContainsFunc(u.recs[u.head:], func(r logRec) bool { return r.reliable && r.seq <= last })
		if !pending {
			u.mu.Unlock()
			return nil
		}
		ch := u.space
		u.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-u.p.ctx.Done():
			return ErrClosed
		}
		u.mu.Lock()
	}
}

// nextBatchLocked returns the next records to send, and how many. When
// they lie back to back in one chunk (the usual case) the batch is that
// part of the chunk, and chunks are not recycled until the send is done
// (sending); otherwise the records are copied into *out.
func (u *uplink) nextBatchLocked(out *[]byte) ([]byte, int) {
	if u.sent >= u.size() {
		return nil, 0
	}
	r0 := u.recs[u.head+u.sent]
	end, n := r0.off, 0
	for u.sent+n < u.size() && n < maxUplinkEvents && end-r0.off < maxUplinkBytes {
		r := u.recs[u.head+u.sent+n]
		if r.chunk != r0.chunk || r.off != end {
			break
		}
		end += r.n
		n++
	}
	if u.sent+n == u.size() || n == maxUplinkEvents || end-r0.off >= maxUplinkBytes ||
		u.recs[u.head+u.sent+n].chunk != r0.chunk {
		// A run that ends at the batch's limits or at its chunk's end.
		u.sending = true
		c := u.chunks[r0.chunk-u.chunk0]
		return c[r0.off:end:end], n
	}
	// The records are not back to back (a changeover dropped some): copy.
	b := (*out)[:0]
	n = 0
	for u.sent+n < u.size() && n < maxUplinkEvents && (n == 0 || len(b) < maxUplinkBytes) {
		b = append(b, u.bytesOf(u.recs[u.head+u.sent+n])...)
		n++
	}
	*out = b
	return b, n
}

// run sends the log to the server, or routes it while this participant
// serves.
func (u *uplink) run() {
	p := u.p
	defer p.wg.Done()
	var out []byte
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-u.wake:
		}
		for {
			u.mu.Lock()
			target := u.target
			if target == "" {
				u.mu.Unlock()
				break
			}
			ctl := u.ctl
			u.ctl = nil
			batch, n := u.nextBatchLocked(&out)
			if n > 0 {
				u.sent += n
				u.wakeLocked()
			}
			u.mu.Unlock()
			if len(ctl) == 0 && n == 0 {
				break
			}
			self := target == p.name
			for _, m := range ctl {
				if self {
					continue
				}
				if _, err := p.c.Send(p.ctx, m, slc.PeerID(target)); err != nil && p.ctx.Err() == nil {
					p.log.Debug("bus: control message not sent", "server", target, "scope", m.Scope, "err", err)
				}
			}
			if n == 0 {
				continue
			}
			send := p.now()
			for b := batch; len(b) > 0; {
				setSendTime(b, send)
				b = b[4+int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])):]
			}
			if self {
				if s := p.serving(); s != nil {
					s.route(p.name, batch, send, true)
				}
			} else if _, err := p.c.Send(p.ctx, &eventsMsg{Events: batch}, slc.PeerID(target)); err != nil && p.ctx.Err() == nil {
				// The server is gone: the changeover sends the reliable
				// events again.
				p.log.Debug("bus: events not sent", "server", target, "err", err)
			}
			u.mu.Lock()
			u.sending = false
			u.trimLocked()
			u.mu.Unlock()
			if p.ctx.Err() != nil {
				return
			}
		}
	}
}
