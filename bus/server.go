package bus

import (
	"cmp"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slc-go/slc"
)

// maxBatchBytes bounds the event records sent in one slc message.
const maxBatchBytes = 1 << 20

// server is the state of a serving participant: the members, what each
// is sent, and what each publisher is owed an acknowledgement for.
//
// Locks: p.mu guards the membership (dests, a dest's member and present
// fields); a dest's mu its queue; an origin's mu its entries. No code
// holds a dest's or an origin's lock while taking another lock.
type server struct {
	p     *Participant
	epoch uint64
	table atomic.Pointer[routeTable]

	// guarded by p.mu
	dests       map[string]*dest
	nextRank    uint64
	rejoinTimer *time.Timer

	omu     sync.Mutex
	origins map[originKey]*origin
	olist   atomic.Pointer[[]*origin] // by number, copied on append
}

func newServer(p *Participant, epoch uint64) *server {
	s := &server{p: p, epoch: epoch, dests: map[string]*dest{}, origins: map[originKey]*origin{}}
	s.olist.Store(&[]*origin{})
	s.table.Store(&routeTable{byName: map[string]*dest{}, cache: map[string][]*dest{}})
	return s
}

// stop ends the server's timers; its goroutines end with the
// participant's context.
func (s *server) stop() {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.rejoinTimer != nil {
		s.rejoinTimer.Stop()
	}
}

// routeTable is an immutable snapshot of the members and their listener
// scopes, with a cache of the members each event scope goes to.
type routeTable struct {
	dests  []*dest
	scopes [][]string
	byName map[string]*dest

	mu    sync.RWMutex
	cache map[string][]*dest
}

// match returns the members whose listeners receive events on scope.
func (t *routeTable) match(scope []byte) []*dest {
	t.mu.RLock()
	ds, ok := t.cache[string(scope)]
	t.mu.RUnlock()
	if ok {
		return ds
	}
	sc := string(scope)
	for i, d := range t.dests {
		for _, l := range t.scopes[i] {
			if matches(l, sc) {
				ds = append(ds, d)
				break
			}
		}
	}
	t.mu.Lock()
	if len(t.cache) > 4096 {
		clear(t.cache)
	}
	t.cache[sc] = ds
	t.mu.Unlock()
	return ds
}

// originKey names a publisher's run.
type originKey struct {
	name     string
	instance uint64
}

// origin tracks one publisher's reliable events until every member they
// were sent to has acknowledged them.
type origin struct {
	key      originKey
	num      uint32 // its index in the server's origin list
	mu       sync.Mutex
	received uint64  // the highest sequence number routed
	base     uint64  // the index of entries[0]
	entries  []entry // reliable events awaiting acknowledgements, by sequence
	notified uint64  // the last acknowledgement announced
}

type entry struct {
	seq       uint64
	remaining int32
}

// ref is one member's pending acknowledgement of one entry: the entry's
// index, and its origin's number (an index into the server's origin
// list, so that refs hold no pointers for the garbage collector).
type ref struct {
	idx uint64
	o   uint32
}

// ackableLocked returns the sequence number up to which every reliable
// event is acknowledged, after dropping the finished entries.
func (o *origin) ackableLocked() uint64 {
	i := 0
	for i < len(o.entries) && o.entries[i].remaining <= 0 {
		i++
	}
	if i > 0 {
		o.entries = o.entries[i:]
		o.base += uint64(i)
		if len(o.entries) == 0 {
			o.entries = nil
		}
	}
	if len(o.entries) == 0 {
		return o.received
	}
	return o.entries[0].seq - 1
}

func (s *server) origin(sender []byte, instance uint64) *origin {
	k := originKey{string(sender), instance}
	s.omu.Lock()
	defer s.omu.Unlock()
	o := s.origins[k]
	if o == nil {
		list := *s.olist.Load()
		o = &origin{key: k, num: uint32(len(list))}
		s.origins[k] = o
		next := append(list[:len(list):len(list)], o)
		s.olist.Store(&next)
	}
	return o
}

// dest is a member as the server sees it, with its outgoing queue.
type dest struct {
	s    *server
	name string
	wake chan struct{}
	done chan struct{}
	away atomic.Bool // its connection is down: its acknowledgements are not waited for

	// guarded by s.p.mu (and mu, for present)
	member memberWire

	mu       sync.Mutex
	instance uint64
	present  bool // joined this server; expected members are not
	removed  bool
	// chunks is the queue of event records to send, in batches of at
	// most maxBatchBytes (a larger record has one of its own): a send
	// takes the first chunk as it is, with no copy, however long the
	// queue.
	chunks   []destChunk
	free     [][]byte // the buffers of sent chunks, for reuse
	events   int      // records in chunks
	ctl      []*controlMsg
	ack      uint64 // the acknowledgement owed to the member for its own events
	ackSent  uint64
	inflight []sentBatch
	dropped  uint64
	// spareRefs are acknowledged batches' ref slices, for reuse.
	spareRefs [][]ref
	retries   int // sends that found the member unknown to slc
}

// destChunk is one batch of a member's queue.
type destChunk struct {
	buf  []byte // event records
	n    int    // records in buf
	refs []ref  // pending acknowledgements of records in buf
	// borrowed: buf is part of a received batch, not the queue's own: it
	// is neither appended to nor reused.
	borrowed bool
}

// contiguous returns the records of recs as one slice when each starts
// where the one before ends, in one array.
func contiguous(recs []pendingRecord) ([]byte, bool) {
	if len(recs) == 0 {
		return nil, false
	}
	run := recs[0].rec
	for _, r := range recs[1:] {
		if len(r.rec) == 0 || cap(run)-len(run) < len(r.rec) {
			return nil, false
		}
		next := run[:len(run)+len(r.rec)]
		if &next[len(run)] != &r.rec[0] {
			return nil, false
		}
		run = next
	}
	return run[:len(run):len(run)], true
}

// Reuse of a member's chunk buffers, and the smallest run of received
// records a queue that is not empty keeps without a copy.
const (
	maxFreeChunks  = 2
	firstChunkSize = 16 << 10
	minBorrow      = 16 << 10
)

type sentBatch struct {
	id   slc.MsgID
	refs []ref
}

func (d *dest) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// newDestLocked adds a member and starts its sender. The caller holds p.mu.
func (s *server) newDestLocked(m memberWire) *dest {
	d := &dest{s: s, name: m.Name, member: m, instance: m.Instance,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.dests[m.Name] = d
	s.p.wg.Add(1)
	go d.run()
	return d
}

// expect adds a member of the previous server, which is expected to join
// this one: events for it are kept meanwhile.
func (s *server) expect(m ParticipantInfo) {
	mw := memberWire{Name: m.Name, Instance: m.Instance, Rank: m.Rank, Host: m.Host, PID: m.PID,
		CanServe: m.CanServe, Version: m.version}
	for _, l := range m.Listeners {
		mw.Listeners = append(mw.Listeners, l.String())
	}
	for _, l := range m.Informers {
		mw.Informers = append(mw.Informers, l.String())
	}
	for _, l := range m.Servers {
		mw.Servers = append(mw.Servers, l.String())
	}
	s.newDestLocked(mw)
}

// expireExpected drops the members of the previous server that did not
// join within the rejoin timeout.
func (s *server) expireExpected() {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.closed {
		return
	}
	for name, d := range s.dests {
		if !d.present {
			s.removeLocked(name)
		}
	}
}

// join adds or updates a member (ctlJoin), or its scopes (ctlScopes).
// The caller holds p.mu.
func (s *server) join(name string, mw *memberWire, isJoin bool) {
	s.p.log.Debug("bus: member update", "member", name, "join", isJoin, "version", mw.Version)
	d := s.dests[name]
	if d == nil {
		if !isJoin {
			return
		}
		d = s.newDestLocked(*mw)
	}
	m := *mw
	m.Away = false
	if isJoin {
		if m.Rank == 0 {
			m.Rank = s.nextRank
		}
		s.nextRank = max(s.nextRank, m.Rank+1)
	} else {
		m.Rank = d.member.Rank
	}
	d.member = m
	if isJoin {
		d.mu.Lock()
		d.instance = m.Instance
		d.present = true
		d.ackSent = 0
		d.mu.Unlock()
		d.away.Store(false)
		if o := s.findOrigin(originKey{name, m.Instance}); o != nil {
			o.mu.Lock()
			a := o.ackableLocked()
			o.mu.Unlock()
			d.setAck(a)
		}
	}
	s.changedLocked()
	d.signal()
}

func (s *server) findOrigin(k originKey) *origin {
	s.omu.Lock()
	defer s.omu.Unlock()
	return s.origins[k]
}

// removeLocked drops a member: it left, or was lost. The caller holds p.mu.
func (s *server) removeLocked(name string) {
	d := s.dests[name]
	if d == nil {
		return
	}
	s.p.log.Debug("bus: member removed", "member", name)
	delete(s.dests, name)
	d.mu.Lock()
	d.removed = true
	refs := d.takeRefsLocked()
	d.chunks, d.free, d.events = nil, nil, 0
	d.mu.Unlock()
	close(d.done)
	s.release(refs)
	s.changedLocked()
}

func (s *server) remove(name string) { s.removeLocked(name) }

// away notes that a member's connection dropped: slc delivers what is
// queued for it once it is back, and the publishers no longer wait for
// its acknowledgements. The caller holds p.mu.
func (s *server) away(name string) {
	d := s.dests[name]
	if d == nil {
		return
	}
	d.away.Store(true)
	d.mu.Lock()
	refs := d.takeRefsLocked()
	d.mu.Unlock()
	s.release(refs)
	s.changedLocked()
}

// back notes that a member's connection is up again.
func (s *server) back(name string) {
	if d := s.table.Load().byName[name]; d != nil {
		d.away.Store(false)
		d.signal()
	}
}

// takeRefsLocked removes and returns every pending acknowledgement of d.
func (d *dest) takeRefsLocked() []ref {
	var refs []ref
	for i := range d.chunks {
		refs = append(refs, d.chunks[i].refs...)
		d.chunks[i].refs = d.chunks[i].refs[:0]
	}
	for _, b := range d.inflight {
		refs = append(refs, b.refs...)
	}
	d.inflight = nil
	return refs
}

// acknowledged applies an slc acknowledgement from a member: the batches
// it acknowledges are delivered, so their entries are too.
func (s *server) acknowledged(name string, upTo slc.MsgID) {
	d := s.table.Load().byName[name]
	if d == nil {
		return
	}
	var done []sentBatch
	d.mu.Lock()
	i := 0
	for i < len(d.inflight) && d.inflight[i].id <= upTo && s.p.c.IsAcknowledged(d.inflight[i].id, slc.PeerID(name)) {
		i++
	}
	if i > 0 {
		done = slices.Clone(d.inflight[:i])
		d.inflight = slices.Delete(d.inflight, 0, i)
	}
	d.mu.Unlock()
	for _, b := range done {
		s.release(b.refs)
	}
	if len(done) > 0 {
		d.mu.Lock()
		for _, b := range done {
			if len(d.spareRefs) < 4 {
				d.spareRefs = append(d.spareRefs, b.refs[:0])
			}
		}
		d.mu.Unlock()
	}
}

// release counts the acknowledgements refs and announces what is then
// acknowledged to the publishers.
func (s *server) release(refs []ref) {
	if len(refs) == 0 {
		return
	}
	list := *s.olist.Load()
	var touched []*origin
	var o *origin
	for _, r := range refs {
		if o == nil || r.o != o.num {
			if o != nil {
				o.mu.Unlock()
			}
			o = list[r.o]
			o.mu.Lock()
			if !slices.Contains(touched, o) {
				touched = append(touched, o)
			}
		}
		if i := r.idx - o.base; r.idx >= o.base && i < uint64(len(o.entries)) {
			o.entries[i].remaining--
		}
	}
	o.mu.Unlock()
	for _, o := range touched {
		s.notify(o)
	}
}

// notify announces o's acknowledgement to its publisher if it advanced.
func (s *server) notify(o *origin) {
	o.mu.Lock()
	a := o.ackableLocked()
	if a <= o.notified {
		o.mu.Unlock()
		return
	}
	o.notified = a
	o.mu.Unlock()
	if o.key.name == s.p.name && o.key.instance == s.p.instance {
		s.p.out.release(a)
		return
	}
	if d := s.table.Load().byName[o.key.name]; d != nil {
		d.mu.Lock()
		same := d.instance == o.key.instance
		d.mu.Unlock()
		if same {
			d.setAck(a)
		}
	}
}

func (d *dest) setAck(a uint64) {
	d.mu.Lock()
	if a > d.ack {
		d.ack = a
	}
	d.mu.Unlock()
	d.signal()
}

// pendingRecord is a record routed to one member.
type pendingRecord struct {
	rec      []byte
	reliable bool
	hasRef   bool
	ref      ref
}

// route sends a batch of event records from a publisher (from; self for
// this participant's own events) to the members whose listeners match,
// and to this participant's listeners. Duplicates (after a changeover)
// are dropped.
func (s *server) route(from string, batch []byte, recv time.Time, self bool) {
	t := s.table.Load()
	p := s.p
	sc := routeScratchPool.Get().(*routeScratch)
	defer sc.put()
	pend, touched, counted := sc.pend, sc.touched, sc.counted
	var o *origin // locked while set
	// This participant's listeners get the records after the locks are
	// released: converters and filters are user code.
	var rb *recvBatch
	if !self {
		if rb = p.newRecvBatch(recv); len(rb.locals) == 0 {
			rb.release()
			rb = nil
		}
	}
	var dups, received uint64
	for len(batch) > 0 {
		h, rest, err := nextRecord(batch)
		if err != nil {
			p.log.Warn("bus: dropping a malformed batch", "from", from, "err", err)
			break
		}
		batch = rest
		if o == nil || o.key.instance != h.instance || o.key.name != string(h.sender) {
			if o != nil {
				o.mu.Unlock()
			}
			o = s.origin(h.sender, h.instance)
			o.mu.Lock()
			if !slices.Contains(touched, o) {
				touched = append(touched, o)
			}
		}
		reliable := h.flags&flagReliable != 0
		ds := sc.match(t, h.scope)
		counted = counted[:0]
		n := int32(0)
		for _, d := range ds {
			c := reliable && d.name != o.key.name && !d.away.Load()
			counted = append(counted, c)
			if c {
				n++
			}
		}
		if h.seq <= o.received {
			dups++
			continue
		}
		o.received = h.seq
		var idx uint64
		if n > 0 {
			idx = o.base + uint64(len(o.entries))
			o.entries = append(o.entries, entry{seq: h.seq, remaining: n})
		}
		for i, d := range ds {
			if d.name == o.key.name {
				continue
			}
			pend = addRecord(pend, d, pendingRecord{rec: h.record, reliable: reliable, hasRef: counted[i], ref: ref{idx: idx, o: o.num}})
			sc.pend = pend
		}
		switch {
		case rb != nil && rb.accept(o.key, h.seq):
			rb.accepted = append(rb.accepted, acceptedRecord{h, o.key})
		case rb != nil:
			dups++
		case !self:
			received++
		}
	}
	if o != nil {
		o.mu.Unlock()
	}
	if rb != nil {
		p.stats.received.Add(uint64(len(rb.accepted)))
		rb.deliverAccepted()
	} else if !self {
		p.stats.received.Add(received)
	}
	p.stats.duplicates.Add(dups)
	release := sc.release
	for _, dr := range pend {
		// Received batches are this participant's and never reused:
		// queues may keep their records without copying them. The
		// uplink's own log is reused.
		release = dr.d.enqueue(dr.recs, !self, release)
	}
	s.release(release)
	for _, o := range touched {
		s.notify(o)
	}
	sc.pend, sc.touched, sc.counted, sc.release = pend, touched, counted, release
}

// routeScratch holds route's slices between calls.
type routeScratch struct {
	pend    []destRecords
	touched []*origin
	counted []bool
	release []ref
	scopes  []scopeDests
}

// scopeDests caches the members of one event scope during a route.
type scopeDests struct {
	raw []byte
	ds  []*dest
}

// match is t.match with the batch's last scopes cached.
func (sc *routeScratch) match(t *routeTable, scope []byte) []*dest {
	for _, c := range sc.scopes {
		if string(c.raw) == string(scope) {
			return c.ds
		}
	}
	if len(sc.scopes) >= 8 {
		sc.scopes = sc.scopes[:0]
	}
	ds := t.match(scope)
	sc.scopes = append(sc.scopes, scopeDests{scope, ds})
	return ds
}

var routeScratchPool = sync.Pool{New: func() any { return new(routeScratch) }}

// put clears the scratch (it must not keep batches alive) and pools it.
func (sc *routeScratch) put() {
	for i := range sc.pend {
		clear(sc.pend[i].recs)
		sc.pend[i].recs = sc.pend[i].recs[:0]
		sc.pend[i].d = nil
	}
	sc.pend = sc.pend[:0]
	clear(sc.touched)
	sc.touched = sc.touched[:0]
	sc.counted = sc.counted[:0]
	clear(sc.release)
	sc.release = sc.release[:0]
	clear(sc.scopes)
	sc.scopes = sc.scopes[:0]
	routeScratchPool.Put(sc)
}

// destRecords are the records of a batch routed to one member.
type destRecords struct {
	d    *dest
	recs []pendingRecord
}

func addRecord(pend []destRecords, d *dest, r pendingRecord) []destRecords {
	for i := range pend {
		if pend[i].d == d {
			pend[i].recs = append(pend[i].recs, r)
			return pend
		}
	}
	// Reuse a pooled entry's slice when there is one.
	if len(pend) < cap(pend) {
		pend = pend[:len(pend)+1]
		e := &pend[len(pend)-1]
		e.d = d
		e.recs = append(e.recs[:0], r)
		return pend
	}
	return append(pend, destRecords{d: d, recs: []pendingRecord{r}})
}

// enqueue appends records to d's queue. It returns, appended to release,
// the acknowledgements no longer waited for (d was removed or is away).
// With borrow, the records' memory is never reused: when they lie back to
// back, and the queue is empty or they are at least minBorrow bytes, the
// queue keeps them as they are, as one chunk, instead of copying them.
// Smaller runs are copied, to gather them into fewer sends.
func (d *dest) enqueue(recs []pendingRecord, borrow bool, release []ref) []ref {
	limit := d.s.p.cfg.queueLimit
	d.mu.Lock()
	if d.removed {
		d.mu.Unlock()
		for _, r := range recs {
			if r.hasRef {
				release = append(release, r.ref)
			}
		}
		return release
	}
	away := d.away.Load()
	if borrow && d.events+len(recs) <= limit {
		if run, ok := contiguous(recs); ok && len(run) <= maxBatchBytes && (len(d.chunks) == 0 || len(run) >= minBorrow) {
			c := destChunk{buf: run, n: len(recs), borrowed: true}
			if k := len(d.spareRefs); k > 0 {
				c.refs, d.spareRefs = d.spareRefs[k-1], d.spareRefs[:k-1]
			}
			for _, r := range recs {
				switch {
				case !r.hasRef:
				case away:
					release = append(release, r.ref)
				default:
					c.refs = append(c.refs, r.ref)
				}
			}
			d.chunks = append(d.chunks, c)
			d.events += len(recs)
			d.mu.Unlock()
			d.signal()
			return release
		}
	}
	var c *destChunk
	for _, r := range recs {
		if !r.reliable && d.events >= limit {
			d.dropped++
			d.s.p.stats.dropped.Add(1)
			continue
		}
		if c == nil || len(c.buf) > 0 && len(c.buf)+len(r.rec) > maxBatchBytes {
			c = d.tailLocked(len(r.rec))
		}
		c.buf = append(c.buf, r.rec...)
		c.n++
		d.events++
		if r.hasRef {
			if away {
				release = append(release, r.ref)
			} else {
				c.refs = append(c.refs, r.ref)
			}
		}
	}
	d.mu.Unlock()
	d.signal()
	return release
}

// tailLocked returns the chunk to append a record of n bytes to: the last
// one, or a new one when the record would take the last past
// maxBatchBytes. The pointer is valid until the queue changes.
func (d *dest) tailLocked(n int) *destChunk {
	if k := len(d.chunks); k > 0 {
		if c := &d.chunks[k-1]; !c.borrowed && (len(c.buf) == 0 || len(c.buf)+n <= maxBatchBytes) {
			return c
		}
	}
	var c destChunk
	switch k := len(d.free); {
	case k > 0:
		c.buf, d.free = d.free[k-1], d.free[:k-1]
	case len(d.chunks) > 0:
		// The queue is backing up: this chunk will fill too.
		c.buf = make([]byte, 0, max(n, maxBatchBytes))
	default:
		c.buf = make([]byte, 0, max(n, firstChunkSize))
	}
	if k := len(d.spareRefs); k > 0 {
		c.refs, d.spareRefs = d.spareRefs[k-1], d.spareRefs[:k-1]
	}
	d.chunks = append(d.chunks, c)
	return &d.chunks[len(d.chunks)-1]
}

// run sends d's queue, its control messages and acknowledgements.
func (d *dest) run() {
	defer d.s.p.wg.Done()
	ctx := d.s.p.ctx
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.done:
			return
		case <-d.wake:
		}
		for d.sendOnce() {
		}
	}
}

// sendOnce sends the first chunk of the queue (at most maxBatchBytes of
// records, unless one record is larger), with the control messages and
// the acknowledgement owed. It reports whether it sent anything.
func (d *dest) sendOnce() bool {
	p := d.s.p
	ctx := p.ctx
	d.mu.Lock()
	if d.removed || !d.present {
		d.mu.Unlock()
		return false
	}
	ctl := d.ctl
	d.ctl = nil
	var c destChunk
	if len(d.chunks) > 0 {
		c = d.chunks[0]
		k := copy(d.chunks, d.chunks[1:])
		d.chunks[k] = destChunk{}
		d.chunks = d.chunks[:k]
		d.events -= c.n
	}
	var ack uint64
	if d.ack > d.ackSent {
		ack = d.ack
	}
	d.mu.Unlock()
	if len(ctl) == 0 && len(c.buf) == 0 && ack == 0 {
		return false
	}
	to := slc.PeerID(d.name)
	for i, m := range ctl {
		if _, err := p.c.Send(ctx, m, to); err != nil {
			if ctx.Err() != nil {
				return false
			}
			if errors.Is(err, slc.ErrUnknownPeer) {
				d.retryLater(ctl[i:], c)
				return false
			}
			p.log.Debug("bus: control message not sent", "member", d.name, "scope", m.Scope, "err", err)
		}
	}
	if len(c.buf) == 0 && ack == 0 {
		return true
	}
	// Send copies the records: the chunk's buffer is free once it returns.
	id, err := p.c.Send(ctx, &eventsMsg{Ack: ack, Events: c.buf}, to)
	if err != nil && ctx.Err() == nil {
		if errors.Is(err, slc.ErrUnknownPeer) {
			d.retryLater(nil, c)
			return false
		}
		p.log.Debug("bus: events not sent", "member", d.name, "err", err)
	}
	var release []ref
	d.mu.Lock()
	if c.buf != nil && !c.borrowed && cap(c.buf) <= 2*maxBatchBytes && len(d.free) < maxFreeChunks && !d.removed {
		d.free = append(d.free, c.buf[:0])
	}
	switch {
	case len(c.refs) == 0:
		if c.refs != nil && len(d.spareRefs) < 4 && !d.removed {
			d.spareRefs = append(d.spareRefs, c.refs)
		}
	case err != nil:
		release = c.refs
	case d.removed || d.away.Load():
		release = c.refs
	default:
		d.inflight = append(d.inflight, sentBatch{id: id, refs: c.refs})
	}
	if err == nil {
		d.ackSent = max(d.ackSent, ack)
		d.retries = 0
	}
	d.mu.Unlock()
	d.s.release(release)
	if err == nil && len(c.refs) > 0 {
		// The acknowledgement may have come while the batch was not yet
		// in flight: it is cumulative, so check now.
		d.s.acknowledged(d.name, id)
	}
	return err == nil
}

// retryLater puts back what sendOnce took, for a member slc does not know
// yet: slc can deliver a new peer's first messages (its join) a moment
// before Send to that peer works. The member's PeerConnected, or a short
// timer, tries again.
func (d *dest) retryLater(ctl []*controlMsg, c destChunk) {
	d.mu.Lock()
	if d.removed {
		d.mu.Unlock()
		d.s.release(c.refs)
		return
	}
	d.ctl = append(slices.Clone(ctl), d.ctl...)
	if len(c.buf) > 0 {
		d.chunks = slices.Insert(d.chunks, 0, c)
		d.events += c.n
	}
	d.retries++
	give := d.retries > maxUnknownRetries
	d.mu.Unlock()
	if give {
		d.s.p.log.Warn("bus: member unknown to slc, giving up", "member", d.name)
		return
	}
	time.AfterFunc(unknownRetry, d.signal)
}

// How a member that slc does not know yet is retried (see retryLater).
const (
	unknownRetry      = 10 * time.Millisecond
	maxUnknownRetries = 500
)

// changedLocked publishes the membership after a change: to this
// participant and to every member. The caller holds p.mu.
func (s *server) changedLocked() {
	p := s.p
	t := &routeTable{byName: map[string]*dest{}, cache: map[string][]*dest{}}
	list := []memberWire{*p.selfMemberLocked()}
	for _, d := range s.dests {
		t.dests = append(t.dests, d)
		t.scopes = append(t.scopes, d.member.Listeners)
		t.byName[d.name] = d
		m := d.member
		d.mu.Lock()
		m.Away = !d.present || d.away.Load()
		d.mu.Unlock()
		list = append(list, m)
	}
	slices.SortFunc(list, func(a, b memberWire) int {
		if c := cmp.Compare(a.Rank, b.Rank); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	s.table.Store(t)
	msg := &controlMsg{Scope: ctlMembers, Members: list, Server: p.name, Epoch: s.epoch}
	p.view = membershipFromWire(msg)
	p.notifyLocked()
	for _, d := range s.dests {
		d.mu.Lock()
		if d.present {
			d.ctl = append(d.ctl, msg)
		}
		d.mu.Unlock()
		d.signal()
	}
}
