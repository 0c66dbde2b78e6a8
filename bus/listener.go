package bus

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Filter decides whether a listener gets an event. Filters run on the
// participant's receiving goroutine: keep them quick.
type Filter func(*Event) bool

// TypeFilter accepts events whose Data is a T.
func TypeFilter[T any]() Filter {
	t := reflect.TypeFor[T]()
	return func(e *Event) bool { return reflect.TypeOf(e.Data) == t }
}

// SchemaFilter accepts events with the given wire schema.
func SchemaFilter(schema string) Filter {
	return func(e *Event) bool { return e.Schema == schema }
}

// OriginFilter accepts events published by the named participants.
func OriginFilter(senders ...string) Filter {
	return func(e *Event) bool { return slices.Contains(senders, e.ID.Sender) }
}

// MethodFilter accepts events with the given method ("" for plain
// events).
func MethodFilter(method string) Filter {
	return func(e *Event) bool { return e.Method == method }
}

// CauseFilter accepts events caused by id.
func CauseFilter(id EventID) Filter {
	return func(e *Event) bool { return slices.Contains(e.Causes, id) }
}

// Not inverts a filter.
func Not(f Filter) Filter { return func(e *Event) bool { return !f(e) } }

// Listener receives the events of a scope and its subscopes, through a
// handler or a channel. Create one with NewListener or
// NewChannelListener.
type Listener struct {
	p        *Participant
	scope    Scope
	filters  []Filter
	handler  func(*Event)
	ch       chan *Event
	ordering Ordering
	workers  int
	limit    int

	mu      sync.Mutex
	q       []queued
	head    int
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	stopped atomic.Bool
	inHand  atomic.Int64 // events taken from q by run and not yet delivered

	delivered, dropped atomic.Uint64
}

type queued struct {
	e        *Event
	reliable bool
	filter   bool // the listener's filters have not run yet (in-process events)
}

// NewListener starts a listener on scope: handler is called for each
// event of scope and its subscopes that the filters accept. Ordered
// listeners (the default) call it for one event at a time, in order per
// publisher; Unordered ones from up to Workers goroutines at once. A slow
// handler makes events wait in the listener's queue, never blocks the
// bus. NewListener returns once the server routes the scope to this
// participant: events published after it returns reach the listener.
func (p *Participant) NewListener(ctx context.Context, scope string, handler func(*Event), opts ...ListenerOption) (*Listener, error) {
	if handler == nil {
		return nil, fmt.Errorf("bus: listener on %s: nil handler", scope)
	}
	return p.newListener(ctx, scope, handler, opts)
}

// NewChannelListener starts a listener on scope whose events arrive on
// Events(), in order per publisher. The channel is closed when the
// listener or the participant closes.
func (p *Participant) NewChannelListener(ctx context.Context, scope string, opts ...ListenerOption) (*Listener, error) {
	return p.newListener(ctx, scope, nil, opts)
}

func (p *Participant) newListener(ctx context.Context, scope string, handler func(*Event), opts []ListenerOption) (*Listener, error) {
	sc, err := parseUserScope(scope)
	if err != nil {
		return nil, err
	}
	lc := listenerConfig{ordering: p.cfg.qos.Ordering, workers: p.cfg.workers, buffer: 64}
	for _, o := range opts {
		o(&lc)
	}
	l := &Listener{
		p: p, scope: sc, filters: lc.filters, handler: handler, ordering: lc.ordering,
		workers: max(lc.workers, 1), limit: p.cfg.queueLimit,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	n := 1
	if handler == nil {
		l.ch = make(chan *Event, max(lc.buffer, 0))
	} else if l.ordering == Unordered {
		n = l.workers
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	p.listeners = append(p.listeners, l)
	p.storeLocalsLocked()
	v := p.scopesChangedLocked()
	// Tracked by p.wg too, so that Close waits for every listener.
	p.wg.Add(1)
	p.mu.Unlock()
	l.wg.Add(n)
	for range n {
		go l.run()
	}
	go func() {
		defer p.wg.Done()
		l.wg.Wait()
		if l.ch != nil {
			close(l.ch)
		}
	}()
	if err := p.waitRouted(ctx, v); err != nil {
		l.Close()
		return nil, fmt.Errorf("bus: listener on %s: %w", sc, err)
	}
	return l, nil
}

// storeLocalsLocked publishes the listener list to the data path.
func (p *Participant) storeLocalsLocked() {
	ls := slices.Clone(p.listeners)
	p.locals.Store(&ls)
}

// Scope returns the listener's scope.
func (l *Listener) Scope() Scope { return l.scope }

// Events returns the channel of a channel listener (nil for a handler
// listener).
func (l *Listener) Events() <-chan *Event { return l.ch }

// ListenerStats are a listener's counters.
type ListenerStats struct {
	Delivered uint64 // events given to the handler or channel
	Dropped   uint64 // unreliable events dropped over the queue limit
	Queued    int    // events waiting
}

// Stats returns the listener's counters.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	q := len(l.q) - l.head + int(l.inHand.Load())
	l.mu.Unlock()
	return ListenerStats{Delivered: l.delivered.Load(), Dropped: l.dropped.Load(), Queued: q}
}

// Close stops the listener: events still queued are dropped; a handler
// call in progress finishes, possibly after Close returns (Close may be
// called from the handler). The participant's Close waits for it.
func (l *Listener) Close() error {
	p := l.p
	p.mu.Lock()
	if i := slices.Index(p.listeners, l); i >= 0 {
		p.listeners = slices.Delete(p.listeners, i, i+1)
		p.storeLocalsLocked()
		if !p.closed {
			p.scopesChangedLocked()
		}
	}
	p.mu.Unlock()
	l.stop()
	return nil
}

// stop ends the listener's goroutines.
func (l *Listener) stop() {
	l.once.Do(func() {
		l.stopped.Store(true)
		l.mu.Lock()
		l.closed = true
		l.q, l.head = nil, 0
		l.mu.Unlock()
		close(l.done)
	})
}

// accepts reports whether the listener takes e.
func (l *Listener) accepts(e *Event) bool {
	for _, f := range l.filters {
		if !f(e) {
			return false
		}
	}
	return true
}

// enqueue queues events (each the listener's own copy).
func (l *Listener) enqueue(items []queued) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	waiting := len(l.q) - l.head + int(l.inHand.Load())
	for _, it := range items {
		if !it.reliable && waiting >= l.limit {
			l.dropped.Add(1)
			l.p.stats.dropped.Add(1)
			continue
		}
		l.q = append(l.q, it)
		waiting++
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// next takes the next queued event, waiting for one. Unordered
// listeners' workers share the queue through it.
func (l *Listener) next() (*Event, bool) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, false
		}
		if l.head < len(l.q) {
			it := l.q[l.head]
			e := it.e
			l.q[l.head] = queued{}
			l.head++
			if l.head == len(l.q) {
				l.q, l.head = l.q[:0], 0
			} else if l.head > 1024 && l.head*2 > len(l.q) {
				l.q = l.q[:copy(l.q, l.q[l.head:])]
				l.head = 0
			}
			more := l.head < len(l.q)
			l.mu.Unlock()
			if more {
				// Wake another worker.
				select {
				case l.wake <- struct{}{}:
				default:
				}
			}
			if it.filter && !l.accepts(e) {
				return nil, true // the caller skips it
			}
			return e, true
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-l.done:
			return nil, false
		}
	}
}

// takeAll takes every queued event, waiting for one; spare is a slice
// to reuse.
func (l *Listener) takeAll(spare []queued) ([]queued, bool) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, false
		}
		if l.head < len(l.q) {
			q := l.q[l.head:]
			l.q, l.head = spare[:0], 0
			l.inHand.Store(int64(len(q)))
			l.mu.Unlock()
			return q, true
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-l.done:
			return nil, false
		}
	}
}

func (l *Listener) run() {
	defer l.wg.Done()
	if l.handler != nil && l.ordering == Unordered && l.workers > 1 {
		for {
			e, ok := l.next()
			if !ok {
				return
			}
			if e != nil {
				l.deliver(e)
			}
		}
	}
	var spare []queued
	for {
		q, ok := l.takeAll(spare)
		if !ok {
			return
		}
		for i := range q {
			it := q[i]
			q[i] = queued{}
			l.inHand.Add(-1)
			if l.stopped.Load() {
				return
			}
			if it.filter && !l.accepts(it.e) {
				continue
			}
			if !l.deliver(it.e) {
				return
			}
		}
		spare = q[:0]
	}
}

// deliver gives e to the handler or the channel. It reports false when
// the listener stopped while waiting on the channel.
func (l *Listener) deliver(e *Event) bool {
	e.Meta.DeliverTime = l.p.now()
	if l.handler != nil {
		l.handler(e)
		l.delivered.Add(1)
		return true
	}
	select {
	case l.ch <- e:
		l.delivered.Add(1)
		return true
	case <-l.done:
		return false
	}
}

// matchLocal returns the listeners whose scope receives scope.
func (p *Participant) matchLocal(scope string) []*Listener {
	ls := *p.locals.Load()
	if len(ls) == 0 {
		return nil
	}
	var out []*Listener
	for _, l := range ls {
		if matches(l.scope.String(), scope) {
			out = append(out, l)
		}
	}
	return out
}

// dispatchLocal queues an in-process event for ls, each listener its own
// copy (the last one gets e itself). It runs under the uplink's lock, to
// keep sequence order: the listeners' filters run later, on their own
// goroutines, not under the lock.
func dispatchLocal(e *Event, reliable bool, ls []*Listener) {
	for i, l := range ls {
		c := e
		if i < len(ls)-1 {
			c = new(Event)
			*c = *e
		}
		l.enqueue([]queued{{e: c, reliable: reliable, filter: true}})
	}
}

// receive delivers a batch from the server to this participant's
// listeners, dropping duplicates.
func (p *Participant) receive(from string, batch []byte, recv time.Time) {
	rb := p.newRecvBatch(recv)
	var accepted, dups uint64
	for len(batch) > 0 {
		h, rest, err := nextRecord(batch)
		if err != nil {
			p.log.Warn("bus: dropping a malformed batch", "from", from, "err", err)
			break
		}
		batch = rest
		k := originKey{rb.senderName(h.sender), h.instance}
		if !rb.accept(k, h.seq) {
			dups++
			continue
		}
		accepted++
		rb.deliver(&h, k)
	}
	p.stats.received.Add(accepted)
	p.stats.duplicates.Add(dups)
	rb.flush()
}

// recvBatch delivers the records of one received batch to this
// participant's listeners, with one enqueue per listener. It caches the
// fields that repeat from one record to the next.
type recvBatch struct {
	p      *Participant
	recv   time.Time
	locals []*Listener

	senderRaw []byte
	sender    string
	scopes    []scopeMatch
	schemaRaw []byte
	schema    string
	decode    func([]byte) (any, error)
	dedupKey  originKey
	dedupLast *atomic.Uint64

	out      []listenerBatch
	slab     []Event
	accepted []acceptedRecord
}

// acceptedRecord is a record to deliver, once the locks are released.
type acceptedRecord struct {
	h header
	k originKey
}

// deliverAccepted decodes the accepted records and hands them to the
// listeners. It runs without bus locks: converters and filters are user
// code.
func (b *recvBatch) deliverAccepted() {
	for i := range b.accepted {
		b.deliver(&b.accepted[i].h, b.accepted[i].k)
	}
	b.flush()
}

// scopeMatch is an event scope of the batch and the listeners it reaches.
type scopeMatch struct {
	raw       string
	scope     Scope
	listeners []*Listener
}

// scopeMatch returns the scope's listeners, or nil when it reaches none
// (or is invalid).
func (b *recvBatch) scopeMatch(raw []byte) *scopeMatch {
	for i := range b.scopes {
		if b.scopes[i].raw == string(raw) {
			if len(b.scopes[i].listeners) == 0 {
				return nil
			}
			return &b.scopes[i]
		}
	}
	if len(b.scopes) >= 16 {
		b.scopes = b.scopes[:0]
	}
	sm := scopeMatch{raw: string(raw)}
	if sc, err := ParseScope(sm.raw); err == nil && sc.String() == sm.raw {
		sm.scope = sc
		for _, l := range b.locals {
			if matches(l.scope.String(), sm.raw) {
				sm.listeners = append(sm.listeners, l)
			}
		}
	}
	b.scopes = append(b.scopes, sm)
	if len(sm.listeners) == 0 {
		return nil
	}
	return &b.scopes[len(b.scopes)-1]
}

type listenerBatch struct {
	l *Listener
	q []queued
}

func (p *Participant) newRecvBatch(recv time.Time) *recvBatch {
	b := recvBatchPool.Get().(*recvBatch)
	b.p, b.recv, b.locals = p, recv, *p.locals.Load()
	return b
}

var recvBatchPool = sync.Pool{New: func() any { return new(recvBatch) }}

// release clears b (it must not keep events or batches alive) and pools it.
func (b *recvBatch) release() {
	out := b.out
	for i := range out {
		clear(out[i].q)
		out[i] = listenerBatch{q: out[i].q[:0]}
	}
	clear(b.scopes)
	clear(b.accepted)
	*b = recvBatch{out: out[:0], scopes: b.scopes[:0], accepted: b.accepted[:0]}
	recvBatchPool.Put(b)
}

// accept is Participant.accept with the last publisher's entry cached.
func (b *recvBatch) accept(k originKey, seq uint64) bool {
	if b.dedupLast == nil || b.dedupKey != k {
		b.dedupKey, b.dedupLast = k, b.p.dedupEntry(k)
	}
	return acceptSeq(b.dedupLast, seq)
}

// senderName returns raw as a string, reusing the last one.
func (b *recvBatch) senderName(raw []byte) string {
	if b.senderRaw == nil || string(raw) != b.sender {
		b.senderRaw, b.sender = raw, string(raw)
	}
	return b.sender
}

// deliver decodes a record and queues it for the matching listeners
// (flush hands them over).
func (b *recvBatch) deliver(h *header, k originKey) {
	if len(b.locals) == 0 {
		return
	}
	sm := b.scopeMatch(h.scope)
	if sm == nil {
		return
	}
	w, err := decodeRest(h)
	if err != nil {
		b.p.log.Warn("bus: dropping a malformed event", "sender", k.name, "err", err)
		return
	}
	if b.schemaRaw == nil || string(w.schema) != b.schema {
		b.schemaRaw, b.schema = w.schema, string(w.schema)
		b.decode = b.p.cfg.conv.decoder(b.schema)
	}
	e := b.newEvent()
	*e = Event{
		ID:     EventID{Sender: k.name, Instance: k.instance, Seq: h.seq},
		Scope:  sm.scope,
		Method: w.method,
		Schema: b.schema,
		Causes: w.causes,
		Meta: MetaData{CreateTime: w.create, SendTime: w.send, ReceiveTime: b.recv,
			UserInfos: w.infos, UserTimes: w.times},
	}
	// The batch's bytes belong to this participant and are never
	// reused: received bytes may share them.
	data, derr := b.decode(w.data)
	if derr != nil {
		data = append([]byte(nil), w.data...)
		e.Err = derr
	}
	e.Data = data
	reliable := h.flags&flagReliable != 0
	var last *Listener
	for _, l := range sm.listeners {
		if !l.accepts(e) {
			continue
		}
		if last != nil {
			c := b.newEvent()
			*c = *e
			b.add(last, c, reliable)
		}
		last = l
	}
	if last != nil {
		b.add(last, e, reliable)
	}
}

// newEvent allocates events in small slabs: fewer allocations for the
// runtime to make and sweep.
func (b *recvBatch) newEvent() *Event {
	if len(b.slab) == 0 {
		b.slab = make([]Event, 16)
	}
	e := &b.slab[0]
	b.slab = b.slab[1:]
	return e
}

func (b *recvBatch) add(l *Listener, e *Event, reliable bool) {
	for i := range b.out {
		if b.out[i].l == l {
			b.out[i].q = append(b.out[i].q, queued{e: e, reliable: reliable})
			return
		}
	}
	if len(b.out) < cap(b.out) {
		// A pooled entry: reuse its slice.
		b.out = b.out[:len(b.out)+1]
		o := &b.out[len(b.out)-1]
		o.l = l
		o.q = append(o.q[:0], queued{e: e, reliable: reliable})
		return
	}
	b.out = append(b.out, listenerBatch{l: l, q: []queued{{e: e, reliable: reliable}}})
}

// flush hands the queued events to their listeners, and releases b.
func (b *recvBatch) flush() {
	for _, o := range b.out {
		o.l.enqueue(o.q)
	}
	b.release()
}

func (p *Participant) onEvents(from string, m *eventsMsg) {
	recv := p.now()
	p.mu.Lock()
	closed, srv, server := p.closed, p.srv, p.server
	p.mu.Unlock()
	if closed {
		return
	}
	if srv != nil {
		srv.route(from, m.Events, recv, false)
		return
	}
	if m.Ack > 0 && from == server {
		p.out.release(m.Ack)
	}
	p.receive(from, m.Events, recv)
}
