package peer

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/eface"
	"github.com/slc-go/slc/internal/wire"
)

// GoodbyeError reports that the remote ended the session with a GOODBYE.
type GoodbyeError struct{ Close wire.Close }

func (e *GoodbyeError) Error() string {
	if e.Close.Code == wire.CodeNone {
		if e.Close.Reason != "" {
			return "slc: peer said goodbye: " + e.Close.Reason
		}
		return "slc: peer said goodbye"
	}
	return fmt.Sprintf("slc: peer said goodbye: %s: %s", e.Close.Code, e.Close.Reason)
}

// Permanent: a goodbye ends the session; reconnecting is pointless.
func (e *GoodbyeError) Permanent() bool { return true }

// HeartbeatError reports a connection that stayed silent past the
// heartbeat timeout: a stalled or half-open peer.
type HeartbeatError struct{ Silent time.Duration }

func (e *HeartbeatError) Error() string {
	return fmt.Sprintf("slc: no data from peer for %v (heartbeat timeout)", e.Silent)
}

// Timeout reports true, so the error satisfies net.Error's Timeout.
func (e *HeartbeatError) Timeout() bool   { return true }
func (e *HeartbeatError) Temporary() bool { return true }

const maxBatch = 1024 // messages pushed to the mailbox at once
// maxBatchStored is maxBatch with a store: each push is a commit, so
// fewer, larger pushes give more messages per fsync.
const maxBatchStored = 16384
const maxTypeNames = 1024 // interned type names per connection

// conn serves one network connection of a session with a reader and a
// writer goroutine. It reports to the session's actor through notify.
type conn struct {
	maxBatch int // messages per push to the mailbox
	s        *Session
	cfg      *Config
	hs       *Handshake
	nc       net.Conn
	id       ID
	gen      uint64
	version  uint8
	resume   wire.Resume // the RESUME this side sends
	notify   func(any)

	stopW   chan struct{} // closed to make the writer finish
	stopR   chan struct{} // closed to make the reader's mailbox push give up
	done    chan struct{} // closed when the connection is torn down
	resumed chan struct{} // closed when the remote's RESUME arrived
	ackDue  chan struct{}
	ctrlDue chan struct{}
	wgW     sync.WaitGroup
	wgR     sync.WaitGroup
	stopped sync.Once

	mu      sync.Mutex
	pongs   []uint64
	bye     *wire.Close // GOODBYE the writer sends before it exits
	failed  bool
	err     error
	closing bool // shutdown has begun: failures now are expected

	dlMu        sync.Mutex
	readStopped bool // shutdown stopped the reader (guarded by dlMu)

	// Writing. wmu serializes writes on nc between the writer goroutine
	// and a Send that finds the connection idle and writes its message at
	// once; it guards the fields below.
	wmu      sync.Mutex
	wctrl    []byte
	wbufs    [][]byte
	wnb      net.Buffers // writeBuffers' scratch, so that it does not escape per write
	lastAck  uint64
	lastProg wire.Progress
	sentRes  bool         // this side's RESUME is written: other frames may follow
	gotRes   bool         // the remote's RESUME arrived: data may be written
	wready   bool         // sentRes and gotRes
	wdead    bool         // a write failed: nothing more is written
	activity atomic.Bool  // something besides a lone PING was written since the last tick
	lastW    atomic.Int64 // when the last write ended (UnixNano)

	rtt       atomic.Int64
	restarted bool // the remote's instance changed since the last connection
	up        bool // completed the RESUME exchange (the actor's view)

	// reader state
	lastSeq  uint64
	skipSeq  uint64
	types    map[string]string
	lastType string // the type name intern returned last
	batch    []Message
	slab     [][]byte // []byte headers not yet handed out by boxRaw
}

// assembly is a chunked message being reassembled. It lives in the
// session, so a reconnect to the same remote instance continues it.
type assembly struct {
	active bool
	seq    uint64
	ser    uint8
	typ    string
	buf    []byte
	chunks uint64
}

// connUp and connDown are what a conn reports to its actor.
type connUp struct {
	gen       uint64
	delivered uint64  // the remote's RESUME watermark
	abandoned []MsgID // chunked messages the resume had to give up
}

type connDown struct {
	gen uint64
	err error
}

// startConn begins serving hs. resumeFrom is what this side has delivered
// from the remote's instance.
func startConn(s *Session, hs *Handshake, gen uint64, notify func(any)) *conn {
	c := &conn{
		s: s, cfg: s.cfg, hs: hs, nc: hs.Conn, id: s.ID(), gen: gen, version: hs.Version, notify: notify,
		stopW: make(chan struct{}), stopR: make(chan struct{}), done: make(chan struct{}), resumed: make(chan struct{}),
		ackDue: make(chan struct{}, 1), ctrlDue: make(chan struct{}, 1),
		types: make(map[string]string), maxBatch: maxBatch,
	}
	if s.cfg.Store != nil {
		c.maxBatch = maxBatchStored
	}
	if hs.Remote.Instance != s.remoteInst {
		c.restarted = s.remoteInst != 0
		s.remoteInst = hs.Remote.Instance
		s.delivered.Store(0)
		s.asm = assembly{}
		s.setProgress(wire.Progress{})
		if st := s.cfg.Store; st != nil {
			// What an earlier session, or an earlier run of this node,
			// placed in the mailbox from this instance of the remote.
			seq, p := st.Delivered(c.id, hs.Remote.Instance)
			s.delivered.Store(seq)
			if p != nil && p.Seq > seq {
				s.asm = assembly{active: true, seq: p.Seq, ser: p.Ser, typ: p.Type, buf: p.Data, chunks: p.Chunks}
				s.setProgress(wire.Progress{Seq: p.Seq, Chunks: p.Chunks})
			}
		}
	}
	c.lastSeq = s.delivered.Load()
	c.resume = wire.Resume{Instance: hs.Remote.Instance, Delivered: c.lastSeq}
	if s.asm.active {
		c.resume.Partial, c.resume.Chunks = s.asm.seq, s.asm.chunks
	}
	s.maxMessage.Store(hs.Remote.MaxMessage)
	c.wgW.Add(1)
	c.wgR.Add(1)
	go c.writeLoop()
	go c.readLoop()
	return c
}

// fail records the first error and tells the actor. A protocol violation
// this side detected is reported to the remote in a GOODBYE; other errors
// close the connection at once so both loops stop.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.failed || c.closing {
		c.mu.Unlock()
		return
	}
	c.failed, c.err = true, err
	pe, local := wire.AsProtocolError(err)
	if local && !pe.Remote && c.bye == nil {
		c.bye = &wire.Close{Code: pe.Code, Reason: pe.Reason}
	} else {
		local = false
	}
	c.mu.Unlock()
	if local {
		c.closeStopW()
	} else {
		c.nc.Close()
	}
	c.notify(&connDown{gen: c.gen, err: err})
}

func (c *conn) closeStopW() { c.stopped.Do(func() { close(c.stopW) }) }

// shutdown stops the connection and waits for both loops. bye, if not nil,
// is sent as the last frame.
//
// The reader stops first: it finishes the batch it is placing in the
// mailbox, so the writer's last ACK covers every message the application
// can see. Only then does the writer send its final frames.
func (c *conn) shutdown(bye *wire.Close) {
	c.mu.Lock()
	c.closing = true
	if bye != nil && c.bye == nil {
		c.bye = bye
	}
	c.mu.Unlock()
	c.dlMu.Lock()
	c.readStopped = true
	c.nc.SetReadDeadline(time.Unix(1, 0))
	c.dlMu.Unlock()
	close(c.stopR)
	c.wgR.Wait()
	c.closeStopW()
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.wgW.Wait()
	c.nc.Close()
	close(c.done)
}

// silence is how long the connection may stay quiet before it is dead.
func (c *conn) silence() time.Duration {
	return max(c.cfg.HeartbeatTimeout, 3*time.Duration(c.hs.Remote.HeartbeatMS)*time.Millisecond)
}

// deadlineReader arms the heartbeat deadline before every read, so only
// time spent waiting for the network counts, not time spent blocked on a
// full mailbox.
type deadlineReader struct {
	c  *conn
	nc net.Conn
	d  time.Duration
}

func (r deadlineReader) Read(p []byte) (int, error) {
	// Arming the deadline and shutdown's stop are ordered by dlMu, so a
	// stop is never undone by a read that re-arms the deadline.
	r.c.dlMu.Lock()
	if r.c.readStopped {
		r.c.dlMu.Unlock()
		return 0, net.ErrClosed
	}
	err := r.nc.SetReadDeadline(time.Now().Add(r.d))
	r.c.dlMu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := r.nc.Read(p)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = &HeartbeatError{Silent: r.d}
		}
	}
	return n, err
}

func (c *conn) readLoop() {
	defer c.wgR.Done()
	fr := c.hs.Reader
	fr.MaxPayload = c.cfg.MaxFrame

	// The first frame is the remote's RESUME, or a REJECT.
	c.nc.SetReadDeadline(c.hs.Deadline)
	h, p, err := fr.ReadFrame()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = &wire.ProtocolError{Code: wire.CodeTimeout, Reason: "no RESUME from the remote in time"}
		}
		c.fail(err)
		return
	}
	switch h.Type {
	case wire.TypeResume:
		r, err := wire.ParseResume(p)
		if err == nil && r.Instance != c.cfg.Instance {
			err = &wire.ProtocolError{Code: wire.CodeSequence, Reason: "RESUME names another instance of this node"}
		}
		var abandoned []MsgID
		if err == nil {
			abandoned, err = c.s.out.rewind(r)
		}
		if err != nil {
			c.fail(err)
			return
		}
		c.wmu.Lock()
		c.gotRes = true
		c.wready = c.sentRes
		c.wmu.Unlock()
		close(c.resumed)
		c.notify(&connUp{gen: c.gen, delivered: r.Delivered, abandoned: abandoned})
	case wire.TypeReject, wire.TypeGoodbye:
		cl, err := wire.ParseClose(p)
		if err != nil {
			c.fail(err)
			return
		}
		if h.Type == wire.TypeGoodbye {
			c.fail(&GoodbyeError{Close: cl})
			return
		}
		c.fail(cl.Err())
		return
	default:
		c.fail(&wire.ProtocolError{Code: wire.CodeUnexpectedFrame, Reason: wire.TypeName(h.Type) + " frame instead of RESUME"})
		return
	}

	fr.SetSource(deadlineReader{c: c, nc: c.nc, d: c.silence()})
	c.batch = make([]Message, 0, 64)
	for {
		for {
			h, p, ok, err := fr.Buffered()
			if err != nil {
				c.fail(err)
				return
			}
			if !ok {
				break
			}
			if err := c.handle(h, p); err != nil {
				c.fail(err)
				return
			}
			if len(c.batch) >= c.maxBatch {
				if err := c.flush(); err != nil {
					c.fail(err)
					return
				}
			}
		}
		if err := c.flush(); err != nil {
			c.fail(err)
			return
		}
		if err := fr.Fill(); err != nil {
			c.fail(err)
			return
		}
	}
}

// handle processes one frame. A payload a message refers to is held in
// the reader (onData).
func (c *conn) handle(h wire.Header, p []byte) error {
	switch h.Type {
	case wire.TypeData:
		return c.onData(h, p)
	case wire.TypeAck:
		seq, err := wire.ParseAck(p)
		if err != nil {
			return err
		}
		advanced, err := c.s.out.ack(seq)
		if err != nil {
			return err
		}
		if advanced && c.cfg.Hooks.Acked != nil {
			c.cfg.Hooks.Acked(c.id, MsgID(seq))
		}
	case wire.TypeProgress:
		pr, err := wire.ParseProgress(p)
		if err != nil {
			return err
		}
		advanced, err := c.s.out.progress(pr.Seq, pr.Chunks)
		if err != nil {
			return err
		}
		if advanced && c.cfg.Hooks.Acked != nil {
			c.cfg.Hooks.Acked(c.id, MsgID(c.s.out.ackedSeq()))
		}
	case wire.TypePing:
		n, err := wire.ParsePing(p)
		if err != nil {
			return err
		}
		c.mu.Lock()
		if len(c.pongs) < 16 {
			c.pongs = append(c.pongs, n)
		}
		c.mu.Unlock()
		signal(c.ctrlDue)
	case wire.TypePong:
		n, err := wire.ParsePing(p)
		if err != nil {
			return err
		}
		if d := time.Now().UnixNano() - int64(n); d > 0 && d < int64(time.Hour) {
			c.rtt.Store(d)
		}
	case wire.TypeGoodbye:
		cl, err := wire.ParseClose(p)
		if err != nil {
			return err
		}
		// Whatever arrived before the goodbye is delivered first.
		if err := c.flush(); err != nil {
			return err
		}
		return &GoodbyeError{Close: cl}
	case wire.TypeHello, wire.TypeResume, wire.TypeReject:
		return &wire.ProtocolError{Code: wire.CodeUnexpectedFrame, Reason: wire.TypeName(h.Type) + " frame after the handshake"}
	default:
		// An extension frame this version does not know: skipped.
	}
	return nil
}

func (c *conn) onData(h wire.Header, p []byte) error {
	d, err := wire.ParseDataUnchecked(p)
	if err != nil {
		return err
	}
	// ParseData's UTF-8 check, skipped for a repeat of the last type name
	// interned (which was checked).
	if string(d.Type) != c.lastType {
		if err := wire.CheckTypeName(d.Type); err != nil {
			return err
		}
	}
	asm := &c.s.asm
	if asm.active {
		if d.Seq != asm.seq || d.Serializer != asm.ser && h.Flags&wire.FlagAbort == 0 {
			return &wire.ProtocolError{Code: wire.CodeSequence, Reason: fmt.Sprintf("message %d interleaved with the chunks of message %d", d.Seq, asm.seq)}
		}
	} else if d.Seq == c.skipSeq && c.skipSeq != 0 {
		// A chunk of a re-sent message that was already delivered.
		if h.Flags&(wire.FlagMore) == 0 {
			c.skipSeq = 0
		}
		return nil
	} else if d.Seq <= c.lastSeq {
		// Re-sent after a reconnect and already delivered: drop it.
		c.s.dups.Add(1)
		if h.Flags&wire.FlagMore != 0 {
			c.skipSeq = d.Seq
		}
		return nil
	}
	if h.Flags&wire.FlagAbort != 0 {
		// The sender gave up on this message: discard and acknowledge.
		if asm.active && c.cfg.Store != nil {
			c.cfg.Store.DropPartial(c.id)
		}
		*asm = assembly{}
		c.s.setProgress(wire.Progress{})
		c.lastSeq = d.Seq
		if err := c.flush(); err != nil {
			return err
		}
		c.s.delivered.Store(d.Seq)
		signal(c.ackDue)
		return nil
	}

	body, owned := d.Body, false
	if d.Compressor != 0 {
		comp := c.hs.comp[d.Compressor]
		if comp == nil {
			return &wire.ProtocolError{Code: wire.CodeUnsupportedCodec, Reason: fmt.Sprintf("message %d uses compressor %d, which the sender did not announce or this node lacks", d.Seq, d.Compressor)}
		}
		limit := int(min(c.cfg.MaxMessage, uint64(1<<62))) - len(asm.buf)
		out, err := comp.Decompress(nil, d.Body, limit)
		if err != nil {
			if errors.Is(err, codec.ErrTooLarge) {
				return &wire.ProtocolError{Code: wire.CodeTooLarge, Reason: fmt.Sprintf("message %d exceeds %d bytes", d.Seq, c.cfg.MaxMessage)}
			}
			return &wire.ProtocolError{Code: wire.CodeMalformed, Reason: fmt.Sprintf("message %d: %v", d.Seq, err)}
		}
		body, owned = out, true
	}
	if !asm.active && h.Flags&wire.FlagMore == 0 {
		if uint64(len(body)) > c.cfg.MaxMessage {
			return &wire.ProtocolError{Code: wire.CodeTooLarge, Reason: fmt.Sprintf("message %d of %d bytes exceeds %d", d.Seq, len(body), c.cfg.MaxMessage)}
		}
		c.deliver(d.Seq, d.Serializer, c.intern(d.Type), body)
		if !owned {
			m := &c.batch[len(c.batch)-1]
			m.lease, m.idx = c.hs.Reader.Hold()
		}
		return nil
	}
	if !asm.active {
		// PROGRESS on this message will tell the sender that everything
		// before it is delivered: make it so before the first chunk
		// counts. If the mailbox cannot take the batch, nothing of this
		// message is kept.
		if err := c.flush(); err != nil {
			return err
		}
		*asm = assembly{active: true, seq: d.Seq, ser: d.Serializer, typ: c.intern(d.Type)}
	}
	if uint64(len(asm.buf))+uint64(len(body)) > c.cfg.MaxMessage {
		return &wire.ProtocolError{Code: wire.CodeTooLarge, Reason: fmt.Sprintf("message %d exceeds %d bytes", d.Seq, c.cfg.MaxMessage)}
	}
	asm.buf = append(asm.buf, body...)
	asm.chunks++
	if h.Flags&wire.FlagMore == 0 {
		a := *asm
		*asm = assembly{}
		c.s.setProgress(wire.Progress{})
		c.deliver(a.seq, a.ser, a.typ, a.buf)
		return nil
	}
	// Tell the sender which chunks are safe here, so it can release them:
	// with a store, only once they are in it.
	if st := c.cfg.Store; st != nil {
		p := Partial{Seq: asm.seq, Ser: asm.ser, Type: asm.typ, Chunks: asm.chunks}
		if err := st.SaveChunk(c.id, c.s.remoteInst, p, body); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	c.s.setProgress(wire.Progress{Seq: asm.seq, Chunks: asm.chunks})
	signal(c.ackDue)
	return nil
}

// intern returns the type name as a string without allocating for names
// seen before on this connection.
func (c *conn) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	// A stream mostly repeats one type: comparing with the last name is
	// cheaper than hashing it.
	if string(b) == c.lastType {
		return c.lastType
	}
	s, ok := c.types[string(b)]
	if !ok {
		s = string(b)
		if len(c.types) < maxTypeNames {
			c.types[s] = s
		}
	}
	c.lastType = s
	return s
}

// deliver decodes a complete message and adds it to the batch.
func (c *conn) deliver(seq uint64, serID uint8, typ string, raw []byte) {
	c.lastSeq = seq
	m := Message{From: c.id, Instance: c.s.remoteInst, ID: MsgID(seq), Type: typ, Raw: raw}
	if ser := c.hs.ser[serID]; ser == nil {
		m.Err = fmt.Errorf("slc: message %d uses serializer %d, which the sender did not announce or this node lacks", seq, serID)
	} else {
		m.Serializer = c.hs.sid[serID]
		if m.Serializer == codec.Raw {
			m.Body = c.boxRaw(raw)
		} else {
			m.Body, m.Err = codec.Decode(typ, ser, raw)
		}
	}
	c.batch = append(c.batch, m)
}

// rawSlab is the number of []byte headers allocated at once for the
// bodies of raw messages.
const rawSlab = 64

// bytesType is the type word of an interface holding a []byte.
var bytesType = eface.Type([]byte(nil))

// boxRaw returns raw in an interface, as any(raw) would, without its
// allocation of a slice header per message: an interface holding a
// []byte points at a header that nothing writes again, so headers are
// allocated rawSlab at a time and each is handed out once. (A body kept
// keeps its slab alive: rawSlab headers, and the read buffers they point
// into, which the messages of one slab mostly share anyway.)
func (c *conn) boxRaw(raw []byte) any {
	if len(raw) >= 64<<10 {
		// The allocation does not matter at this size, and a large body
		// (perhaps in a pooled buffer) keeps nothing else alive.
		return raw
	}
	if len(c.slab) == 0 {
		c.slab = make([][]byte, rawSlab)
	}
	h := &c.slab[0]
	c.slab = c.slab[1:]
	*h = raw
	return eface.Make(bytesType, unsafe.Pointer(h))
}

// flush hands the batch to the mailbox, which may block (backpressure),
// then advances the delivered watermark and asks the writer for an ACK.
func (c *conn) flush() error {
	if len(c.batch) == 0 {
		return nil
	}
	n, err := c.cfg.Inbox.Push(c.stopR, c.id, c.batch)
	if n > 0 {
		c.s.delivered.Store(uint64(c.batch[n-1].ID))
		signal(c.ackDue)
	}
	clear(c.batch)
	c.batch = c.batch[:0]
	if err != nil {
		return fmt.Errorf("mailbox: %w", err)
	}
	return nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *conn) writeLoop() {
	defer c.wgW.Done()
	nc := c.nc
	// RESUME is the first frame this side writes; a direct write from a
	// Send waits for it (sentRes), however early the remote's RESUME is.
	c.wmu.Lock()
	nc.SetWriteDeadline(c.hs.Deadline)
	if _, err := nc.Write(wire.AppendResume(make([]byte, 0, 64), c.version, c.resume)); err != nil {
		c.wdead = true
		c.wmu.Unlock()
		c.fail(err)
		return
	}
	nc.SetWriteDeadline(time.Time{})
	c.sentRes = true
	c.wready = c.gotRes
	c.wctrl = make([]byte, 0, 512)
	c.wbufs = make([][]byte, 0, 16)
	c.lastAck = c.resume.Delivered
	c.lastProg = wire.Progress{Seq: c.resume.Partial, Chunks: c.resume.Chunks}
	c.wmu.Unlock()
	tick := time.NewTicker(c.cfg.Heartbeat)
	defer tick.Stop()
	pingDue := false
	for {
		select {
		case <-c.stopW:
			c.wmu.Lock()
			c.writeFinalLocked()
			c.wmu.Unlock()
			return
		default:
		}
		c.wmu.Lock()
		wrote, err := c.flushLocked(pingDue)
		c.wmu.Unlock()
		pingDue = false
		if err != nil {
			c.fail(err)
			return
		}
		if wrote {
			continue
		}
		resumedCh := c.resumed
		if c.isReady() {
			resumedCh = nil
		}
		select {
		case <-c.s.out.kick:
		case <-c.ackDue:
			// Only an ACK to send: give the application, which has just
			// been handed the message, one chance to answer first; its
			// direct write then carries the ACK in the same packet.
			if c.s.out.idle() {
				runtime.Gosched()
			}
		case <-c.ctrlDue:
		case <-resumedCh:
		case <-tick.C:
			// An idle connection pings every interval; one that wrote
			// something else since the last tick needs no ping.
			pingDue = !c.activity.Swap(false)
		case <-c.stopW:
		case <-c.done:
			return
		}
	}
}

func (c *conn) isReady() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wready
}

// flushLocked writes what is pending: control frames (ACK, PROGRESS,
// PONGs, and a PING when ping is set), then, once the remote resumed, the
// outbound log. It reports whether it wrote anything. Called with wmu
// held.
func (c *conn) flushLocked(ping bool) (bool, error) {
	if c.wdead || !c.sentRes {
		return false, nil
	}
	ctrl := c.wctrl[:0]
	if d := c.s.delivered.Load(); d > c.lastAck {
		ctrl = wire.AppendAck(ctrl, c.version, d)
		c.lastAck = d
	}
	if p := c.s.getProgress(); p.Seq != 0 && p != c.lastProg {
		ctrl = wire.AppendProgress(ctrl, c.version, p)
		c.lastProg = p
	}
	c.mu.Lock()
	for _, n := range c.pongs {
		ctrl = wire.AppendPing(ctrl, c.version, true, n)
	}
	c.pongs = c.pongs[:0]
	c.mu.Unlock()
	onlyPing := ping && len(ctrl) == 0
	if ping {
		ctrl = wire.AppendPing(ctrl, c.version, false, uint64(time.Now().UnixNano()))
	}
	bufs := c.wbufs[:0]
	if len(ctrl) > 0 {
		bufs = append(bufs, ctrl)
	}
	took := false
	if c.wready {
		bufs, took = c.s.out.take(bufs, c.cfg.WriteBatch)
	}
	c.wctrl = ctrl[:0]
	if len(bufs) == 0 {
		return false, nil
	}
	_, err := writeBuffers(c.nc, bufs, &c.wnb)
	clear(bufs)
	c.wbufs = bufs[:0]
	if err != nil {
		c.wdead = true
		if took {
			c.s.out.abandon()
		}
		return false, err
	}
	if took {
		c.s.out.wrote()
	}
	if took || !onlyPing {
		c.activity.Store(true)
	}
	c.lastW.Store(time.Now().UnixNano())
	return true, nil
}

// writeFinalLocked writes the last frames of a connection that is being
// shut down: a final ACK and PROGRESS, PONGs, and the GOODBYE if one is
// set. Called with wmu held.
func (c *conn) writeFinalLocked() {
	if c.wdead || !c.sentRes {
		return
	}
	ctrl := c.wctrl[:0]
	if d := c.s.delivered.Load(); d > c.lastAck {
		ctrl = wire.AppendAck(ctrl, c.version, d)
		c.lastAck = d
	}
	c.mu.Lock()
	for _, n := range c.pongs {
		ctrl = wire.AppendPing(ctrl, c.version, true, n)
	}
	c.pongs = c.pongs[:0]
	bye := c.bye
	c.mu.Unlock()
	if bye != nil {
		ctrl = wire.AppendClose(ctrl, c.version, wire.TypeGoodbye, *bye)
	}
	if len(ctrl) > 0 {
		c.nc.Write(ctrl)
	}
	c.wdead = true
}

// directAfter is how long a connection must have been quiet for a Send to
// write its message itself. A sender that sends again sooner is streaming:
// its messages go to the writer goroutine, which sends them in batches.
// It is about the time of one write on loopback: a sender slower than
// that gains nothing from batching, and a request/reply exchange, whose
// round trip is 15 to 25µs here, must not fall under it (with 20µs, half
// the requests of an echo went through the writer: p50 22µs against 18µs).
const directAfter = 5 * time.Microsecond

// writeNow is called by a Send that appended to an idle log. When the
// connection has been quiet for directAfter and no write is in progress,
// it writes the message (with any pending ACK) on the caller's goroutine,
// saving the hand-off to the writer: a request, or a reply to one, leaves
// at once. Otherwise it leaves the message to the writer.
func (c *conn) writeNow() bool {
	if time.Now().UnixNano()-c.lastW.Load() < int64(directAfter) || !c.wmu.TryLock() {
		return false
	}
	if !c.wready {
		c.wmu.Unlock()
		return false
	}
	_, err := c.flushLocked(false)
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
	}
	return true
}

// BuffersWriter is implemented by connections that write several buffers
// better in one call than in one Write each, as secure.Conn does (it
// encrypts them into as few records as possible). The writer uses it
// instead of net.Buffers, whose vectored write only TCP and Unix sockets
// get.
type BuffersWriter interface {
	WriteBuffers(bufs [][]byte) (int64, error)
}

// writeBuffers writes bufs to nc; nb is scratch space owned by the caller.
func writeBuffers(nc net.Conn, bufs [][]byte, nb *net.Buffers) (int64, error) {
	if bw, ok := nc.(BuffersWriter); ok {
		return bw.WriteBuffers(bufs)
	}
	*nb = bufs
	n, err := nb.WriteTo(nc)
	*nb = nil
	return n, err
}
