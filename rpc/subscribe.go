package rpc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/slc-go/slc"
)

// EventMessage is an event as a subscriber receives it. Args is shared by
// the handlers of the event: do not modify it.
type EventMessage struct {
	Node      slc.PeerID // the node that fired it
	Path      string
	Interface string
	Event     string
	Args      Args
}

// Subscription is a subscription made with On.
type Subscription struct {
	n       *Node
	id      uint64
	target  subTarget
	h       func(EventMessage)
	active  atomic.Bool
	dropped atomic.Uint64

	confirmOnce sync.Once
	confirmed   chan struct{} // closed when the node first confirms or refuses it
	err         error         // why the node refused it; set before confirmed is closed

	// Guarded by n.mu.
	held     bool // the node confirmed it once
	rejected bool // the node's current instance refused it (after held)
}

// subTarget names an event of a node.
type subTarget struct {
	node slc.PeerID
	key  subKey
}

// On subscribes h to an event of the implementation of iface at path on
// node. h runs on the node's event goroutine, one event at a time, in the
// order the events arrive (for one publisher, the order they were fired):
// it must return, and should not block for long.
//
// The subscription lives until Unsubscribe or Close, whatever happens to
// the connection: it survives reconnects (events fired meanwhile arrive
// when the session resumes), the loss of the session (it is sent again
// when a session with node starts again), and restarts of node (it is
// sent to the new instance when that instance says hello). node need not
// be connected yet; when it gets the subscription, it checks that path
// implements iface and that iface declares event, and refuses it
// otherwise: Wait reports the refusal (see Wait). Events fired while no
// subscription was registered on node (before the new instance of a
// restarted node heard of it, say) are not delivered. On a node's own
// name it subscribes to its own events, checked at once.
func (n *Node) On(node slc.PeerID, path, iface, event string, h func(EventMessage)) (*Subscription, error) {
	switch {
	case node == "":
		return nil, errors.New("rpc: On: empty node name")
	case !ValidPath(path):
		return nil, fmt.Errorf("rpc: On: invalid path %q", path)
	case !ValidInterfaceName(iface):
		return nil, fmt.Errorf("rpc: On: invalid interface name %q", iface)
	case !validIdent(event):
		return nil, fmt.Errorf("rpc: On: invalid event name %q", event)
	case h == nil:
		return nil, errors.New("rpc: On: nil handler")
	}
	s := &Subscription{n: n, id: n.nextSub.Add(1), target: subTarget{node, subKey{path, iface, event}}, h: h,
		confirmed: make(chan struct{})}
	s.active.Store(true)
	n.mu.Lock()
	if n.closed || n.refused != nil {
		err := n.closedErr()
		n.mu.Unlock()
		return nil, err
	}
	if node == n.name {
		if werr := n.checkEventLocked(s.target.key); werr != nil {
			n.mu.Unlock()
			s.active.Store(false)
			s.settle(s.refusal(werr))
			return s, nil
		}
		s.held = true
		s.settle(nil)
	}
	n.subs[s.id] = s
	n.subsBy[s.target] = append(slices.Clip(n.subsBy[s.target]), s)
	n.mu.Unlock()
	if node != n.name {
		n.send(node, s.message()) // if node is not connected, the hello sends it
	}
	return s, nil
}

// checkEventLocked checks that an implementation at k.path implements
// k.iface and that it declares k.event.
func (n *Node) checkEventLocked(k subKey) *wireError {
	fail := func(kind Kind, format string, args ...any) *wireError {
		return &wireError{Kind: kind, Message: fmt.Sprintf(format, args...)}
	}
	impls := n.impls[k.path]
	if impls == nil {
		return fail(KindUnknownPath, "nothing is registered at %q", k.path)
	}
	im := impls[k.iface]
	if im == nil {
		return fail(KindUnknownInterface, "%s does not implement %q (it implements %s)", k.path, k.iface,
			strings.Join(slices.Sorted(maps.Keys(impls)), ", "))
	}
	if _, ok := im.iface.Event(k.event); !ok {
		names := make([]string, len(im.iface.Events))
		for i, e := range im.iface.Events {
			names[i] = e.Name
		}
		return fail(KindUnknownEvent, "%s has no event %q (events: %s)", k.iface, k.event, strings.Join(names, ", "))
	}
	return nil
}

// refusal turns the node's refusal of the subscription into an *Error.
func (s *Subscription) refusal(w *wireError) *Error {
	e := remoteError(w)
	e.Node, e.Path, e.Interface = s.target.node, s.target.key.path, s.target.key.iface
	if w.Kind == KindUnknownEvent {
		e.Interface = s.target.key.iface + "." + s.target.key.event
	}
	return e
}

func (s *Subscription) message() *subscribeMsg {
	k := s.target.key
	return &subscribeMsg{ID: s.id, From: s.n.inst, Path: k.path, Interface: k.iface, Event: k.event}
}

// settle records the node's first answer: nil when it holds the
// subscription, else why it refused it.
func (s *Subscription) settle(err error) {
	s.confirmOnce.Do(func() {
		s.err = err
		close(s.confirmed)
	})
}

// Wait waits until the node subscribed to holds the subscription, so that
// the events it fires from then on are delivered, or until ctx ends. A
// subscription to a node that is not connected is held once the node
// connects and says hello.
//
// When the node refuses the subscription because nothing at the path
// implements the interface, or the interface declares no such event,
// Wait returns an *Error of kind KindUnknownPath, KindUnknownInterface
// or KindUnknownEvent (errors.Is(err, ErrUnknownEvent), ...), and the
// subscription is ended. Once held, a subscription is never ended by the
// node: if a restarted instance of it refuses the subscription (it has
// not registered the implementation yet), the subscription is sent again
// when it registers one at the path.
func (s *Subscription) Wait(ctx context.Context) error {
	select {
	case <-s.confirmed:
		return s.err
	case <-ctx.Done():
		return ctxError(ctx.Err())
	}
}

// Unsubscribe ends the subscription: its handler is not called again,
// and the remote node is told to stop sending the event. It is
// idempotent.
func (s *Subscription) Unsubscribe() {
	if !s.drop() {
		return
	}
	n := s.n
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if !closed && s.target.node != n.name {
		n.send(s.target.node, &unsubscribeMsg{ID: s.id, From: n.inst})
	}
}

// drop ends the subscription locally; it reports whether it was active.
func (s *Subscription) drop() bool {
	if !s.active.CompareAndSwap(true, false) {
		return false
	}
	n := s.n
	n.mu.Lock()
	delete(n.subs, s.id)
	list := slices.DeleteFunc(slices.Clone(n.subsBy[s.target]), func(x *Subscription) bool { return x == s })
	if len(list) == 0 {
		delete(n.subsBy, s.target)
	} else {
		n.subsBy[s.target] = list
	}
	n.mu.Unlock()
	return true
}

// subscriptionsTo returns the active subscriptions to node's events.
func (n *Node) subscriptionsToLocked(node slc.PeerID) []*Subscription {
	var out []*Subscription
	for _, s := range n.subs {
		if s.target.node == node {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *Subscription) int { return cmp.Compare(a.id, b.id) })
	return out
}

// onSubscribe records a remote subscription.
func (n *Node) onSubscribe(from slc.PeerID, m *subscribeMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs := n.callerLocked(from, m.From)
	ack := &subscribedMsg{ID: m.ID, To: m.From}
	if _, ok := cs.subs[m.ID]; !ok { // else sent again after a hello
		k := subKey{m.Path, m.Interface, m.Event}
		if werr := n.checkEventLocked(k); werr != nil {
			ack.Err = werr
		} else {
			cs.subs[m.ID] = k
			cs.count[k]++
		}
	}
	n.goLocked(func() { n.send(from, ack) })
}

// onSubscribed takes a confirmation, or a refusal, of a subscription. A
// first refusal ends the subscription and goes to Wait; a refusal of a
// subscription that was held (by an earlier instance of the node, or
// before the implementation was unregistered and the session lost) keeps
// it, to be sent again when the node registers an implementation at its
// path.
func (n *Node) onSubscribed(from slc.PeerID, m *subscribedMsg) {
	if m.To != n.inst {
		return
	}
	n.mu.Lock()
	s := n.subs[m.ID]
	if s == nil || s.target.node != from {
		n.mu.Unlock()
		return
	}
	if m.Err == nil {
		s.held, s.rejected = true, false
		n.mu.Unlock()
		s.settle(nil)
		return
	}
	if s.held {
		if ps := n.peers[from]; ps != nil && offers(ps.paths, s.target.key.path, s.target.key.iface) {
			// It registered the implementation since: try again.
			n.mu.Unlock()
			n.send(from, s.message())
			return
		}
		s.rejected = true
		n.mu.Unlock()
		n.log.Debug("rpc: a restarted node refused a subscription; it is sent again when the node registers the implementation",
			"node", string(from), "path", s.target.key.path, "iface", s.target.key.iface, "event", s.target.key.event,
			"err", m.Err.Message)
		return
	}
	n.mu.Unlock()
	s.settle(s.refusal(m.Err))
	s.drop()
}

// offers reports whether paths has an implementation of iface at path.
func offers(paths []PathDescription, path, iface string) bool {
	for _, p := range paths {
		if p.Path == path {
			return slices.ContainsFunc(p.Interfaces, func(i Interface) bool { return i.Name == iface })
		}
	}
	return false
}

// resubscribeLocked returns the subscriptions to node from refused by its
// current instance, which it may now hold: it registered iface at path.
func (n *Node) resubscribeLocked(from slc.PeerID, path, iface string) []*subscribeMsg {
	var out []*subscribeMsg
	for _, s := range n.subscriptionsToLocked(from) {
		if s.rejected && s.target.key.path == path && s.target.key.iface == iface {
			s.rejected = false
			out = append(out, s.message())
		}
	}
	return out
}

// onUnsubscribe ends a remote subscription.
func (n *Node) onUnsubscribe(from slc.PeerID, m *unsubscribeMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs := n.callers[from]
	if cs == nil || cs.inst != m.From {
		return
	}
	k, ok := cs.subs[m.ID]
	if !ok {
		return
	}
	delete(cs.subs, m.ID)
	if cs.count[k]--; cs.count[k] <= 0 {
		delete(cs.count, k)
	}
}

// fire sends an event of the implementation at path to its subscribers.
func (n *Node) fire(ctx context.Context, path, iface, event string, args Args) error {
	k := subKey{path, iface, event}
	n.mu.Lock()
	if n.closed {
		err := n.closedErr()
		n.mu.Unlock()
		return err
	}
	var targets []slc.PeerID
	for node, cs := range n.callers {
		if cs.count[k] > 0 {
			targets = append(targets, node)
		}
	}
	local := slices.Clone(n.subsBy[subTarget{n.name, k}])
	n.mu.Unlock()
	if len(local) > 0 {
		n.dispatch(local, EventMessage{Node: n.name, Path: path, Interface: iface, Event: event, Args: args})
	}
	if len(targets) == 0 {
		return nil
	}
	slices.Sort(targets)
	msg := &eventMsg{From: n.inst, Path: path, Interface: iface, Event: event, Args: args}
	_, err := n.c.Send(ctx, msg, targets...)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctxError(ctx.Err())
	case errors.Is(err, slc.ErrClosed):
		return &Error{Kind: KindClosed, Message: "the communicator is closed", Err: err}
	}
	// Subscribers that are gone: their subscriptions are dropped when
	// their sessions' ends are reported.
	n.log.Debug("rpc: event not sent to every subscriber", "event", event, "err", err)
	return nil
}

// onEvent hands an event to the matching subscriptions.
func (n *Node) onEvent(from slc.PeerID, m *eventMsg) {
	n.mu.Lock()
	list := slices.Clone(n.subsBy[subTarget{from, subKey{m.Path, m.Interface, m.Event}}])
	n.mu.Unlock()
	if len(list) == 0 {
		return
	}
	args := m.Args
	if args == nil {
		args = Args{}
	}
	normalize(args)
	n.dispatch(list, EventMessage{Node: from, Path: m.Path, Interface: m.Interface, Event: m.Event, Args: args})
}

// dispatch queues ev for the handlers of subs. It never blocks: when the
// handlers are WithEventQueue events behind, ev is dropped and counted.
func (n *Node) dispatch(subs []*Subscription, ev EventMessage) {
	ok := n.evq.tryPush(func() {
		for _, s := range subs {
			if s.active.Load() {
				n.runHandler(s, ev)
			}
		}
	})
	if ok {
		n.evDropping.Store(false)
		return
	}
	for _, s := range subs {
		s.dropped.Add(1)
	}
	total := n.evDropped.Add(1)
	if n.evDropping.CompareAndSwap(false, true) {
		n.log.Warn("rpc: event handlers are behind; events dropped", "event", ev.Interface+"."+ev.Event,
			"from", string(ev.Node), "dropped", total)
		n.publish(&EventsDropped{Node: ev.Node, Path: ev.Path, Interface: ev.Interface, Event: ev.Event, Total: total})
	}
}

// Dropped returns how many events for this subscription were dropped
// because the node's event handlers were too far behind (WithEventQueue).
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

func (n *Node) runHandler(s *Subscription, ev EventMessage) {
	defer func() {
		if r := recover(); r != nil {
			n.log.Error("rpc: event handler panicked", "event", ev.Event, "from", string(ev.Node), "panic", r)
		}
	}()
	s.h(ev)
}
