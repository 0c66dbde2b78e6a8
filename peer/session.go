package peer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/wire"
)

// State is where a session is in its life.
type State int32

// Session states.
const (
	StateConnecting   State = iota // first connection not yet established
	StateConnected                 // a connection is up
	StateReconnecting              // the connection dropped; a new one is being made or awaited
	StateEnded                     // the session is over: lost, disconnected or closed
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateEnded:
		return "ended"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

var sessionOrder atomic.Uint64

// Session is everything a node keeps about one remote node across
// connections: the outbound log of unacknowledged messages, the inbound
// delivery watermark, and the state. A session outlives the connections
// that serve it; the peer actor that owns it is restarted to reconnect.
//
// Send, IsAcknowledged and WaitAcknowledged may be called from any
// goroutine. The rest belongs to the peer actor and its connection loops.
type Session struct {
	cfg   *Config
	id    atomic.Pointer[ID]
	order uint64
	out   *outLog
	sem   chan struct{} // send semaphore: appends to out happen under it

	// dialAddr is where to reconnect; "" for a session the remote dialed.
	dialMu   sync.Mutex
	dialAddr string

	// Inbound state. remoteInst and lastSeq belong to the current
	// connection's reader, or to the actor between connections.
	remoteInst uint64
	delivered  atomic.Uint64
	dups       atomic.Uint64
	asm        assembly
	progMu     sync.Mutex
	prog       wire.Progress // chunks of asm to report to the sender

	state      atomic.Int32
	maxMessage atomic.Uint64        // the remote's limit
	cur        atomic.Pointer[conn] // the connection being served, for direct writes
	everUp     atomic.Bool          // some connection completed its RESUME exchange

	// failures counts consecutive failed connection attempts; the actor
	// owns it. gen numbers connection attempts so stale reports are
	// recognized.
	failures int
	gen      atomic.Uint64

	// The hand-off slot for a connection ready to be served, and the
	// goroutines the session started (dials), tracked for Close.
	mu          sync.Mutex
	pending     *Handshake
	pendingBind bool // the pending connection is this session's own first dial
	ended       bool
	endErr      error
	lastErr     error
	wg          sync.WaitGroup
}

// NewSession returns a session. dialAddr is the address to dial and
// redial, or "" for a session created by an inbound connection.
func NewSession(cfg *Config, dialAddr string) *Session {
	s := &Session{cfg: cfg, order: sessionOrder.Add(1), out: newOutLog(cfg.IDs), sem: make(chan struct{}, 1), dialAddr: dialAddr}
	s.maxMessage.Store(cfg.MaxMessage)
	s.persistTo(cfg.Store)
	return s
}

// persistTo connects the outbound log to st.
func (s *Session) persistTo(st Store) {
	if st == nil {
		return
	}
	s.out.persist = func(hdr, body []byte, seq, chunk uint64) uint64 {
		return st.Append(s.ID(), hdr, body, seq, chunk)
	}
	s.out.released = func(acked, partial, chunks uint64) {
		if id := s.ID(); id != "" {
			st.Release(id, acked, partial, chunks)
		}
	}
}

// StoredFrame is one DATA frame of an unacknowledged message, as a store
// kept it: chunk Chunk of message Seq, encoded.
type StoredFrame struct {
	Seq, Chunk uint64
	Bytes      []byte
}

// RestoreSession returns the session with node id that a previous run of
// this node left in its store: frames are the frames of the messages id
// had not acknowledged, in order, and acked is what it had. The session
// reconnects (dialing dialAddr, or waiting up to Linger for id to dial
// when dialAddr is "") and re-sends them. A chunked message the previous
// run was still sending is aborted: its Send never returned.
func RestoreSession(cfg *Config, id ID, dialAddr string, acked uint64, frames []StoredFrame) (*Session, error) {
	s := &Session{cfg: cfg, order: sessionOrder.Add(1), out: newOutLog(cfg.IDs), sem: make(chan struct{}, 1), dialAddr: dialAddr}
	s.maxMessage.Store(cfg.MaxMessage)
	s.SetID(id)
	s.state.Store(int32(StateReconnecting))
	s.everUp.Store(true)
	l := s.out
	l.acked = acked
	var open *wire.Data // the last message, while its final chunk is missing
	var openFlags uint8
	for _, f := range frames {
		if len(f.Bytes) < wire.HeaderLen {
			return nil, fmt.Errorf("slc: stored frame of message %d: %d bytes", f.Seq, len(f.Bytes))
		}
		h, err := wire.ParseHeader(f.Bytes[:wire.HeaderLen], wire.MaxVersion, wire.MaxFrameLimit)
		if err != nil || h.Type != wire.TypeData || int(h.Length) != len(f.Bytes)-wire.HeaderLen {
			return nil, fmt.Errorf("slc: stored frame of message %d is not a DATA frame", f.Seq)
		}
		d, err := wire.ParseData(f.Bytes[wire.HeaderLen:])
		if err != nil || d.Seq != f.Seq {
			return nil, fmt.Errorf("slc: stored frame of message %d does not parse", f.Seq)
		}
		if f.Seq <= acked {
			continue
		}
		l.appendFrame(f.Bytes, nil, f.Seq, f.Chunk, false)
		if h.Flags&wire.FlagMore != 0 {
			open, openFlags = &d, h.Flags
		} else {
			open = nil
		}
	}
	if l.ids.Load() < l.last {
		return nil, fmt.Errorf("slc: stored message %d is above the node's ID counter %d", l.last, l.ids.Load())
	}
	s.persistTo(cfg.Store)
	if open != nil && openFlags&wire.FlagAbort == 0 {
		l.aborted = insertID(l.aborted, MsgID(open.Seq))
		next := uint64(0)
		for i := len(l.ents) - 1; i >= l.eh && l.ents[i].seq == open.Seq; i-- {
			next = max(next, l.ents[i].chunk+1)
		}
		l.appendLocked(next, wire.FlagAbort, open.Seq, open.Serializer, 0, string(open.Type), nil)
	}
	return s, nil
}

// ID returns the remote node's name, or "" before the first hello.
func (s *Session) ID() ID {
	if p := s.id.Load(); p != nil {
		return *p
	}
	return ""
}

// SetID names the session. The owner of the sessions calls it once, when
// the first hello is accepted, before the session becomes visible to Send.
func (s *Session) SetID(id ID) { s.id.Store(&id) }

// DialAddr returns the address the session reconnects to, or "".
func (s *Session) DialAddr() string {
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	return s.dialAddr
}

// SetDialAddr gives an inbound session an address to reconnect to.
func (s *Session) SetDialAddr(addr string) {
	s.dialMu.Lock()
	s.dialAddr = addr
	s.dialMu.Unlock()
}

// EverUp reports whether some connection of the session completed its
// handshake: a session that never came up ends without being "lost".
func (s *Session) EverUp() bool { return s.everUp.Load() }

// State returns the session's state.
func (s *Session) State() State { return State(s.state.Load()) }

// Err returns why the session ended, once it has.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endErr
}

// Stats are a session's counters.
type Stats struct {
	Unacked    int64  // bytes sent or queued and not yet acknowledged
	LastSent   MsgID  // highest message ID queued
	Acked      MsgID  // acknowledgement watermark
	Delivered  MsgID  // highest message ID from the remote placed in the mailbox
	Duplicates uint64 // re-sent messages from the remote that were dropped
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	return Stats{
		Unacked:    s.out.unacked(),
		LastSent:   MsgID(s.out.lastSeq()),
		Acked:      MsgID(s.out.ackedSeq()),
		Delivered:  MsgID(s.delivered.Load()),
		Duplicates: s.dups.Load(),
	}
}

// Handoff places a connection for the session's actor to serve, replacing
// (and closing) any connection still waiting in the slot. It reports false,
// and closes hs, when the session has ended.
func (s *Session) Handoff(hs *Handshake) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		hs.Close()
		return false
	}
	if !hs.Claim() {
		// The listener gave up waiting and refuses it.
		return false
	}
	if s.pending != nil {
		s.pending.Close()
	}
	s.pending, s.pendingBind = hs, false
	return true
}

// offer places the result of the actor's own dial, unless the actor has
// moved on since (gen) or the session ended.
func (s *Session) offer(hs *Handshake, gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || gen != s.gen.Load() {
		hs.Close()
		return false
	}
	if s.pending != nil {
		s.pending.Close()
	}
	s.pending, s.pendingBind = hs, true
	return true
}

func (s *Session) takePending() (*Handshake, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, bind := s.pending, s.pendingBind
	s.pending, s.pendingBind = nil, false
	return hs, bind
}

func (s *Session) setLastErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// LastErr returns the most recent connection failure.
func (s *Session) LastErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// End finishes the session with err: queued and future sends fail, waiters
// wake, a connection waiting in the slot is closed. It returns the IDs of
// the messages that were never acknowledged. Only the first call counts.
func (s *Session) End(err error) []MsgID {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil
	}
	s.ended, s.endErr = true, err
	if s.pending != nil {
		s.pending.Close()
		s.pending = nil
	}
	s.mu.Unlock()
	s.state.Store(int32(StateEnded))
	return s.out.fail(err)
}

// Undelivered returns the IDs of the messages that were unacknowledged
// when the session ended.
func (s *Session) Undelivered() []MsgID {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.out.lost
}

func (s *Session) setProgress(p wire.Progress) {
	s.progMu.Lock()
	s.prog = p
	s.progMu.Unlock()
}

func (s *Session) getProgress() wire.Progress {
	s.progMu.Lock()
	defer s.progMu.Unlock()
	return s.prog
}

// Wait waits for the goroutines the session started.
func (s *Session) Wait() { s.wg.Wait() }

// Outgoing is one encoded message on its way out.
type Outgoing struct {
	Serializer codec.ID
	Type       string // registered type name, "" for none
	Body       []byte // serialized, not compressed

	// Give offers Body to the outbound log instead of a copy: the caller
	// may give it up (a buffer from wire.GetLarge, which it will not
	// use again if Taken). Taken reports that the log kept it; otherwise
	// the log copied it and the caller keeps it.
	Give, Taken bool
}

// Send queues m for every session in ss and returns its message ID.
//
// IDs come from ids and are taken while every target's send semaphore is
// held (or, for a single frame, under the logs' locks while no semaphore
// holder is appending), so each session's log is in ID order. Send waits
// while a target is over its BufferCap, until ctx ends. A message larger
// than ChunkSize is split into chunks, and the wait for room happens
// between chunks, so a huge message never holds more than BufferCap plus
// one chunk in memory.
//
// ss must not name a session twice; it is reordered in place. When some
// targets got the message and others did not, the returned error is a
// *SendError listing the failures and the ID is valid for the others. A
// message that failed after it got its ID (a chunked message abandoned
// part way) returns that ID with the error.
func Send(ctx context.Context, ss []*Session, ids *atomic.Uint64, m *Outgoing) (MsgID, error) {
	if len(ss) == 0 {
		return 0, ErrNoPeers
	}
	cfg := ss[0].cfg
	if len(ss) > 1 {
		slices.SortFunc(ss, func(a, b *Session) int { return cmp.Compare(a.order, b.order) })
	}
	if (cfg.Compressor == codec.None || len(m.Body) < cfg.CompressMin) && len(m.Body) <= cfg.ChunkSize {
		var id MsgID
		var commit uint64
		var ok bool
		var err error
		if len(ss) == 1 {
			id, commit, ok, err = ss[0].sendFast(ids, m)
		} else if cfg.Store == nil {
			id, ok = sendFastMany(ss, ids, m)
		}
		if ok {
			if err == nil && commit != 0 && cfg.Store.SendWaits() {
				err = cfg.Store.WaitCommit(commit)
			}
			return id, err
		}
	}
	return sendSlow(ctx, ss, ids, m)
}

// sendSlow is Send's general path: with each target's send semaphore held,
// it waits for room, takes the ID and appends the message, chunked and
// compressed as configured. (Its deferred calls are kept out of Send, whose
// fast path then needs none.)
func sendSlow(ctx context.Context, ss []*Session, ids *atomic.Uint64, m *Outgoing) (MsgID, error) {
	cfg := ss[0].cfg
	for i, s := range ss {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			for _, h := range ss[:i] {
				<-h.sem
			}
			return 0, ctx.Err()
		}
	}
	for _, s := range ss {
		s.out.enter()
	}
	held := true
	release := func() {
		if held {
			held = false
			for _, s := range ss {
				s.out.leave()
				<-s.sem
			}
		}
	}
	defer release()
	for _, s := range ss {
		if uint64(len(m.Body)) > s.maxMessage.Load() {
			return 0, &PeerError{Peer: s.ID(), Op: "send", Err: fmt.Errorf("%w: %d bytes, the peer accepts up to %d", ErrTooLarge, len(m.Body), s.maxMessage.Load())}
		}
		if err := s.out.waitRoom(ctx, cfg.BufferCap); err != nil {
			return 0, s.sendErr(err)
		}
	}
	st := cfg.Store
	if st != nil {
		// The store must have room for every copy, like BufferCap.
		if err := st.WaitRoom(ctx, len(m.Body)*len(ss)); err != nil {
			return 0, err
		}
	}
	id := ids.Add(1)
	if st != nil {
		if err := st.ReserveID(id); err != nil {
			return 0, err
		}
	}
	var commit uint64 // the store commit holding the last frame
	comp, _ := codec.CompressorByID(cfg.Compressor)
	var scratch []byte
	if comp != nil && cfg.Compressor != codec.None {
		bp := compPool.Get().(*[]byte)
		scratch = (*bp)[:0]
		defer func() { *bp = scratch[:0]; compPool.Put(bp) }()
	}

	// errs[i] is target i's failure, if any; no allocation for a few targets.
	var small [4]error
	var errs []error
	if len(ss) <= len(small) {
		errs = small[:len(ss)]
	} else {
		errs = make([]error, len(ss))
	}
	body := m.Body
	for chunkNo, first := uint64(0), true; first || len(body) > 0; chunkNo, first = chunkNo+1, false {
		chunk := body
		flags := uint8(0)
		if len(chunk) > cfg.ChunkSize {
			chunk, flags = chunk[:cfg.ChunkSize], wire.FlagMore
		}
		body = body[len(chunk):]
		cid, payload := uint8(codec.None), chunk
		if scratch != nil && len(chunk) >= cfg.CompressMin {
			if out, err := comp.Compress(scratch[:0], chunk); err == nil {
				scratch = out
				if len(out) < len(chunk)-len(chunk)/8 {
					cid, payload = uint8(cfg.Compressor), out
				}
			}
		}
		for i, s := range ss {
			if errs[i] != nil {
				continue
			}
			if !first {
				if err := s.out.waitRoom(ctx, cfg.BufferCap); err != nil {
					errs[i] = err
					s.abort(id, chunkNo, m)
					continue
				}
			}
			c, err := s.out.appendData(chunkNo, flags, id, uint8(m.Serializer), cid, m.Type, payload)
			if err != nil {
				errs[i] = err
			}
			commit = max(commit, c)
		}
	}
	if st != nil && commit != 0 && st.SendWaits() {
		// Other sends go on while this one waits: they share the
		// commit, or take the next.
		release()
		if err := st.WaitCommit(commit); err != nil {
			return MsgID(id), err
		}
	}
	var se *SendError
	for i, err := range errs {
		if err != nil {
			if se == nil {
				se = &SendError{ID: MsgID(id)}
			}
			se.Failed = append(se.Failed, &PeerError{Peer: ss[i].ID(), Op: "send", Err: ss[i].sendErr(err)})
		}
	}
	if se != nil {
		// The message had an ID before it failed: return it with the
		// error, so the caller can match it with events that name it.
		if len(se.Failed) == len(ss) {
			return MsgID(id), se.Failed[0]
		}
		return MsgID(id), se
	}
	return MsgID(id), nil
}

// sendFast is Send's path for the common case: one target, one frame, no
// compression, no Send holding the send semaphore (outLog.enter) and room
// under BufferCap. It takes one lock, and its ID under it. ok is false
// when the case does not apply; the caller then takes the general path.
func (s *Session) sendFast(ids *atomic.Uint64, m *Outgoing) (id MsgID, commit uint64, ok bool, err error) {
	if uint64(len(m.Body)) > s.maxMessage.Load() {
		return 0, 0, false, nil
	}
	st := s.cfg.Store
	if st != nil && !st.HasRoom(len(m.Body)) {
		return 0, 0, false, nil // full: the general path waits for room
	}
	l := s.out
	l.mu.Lock()
	if l.err != nil || l.senders > 0 || l.tail-l.head() >= s.cfg.BufferCap {
		l.mu.Unlock()
		return 0, 0, false, nil
	}
	idle := l.wpos == l.tail && l.wend == l.wpos
	seq := ids.Add(1)
	if st != nil {
		if err := st.ReserveID(seq); err != nil {
			l.mu.Unlock()
			return 0, 0, true, err
		}
	}
	commit = l.appendGiven(0, 0, seq, uint8(m.Serializer), 0, m.Type, m.Body, m.Give)
	m.Taken = m.Give
	l.mu.Unlock()
	// A message to an idle connection goes out at once from this
	// goroutine (with any ACK waiting to be sent); otherwise the writer,
	// busy already, sends it with its next batch.
	if c := s.cur.Load(); !idle || c == nil || !c.writeNow() {
		l.kickWriter()
	}
	return MsgID(seq), commit, true, nil
}

// sendFastMany is sendFast for several targets, sorted by order, without a
// store: it locks every target's log in that order, and appends the frame
// to each under one ID when every log has room and no semaphore holder is
// inside. ok is false when the case does not apply. Unlike sendFast it
// never writes from the caller's goroutine: the targets' writers send in
// parallel, where direct writes would make one system call after another.
func sendFastMany(ss []*Session, ids *atomic.Uint64, m *Outgoing) (id MsgID, ok bool) {
	for i, s := range ss {
		l := s.out
		l.mu.Lock()
		if uint64(len(m.Body)) > s.maxMessage.Load() || l.err != nil || l.senders > 0 || l.tail-l.head() >= s.cfg.BufferCap {
			for _, h := range ss[:i+1] {
				h.out.mu.Unlock()
			}
			return 0, false
		}
	}
	seq := ids.Add(1)
	for _, s := range ss {
		s.out.appendLocked(0, 0, seq, uint8(m.Serializer), 0, m.Type, m.Body)
	}
	for _, s := range ss {
		s.out.mu.Unlock()
	}
	for _, s := range ss {
		s.out.kickWriter()
	}
	return MsgID(seq), true
}

var compPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// abort closes a chunked message that cannot be finished.
func (s *Session) abort(id, chunk uint64, m *Outgoing) {
	s.out.markAborted(id)
	s.out.appendData(chunk, wire.FlagAbort, id, uint8(m.Serializer), 0, m.Type, nil)
}

func (s *Session) sendErr(err error) error {
	if err == nil {
		err = s.Err()
	}
	if err == nil {
		err = ErrPeerLost
	}
	if err == context.Canceled || err == context.DeadlineExceeded {
		return err
	}
	var pe *PeerError
	if s.State() == StateEnded && !errors.As(err, &pe) {
		return &PeerError{Peer: s.ID(), Op: "send", Err: err}
	}
	return err
}

// SendError reports a message that reached some targets and not others.
type SendError struct {
	ID     MsgID
	Failed []*PeerError
}

func (e *SendError) Error() string {
	msg := fmt.Sprintf("slc: message %d not sent to %d peer(s):", e.ID, len(e.Failed))
	for _, f := range e.Failed {
		msg += " " + f.Error() + ";"
	}
	return msg
}

// Unwrap returns the per-peer errors.
func (e *SendError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return errs
}

// AckStatus reports what the session knows of a message: acked once the
// remote's cumulative acknowledgement covers it (and it was sent to this
// session or the session carried IDs beyond it), pending while it awaits
// one, failed when it never will be.
func (s *Session) AckStatus(id MsgID) (acked, pending, failed bool) {
	return s.out.status(uint64(id))
}

// WaitAcked blocks until id is acknowledged, the session ends (the error
// names the peer) or ctx ends.
func (s *Session) WaitAcked(ctx context.Context, id MsgID) error {
	ch, err := s.out.waitAck(uint64(id))
	if err != nil {
		return &PeerError{Peer: s.ID(), Op: "wait for acknowledgement", Err: err}
	}
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		if err := s.out.ackErr(uint64(id)); err != nil {
			return &PeerError{Peer: s.ID(), Op: "wait for acknowledgement", Err: err}
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitFlushed blocks until every message queued so far is acknowledged.
func (s *Session) WaitFlushed(ctx context.Context) error {
	last := s.out.lastSeq()
	if last == 0 {
		return nil
	}
	return s.WaitAcked(ctx, MsgID(last))
}
