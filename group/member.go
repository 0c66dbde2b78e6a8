package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/codec"
)

// Errors.
var (
	// ErrClosed: the Member is closed.
	ErrClosed = errors.New("group: member closed")
	// ErrInvalidService: the service names no level, or more than one.
	ErrInvalidService = errors.New("group: invalid service")
	// ErrNoGroup: a multicast names no group, or a group name is empty.
	ErrNoGroup = errors.New("group: no group named")
)

// Config configures a Member.
type Config struct {
	// Seeds are addresses ("host:port", "unix:/path") the Member connects
	// to when it starts, retrying until it reaches them or closes.
	Seeds []string
	// Addrs are the addresses this node listens on, as others can dial
	// them: they are told to the other members, which connect to each
	// other through them (every member of a configuration must reach
	// every other).
	Addrs []string
	// Tick is how often stability that no message carried is announced.
	Tick time.Duration
	// Window bounds this node's multicasts not yet ordered or stable:
	// Multicast waits for room beyond it.
	Window int
	// CloseTimeout bounds how long Close waits for its goodbye to leave.
	CloseTimeout time.Duration
	// Logger gets the Member's warnings; nil discards them.
	Logger *slog.Logger

	hooks *hooks // tests: see what the core does, in its order
}

// hooks let tests record a history: received when a multicast reaches
// the core, delivered for each delivery in delivery order (unseen: a
// multicast that ends a configuration, whose place in the total order no
// member that goes on with this one saw). Both run under the Member's
// lock.
type hooks struct {
	sent      func(d *dataMsg)
	received  func(d *dataMsg)
	delivered func(d Delivery, unseen bool)
}

// DefaultConfig returns the defaults: a tick of 20ms, a window of 4096
// messages, a close timeout of 2s.
func DefaultConfig() Config {
	return Config{Tick: 20 * time.Millisecond, Window: 4096, CloseTimeout: 2 * time.Second}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Tick <= 0 {
		return fmt.Errorf("group: tick %v must be positive", c.Tick)
	}
	if c.Window <= 0 {
		return fmt.Errorf("group: window %d must be positive", c.Window)
	}
	if c.CloseTimeout < 0 {
		return fmt.Errorf("group: close timeout %v is negative", c.CloseTimeout)
	}
	return nil
}

// Option changes a Config.
type Option func(*Config) error

// WithSeeds sets addresses to connect to at start.
func WithSeeds(addrs ...string) Option {
	return func(c *Config) error { c.Seeds = append(c.Seeds, addrs...); return nil }
}

// WithAddrs sets the addresses this node can be dialed at.
func WithAddrs(addrs ...string) Option {
	return func(c *Config) error { c.Addrs = append(c.Addrs, addrs...); return nil }
}

// WithTick sets how often stability is announced.
func WithTick(d time.Duration) Option { return func(c *Config) error { c.Tick = d; return nil } }

// WithWindow bounds the multicasts in flight.
func WithWindow(n int) Option { return func(c *Config) error { c.Window = n; return nil } }

// WithCloseTimeout bounds how long Close waits for its goodbye to leave.
func WithCloseTimeout(d time.Duration) Option {
	return func(c *Config) error { c.CloseTimeout = d; return nil }
}

// TraceKind is the kind of a traced event.
type TraceKind uint8

// Traced events.
const (
	// TraceSend: the application multicast the message (Body not set).
	TraceSend TraceKind = iota + 1
	// TraceReceive: the message reached this node's group layer (Body
	// not set).
	TraceReceive
	// TraceDeliver: the message or membership message was delivered.
	TraceDeliver
)

// WithTrace calls fn for each multicast sent, received and delivered,
// and each membership message, in the order they happen at this node.
// fn runs under the Member's lock: it must be quick and must not call
// the Member. It is for tests and debugging.
func WithTrace(fn func(kind TraceKind, d Delivery)) Option {
	return func(c *Config) error {
		meta := func(d *dataMsg) *Message {
			return &Message{Sender: d.Sender, Serial: d.Serial, Groups: d.Groups, Service: d.Svc, MsgType: d.MsgType}
		}
		c.hooks = &hooks{
			sent:      func(d *dataMsg) { fn(TraceSend, meta(d)) },
			received:  func(d *dataMsg) { fn(TraceReceive, meta(d)) },
			delivered: func(d Delivery, _ bool) { fn(TraceDeliver, d) },
		}
		return nil
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Config) error { c.Logger = l; return nil } }

// outItem is a send of the core, waiting for the writer.
type outItem struct {
	to  []slc.PeerID
	msg any
	tok uint64
}

type ackRec struct {
	id  slc.MsgID
	tok uint64
}

// ackState maps a peer's slc acknowledgements to the core's send tokens.
type ackState struct {
	recs  []ackRec
	upTo  slc.MsgID
	known bool
}

// Member is a node's group layer on a Communicator: it joins and leaves
// groups, multicasts to them, and receives their messages and membership
// messages. docs/groups.md describes the protocol.
//
// All methods are safe for concurrent use. Deliveries come in one order,
// whichever goroutine calls Receive. The Member takes the communicator's
// messages of its own types (named "slc.group.*"); everything else stays
// for the communicator's Receive. Create it before connecting to other
// members, so that none of their messages lands in the mailbox. It
// follows the sessions through the events of the communicator's actor
// system: give each communicator with a Member its own system (the
// default).
type Member struct {
	c    *slc.Communicator
	cfg  Config
	log  *slog.Logger
	name slc.PeerID

	mu       sync.Mutex
	core     *core
	serial   uint64
	inbox    []Delivery
	out      []outItem
	acks     map[slc.PeerID]*ackState
	events   []any // to publish once the lock is released
	progress chan struct{}
	dialing  map[string]bool
	closed   bool
	views    map[string]*Membership
	cfgCh    chan struct{} // closed and replaced when a configuration is installed

	avail      chan struct{} // a delivery may wait
	outAvail   chan struct{} // a send waits
	shutdownCh chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	writerDone chan struct{}

	unhandle func()
	sub      *eventstream.Subscription

	closeOnce sync.Once
}

// New starts the group layer on c. The Member does not own c: close the
// Member before c.
func New(c *slc.Communicator, opts ...Option) (*Member, error) {
	cfg := DefaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Member{c: c, cfg: cfg, log: log, name: c.Name(), acks: map[slc.PeerID]*ackState{},
		progress: make(chan struct{}), cfgCh: make(chan struct{}), dialing: map[string]bool{}, views: map[string]*Membership{},
		avail: make(chan struct{}, 1), outAvail: make(chan struct{}, 1), shutdownCh: make(chan struct{}),
		ctx: ctx, cancel: cancel, writerDone: make(chan struct{})}
	inst := rand.Uint64() | 1
	// Configuration counters start from the clock so that a restarted
	// node does not reuse view IDs.
	m.core = newCore(m.name, inst, uint64(time.Now().UnixNano()), m.env())
	m.core.addrs = slices.Clone(cfg.Addrs)

	m.unhandle = c.Handle(m.onWire, wireTypes...)
	m.sub = c.ActorSystem().EventStream.Subscribe(m.onEvent)

	m.wg.Add(2)
	go m.writer()
	go m.ticker()
	m.lock()
	for _, p := range c.Peers() {
		m.core.sessionUp(p)
	}
	m.unlock()
	for _, s := range cfg.Seeds {
		m.dial(s, 0)
	}
	return m, nil
}

// Name returns the node's name.
func (m *Member) Name() slc.PeerID { return m.name }

func (m *Member) lock() { m.mu.Lock() }

// unlock releases the lock and publishes the events collected under it.
func (m *Member) unlock() {
	ev := m.events
	m.events = nil
	m.mu.Unlock()
	for _, e := range ev {
		m.c.ActorSystem().EventStream.Publish(e)
	}
}

func (m *Member) env() coreEnv {
	return coreEnv{
		send: func(to []slc.PeerID, msg any, tok uint64) {
			m.out = append(m.out, outItem{to: slices.Clone(to), msg: msg, tok: tok})
			signal(m.outAvail)
		},
		deliverData: func(d *dataMsg, unseen bool) {
			msg := m.toMessage(d)
			if h := m.cfg.hooks; h != nil {
				h.delivered(msg, unseen)
			}
			m.inbox = append(m.inbox, msg)
			signal(m.avail)
		},
		deliverView: func(v *Membership) {
			if v.Transitional {
				// keep the regular view
			} else if len(v.Members) == 0 {
				delete(m.views, v.Group)
			} else {
				m.views[v.Group] = v
			}
			if h := m.cfg.hooks; h != nil {
				h.delivered(v, false)
			}
			m.inbox = append(m.inbox, v)
			m.events = append(m.events, v)
			signal(m.avail)
		},
		received: func(d *dataMsg) {
			if h := m.cfg.hooks; h != nil && d.Kind == kindData {
				h.received(d)
			}
		},
		processed: func(*dataMsg) {},
		progress: func() {
			close(m.progress)
			m.progress = make(chan struct{})
		},
		installed: func(cf *Configuration) {
			m.events = append(m.events, cf)
			close(m.cfgCh)
			m.cfgCh = make(chan struct{})
		},
		hello: m.onHello,
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// toMessage decodes a delivered multicast.
func (m *Member) toMessage(d *dataMsg) *Message {
	msg := &Message{Sender: d.Sender, Serial: d.Serial, Groups: slices.Clone(d.Groups), Service: d.Svc,
		MsgType: d.MsgType, Type: d.Type, Raw: d.Body}
	if d.Ser == "raw" {
		msg.Body = d.Body
		return msg
	}
	ser, _ := codec.SerializerByID(codec.Msgpack)
	msg.Body, msg.Err = codec.Decode(d.Type, ser, d.Body)
	return msg
}

// onWire takes a message of the group layer from a peer. It runs on the
// peer's connection goroutine.
func (m *Member) onWire(msg slc.Message) {
	if msg.Err != nil {
		m.log.Warn("group: undecodable message", "from", msg.From, "type", msg.Type, "err", msg.Err)
		return
	}
	v := toPointer(msg.Body)
	if err := validate(v); err != nil {
		m.log.Warn("group: malformed message", "from", msg.From, "type", msg.Type, "err", err)
		return
	}
	m.lock()
	if !m.closed {
		m.core.onMessage(msg.From, v)
	}
	m.unlock()
}

// onEvent follows the communicator's sessions and acknowledgements.
func (m *Member) onEvent(evt any) {
	switch e := evt.(type) {
	case *actors.PeerConnected:
		m.lock()
		if !m.closed {
			m.core.sessionUp(e.Peer)
		}
		m.unlock()
	case *actors.PeerDisconnected:
		if !e.Final {
			return
		}
		m.gone(e.Peer, whyClosed)
	case *actors.PeerLost:
		m.gone(e.Peer, whyLost)
	case *actors.MessagesAcknowledged:
		m.lock()
		a := m.ackFor(e.Peer)
		if e.UpTo > a.upTo {
			a.upTo = e.UpTo
		}
		a.known = true
		m.flushAcks(e.Peer, a)
		m.unlock()
	}
}

func (m *Member) gone(p slc.PeerID, why uint8) {
	m.lock()
	delete(m.acks, p)
	if !m.closed {
		m.core.sessionGone(p, why)
	}
	m.unlock()
}

func (m *Member) ackFor(p slc.PeerID) *ackState {
	a := m.acks[p]
	if a == nil {
		a = &ackState{}
		m.acks[p] = a
	}
	return a
}

// flushAcks forgets the sends that p acknowledged. (The protocol has
// acknowledgements of its own; these tell Close when its goodbye left.)
func (m *Member) flushAcks(p slc.PeerID, a *ackState) {
	i := 0
	for i < len(a.recs) && a.known && a.recs[i].id <= a.upTo {
		i++
	}
	if i == 0 {
		return
	}
	a.recs = a.recs[i:]
}

// writer sends the core's messages in order, outside the lock (a send
// may wait for room in a peer's buffer).
func (m *Member) writer() {
	defer m.wg.Done()
	defer close(m.writerDone)
	for {
		m.lock()
		batch := m.out
		m.out = nil
		closed := m.closed
		m.unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			select {
			case <-m.outAvail:
				continue
			case <-m.shutdownCh:
				continue
			}
		}
		for _, it := range batch {
			if m.ctx.Err() != nil {
				return
			}
			id, err := m.c.Send(m.ctx, it.msg, it.to...)
			failed := map[slc.PeerID]bool{}
			if err != nil {
				var se *slc.SendError
				if !errors.As(err, &se) {
					// No target took it; their sessions are ending and
					// the events will tell the core.
					continue
				}
				for _, f := range se.Failed {
					failed[f.Peer] = true
				}
			}
			m.lock()
			for _, p := range it.to {
				if failed[p] {
					continue
				}
				a := m.ackFor(p)
				a.recs = append(a.recs, ackRec{id: id, tok: it.tok})
				m.flushAcks(p, a)
			}
			m.unlock()
		}
	}
}

func (m *Member) ticker() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.lock()
			if !m.closed {
				m.core.tick()
			}
			m.unlock()
		case <-m.shutdownCh:
			return
		}
	}
}

// onHello connects to the nodes that a peer reaches and this node does
// not: every member of a configuration must reach every other. Of two
// nodes, the one with the smaller name dials, unless it has no address
// to be dialed at.
func (m *Member) onHello(from slc.PeerID, h *helloMsg) {
	if m.closed {
		return
	}
	peers := m.c.Peers()
	for _, r := range h.Reach {
		if r.Name == m.name || slices.Contains(peers, r.Name) || len(r.Addrs) == 0 {
			continue
		}
		if m.name > r.Name && len(m.cfg.Addrs) > 0 {
			continue
		}
		m.dial(r.Addrs[0], 10*time.Second)
	}
}

// dial connects to addr in the background; timeout 0 retries until the
// Member closes.
func (m *Member) dial(addr string, timeout time.Duration) {
	if m.dialing[addr] {
		return
	}
	m.dialing[addr] = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			delete(m.dialing, addr)
			m.mu.Unlock()
		}()
		for {
			ctx, cancel := m.ctx, context.CancelFunc(func() {})
			if timeout > 0 {
				ctx, cancel = context.WithTimeout(m.ctx, timeout)
			}
			_, err := m.c.Connect(ctx, addr)
			cancel()
			if err == nil || timeout > 0 || m.ctx.Err() != nil {
				if err != nil && m.ctx.Err() == nil {
					m.log.Warn("group: cannot reach a member", "addr", addr, "err", err)
				}
				return
			}
			select {
			case <-time.After(200 * time.Millisecond):
			case <-m.ctx.Done():
				return
			}
		}
	}()
}

// --- the API ---

// Join joins group. The Member's membership message for the group tells
// when the join took effect. Joining a group it is in does nothing.
func (m *Member) Join(ctx context.Context, group string) error {
	return m.membership(ctx, kindJoin, group)
}

// Leave leaves group. A membership message with Reason Leave and no
// Members tells when it took effect.
func (m *Member) Leave(ctx context.Context, group string) error {
	return m.membership(ctx, kindLeave, group)
}

func (m *Member) membership(ctx context.Context, kind uint8, group string) error {
	if group == "" {
		return ErrNoGroup
	}
	m.lock()
	defer m.unlock()
	if m.closed {
		return ErrClosed
	}
	m.serial++
	m.core.multicast(&dataMsg{Sender: m.name, Inst: m.core.inst, Serial: m.serial, Kind: kind, Svc: Agreed,
		Groups: []string{group}})
	return nil
}

// Multicast sends v to group with service svc and the application's
// message type msgType; v is serialized with msgpack ([]byte goes as it
// is). It returns the message's serial once the message is on its way,
// waiting while the window of messages in flight is full.
func (m *Member) Multicast(ctx context.Context, svc Service, group string, msgType int16, v any) (uint64, error) {
	return m.MulticastGroups(ctx, svc, []string{group}, msgType, v)
}

// MulticastGroups sends v to several groups at once: each member of any
// of them gets it once, and the ordering guarantees of svc hold across
// the groups.
func (m *Member) MulticastGroups(ctx context.Context, svc Service, groups []string, msgType int16, v any) (uint64, error) {
	if !svc.Valid() {
		return 0, ErrInvalidService
	}
	if len(groups) == 0 || slices.Contains(groups, "") {
		return 0, ErrNoGroup
	}
	groups = slices.Clone(groups)
	slices.Sort(groups)
	groups = slices.Compact(groups)
	d := &dataMsg{Sender: m.name, Svc: svc, Groups: groups, MsgType: msgType}
	if b, ok := v.([]byte); ok {
		d.Ser, d.Body = "raw", slices.Clone(b)
	} else {
		d.Type, _ = codec.TypeName(v)
		ser, _ := codec.SerializerByID(codec.Msgpack)
		b, err := ser.Append(nil, v)
		if err != nil {
			return 0, fmt.Errorf("group: serialize: %w", err)
		}
		d.Body = b
	}
	m.lock()
	for !m.closed && m.core.outstanding() >= m.cfg.Window {
		ch := m.progress
		m.unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-m.shutdownCh:
			return 0, ErrClosed
		}
		m.lock()
	}
	defer m.unlock()
	if m.closed {
		return 0, ErrClosed
	}
	m.serial++
	d.Inst, d.Serial = m.core.inst, m.serial
	if h := m.cfg.hooks; h != nil {
		h.sent(d)
	}
	m.core.multicast(d)
	return d.Serial, nil
}

// Receive returns the next delivery, a *Message or a *Membership,
// waiting until one comes, ctx ends or the Member closes (ErrClosed).
func (m *Member) Receive(ctx context.Context) (Delivery, error) {
	for {
		if d, ok := m.TryReceive(); ok {
			return d, nil
		}
		m.lock()
		closed := m.closed
		m.unlock()
		if closed {
			return nil, ErrClosed
		}
		select {
		case <-m.avail:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.shutdownCh:
		}
	}
}

// TryReceive returns the next delivery if one waits.
func (m *Member) TryReceive() (Delivery, bool) {
	m.lock()
	defer m.unlock()
	if len(m.inbox) == 0 {
		return nil, false
	}
	d := m.inbox[0]
	m.inbox[0] = nil
	m.inbox = m.inbox[1:]
	if len(m.inbox) > 0 {
		signal(m.avail)
	}
	return d, true
}

// Poll returns how many deliveries wait, as Spread's SP_poll.
func (m *Member) Poll() int {
	m.lock()
	defer m.unlock()
	return len(m.inbox)
}

// Members returns the members of group in the last regular view this
// node delivered, or nil when it is not in the group.
func (m *Member) Members(group string) []slc.PeerID {
	m.lock()
	defer m.unlock()
	if v := m.views[group]; v != nil {
		return slices.Clone(v.Members)
	}
	return nil
}

// Configuration returns the configuration installed at this node.
func (m *Member) Configuration() Configuration {
	m.lock()
	defer m.unlock()
	cf := m.core.cfg
	return Configuration{Coordinator: cf.coord, Config: cf.id.N, Members: slices.Clone(cf.names)}
}

// WaitConfiguration waits until the configuration installed at this node
// has at least n nodes, and returns it.
func (m *Member) WaitConfiguration(ctx context.Context, n int) (Configuration, error) {
	for {
		m.lock()
		cf := m.core.cfg
		ch, closed := m.cfgCh, m.closed
		m.unlock()
		if len(cf.names) >= n {
			return Configuration{Coordinator: cf.coord, Config: cf.id.N, Members: slices.Clone(cf.names)}, nil
		}
		if closed {
			return Configuration{}, ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Configuration{}, ctx.Err()
		case <-m.shutdownCh:
		}
	}
}

// Close leaves every group: it tells the other members that this node
// is closing, so that they form a configuration without it (Reason
// Disconnect), waits up to CloseTimeout for that to be sent, and stops
// the Member's goroutines. It does not close the communicator. It is
// idempotent.
func (m *Member) Close() error {
	m.closeOnce.Do(func() {
		m.lock()
		m.core.close()
		m.closed = true
		m.unlock()
		close(m.shutdownCh)
		t := time.NewTimer(m.cfg.CloseTimeout)
		select {
		case <-m.writerDone:
		case <-t.C:
		}
		t.Stop()
		if m.cfg.CloseTimeout > 0 {
			// Wait until the goodbye is acknowledged, within the timeout.
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CloseTimeout)
			m.waitAcked(ctx)
			cancel()
		}
		m.cancel()
		m.unhandle()
		m.c.ActorSystem().EventStream.Unsubscribe(m.sub)
		m.wg.Wait()
	})
	return nil
}

// waitAcked waits until every peer acknowledged what was sent to it.
func (m *Member) waitAcked(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		m.mu.Lock()
		pending := false
		for p, a := range m.acks {
			if len(a.recs) > 0 && slices.Contains(m.c.Peers(), p) {
				pending = true
			}
		}
		m.mu.Unlock()
		if !pending {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
