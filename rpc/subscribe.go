package rpc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
	n      *Node
	id     uint64
	target subTarget
	h      func(EventMessage)
	active atomic.Bool

	confirmOnce sync.Once
	confirmed   chan struct{} // closed when the node first confirms it
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
// be connected, nor implement the interface yet. Events fired while no
// subscription was registered on node (before the new instance of a
// restarted node heard of it, say) are not delivered. On a node's own
// name it subscribes to its own events.
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
	if node == n.name {
		s.confirm()
	}
	n.mu.Lock()
	if n.closed || n.refused != nil {
		err := n.closedErr()
		n.mu.Unlock()
		return nil, err
	}
	n.subs[s.id] = s
	n.subsBy[s.target] = append(slices.Clip(n.subsBy[s.target]), s)
	n.mu.Unlock()
	if node != n.name {
		n.send(node, s.message()) // if node is not connected, the hello sends it
	}
	return s, nil
}

func (s *Subscription) message() *subscribeMsg {
	k := s.target.key
	return &subscribeMsg{ID: s.id, From: s.n.inst, Path: k.path, Interface: k.iface, Event: k.event}
}

func (s *Subscription) confirm() { s.confirmOnce.Do(func() { close(s.confirmed) }) }

// Wait waits until the node subscribed to holds the subscription, so that
// the events it fires from then on are delivered, or until ctx ends. A
// subscription to a node that is not connected is held once the node
// connects and says hello.
func (s *Subscription) Wait(ctx context.Context) error {
	select {
	case <-s.confirmed:
		return nil
	case <-ctx.Done():
		return ctxError(ctx.Err())
	}
}

// Unsubscribe ends the subscription: its handler is not called again,
// and the remote node is told to stop sending the event. It is
// idempotent.
func (s *Subscription) Unsubscribe() {
	if !s.active.CompareAndSwap(true, false) {
		return
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
	closed := n.closed
	n.mu.Unlock()
	if !closed && s.target.node != n.name {
		n.send(s.target.node, &unsubscribeMsg{ID: s.id, From: n.inst})
	}
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
	if _, ok := cs.subs[m.ID]; !ok { // else sent again after a hello
		k := subKey{m.Path, m.Interface, m.Event}
		cs.subs[m.ID] = k
		cs.count[k]++
	}
	ack := &subscribedMsg{ID: m.ID, To: m.From}
	n.goLocked(func() { n.send(from, ack) })
}

// onSubscribed takes a confirmation of a subscription.
func (n *Node) onSubscribed(from slc.PeerID, m *subscribedMsg) {
	if m.To != n.inst {
		return
	}
	n.mu.Lock()
	s := n.subs[m.ID]
	n.mu.Unlock()
	if s != nil && s.target.node == from {
		s.confirm()
	}
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

// dispatch queues ev for the handlers of subs.
func (n *Node) dispatch(subs []*Subscription, ev EventMessage) {
	n.evq.push(func() {
		for _, s := range subs {
			if s.active.Load() {
				n.runHandler(s, ev)
			}
		}
	})
}

func (n *Node) runHandler(s *Subscription, ev EventMessage) {
	defer func() {
		if r := recover(); r != nil {
			n.log.Error("rpc: event handler panicked", "event", ev.Event, "from", string(ev.Node), "panic", r)
		}
	}()
	s.h(ev)
}
