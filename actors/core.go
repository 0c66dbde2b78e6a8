package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
)

// maxEnded bounds how many ended sessions are remembered for
// IsAcknowledged after their peers are gone.
const maxEnded = 1024

// table is an immutable snapshot of the sessions, replaced by the facade
// whenever a session is named, ends or is removed. The data path reads it
// without locks.
type table struct {
	live  map[peer.ID]*peer.Session
	list  []*peer.Session // live, in name order
	ids   []peer.ID       // list's names
	ended map[peer.ID]*peer.Session
}

// maxScan is the number of live peers up to which a lookup compares
// names instead of hashing one: a Send names its peers.
const maxScan = 4

// liveSession returns the live session of id, or nil.
func (t *table) liveSession(id peer.ID) *peer.Session {
	if len(t.ids) <= maxScan {
		for i, x := range t.ids {
			if x == id {
				return t.list[i]
			}
		}
		return nil
	}
	return t.live[id]
}

var emptyTable = &table{live: map[peer.ID]*peer.Session{}, ended: map[peer.ID]*peer.Session{}}

// Core is the data path shared by the facade actor and the blocking
// Communicator: sending, acknowledgement queries and the mailbox. Its
// methods are safe for concurrent use and never pass through an actor's
// mailbox, so a send costs no actor hop.
type Core struct {
	cfg    *peer.Config
	ser    codec.Serializer
	serID  codec.ID
	inbox  *mailbox.Inbox
	tab    atomic.Pointer[table]
	nextID atomic.Uint64
	closed atomic.Bool
	wg     sync.WaitGroup // goroutines started for actor-level commands

	stop     func() error
	stopOnce sync.Once
	stopErr  error
}

func newCore(cfg *peer.Config, inbox *mailbox.Inbox) *Core {
	c := &Core{cfg: cfg, inbox: inbox, serID: cfg.Serializer}
	c.ser, _ = codec.SerializerByID(cfg.Serializer)
	c.tab.Store(emptyTable)
	return c
}

// Closed reports whether Stop was called.
func (c *Core) Closed() bool { return c.closed.Load() }

// Inbox returns the mailbox.
func (c *Core) Inbox() *mailbox.Inbox { return c.inbox }

// Config returns the node's peer settings.
func (c *Core) Config() *peer.Config { return c.cfg }

// Session returns the live session with id, if any.
func (c *Core) Session(id peer.ID) *peer.Session { return c.tab.Load().live[id] }

// PeerIDs returns the names of the live peers, sorted.
func (c *Core) PeerIDs() []peer.ID {
	t := c.tab.Load()
	ids := make([]peer.ID, len(t.list))
	for i, s := range t.list {
		ids[i] = s.ID()
	}
	return ids
}

// lookup resolves target names to live sessions, appending to ss.
func (c *Core) lookup(ss []*peer.Session, to []peer.ID) ([]*peer.Session, error) {
	if c.closed.Load() {
		return ss, peer.ErrClosed
	}
	t := c.tab.Load()
	if len(to) == 0 {
		if len(t.list) == 0 {
			return ss, peer.ErrNoPeers
		}
		return append(ss, t.list...), nil
	}
	for _, id := range to {
		s := t.liveSession(id)
		if s == nil {
			if e := t.ended[id]; e != nil {
				return ss, &peer.PeerError{Peer: id, Op: "send", Err: e.Err()}
			}
			return ss, &peer.PeerError{Peer: id, Op: "send", Err: peer.ErrUnknownPeer}
		}
		if len(to) > 1 && contains(ss, s) {
			continue
		}
		ss = append(ss, s)
	}
	return ss, nil
}

func contains(ss []*peer.Session, s *peer.Session) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

type encoder struct {
	buf  []byte
	last int // the size of the last body encoded
}

var encPool = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 1024)} }}

// Send serializes v and queues it for the named peers (none = every live
// peer). See peer.Send for the blocking and partial-failure rules.
func (c *Core) Send(ctx context.Context, v any, to ...peer.ID) (peer.MsgID, error) {
	if c.ser == nil {
		return 0, fmt.Errorf("slc: no serializer")
	}
	typ, _ := codec.TypeName(v)
	e := encPool.Get().(*encoder)
	defer encPool.Put(e)
	if e.last > giveMin && cap(e.buf) < e.last {
		// The last body went to an outbound log: encode into a pooled
		// buffer of its size, one that log may have given back.
		e.buf = wire.GetLarge(e.last + e.last/8)
	}
	body, err := c.ser.Append(e.buf[:0], v)
	if err != nil {
		return 0, fmt.Errorf("slc: serialize %T: %w", v, err)
	}
	e.last = len(body)
	// A large body is given to the log (one peer, one frame): it is not
	// copied there, and this encoder takes another buffer next time.
	m := &peer.Outgoing{Serializer: c.serID, Type: typ, Body: body, Give: len(body) > giveMin}
	id, err := c.send(ctx, m, to)
	if m.Taken {
		e.buf = nil
	} else {
		e.buf = body[:0]
	}
	return id, err
}

// giveMin is the body size above which Send gives the encoded body to
// the outbound log instead of having it copied.
const giveMin = 64 << 10

// SendRaw queues b as it is.
func (c *Core) SendRaw(ctx context.Context, b []byte, to ...peer.ID) (peer.MsgID, error) {
	return c.send(ctx, &peer.Outgoing{Serializer: codec.Raw, Body: b}, to)
}

func (c *Core) send(ctx context.Context, m *peer.Outgoing, to []peer.ID) (peer.MsgID, error) {
	var arr [4]*peer.Session
	ss, err := c.lookup(arr[:0], to)
	if err != nil {
		return 0, err
	}
	return peer.Send(ctx, ss, &c.nextID, m)
}

// sessionsFor returns the sessions (live or ended) of the named peers.
func (c *Core) sessionsFor(to []peer.ID) ([]*peer.Session, error) {
	t := c.tab.Load()
	ss := make([]*peer.Session, 0, len(to))
	for _, id := range to {
		s := t.liveSession(id)
		if s == nil {
			s = t.ended[id]
		}
		if s == nil {
			return nil, &peer.PeerError{Peer: id, Op: "acknowledgement", Err: peer.ErrUnknownPeer}
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// IsAcknowledged reports whether id is acknowledged: by every named peer,
// or, with no names, by every peer it was sent to (and by at least one).
func (c *Core) IsAcknowledged(id peer.MsgID, to ...peer.ID) bool {
	if len(to) > 0 {
		ss, err := c.sessionsFor(to)
		if err != nil {
			return false
		}
		for _, s := range ss {
			if acked, _, _ := s.AckStatus(id); !acked {
				return false
			}
		}
		return true
	}
	t := c.tab.Load()
	some := false
	for _, m := range []map[peer.ID]*peer.Session{t.live, t.ended} {
		for _, s := range m {
			acked, pending, failed := s.AckStatus(id)
			if pending || failed {
				return false
			}
			some = some || acked
		}
	}
	return some
}

// WaitAcknowledged blocks until IsAcknowledged(id, to...) would be true,
// a target session ends (the error names it and wraps ErrPeerLost or
// ErrDisconnected), or ctx ends.
func (c *Core) WaitAcknowledged(ctx context.Context, id peer.MsgID, to ...peer.ID) error {
	var ss []*peer.Session
	if len(to) > 0 {
		var err error
		if ss, err = c.sessionsFor(to); err != nil {
			return err
		}
		for _, s := range ss {
			if acked, pending, _ := s.AckStatus(id); !acked && !pending && peer.MsgID(s.Stats().LastSent) < id {
				return &peer.PeerError{Peer: s.ID(), Op: "wait for acknowledgement", Err: fmt.Errorf("message %d was not sent to it", id)}
			}
		}
	} else {
		t := c.tab.Load()
		for _, m := range []map[peer.ID]*peer.Session{t.live, t.ended} {
			for _, s := range m {
				if _, pending, failed := s.AckStatus(id); pending || failed {
					ss = append(ss, s)
				}
			}
		}
		if len(ss) == 0 && !c.IsAcknowledged(id) {
			return fmt.Errorf("slc: message %d is not known to any peer", id)
		}
	}
	for _, s := range ss {
		if err := s.WaitAcked(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// Forward re-sends, in order, the messages waiting in the mailbox from
// from to to, without decoding them again. A message that cannot be sent
// stays in the mailbox; the count of forwarded ones is returned.
func (c *Core) Forward(ctx context.Context, from, to peer.ID) (int, error) {
	if from == to {
		return 0, fmt.Errorf("slc: forward from %s to itself", from)
	}
	if c.Session(to) == nil {
		if _, err := c.lookup(nil, []peer.ID{to}); err != nil {
			return 0, err
		}
	}
	return c.inbox.Take(from, func(m peer.Message) error {
		_, err := c.send(ctx, &peer.Outgoing{Serializer: m.Serializer, Type: m.Type, Body: m.Raw}, []peer.ID{to})
		return err
	})
}

// Flush waits until everything queued for the named peers (none = every
// live peer) is acknowledged, or ctx ends.
func (c *Core) Flush(ctx context.Context, to ...peer.ID) error {
	t := c.tab.Load()
	ss := t.list
	if len(to) > 0 {
		ss = nil
		for _, id := range to {
			s := t.live[id]
			if s == nil {
				// A session that ended already (the peer said goodbye, or
				// was lost) has nothing more to flush; it reports what it
				// could not deliver.
				if e := t.ended[id]; e != nil {
					if lost := e.Undelivered(); len(lost) > 0 {
						return &peer.PeerError{Peer: id, Op: "disconnect", Err: fmt.Errorf("%d messages were not delivered: %w", len(lost), e.Err())}
					}
					continue
				}
				return &peer.PeerError{Peer: id, Op: "disconnect", Err: peer.ErrUnknownPeer}
			}
			ss = append(ss, s)
		}
	}
	var errs []error
	for _, s := range ss {
		if err := s.WaitFlushed(ctx); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// publishTable installs a new snapshot built from the facade's state.
func (c *Core) publishTable(live map[peer.ID]*peer.Session, ended map[peer.ID]*peer.Session) {
	t := &table{live: make(map[peer.ID]*peer.Session, len(live)), ended: make(map[peer.ID]*peer.Session, len(ended))}
	for id, s := range live {
		t.live[id] = s
		t.ids = append(t.ids, id)
	}
	slices.Sort(t.ids)
	for _, id := range t.ids {
		t.list = append(t.list, live[id])
	}
	for id, s := range ended {
		t.ended[id] = s
	}
	c.tab.Store(t)
}
