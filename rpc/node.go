package rpc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/wire"
)

// Node is an rpc node on a communicator: it offers implementations at
// paths, calls methods of other nodes and subscribes to their events. Its
// name is the communicator's name.
//
// All methods are safe for concurrent use.
type Node struct {
	c       *slc.Communicator
	name    slc.PeerID
	inst    uint64
	started time.Time
	cfg     config
	log     *slog.Logger

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the node starts
	ctl    *queue         // control tasks: hellos, directory, gossip
	evq    *queue         // event handlers, in order; bounded

	evDropped  atomic.Uint64 // events dropped, the queue being full
	evDropping atomic.Bool   // the last event offered to evq was dropped

	nextCall atomic.Uint64
	nextSub  atomic.Uint64
	nextDesc atomic.Uint64

	esSub     *eventstream.Subscription
	closeOnce sync.Once

	isClosed atomic.Bool // closed, read without the lock

	mu      sync.Mutex
	closed  bool
	refused *DuplicateNameError

	impls map[string]map[string]*Implementation // path → interface name → implementation

	// Caller side.
	pending      map[uint64]*pendingCall
	outstanding  map[slc.PeerID]*idQueue // per callee: calls whose results are awaited
	abandoned    map[uint64]slc.PeerID   // calls given up, whose results are still due
	strayResults uint64                  // results for no call awaited: copies, or for calls settled otherwise
	subs         map[uint64]*Subscription
	subsBy       map[subTarget][]*Subscription

	// Callee side.
	callers map[slc.PeerID]*callerState // with their calls and results
	running int

	// Directory.
	describing map[uint64]*pendingDescribe // Describe requests sent to peers
	peers      map[slc.PeerID]*peerState
	known      map[nodeKey]NodeInfo // the view last published
	refusedSet map[nodeKey]nodeRef  // peers this node refused → the holder of their name
	relayed    map[relayKey]bool
	lastGossip []nodeRef
	dirChanged chan struct{} // closed and replaced on every change
}

var (
	nodesMu sync.Mutex
	nodes   = map[*slc.Communicator]*Node{}
)

// New starts an rpc node on c. A communicator has at most one node; the
// node takes c's rpc messages (Communicator.Handle), so the application
// keeps receiving the others. Create it before c listens or connects:
// messages that arrive earlier stay in c's mailbox. The communicator's
// serializer must carry maps (msgpack, the default, or json).
//
// Close the node before the communicator.
func New(c *slc.Communicator, opts ...Option) (*Node, error) {
	if c == nil {
		return nil, errors.New("rpc: nil communicator")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	// The facade subscribes to the event stream when it starts, after
	// slc.New returned, without the stream's lock (protoactor sets the
	// predicate after adding the subscription): publishing before then
	// is a data race. A request to the facade is answered after it
	// started.
	if _, err := c.ActorSystem().Root.RequestFuture(c.PID(), &actors.GetPeers{}, 10*time.Second).Result(); err != nil {
		return nil, fmt.Errorf("rpc: communicator not running: %w", err)
	}
	nodesMu.Lock()
	defer nodesMu.Unlock()
	if nodes[c] != nil {
		return nil, fmt.Errorf("rpc: communicator %s already has a node", c.Name())
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		c: c, name: c.Name(), inst: randomInstance(), started: time.Unix(0, cfg.clock.Now().UnixNano()), cfg: cfg,
		log: cfg.logger.With("node", string(c.Name())), ctx: ctx, cancel: cancel,
		impls:   map[string]map[string]*Implementation{},
		pending: map[uint64]*pendingCall{}, outstanding: map[slc.PeerID]*idQueue{}, abandoned: map[uint64]slc.PeerID{},
		subs: map[uint64]*Subscription{}, subsBy: map[subTarget][]*Subscription{},
		callers:    map[slc.PeerID]*callerState{},
		describing: map[uint64]*pendingDescribe{},
		peers:      map[slc.PeerID]*peerState{}, known: map[nodeKey]NodeInfo{}, refusedSet: map[nodeKey]nodeRef{},
		relayed: map[relayKey]bool{}, dirChanged: make(chan struct{}),
	}
	n.ctl = newQueue(0)
	n.evq = newQueue(cfg.eventQueue)
	n.wg.Add(2)
	go n.ctl.run(ctx, &n.wg)
	go n.evq.run(ctx, &n.wg)
	n.esSub = c.ActorSystem().EventStream.Subscribe(n.onSlcEvent)
	// The routing outlives Close, which makes deliver drop the messages:
	// rpc messages never reach the application's Receive.
	c.Handle(n.deliver, wireTypes...)
	nodes[c] = n
	// Peers connected before the node existed get a hello now.
	for _, p := range c.Peers() {
		n.ctl.push(func() { n.sendHello(p, true, 0, 0) })
	}
	return n, nil
}

func randomInstance() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// Name returns the node's name: its communicator's.
func (n *Node) Name() slc.PeerID { return n.name }

// Instance returns the node's random instance ID, new for every New.
func (n *Node) Instance() uint64 { return n.inst }

// Started returns when the node started, by its clock.
func (n *Node) Started() time.Time { return n.started }

// Communicator returns the node's communicator.
func (n *Node) Communicator() *slc.Communicator { return n.c }

// Err returns why the node was refused (a *DuplicateNameError), or nil.
// A refused node answers and makes no more calls; close it and start one
// with another name.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.refused != nil {
		return n.refused
	}
	return nil
}

// Connect connects the communicator to the node at addr, like
// Communicator.Connect. When the remote refuses this node because another
// live node holds its name there, the error is a *DuplicateNameError
// (errors.Is(err, ErrDuplicateName)).
func (n *Node) Connect(ctx context.Context, addr string) (slc.PeerID, error) {
	var mu sync.Mutex
	var rejected error
	es := n.c.ActorSystem().EventStream
	sub := es.Subscribe(func(ev any) {
		if r, ok := ev.(*actors.HandshakeRejected); ok && r.ByRemote && nameInUse(r.Err) {
			mu.Lock()
			rejected = r.Err
			mu.Unlock()
		}
	})
	p, err := n.c.Connect(ctx, addr)
	es.Unsubscribe(sub)
	if err == nil {
		return p, nil
	}
	mu.Lock()
	defer mu.Unlock()
	if nameInUse(err) {
		rejected = err
	}
	if rejected != nil {
		return "", &DuplicateNameError{Name: n.name, Instance: n.inst, Started: n.started, Err: rejected}
	}
	return "", err
}

func nameInUse(err error) bool {
	var pe *slc.ProtocolError
	return errors.As(err, &pe) && pe.Remote && pe.Code == wire.CodeNameInUse
}

// Close stops the node: calls in progress here are canceled and awaited,
// calls waiting for results fail with KindClosed, and every goroutine the
// node started ends. Event handlers must have returned. It leaves the
// communicator open; messages of the rpc layer that arrive later are
// dropped. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.isClosed.Store(true)
		n.signalLocked()
		pending := n.pending
		n.pending = map[uint64]*pendingCall{}
		n.settleAllLocked("")
		n.failDescribesLocked("", &Error{Kind: KindClosed, Message: "the local node closed"})
		for _, cs := range n.callers {
			cs.cancelRunning()
		}
		n.mu.Unlock()
		for _, p := range pending {
			p.finish(nil, &Error{Kind: KindClosed, Message: "the local node closed"})
		}
		n.c.ActorSystem().EventStream.Unsubscribe(n.esSub)
		n.cancel()
		n.wg.Wait()
		nodesMu.Lock()
		if nodes[n.c] == n {
			delete(nodes, n.c)
		}
		nodesMu.Unlock()
	})
	return nil
}

func (n *Node) closedErr() error {
	if n.refused != nil {
		return &Error{Kind: KindRefused, Err: n.refused}
	}
	return &Error{Kind: KindClosed, Message: "the local node is closed"}
}

// goLocked starts f on a tracked goroutine, unless the node is closed.
// The caller holds n.mu.
func (n *Node) goLocked(f func()) bool {
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// sendAsync sends msg to p from a tracked goroutine: for answers decided
// on a connection's goroutine, which must not block.
func (n *Node) sendAsync(p slc.PeerID, msg any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.goLocked(func() { n.send(p, msg) })
}

// send sends msg to p, waiting for room in p's send buffer until the node
// closes. Failures are logged: the peer is gone or going.
func (n *Node) send(p slc.PeerID, msg any) {
	if _, err := n.c.Send(n.ctx, msg, p); err != nil && n.ctx.Err() == nil {
		n.log.Debug("rpc: send failed", "peer", string(p), "type", fmt.Sprintf("%T", msg), "err", err)
	}
}

// publish publishes ev on the communicator's event stream.
func (n *Node) publish(ev any) { n.c.ActorSystem().EventStream.Publish(ev) }

// deliver takes the rpc messages from the communicator. It runs on the
// receiving connection's goroutine and never blocks.
func (n *Node) deliver(m slc.Message) {
	if m.Err != nil {
		n.log.Warn("rpc: undecodable message", "peer", string(m.From), "type", m.Type, "err", m.Err)
		return
	}
	if n.isClosed.Load() {
		return
	}
	switch b := m.Body.(type) {
	case callMsg:
		n.onCall(m.From, &b)
	case resultMsg:
		n.onResult(m.From, &b)
	case cancelMsg:
		n.onCancel(m.From, &b)
	case subscribeMsg:
		n.onSubscribe(m.From, &b)
	case unsubscribeMsg:
		n.onUnsubscribe(m.From, &b)
	case subscribedMsg:
		n.onSubscribed(m.From, &b)
	case eventMsg:
		n.onEvent(m.From, &b)
	case helloMsg:
		n.ctl.push(func() { n.onHello(m.From, &b) })
	case peersMsg:
		n.ctl.push(func() { n.onPeers(m.From, &b) })
	case registeredMsg:
		n.ctl.push(func() { n.onRegistered(m.From, &b) })
	case unregisteredMsg:
		n.ctl.push(func() { n.onUnregistered(m.From, &b) })
	case refusedMsg:
		n.ctl.push(func() { n.onRefused(m.From, &b) })
	case describeMsg:
		n.onDescribe(m.From, &b)
	case descriptionMsg:
		n.onDescription(m.From, &b)
	default:
		n.log.Warn("rpc: unexpected body", "peer", string(m.From), "type", m.Type, "body", fmt.Sprintf("%T", m.Body))
	}
}

// onSlcEvent watches the communicator's sessions. It runs on the
// publisher's goroutine and only queues work.
func (n *Node) onSlcEvent(ev any) {
	switch e := ev.(type) {
	case *actors.PeerConnected:
		n.ctl.push(func() { n.onPeerConnected(e) })
	case *actors.PeerDisconnected:
		if e.Final {
			n.sessionEnded(e.Peer, "disconnected")
			n.ctl.push(func() { n.onPeerGone(e.Peer) })
		} else {
			n.ctl.push(func() { n.onPeerDown(e.Peer) })
		}
	case *actors.PeerLost:
		n.sessionEnded(e.Peer, "lost")
		n.ctl.push(func() { n.onPeerGone(e.Peer) })
	}
}

// queue runs functions in order on one goroutine. A queue with a bound
// (max > 0) refuses functions past it in tryPush; the bound counts the
// function that runs.
type queue struct {
	mu    sync.Mutex
	items []func()
	n     int // queued or running
	max   int
	wake  chan struct{}
}

func newQueue(max int) *queue { return &queue{wake: make(chan struct{}, 1), max: max} }

// push adds f, whatever the bound; it never blocks.
func (q *queue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.n++
	q.mu.Unlock()
	q.signal()
}

// tryPush adds f unless the queue holds its maximum; it never blocks.
func (q *queue) tryPush(f func()) bool {
	q.mu.Lock()
	if q.max > 0 && q.n >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, f)
	q.n++
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run runs the queued functions until ctx ends.
func (q *queue) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		for _, f := range items {
			if ctx.Err() != nil {
				return
			}
			f()
			q.mu.Lock()
			q.n--
			q.mu.Unlock()
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return
		}
	}
}
