package rsb

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slc-go/slc/bus"
)

// Bridge joins an slc bus (a *bus.Participant) and an RSB socket bus (an
// Endpoint): events published on the slc bus by other participants go to
// the RSB bus as notifications, and notifications from the RSB bus are
// published on the slc bus by the bridge's participant. Create one with
// NewBridge or JoinBus. Its methods are safe for concurrent use.
type Bridge struct {
	p    *bus.Participant
	ep   Endpoint
	owns bool
	cfg  bridgeConfig
	inf  *bus.Informer
	lis  *bus.Listener

	ids idMap
	// pubMu is held while an RSB event is published on slc and its ID
	// pair recorded: a reply caused by it waits for the record.
	pubMu sync.Mutex

	toRSB, fromRSB, dropped atomic.Uint64

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	done      chan struct{} // the RSB side ended, or Close
	err       error         // why; set before done is closed
}

// BridgeOption configures a Bridge.
type BridgeOption func(*bridgeConfig)

type bridgeConfig struct {
	scope  string
	conv   *bus.Converters
	logger *slog.Logger
	ids    int
}

// WithBridgeScope bridges only scope and its subscopes ("/", everything,
// by default), in both directions.
func WithBridgeScope(scope string) BridgeOption {
	return func(c *bridgeConfig) { c.scope = scope }
}

// WithBridgeConverters sets the converters that encode the data of slc
// events for RSB when the event does not carry its bytes
// (bus.DefaultConverters). Use the participant's own registry.
func WithBridgeConverters(r *bus.Converters) BridgeOption {
	return func(c *bridgeConfig) { c.conv = r }
}

// WithBridgeLogger logs the events the bridge drops, at Warn (default:
// discard).
func WithBridgeLogger(l *slog.Logger) BridgeOption {
	return func(c *bridgeConfig) { c.logger = l }
}

// BridgeStats are a Bridge's counters.
type BridgeStats struct {
	ToRSB   uint64 // slc events sent to the RSB bus
	FromRSB uint64 // RSB notifications published on the slc bus
	Dropped uint64 // events that could not be converted (scope, data)
}

// JoinBus serves or joins the RSB socket bus at addr (DefaultAddr,
// localhost:55555, when empty) according to mode, and bridges it to p.
// The bridge owns the endpoint: Close closes it.
//
// slc's own bus also defaults to port 55555 (on 127.0.0.1): when both run
// on one host, give one of them another port.
func JoinBus(ctx context.Context, p *bus.Participant, addr string, mode Mode, opts ...Option) (*Bridge, error) {
	ep, err := Open(ctx, addr, mode, opts...)
	if err != nil {
		return nil, err
	}
	b, err := newBridge(ctx, p, ep, true, nil)
	if err != nil {
		ep.Close()
		return nil, err
	}
	return b, nil
}

// NewBridge bridges p and ep. The caller keeps ep and closes it after the
// bridge. p should be the bridge's own participant: events published
// through p are not sent to RSB (see the package doc).
func NewBridge(ctx context.Context, p *bus.Participant, ep Endpoint, opts ...BridgeOption) (*Bridge, error) {
	return newBridge(ctx, p, ep, false, opts)
}

func newBridge(ctx context.Context, p *bus.Participant, ep Endpoint, owns bool, opts []BridgeOption) (*Bridge, error) {
	cfg := bridgeConfig{scope: "/", ids: 4096}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.conv == nil {
		cfg.conv = bus.DefaultConverters()
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &Bridge{p: p, ep: ep, owns: owns, cfg: cfg, ids: newIDMap(cfg.ids), done: make(chan struct{})}
	inf, err := p.NewInformer(cfg.scope)
	if err != nil {
		return nil, fmt.Errorf("rsb: bridge: %w", err)
	}
	b.inf = inf
	b.ctx, b.cancel = context.WithCancel(context.Background())
	lis, err := p.NewListener(ctx, cfg.scope, b.toRSBHandler,
		bus.WithFilter(bus.Not(bus.OriginFilter(p.Name()))))
	if err != nil {
		b.cancel()
		inf.Close()
		return nil, fmt.Errorf("rsb: bridge: %w", err)
	}
	b.lis = lis
	b.wg.Add(1)
	go b.fromRSBLoop()
	return b, nil
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() BridgeStats {
	return BridgeStats{ToRSB: b.toRSB.Load(), FromRSB: b.fromRSB.Load(), Dropped: b.dropped.Load()}
}

// Close stops the bridge, waits for its goroutines and, when JoinBus
// opened the endpoint, closes it. It is idempotent.
func (b *Bridge) Close() error {
	b.closeOnce.Do(func() {
		b.cancel()
		b.lis.Close()
		b.wg.Wait()
		b.inf.Close()
		if b.owns {
			b.ep.Close()
		}
	})
	return nil
}

func (b *Bridge) drop(msg string, args ...any) {
	b.dropped.Add(1)
	b.cfg.logger.Warn("rsb bridge: "+msg, args...)
}

// toRSBHandler runs on the listener's goroutine, one event at a time.
func (b *Bridge) toRSBHandler(e *bus.Event) {
	if len(e.Causes) > 0 {
		// A cause being published from RSB right now gets its ID pair
		// recorded first.
		b.pubMu.Lock()
		b.pubMu.Unlock() //nolint:staticcheck // a barrier, empty on purpose
	}
	n, err := b.ToNotification(e)
	if err != nil {
		b.drop("cannot convert an slc event", "scope", e.Scope.String(), "err", err)
		return
	}
	if err := b.ep.Publish(b.ctx, n); err != nil {
		if b.ctx.Err() == nil {
			b.drop("cannot send to RSB", "err", err)
		}
		return
	}
	b.toRSB.Add(1)
}

// Done is closed when the bridge stops carrying RSB's events: Close, or
// the endpoint ended (a Client that gave up reconnecting); Err says why.
func (b *Bridge) Done() <-chan struct{} { return b.done }

// Err returns why the bridge stopped, or nil while it runs.
func (b *Bridge) Err() error {
	select {
	case <-b.done:
		return b.err
	default:
		return nil
	}
}

func (b *Bridge) fromRSBLoop() {
	defer b.wg.Done()
	for {
		n, err := b.ep.Receive(b.ctx)
		if err != nil {
			if b.ctx.Err() != nil {
				err = ErrClosed
			}
			b.err = err
			close(b.done)
			return
		}
		e, err := b.FromNotification(n)
		if err != nil {
			b.drop("cannot convert an RSB notification", "scope", n.Scope, "err", err)
			continue
		}
		b.fromRSB.Add(1)
		b.pubMu.Lock()
		err = b.inf.PublishEvent(b.ctx, e)
		if err == nil {
			b.ids.put(e.ID, n.EventID)
		}
		b.pubMu.Unlock()
		if err != nil {
			b.fromRSB.Add(^uint64(0))
			if b.ctx.Err() != nil {
				b.err = ErrClosed
				close(b.done)
				return
			}
			b.drop("cannot publish on the slc bus", "scope", n.Scope, "err", err)
			continue
		}
	}
}

// ToNotification converts an slc event into an RSB notification: the
// data is encoded under its schema (bytes as they are, RSB's numeric and
// string schemas by EncodeAs, anything else by the bridge's converters),
// times become microseconds, and event IDs become RSB IDs (see the
// package doc).
func (b *Bridge) ToNotification(e *bus.Event) (*Notification, error) {
	schema, data, err := b.encode(e)
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixMicro()
	n := &Notification{
		EventID:    b.rsbID(e.ID),
		Scope:      e.Scope.String(),
		Method:     e.Method,
		WireSchema: schema,
		Data:       data,
		MetaData: MetaData{
			CreateTime:  micros(e.Meta.CreateTime, now),
			SendTime:    micros(e.Meta.SendTime, now),
			ReceiveTime: micros(e.Meta.ReceiveTime, 0),
			DeliverTime: micros(e.Meta.DeliverTime, 0),
		},
	}
	for _, c := range e.Causes {
		n.Causes = append(n.Causes, b.rsbID(c))
	}
	for _, k := range slices.Sorted(maps.Keys(e.Meta.UserInfos)) {
		n.MetaData.UserInfos = append(n.MetaData.UserInfos, UserInfo{Key: k, Value: e.Meta.UserInfos[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(e.Meta.UserTimes)) {
		n.MetaData.UserTimes = append(n.MetaData.UserTimes, UserTime{Key: k, Timestamp: uint64(micros(e.Meta.UserTimes[k], 0))})
	}
	return n, nil
}

func (b *Bridge) encode(e *bus.Event) (string, []byte, error) {
	if raw, ok := e.Data.([]byte); ok && e.Schema != "" {
		// Undecoded bytes: slc's bus encodes RSB's schemas as RSB does.
		data, err := checkNumber(e.Schema, raw)
		return e.Schema, data, err
	}
	if e.Schema != "" {
		if data, err := EncodeAs(e.Schema, e.Data); err == nil {
			return e.Schema, data, nil
		}
	}
	return b.cfg.conv.Encode(e.Data)
}

// FromNotification converts an RSB notification into an slc event, ready
// for Informer.PublishEvent: the data stays bytes under the wire schema,
// so slc listeners decode it with their converters.
func (b *Bridge) FromNotification(n *Notification) (*bus.Event, error) {
	scope, err := bus.ParseScope(n.Scope)
	if err != nil {
		return nil, err
	}
	data := n.Data
	if data == nil {
		data = []byte{}
	}
	schema := n.WireSchema
	if schema == "" {
		schema = SchemaBytes
	}
	// The schemas mean the same bytes on both buses (numbers are
	// little-endian on both); a number of the wrong size is refused here.
	data, err = checkNumber(schema, data)
	if err != nil {
		return nil, err
	}
	e := &bus.Event{Scope: scope, Method: n.Method, Schema: schema, Data: data}
	if n.MetaData.CreateTime != 0 {
		e.Meta.CreateTime = time.UnixMicro(n.MetaData.CreateTime)
	}
	for _, c := range n.Causes {
		e.Causes = append(e.Causes, b.busID(c))
	}
	for _, ui := range n.MetaData.UserInfos {
		e.Meta.SetUserInfo(ui.Key, ui.Value)
	}
	for _, ut := range n.MetaData.UserTimes {
		e.Meta.SetUserTime(ut.Key, time.UnixMicro(int64(ut.Timestamp)))
	}
	return e, nil
}

// numberWidth returns the size of a numeric schema's data, or 0.
func numberWidth(schema string) int {
	switch schema {
	case SchemaInt32, SchemaUint32, SchemaFloat:
		return 4
	case SchemaInt64, SchemaUint64, SchemaDouble:
		return 8
	}
	return 0
}

// checkNumber checks that the data of RSB's numeric schemas has the
// schema's size; other data is returned as it is.
func checkNumber(schema string, data []byte) ([]byte, error) {
	w := numberWidth(schema)
	if w == 0 {
		return data, nil
	}
	if len(data) != w {
		return nil, fmt.Errorf("%w: %s data is %d bytes; want %d", ErrConvert, schema, len(data), w)
	}
	return data, nil
}

// rsbID maps an slc event ID to an RSB one: the RSB ID an event had if it
// came from RSB through this bridge, the UUID itself for a sender that is
// one (instance 0), and otherwise a UUID derived from the participant's
// name and instance, with the sequence number's low 32 bits.
func (b *Bridge) rsbID(id bus.EventID) EventID {
	if r, ok := b.ids.rsb(id); ok {
		return r
	}
	if id.Instance == 0 {
		if u, err := ParseUUID(id.Sender); err == nil {
			return EventID{Sender: u, Seq: uint32(id.Seq)}
		}
	}
	r := EventID{Sender: senderUUID(id.Sender, id.Instance), Seq: uint32(id.Seq)}
	b.ids.put(id, r)
	return r
}

// busID is the inverse of rsbID.
func (b *Bridge) busID(id EventID) bus.EventID {
	if s, ok := b.ids.bus(id); ok {
		return s
	}
	return bus.EventID{Sender: id.Sender.String(), Seq: uint64(id.Seq)}
}

// senderUUID derives a version-5-style UUID from an slc participant's
// name and instance.
func senderUUID(name string, instance uint64) UUID {
	h := sha1.New()
	h.Write([]byte("slc-bus\x00"))
	h.Write([]byte(name))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], instance)
	h.Write(b[:])
	var u UUID
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

func micros(t time.Time, zero int64) int64 {
	if t.IsZero() {
		return zero
	}
	return t.UnixMicro()
}

// idMap remembers the last n pairs of slc and RSB IDs, both ways, so
// that causes (a reply's request) map back to the IDs their side knows.
type idMap struct {
	mu    sync.Mutex
	toRSB map[bus.EventID]EventID
	toBus map[EventID]bus.EventID
	ring  []bus.EventID
	next  int
}

func newIDMap(n int) idMap {
	return idMap{toRSB: make(map[bus.EventID]EventID, n), toBus: make(map[EventID]bus.EventID, n), ring: make([]bus.EventID, 0, n)}
}

func (m *idMap) put(s bus.EventID, r EventID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.toRSB[s]; ok {
		return
	}
	if len(m.ring) < cap(m.ring) {
		m.ring = append(m.ring, s)
	} else {
		old := m.ring[m.next]
		delete(m.toBus, m.toRSB[old])
		delete(m.toRSB, old)
		m.ring[m.next] = s
		m.next = (m.next + 1) % len(m.ring)
	}
	m.toRSB[s] = r
	m.toBus[r] = s
}

func (m *idMap) rsb(s bus.EventID) (EventID, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.toRSB[s]
	return r, ok
}

func (m *idMap) bus(r EventID) (bus.EventID, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.toBus[r]
	return s, ok
}
