package mailbox

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/slc-go/slc/peer"
)

// Defaults and accounting constants.
const (
	// DefaultMaxBytes is the per-source byte capacity used when
	// Config.MaxBytes is zero or negative.
	DefaultMaxBytes = 64 << 20
	// DefaultMaxMessages is the per-source message capacity used when
	// Config.MaxMessages is zero or negative.
	DefaultMaxMessages = 1 << 20
	// MessageOverhead is the number of bytes charged to a source's byte
	// capacity for each message in addition to len(Message.Raw).
	MessageOverhead = 64
)

const (
	keepQueue  = 64   // slots a source's queue keeps while (nearly) empty
	keepOrder  = 1024 // slots the arrival-order ring keeps while (nearly) empty
	keepOut    = 1024 // largest delivery buffer kept for reuse
	minStale   = 64   // stale order entries tolerated before compaction
	minSweepAt = 64   // source count that triggers the first sweep
)

var (
	// ErrClosed is returned by Push, Receive and Take once the inbox is
	// closed.
	ErrClosed = errors.New("mailbox: closed")
	// ErrCanceled is returned by Push when its done channel closed before
	// all messages were placed.
	ErrCanceled = errors.New("mailbox: push canceled")
)

// Config sets the capacity of each source's queue. The zero value selects
// the defaults.
type Config struct {
	// MaxBytes bounds the bytes queued per source, counted as
	// len(Message.Raw) + MessageOverhead per message. Zero or negative
	// means DefaultMaxBytes. A single message larger than MaxBytes is
	// still accepted when its source's queue is empty.
	MaxBytes int
	// MaxMessages bounds the number of messages queued per source. Zero or
	// negative means DefaultMaxMessages.
	MaxMessages int
	// Taken, if not nil, is called once for every message as it leaves
	// the inbox for the application: before Receive or TryReceive returns
	// it, after a Take function accepted it, and before subscriptions get
	// it. It runs with no inbox lock held. A store uses it to record that
	// the message was consumed.
	Taken func(peer.Message)
}

// Inbox is a node's inbound mailbox: one bounded FIFO queue per source,
// with arrival order kept across sources. See the package documentation
// for the ordering, capacity and subscription rules.
//
// All methods are safe for concurrent use by any number of goroutines.
// An Inbox must be created with New.
type Inbox struct {
	mu sync.Mutex

	maxBytes int
	maxMsgs  int
	taken    func(peer.Message)
	lowBytes int // a blocked Push is woken once a queue is at or below
	lowMsgs  int // both low marks, or empty

	sources map[peer.ID]*source
	// order holds one mark per queued message, in arrival order. Marks of
	// messages removed other than from the front (filtered receives, Take,
	// subscription flushes) stay behind as stale entries and are skipped
	// or compacted away; stale counts them.
	order ring[mark]
	stale int
	total int    // queued messages over all sources
	seq   uint64 // arrival stamp of the last message pushed

	// notify, when not nil, is closed and cleared as soon as a message
	// becomes available to receivers. Blocked receivers wait on it.
	notify chan struct{}

	closed  bool
	holding int // sources held by a Take in progress
	sweepAt int // source count at which idle sources are forgotten

	subsAll  []*subscription             // for every source; copy-on-write
	subsBy   map[peer.ID][]*subscription // per source; copy-on-write
	subsType map[string][]*subscription  // per message type; copy-on-write
}

// entry is one queued message with its arrival stamp.
type entry struct {
	m   peer.Message
	seq uint64
}

// mark records the arrival of one queued message in the global order.
type mark struct {
	src *source
	seq uint64
}

// source is the per-source state. Every field is guarded by Inbox.mu.
type source struct {
	id    peer.ID
	q     ring[entry]
	bytes int
	// space, when not nil, is closed and cleared when the queue frees
	// enough room; blocked pushers wait on it.
	space chan struct{}
	// held is set while a Take works through the queue; the queue's
	// messages are then invisible to receivers.
	held bool
	// release, when not nil, is closed and cleared when held is cleared.
	release chan struct{}

	subs       []*subscription // subscriptions matching this source; shared, immutable
	out        []item          // messages routed to subscriptions, not yet delivered
	spare      []item          // reusable buffer for out
	delivering bool            // some goroutine owns delivery of out
}

// New returns an empty inbox with the given capacities.
func New(cfg Config) *Inbox {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = DefaultMaxMessages
	}
	return &Inbox{
		maxBytes: cfg.MaxBytes,
		maxMsgs:  cfg.MaxMessages,
		taken:    cfg.Taken,
		lowBytes: cfg.MaxBytes - cfg.MaxBytes/4,
		lowMsgs:  cfg.MaxMessages - cfg.MaxMessages/4,
		sources:  make(map[peer.ID]*source),
		order:    ring[mark]{keep: keepOrder},
		subsBy:   make(map[peer.ID][]*subscription),
		sweepAt:  minSweepAt,
	}
}

// Push appends msgs, all from the source from and in the order given, to
// that source's queue, or hands them to the subscriptions matching from.
// The messages' From fields are not inspected; from is the queue key.
//
// While the source's queue is full, Push blocks until a receiver makes
// room, done is closed, or the inbox is closed. A nil done never closes.
// done is only consulted when Push has to wait: messages that fit are
// placed even if done is already closed.
//
// Push returns the number of messages placed, always a prefix of msgs, so
// the caller can acknowledge exactly those. err is nil when all were
// placed, ErrCanceled when done closed first, and ErrClosed when the inbox
// is (or became) closed. Placed messages are delivered or received later
// even if err is not nil, unless the inbox is closed.
//
// Messages routed to subscriptions are delivered before Push returns,
// from the calling goroutine, unless another call (a concurrent Push for
// the same source, or a Subscribe flushing it) is delivering that source's
// messages at the time, in which case that call delivers them in order.
//
// Push copies the Message values and does not retain msgs; what the
// messages point to (Raw, Body) is handed over as is.
//
// Push may be called concurrently with every method, including other
// Push calls. The order of messages from concurrent Push calls for the
// same source is the order in which they acquire the queue, and batches
// may interleave when they block; a connection's single reader goroutine
// calling Push in turn gets strict FIFO order.
func (ib *Inbox) Push(done <-chan struct{}, from peer.ID, msgs []peer.Message) (n int, err error) {
	return ib.push(done, from, msgs, false)
}

// PushAll is Push without the capacity limits: it places every message at
// once, however full the source's queue. A caller that reserved room with
// WaitRoom, or restores messages that were queued before, uses it. It
// returns ErrClosed, placing nothing, after Close.
func (ib *Inbox) PushAll(from peer.ID, msgs []peer.Message) error {
	_, err := ib.push(nil, from, msgs, true)
	return err
}

// WaitRoom blocks until from's queue is below its limits (so that Push
// would place at least one message), done closes (ErrCanceled) or the
// inbox closes (ErrClosed).
func (ib *Inbox) WaitRoom(done <-chan struct{}, from peer.ID) error {
	ib.mu.Lock()
	for {
		if ib.closed {
			ib.mu.Unlock()
			return ErrClosed
		}
		s := ib.sourceLocked(from)
		if s.q.len() == 0 || (s.q.len() < ib.maxMsgs && s.bytes < ib.maxBytes) {
			ib.mu.Unlock()
			return nil
		}
		if err := ib.waitSpaceLocked(s, done); err != nil {
			return err
		}
	}
}

// waitSpaceLocked waits until s's queue frees room or done closes. It is
// called with mu held; it returns nil with mu held, or, when done closed,
// ErrClosed (the inbox closed meanwhile) or ErrCanceled with mu released.
func (ib *Inbox) waitSpaceLocked(s *source, done <-chan struct{}) error {
	if s.space == nil {
		s.space = make(chan struct{})
	}
	ch := s.space
	ib.mu.Unlock()
	select {
	case <-ch:
		ib.mu.Lock()
		return nil
	case <-done:
		ib.mu.Lock()
		closed := ib.closed
		ib.mu.Unlock()
		if closed {
			return ErrClosed
		}
		return ErrCanceled
	}
}

func (ib *Inbox) push(done <-chan struct{}, from peer.ID, msgs []peer.Message, force bool) (n int, err error) {
	ib.mu.Lock()
	for {
		if ib.closed {
			ib.mu.Unlock()
			return n, ErrClosed
		}
		if n == len(msgs) {
			ib.mu.Unlock()
			return n, nil
		}
		s := ib.sourceLocked(from)
		// With type subscriptions, the batch is taken in runs: a run of
		// messages of subscribed types goes to those subscriptions, a run
		// of other messages takes the usual path below.
		end := len(msgs)
		if len(ib.subsType) > 0 {
			if ts := ib.typeSubsLocked(msgs[n].Type); ts != nil {
				for n < len(msgs) {
					ts := ib.typeSubsLocked(msgs[n].Type)
					if ts == nil {
						break
					}
					ib.seq++
					s.out = append(s.out, item{m: msgs[n], subs: ts, seq: ib.seq, src: s})
					n++
				}
				if !s.delivering {
					s.delivering = true
					ib.drainLocked(s)
					ib.mu.Lock()
				}
				continue
			}
			end = n + 1
			for end < len(msgs) && ib.typeSubsLocked(msgs[end].Type) == nil {
				end++
			}
		}
		if len(s.subs) > 0 {
			// Routing never blocks, so this finishes the run.
			ib.routeLocked(s, msgs[n:end])
			n = end
			if !s.delivering {
				s.delivering = true
				ib.drainLocked(s)
				ib.mu.Lock()
			}
			continue
		}
		n += ib.queueLocked(s, msgs[n:end], force)
		if n == end {
			continue
		}
		// The queue is full: wait for room.
		if err := ib.waitSpaceLocked(s, done); err != nil {
			return n, err
		}
	}
}

// sourceLocked returns the state of source id, creating it if needed.
func (ib *Inbox) sourceLocked(id peer.ID) *source {
	if s := ib.sources[id]; s != nil {
		return s
	}
	if len(ib.sources) >= ib.sweepAt {
		ib.sweepLocked()
	}
	s := &source{id: id, q: ring[entry]{keep: keepQueue}, subs: ib.snapshotLocked(id)}
	ib.sources[id] = s
	return s
}

// sweepLocked forgets idle sources so that departed peers do not
// accumulate. It runs when the number of sources doubles, so its cost is
// amortized over source creations.
func (ib *Inbox) sweepLocked() {
	for id, s := range ib.sources {
		if s.q.len() == 0 && !s.held && !s.delivering && len(s.out) == 0 &&
			s.space == nil && s.release == nil {
			delete(ib.sources, id)
		}
	}
	ib.sweepAt = max(minSweepAt, 2*len(ib.sources))
}

// queueLocked appends as many of msgs to s's queue as its capacity allows
// and returns how many it appended.
func (ib *Inbox) queueLocked(s *source, msgs []peer.Message, force bool) int {
	room := max(1, ib.maxMsgs-s.q.len())
	if force {
		room = len(msgs)
	}
	s.q.reserve(min(len(msgs), room))
	ib.order.reserve(min(len(msgs), room))
	k := 0
	for i := range msgs {
		size := len(msgs[i].Raw) + MessageOverhead
		if !force && s.q.len() > 0 && (s.q.len() >= ib.maxMsgs || s.bytes+size > ib.maxBytes) {
			break
		}
		ib.seq++
		s.q.push(entry{m: msgs[i], seq: ib.seq})
		ib.order.push(mark{src: s, seq: ib.seq})
		s.bytes += size
		k++
	}
	if k > 0 {
		ib.total += k
		ib.wakeReceiversLocked()
	}
	return k
}

// wakeReceiversLocked wakes every blocked receiver.
func (ib *Inbox) wakeReceiversLocked() {
	if ib.notify != nil {
		close(ib.notify)
		ib.notify = nil
	}
}

// Receive removes and returns the oldest waiting message: the oldest of
// all when no source is named, or else the oldest among the named
// sources, leaving every other message queued. "Oldest" is by arrival
// order, the order in which Push placed the messages.
//
// When no matching message is waiting, Receive blocks until one arrives,
// ctx ends (it then returns ctx.Err()), or the inbox is closed. A waiting
// message is returned even if ctx has already ended. After Close, Receive
// returns ErrClosed at once; messages still queued at Close are discarded.
//
// Messages from a source held by a Take in progress are not returned until
// the Take finishes. Receive does not allocate when a message is waiting.
// Any number of goroutines may call Receive concurrently; each message is
// returned by exactly one call.
func (ib *Inbox) Receive(ctx context.Context, from ...peer.ID) (peer.Message, error) {
	var m peer.Message
	err := ib.ReceiveInto(ctx, &m, from...)
	return m, err
}

// ReceiveInto is Receive that stores the message in *m, which spares the
// copies of returning it through each call (a Message is over a hundred
// bytes). *m is left as it was when it returns an error.
func (ib *Inbox) ReceiveInto(ctx context.Context, m *peer.Message, from ...peer.ID) error {
	ib.mu.Lock()
	for {
		if ib.closed {
			ib.mu.Unlock()
			return ErrClosed
		}
		if ib.takeLocked(from, m) {
			ib.mu.Unlock()
			if ib.taken != nil {
				ib.taken(*m)
			}
			return nil
		}
		if ib.notify == nil {
			ib.notify = make(chan struct{})
		}
		ch := ib.notify
		ib.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		ib.mu.Lock()
	}
}

// TryReceive is Receive without blocking: it returns the message Receive
// would return and true, or the zero Message and false when none is
// waiting or the inbox is closed.
func (ib *Inbox) TryReceive(from ...peer.ID) (peer.Message, bool) {
	ib.mu.Lock()
	if ib.closed {
		ib.mu.Unlock()
		return peer.Message{}, false
	}
	var m peer.Message
	ok := ib.takeLocked(from, &m)
	ib.mu.Unlock()
	if ok && ib.taken != nil {
		ib.taken(m)
	}
	return m, ok
}

// takeLocked removes the oldest message among the named sources (all
// sources when from is empty) into *m, and reports whether there was one.
func (ib *Inbox) takeLocked(from []peer.ID, m *peer.Message) bool {
	if len(from) == 0 {
		if ib.holding > 0 {
			return ib.takeScanLocked(m)
		}
		for ib.order.len() > 0 {
			mk := ib.order.popFront()
			s := mk.src
			if s.q.len() > 0 && s.q.front().seq == mk.seq {
				ib.popLocked(s, m)
				return true
			}
			ib.stale--
		}
		return false
	}
	var best *source
	for _, id := range from {
		s := ib.sources[id]
		if s == nil || s.q.len() == 0 || s.held {
			continue
		}
		if best == nil || s.q.front().seq < best.q.front().seq {
			best = s
		}
	}
	if best == nil {
		return false
	}
	seq := best.q.front().seq
	ib.popLocked(best, m)
	ib.unorderLocked(best, seq)
	return true
}

// takeScanLocked is the unfiltered take while some source is held: the
// front of the arrival order may belong to a held source, so it compares
// the heads of all sources instead.
func (ib *Inbox) takeScanLocked(m *peer.Message) bool {
	var best *source
	for _, s := range ib.sources {
		if s.q.len() == 0 || s.held {
			continue
		}
		if best == nil || s.q.front().seq < best.q.front().seq {
			best = s
		}
	}
	if best == nil {
		return false
	}
	seq := best.q.front().seq
	ib.popLocked(best, m)
	ib.unorderLocked(best, seq)
	return true
}

// unorderLocked accounts for the removal, already done, of the message
// with stamp seq from the head of s other than through the front of the
// arrival order: its mark is popped if it is at the front, or else left
// behind as stale.
func (ib *Inbox) unorderLocked(s *source, seq uint64) {
	if ib.order.len() > 0 {
		if f := ib.order.front(); f.src == s && f.seq == seq {
			ib.order.popFront()
			return
		}
	}
	ib.stale++
	ib.maybeCompactLocked()
}

// maybeCompactLocked drops stale marks once they make up more than half of
// the arrival order, so its cost is amortized over the removals that made
// them stale. Without it, an application that only ever receives with a
// filter would grow the order ring without bound.
func (ib *Inbox) maybeCompactLocked() {
	if ib.stale < minStale || 2*ib.stale <= ib.order.len() {
		return
	}
	ib.order.filter(func(mk *mark) bool {
		// Queues are consumed in FIFO order, so a message is still queued
		// exactly when its stamp is not older than its queue's head.
		s := mk.src
		return s.q.len() > 0 && mk.seq >= s.q.front().seq
	})
	ib.stale = 0
}

// popLocked removes the head of s's queue into *m (when m is not nil),
// waking blocked pushers when enough room is free. The caller accounts for
// the arrival order.
func (ib *Inbox) popLocked(s *source, m *peer.Message) {
	e := s.q.front()
	s.bytes -= len(e.m.Raw) + MessageOverhead
	if m != nil {
		*m = e.m
	}
	s.q.dropFront()
	ib.total--
	ib.wakePushersLocked(s)
}

// wakePushersLocked wakes the pushers blocked on s once its queue is empty
// or at or below both low marks. The hysteresis lets a blocked pusher place
// a run of messages per wake-up instead of one.
func (ib *Inbox) wakePushersLocked(s *source) {
	if s.space != nil && (s.q.len() == 0 || (s.bytes <= ib.lowBytes && s.q.len() <= ib.lowMsgs)) {
		close(s.space)
		s.space = nil
	}
}

// Len returns the number of waiting messages: all of them when no source
// is named, or else those from the named sources (each counted once).
// Messages routed to subscriptions are not waiting. Len is 0 after Close.
func (ib *Inbox) Len(from ...peer.ID) int {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if len(from) == 0 {
		return ib.total
	}
	n := 0
	for i, id := range from {
		if slices.Contains(from[:i], id) {
			continue
		}
		if s := ib.sources[id]; s != nil {
			n += s.q.len()
		}
	}
	return n
}

// Sources returns the sources that have waiting messages, ordered by the
// arrival of their oldest waiting message. The slice is newly allocated.
func (ib *Inbox) Sources() []peer.ID {
	ib.mu.Lock()
	type head struct {
		id  peer.ID
		seq uint64
	}
	heads := make([]head, 0, len(ib.sources))
	for _, s := range ib.sources {
		if s.q.len() > 0 {
			heads = append(heads, head{s.id, s.q.front().seq})
		}
	}
	ib.mu.Unlock()
	slices.SortFunc(heads, func(a, b head) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	ids := make([]peer.ID, len(heads))
	for i, h := range heads {
		ids[i] = h.id
	}
	return ids
}

// Take removes, in order, the messages waiting from source from, one at a
// time: for each it calls fn with the message still queued; if fn returns
// nil the message is removed, and if fn returns an error the message stays
// queued at the head and Take returns that error. Take returns how many
// messages it removed. It works through the messages that were waiting
// when it started; messages pushed meanwhile stay queued.
//
// While Take runs, the source is held: receivers do not see its messages,
// and another Take or a Subscribe covering the source waits for it to
// finish. fn is called without any lock held and may call any method
// except Take for the same source or Subscribe covering it, which would
// wait forever. If fn panics, the source is released, the message stays
// queued, and the panic propagates.
//
// If the inbox is closed while fn runs, Take returns ErrClosed (counting
// the message if fn succeeded); after Close it returns 0, ErrClosed.
func (ib *Inbox) Take(from peer.ID, fn func(peer.Message) error) (n int, err error) {
	ib.mu.Lock()
	var s *source
	for {
		if ib.closed {
			ib.mu.Unlock()
			return 0, ErrClosed
		}
		s = ib.sources[from]
		if s == nil || s.q.len() == 0 {
			ib.mu.Unlock()
			return 0, nil
		}
		if !s.held {
			break
		}
		ib.waitReleaseLocked(s)
	}
	s.held = true
	ib.holding++
	last := s.q.at(s.q.len() - 1).seq
	locked := true
	defer func() {
		if !locked {
			ib.mu.Lock()
		}
		s.held = false
		ib.holding--
		if s.release != nil {
			close(s.release)
			s.release = nil
		}
		if s.q.len() > 0 {
			ib.wakeReceiversLocked()
		}
		ib.mu.Unlock()
	}()
	for {
		e := s.q.front()
		m, seq := e.m, e.seq
		locked = false
		ib.mu.Unlock()
		ferr := fn(m)
		ib.mu.Lock()
		locked = true
		if ib.closed {
			if ferr == nil {
				n++
				return n, ErrClosed
			}
			return n, ferr
		}
		if ferr != nil {
			return n, ferr
		}
		if ib.taken != nil {
			locked = false
			ib.mu.Unlock()
			ib.taken(m)
			ib.mu.Lock()
			locked = true
			if ib.closed {
				return n + 1, ErrClosed
			}
		}
		ib.popLocked(s, nil)
		ib.unorderLocked(s, seq)
		n++
		if s.q.len() == 0 || s.q.front().seq > last {
			return n, nil
		}
	}
}

// waitReleaseLocked waits, with ib.mu released, until s is no longer held
// or the inbox is closed. It returns with ib.mu held.
func (ib *Inbox) waitReleaseLocked(s *source) {
	if s.release == nil {
		s.release = make(chan struct{})
	}
	ch := s.release
	ib.mu.Unlock()
	<-ch
	ib.mu.Lock()
}

// Close closes the inbox and discards the waiting messages. Blocked
// Receive and Push calls return ErrClosed, as do all later calls to
// Receive, Push and Take; TryReceive reports no message and Len is 0.
// Messages already routed to subscriptions are still delivered. Close is
// idempotent and may be called concurrently with every method.
func (ib *Inbox) Close() {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if ib.closed {
		return
	}
	ib.closed = true
	ib.wakeReceiversLocked()
	for _, s := range ib.sources {
		s.q.release()
		s.bytes = 0
		if s.space != nil {
			close(s.space)
			s.space = nil
		}
		if s.release != nil {
			close(s.release)
			s.release = nil
		}
	}
	ib.order.release()
	ib.stale = 0
	ib.total = 0
}
