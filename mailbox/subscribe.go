package mailbox

import (
	"cmp"
	"slices"

	"github.com/slc-go/slc/peer"
)

// Subscriber receives the messages routed to a subscription.
//
// Deliver is called with no inbox lock held, from the goroutine that
// pushed the message (or, for the messages flushed when subscribing, from
// the goroutine that called Subscribe). It must not block for long: while
// it runs, the pushing connection reads nothing more. Deliver is never
// called concurrently for messages of the same source, but may be called
// concurrently for messages of different sources. It may call Inbox
// methods, including the subscription's cancel, but should not block in
// them (in Receive, say) since that stalls the pushing connection.
type Subscriber interface {
	Deliver(peer.Message)
}

// SubscriberFunc adapts an ordinary function to the Subscriber interface.
type SubscriberFunc func(peer.Message)

// Deliver calls f(m).
func (f SubscriberFunc) Deliver(m peer.Message) { f(m) }

// subscription is one Subscribe or SubscribeTypes call. Its fields are
// immutable except canceled, which is guarded by Inbox.mu.
type subscription struct {
	sub      Subscriber
	ids      []peer.ID // nil: every source
	types    []string  // set for SubscribeTypes
	canceled bool
}

// SubscribeTypes routes the messages pushed from now on whose Type is one
// of types (names registered with codec.RegisterType; "" never matches)
// to sub, from every source, in push order per source, instead of the
// queues and the per-source subscriptions. It is how a layer built on the
// communicator (remote calls, a bus) takes its own messages while the
// application keeps receiving the rest. Messages of those types that
// arrived before the call stay queued for Receive: subscribe before
// connecting.
//
// Several subscriptions may name the same type; each gets every message of
// it. Routed messages do not count against a source's capacity. Delivery
// follows the rules of Subscribe. cancel ends the subscription; it does
// not wait and is idempotent. After Close, SubscribeTypes does nothing and
// returns a no-op cancel. It panics if sub is nil.
func (ib *Inbox) SubscribeTypes(sub Subscriber, types ...string) (cancel func()) {
	if sub == nil {
		panic("mailbox: SubscribeTypes with nil Subscriber")
	}
	sb := &subscription{sub: sub}
	for _, t := range types {
		if t != "" && !slices.Contains(sb.types, t) {
			sb.types = append(sb.types, t)
		}
	}
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if ib.closed || len(sb.types) == 0 {
		return func() {}
	}
	next := make(map[string][]*subscription, len(ib.subsType)+len(sb.types))
	for t, list := range ib.subsType {
		next[t] = list
	}
	for _, t := range sb.types {
		next[t] = append(slices.Clip(next[t]), sb)
	}
	ib.subsType = next
	return func() { ib.cancel(sb) }
}

// typeSubsLocked returns the subscriptions for message type t, or nil.
func (ib *Inbox) typeSubsLocked(t string) []*subscription {
	if t == "" {
		return nil
	}
	return ib.subsType[t]
}

// item is a message routed to subscriptions and not yet delivered.
type item struct {
	m    peer.Message
	subs []*subscription
	seq  uint64
	src  *source
}

// Subscribe routes the future messages from the named sources (every
// source when none is named) to sub instead of the queues, in push order
// per source, and first flushes to sub, in arrival order, the messages
// already waiting from those sources; the flushed messages are delivered
// from the calling goroutine before Subscribe returns, unless a delivery
// for their source is already under way on another goroutine, which then
// delivers them in order.
//
// Several subscriptions may match a source: each of them gets every
// message of that source (a subscription for every source and one for
// source A both get A's messages). Messages routed to subscriptions do not
// count against the source's capacity and are not seen by Receive,
// TryReceive, Take or Len.
//
// cancel ends the subscription; from then on, messages from its sources
// queue again (unless another subscription matches them). cancel does not
// wait: messages routed to the subscription before cancel was called are
// still delivered to it, possibly after cancel returns, so that none is
// lost. cancel is idempotent and may be called from Deliver.
//
// Subscribe waits while a Take holds one of the sources it covers. After
// Close it does nothing and returns a no-op cancel. It panics if sub is
// nil.
//
// If Deliver panics, the panic propagates to the goroutine that called
// Push or Subscribe; the message being delivered is not delivered again,
// and the source's later undelivered messages are delivered by the next
// Push from that source.
func (ib *Inbox) Subscribe(sub Subscriber, from ...peer.ID) (cancel func()) {
	if sub == nil {
		panic("mailbox: Subscribe with nil Subscriber")
	}
	sb := &subscription{sub: sub}
	for _, id := range from {
		if !slices.Contains(sb.ids, id) {
			sb.ids = append(sb.ids, id)
		}
	}

	ib.mu.Lock()
	for {
		if ib.closed {
			ib.mu.Unlock()
			return func() {}
		}
		h := ib.heldLocked(sb)
		if h == nil {
			break
		}
		ib.waitReleaseLocked(h)
	}

	if sb.ids == nil {
		ib.subsAll = append(slices.Clip(ib.subsAll), sb)
	} else {
		for _, id := range sb.ids {
			ib.subsBy[id] = append(slices.Clip(ib.subsBy[id]), sb)
		}
	}

	var mine []*source // sources whose delivery this call now owns
	flush := func(s *source) {
		s.subs = ib.snapshotLocked(s.id)
		k := s.q.len()
		if k == 0 {
			return
		}
		for s.q.len() > 0 {
			e := s.q.popFront()
			s.out = append(s.out, item{m: e.m, subs: s.subs, seq: e.seq, src: s})
		}
		s.bytes = 0
		ib.total -= k
		ib.stale += k
		ib.wakePushersLocked(s)
		if !s.delivering {
			s.delivering = true
			mine = append(mine, s)
		}
	}
	if sb.ids == nil {
		for _, s := range ib.sources {
			flush(s)
		}
	} else {
		for _, id := range sb.ids {
			if s := ib.sources[id]; s != nil {
				flush(s)
			}
		}
	}
	ib.maybeCompactLocked()
	cancel = func() { ib.cancel(sb) }

	switch len(mine) {
	case 0:
		ib.mu.Unlock()
	case 1:
		ib.drainLocked(mine[0])
	default:
		ib.drainManyLocked(mine)
	}
	return cancel
}

// heldLocked returns a source covered by sb that a Take holds, or nil.
func (ib *Inbox) heldLocked(sb *subscription) *source {
	if sb.ids == nil {
		if ib.holding == 0 {
			return nil
		}
		for _, s := range ib.sources {
			if s.held {
				return s
			}
		}
		return nil
	}
	for _, id := range sb.ids {
		if s := ib.sources[id]; s != nil && s.held {
			return s
		}
	}
	return nil
}

// snapshotLocked returns the subscriptions matching source id, sharing
// the copy-on-write lists when possible.
func (ib *Inbox) snapshotLocked(id peer.ID) []*subscription {
	all, by := ib.subsAll, ib.subsBy[id]
	switch {
	case len(by) == 0:
		return all
	case len(all) == 0:
		return by
	}
	return append(slices.Clip(all), by...)
}

// cancel ends subscription sb.
func (ib *Inbox) cancel(sb *subscription) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if sb.canceled {
		return
	}
	sb.canceled = true
	without := func(list []*subscription) []*subscription {
		list = slices.DeleteFunc(slices.Clone(list), func(x *subscription) bool { return x == sb })
		if len(list) == 0 {
			return nil
		}
		return slices.Clip(list)
	}
	if sb.types != nil {
		next := make(map[string][]*subscription, len(ib.subsType))
		for t, list := range ib.subsType {
			next[t] = list
		}
		for _, t := range sb.types {
			if list := without(next[t]); list != nil {
				next[t] = list
			} else {
				delete(next, t)
			}
		}
		ib.subsType = next
		return
	}
	if sb.ids == nil {
		ib.subsAll = without(ib.subsAll)
		for _, s := range ib.sources {
			s.subs = ib.snapshotLocked(s.id)
		}
		return
	}
	for _, id := range sb.ids {
		if list := without(ib.subsBy[id]); list != nil {
			ib.subsBy[id] = list
		} else {
			delete(ib.subsBy, id)
		}
		if s := ib.sources[id]; s != nil {
			s.subs = ib.snapshotLocked(id)
		}
	}
}

// routeLocked appends msgs to s's delivery buffer for its subscriptions.
func (ib *Inbox) routeLocked(s *source, msgs []peer.Message) {
	for i := range msgs {
		ib.seq++
		s.out = append(s.out, item{m: msgs[i], subs: s.subs, seq: ib.seq, src: s})
	}
}

// drainLocked delivers s's routed messages until none is left. The caller
// holds ib.mu and has set s.delivering; drainLocked clears it and returns
// with ib.mu released. Delivery runs without the lock, so pushes for s
// during a delivery append to s.out and this loop picks them up, in order.
func (ib *Inbox) drainLocked(s *source) {
	var batch []item
	next := 0
	locked := true
	defer func() {
		if locked {
			ib.mu.Unlock()
			return
		}
		// Deliver panicked.
		ib.mu.Lock()
		ib.requeueLocked(batch[next:])
		s.delivering = false
		ib.mu.Unlock()
	}()
	for len(s.out) > 0 {
		batch, s.out, s.spare = s.out, s.spare, nil
		locked = false
		ib.mu.Unlock()
		next = 0
		ib.deliverItems(batch, &next)
		clear(batch)
		ib.mu.Lock()
		locked = true
		if cap(batch) <= keepOut {
			s.spare = batch[:0]
		}
		batch = nil
	}
	s.delivering = false
}

// drainManyLocked delivers the routed messages of several sources, whose
// delivery the caller owns, merged in arrival order; then drains each
// source. The caller holds ib.mu; it is released on return.
func (ib *Inbox) drainManyLocked(srcs []*source) {
	var batch []item
	for _, s := range srcs {
		batch = append(batch, s.out...)
		clear(s.out)
		s.out = s.out[:0]
	}
	slices.SortFunc(batch, func(a, b item) int { return cmp.Compare(a.seq, b.seq) })
	next := 0
	merged := false
	pending := srcs // owned sources not yet handed to drainLocked
	ib.mu.Unlock()
	defer func() {
		if merged && len(pending) == 0 {
			return
		}
		// Deliver panicked: give back what this call still owns. A source
		// whose drainLocked panicked was released by drainLocked itself.
		ib.mu.Lock()
		if !merged {
			ib.requeueLocked(batch[next:])
		}
		for _, s := range pending {
			s.delivering = false
		}
		ib.mu.Unlock()
	}()
	ib.deliverItems(batch, &next)
	merged = true
	for len(pending) > 0 {
		s := pending[0]
		pending = pending[1:]
		ib.mu.Lock()
		ib.drainLocked(s)
	}
}

// deliverItems delivers batch[*next:] in order, advancing *next past each
// item before delivering it.
func (ib *Inbox) deliverItems(batch []item, next *int) {
	for *next < len(batch) {
		it := &batch[*next]
		*next++
		if ib.taken != nil {
			ib.taken(it.m)
		}
		for _, sb := range it.subs {
			sb.sub.Deliver(it.m)
		}
	}
}

// requeueLocked puts undelivered items back at the front of their
// sources' delivery buffers, keeping their order.
func (ib *Inbox) requeueLocked(rest []item) {
	for len(rest) > 0 {
		s := rest[0].src
		var mineItems, others []item
		for _, it := range rest {
			if it.src == s {
				mineItems = append(mineItems, it)
			} else {
				others = append(others, it)
			}
		}
		s.out = append(mineItems, s.out...)
		rest = others
	}
}
