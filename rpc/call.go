package rpc

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slc-go/slc"
)

// --- caller side ---

// pendingCall is a call waiting for its result.
type pendingCall struct {
	node slc.PeerID
	msg  *callMsg
	ch   chan outcome // buffered: finish never blocks
	once sync.Once
}

type outcome struct {
	out Args
	err error
}

func (p *pendingCall) finish(out Args, err error) {
	p.once.Do(func() { p.ch <- outcome{out, err} })
}

// Call calls method of interface iface at path on node, with args, and
// returns the method's results. It waits for the result until ctx ends;
// the time left goes with the call, so that the handler's context has the
// same deadline, and when ctx ends first the call is canceled on the
// remote node too (its handler's context is canceled).
//
// Errors are *Error values (compare with errors.Is and ErrUnknownMethod,
// ErrTimeout, ...): an unknown node, path, interface or method; bad
// arguments; a failed handler; a timeout or cancellation; a node that
// restarted or was lost while the call was in progress.
//
// A call runs at most once, even when slc delivers it again after a
// reconnect or when it is sent again after the node changed: the callee
// keeps its result until this node has seen it (each call carries the
// lowest call ID this node still awaits from the callee), and answers
// copies from there.
func (n *Node) Call(ctx context.Context, node slc.PeerID, path, iface, method string, args Args) (Args, error) {
	out, err := n.call(ctx, node, path, iface, method, args)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Node == "" {
			e.Node, e.Path, e.Interface, e.Method = node, path, iface, method
		}
	}
	return out, err
}

func (n *Node) call(ctx context.Context, node slc.PeerID, path, iface, method string, args Args) (Args, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(err)
	}
	if args == nil {
		args = Args{}
	}
	msg := &callMsg{From: n.inst, Path: path, Interface: iface, Method: method, Args: args}
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		if left <= 0 {
			return nil, ctxError(context.DeadlineExceeded)
		}
		msg.Timeout = int64(left)
	}
	p := &pendingCall{node: node, msg: msg, ch: make(chan outcome, 1)}
	n.mu.Lock()
	if n.closed || n.refused != nil {
		err := n.closedErr()
		n.mu.Unlock()
		return nil, err
	}
	if ps := n.peers[node]; ps != nil {
		msg.To = ps.inst
	}
	// IDs are taken under the lock, so that each callee's outstanding
	// IDs are in increasing order.
	msg.ID = n.nextCall.Add(1)
	q := n.outstanding[node]
	if q == nil {
		q = &idQueue{}
		n.outstanding[node] = q
	}
	q.push(msg.ID)
	msg.Low = q.low()
	n.pending[msg.ID] = p
	n.mu.Unlock()

	if _, err := n.c.Send(ctx, msg, node); err != nil {
		n.forget(msg.ID)
		return nil, sendError(err)
	}
	select {
	case o := <-p.ch:
		return o.out, o.err
	case <-ctx.Done():
		if !n.abandon(msg.ID) {
			// The result arrived at the same time: it stands.
			o := <-p.ch
			return o.out, o.err
		}
		n.sendAsync(node, &cancelMsg{ID: msg.ID, From: n.inst})
		return nil, ctxError(ctx.Err())
	}
}

// forget removes a pending call whose Send failed (it was not sent).
func (n *Node) forget(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.pending[id]; ok {
		delete(n.pending, id)
		n.settledLocked(p.node, id)
	}
}

// abandon removes a pending call whose caller stopped waiting; it reports
// whether it was still pending. The call stays outstanding (it holds the
// watermark back) until its result arrives or the session ends, since the
// callee may still run it and keeps its result until then.
func (n *Node) abandon(id uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.pending[id]
	if ok {
		delete(n.pending, id)
		n.abandoned[id] = p.node
	}
	return ok
}

// settledLocked records that no result of call id to node is awaited any
// more: it no longer holds node's watermark back.
func (n *Node) settledLocked(node slc.PeerID, id uint64) {
	if q := n.outstanding[node]; q != nil {
		q.remove(id)
		if q.empty() {
			delete(n.outstanding, node)
		}
	}
}

// settleAllLocked forgets every call outstanding to node (every one when
// node is ""), whose results can no longer come: its session ended, it
// restarted, or this node closed. The caller deals with the pending
// calls themselves.
func (n *Node) settleAllLocked(node slc.PeerID) {
	for id, to := range n.abandoned {
		if node == "" || to == node {
			delete(n.abandoned, id)
		}
	}
	if node == "" {
		clear(n.outstanding)
	} else {
		delete(n.outstanding, node)
	}
}

// idQueue holds the IDs of the calls to one callee that are outstanding:
// sent, with no result seen and not given up. IDs are pushed in
// increasing order; low is the smallest still there: the caller's
// watermark for that callee.
type idQueue struct {
	ids  []uint64            // increasing; ids[0] is outstanding
	gone map[uint64]struct{} // removed, but not yet at the front
}

func (q *idQueue) push(id uint64) { q.ids = append(q.ids, id) }
func (q *idQueue) empty() bool    { return len(q.ids) == 0 }
func (q *idQueue) low() uint64    { return q.ids[0] }

// remove removes id, which must be in q.
func (q *idQueue) remove(id uint64) {
	if len(q.ids) == 0 {
		return
	}
	if q.ids[0] != id {
		if q.gone == nil {
			q.gone = map[uint64]struct{}{}
		}
		q.gone[id] = struct{}{}
		return
	}
	q.ids = q.ids[1:]
	for len(q.ids) > 0 {
		if _, ok := q.gone[q.ids[0]]; !ok {
			break
		}
		delete(q.gone, q.ids[0])
		q.ids = q.ids[1:]
	}
}

func ctxError(err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Err: err}
	}
	return &Error{Kind: KindCanceled, Err: err}
}

// sendError classifies a failed Send of a call, which therefore never ran.
func sendError(err error) *Error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return ctxError(err)
	case errors.Is(err, slc.ErrClosed):
		return &Error{Kind: KindClosed, Message: "the communicator is closed", Err: err}
	case errors.Is(err, slc.ErrTooLarge):
		return &Error{Kind: KindBadArguments, Message: "the arguments are too large for the node", Err: err}
	}
	return &Error{Kind: KindUnknownNode, Message: "not connected to such a node", Err: err}
}

// remoteError turns a result's error into an *Error.
func remoteError(w *wireError) *Error {
	e := &Error{Kind: w.Kind, Message: w.Message}
	switch w.Kind {
	case KindTimeout:
		e.Err = context.DeadlineExceeded
	case KindCanceled:
		e.Err = context.Canceled
	}
	return e
}

// onResult takes a call's result.
func (n *Node) onResult(from slc.PeerID, r *resultMsg) {
	if r.To != n.inst {
		return // for a previous instance of this node, re-sent by slc
	}
	n.mu.Lock()
	p := n.pending[r.ID]
	if p == nil || p.node != from {
		if n.abandoned[r.ID] == from {
			// The result of a call this node stopped waiting for: the
			// callee may drop it now.
			delete(n.abandoned, r.ID)
			n.settledLocked(from, r.ID)
		} else {
			n.strayResults++
		}
		n.mu.Unlock()
		return
	}
	delete(n.pending, r.ID)
	n.settledLocked(from, r.ID)
	n.mu.Unlock()
	if r.Err != nil {
		p.finish(nil, remoteError(r.Err))
		return
	}
	out := r.Out
	if out == nil {
		out = Args{}
	}
	p.finish(normalize(out), nil)
}

// --- callee side ---

// callKey names a call: its caller and the caller's instance and call ID.
type callKey struct {
	node slc.PeerID
	inst uint64
	id   uint64
}

// callEntry is a call in progress or finished; finished ones keep their
// result for copies of the call.
type callEntry struct {
	key      callKey
	cancel   context.CancelFunc
	finished bool
	result   *resultMsg
}

// callerState is what the node knows of a remote caller and subscriber
// (of its instance inst).
//
// calls holds the caller's calls in progress and the results of its
// finished calls, until the caller's watermark (low: the lowest call ID
// it still awaits from this node, sent with each call) passes them: a
// result is dropped only once the caller has it, or gave it up, so a copy
// of a call always finds its entry or is known to be stale (below low).
type callerState struct {
	inst  uint64
	subs  map[uint64]subKey // remote subscription ID → event
	count map[subKey]int

	calls map[uint64]*callEntry
	ids   idHeap // the IDs in calls, at or above low
	low   uint64
}

func newCallerState(inst uint64) *callerState {
	return &callerState{inst: inst, subs: map[uint64]subKey{}, count: map[subKey]int{}, calls: map[uint64]*callEntry{}}
}

// advance raises the caller's watermark to low and drops the results
// below it. Calls still running below it (the caller gave them up when
// its session ended) are dropped when they finish.
func (cs *callerState) advance(low uint64) {
	if low <= cs.low {
		return
	}
	cs.low = low
	for len(cs.ids) > 0 && cs.ids[0] < low {
		id := heap.Pop(&cs.ids).(uint64)
		if e := cs.calls[id]; e != nil && e.finished {
			delete(cs.calls, id)
		}
	}
}

// idHeap is a min-heap of call IDs.
type idHeap []uint64

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *idHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// subKey names an event at a path.
type subKey struct {
	path, iface, event string
}

// callerLocked returns the state of caller from, whose instance is inst.
// A new instance means the caller restarted: the calls of the old one are
// canceled, their results dropped (they are for a process that is gone)
// and its subscriptions dropped.
func (n *Node) callerLocked(from slc.PeerID, inst uint64) *callerState {
	cs := n.callers[from]
	if cs == nil {
		cs = newCallerState(inst)
		n.callers[from] = cs
		return cs
	}
	if cs.inst != inst {
		cs.cancelRunning()
		cs = newCallerState(inst)
		n.callers[from] = cs
	}
	return cs
}

// cancelRunning cancels the caller's running calls.
func (cs *callerState) cancelRunning() {
	for _, e := range cs.calls {
		if !e.finished {
			e.cancel()
		}
	}
}

// onCall takes a call: a copy of a known call is answered from its entry;
// a copy of a call whose result the caller already has is dropped; a new
// one is checked and run on a goroutine of its own.
func (n *Node) onCall(from slc.PeerID, c *callMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs := n.callerLocked(from, c.From)
	cs.advance(c.Low)
	if e := cs.calls[c.ID]; e != nil {
		if e.finished {
			res := e.result
			n.goLocked(func() { n.send(from, res) })
		}
		// Running: its result goes out when it ends.
		return
	}
	if c.ID < cs.low {
		// The caller sent a higher watermark since: it has this call's
		// result, or gave it up. This is a stale copy; it ran already
		// (or was answered), and nobody waits for an answer.
		n.log.Debug("rpc: stale copy of a call dropped", "peer", string(from), "id", c.ID, "low", cs.low)
		return
	}
	key := callKey{from, c.From, c.ID}
	if len(cs.calls) >= n.cfg.maxResults {
		// Forgetting a result could let a copy of its call run again:
		// refuse new calls instead, without keeping anything.
		res := &resultMsg{ID: c.ID, To: c.From, From: n.inst, Err: &wireError{Kind: KindBusy, Message: fmt.Sprintf(
			"%d calls of this caller are running or hold results it has not acknowledged (WithMaxResults); the call did not run",
			len(cs.calls))}}
		n.goLocked(func() { n.send(from, res) })
		return
	}
	fn, decl, werr := n.admitLocked(c)
	if werr != nil {
		e := &callEntry{key: key}
		cs.add(e)
		res := &resultMsg{ID: c.ID, To: c.From, From: n.inst, Err: werr}
		n.finishLocked(e, res)
		n.goLocked(func() { n.send(from, res) })
		return
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if c.Timeout > 0 {
		ctx, cancel = context.WithTimeout(n.ctx, time.Duration(c.Timeout))
	} else {
		ctx, cancel = context.WithCancel(n.ctx)
	}
	ctx = context.WithValue(ctx, callInfoKey{}, CallInfo{Node: from, Path: c.Path, Interface: c.Interface, Method: c.Method})
	e := &callEntry{key: key, cancel: cancel}
	cs.add(e)
	n.running++
	n.goLocked(func() { n.run(ctx, from, c, e, fn, decl) })
}

func (cs *callerState) add(e *callEntry) {
	cs.calls[e.key.id] = e
	heap.Push(&cs.ids, e.key.id)
}

// admitLocked checks a new call and returns its handler and declaration,
// or the error to answer.
func (n *Node) admitLocked(c *callMsg) (MethodFunc, Method, *wireError) {
	fail := func(k Kind, format string, args ...any) (MethodFunc, Method, *wireError) {
		return nil, Method{}, &wireError{Kind: k, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case n.refused != nil:
		return fail(KindRefused, "%v", n.refused)
	case c.To != 0 && c.To != n.inst, c.To == 0 && c.Retry:
		return fail(KindRestarted, "the call was sent to an earlier instance of this node, which may have run it; it is not run again")
	}
	impls := n.impls[c.Path]
	if impls == nil {
		return fail(KindUnknownPath, "nothing is registered at %q", c.Path)
	}
	im := impls[c.Interface]
	if im == nil {
		return fail(KindUnknownInterface, "%s does not implement %q (it implements %s)", c.Path, c.Interface,
			strings.Join(slices.Sorted(maps.Keys(impls)), ", "))
	}
	decl, ok := im.iface.Method(c.Method)
	if !ok {
		names := make([]string, len(im.iface.Methods))
		for i, m := range im.iface.Methods {
			names[i] = m.Name
		}
		return fail(KindUnknownMethod, "%s has no method %q (methods: %s)", c.Interface, c.Method, strings.Join(names, ", "))
	}
	if c.Args == nil {
		c.Args = Args{}
	}
	normalize(c.Args)
	if err := checkArgs(decl.In, c.Args); err != nil {
		return fail(KindBadArguments, "%v", err)
	}
	if n.running >= n.cfg.maxCalls {
		return fail(KindBusy, "%d calls in progress", n.running)
	}
	return im.handler(c.Method), decl, nil
}

// run runs a call's handler and sends the result.
func (n *Node) run(ctx context.Context, from slc.PeerID, c *callMsg, e *callEntry, fn MethodFunc, decl Method) {
	out, err := invoke(ctx, fn, c.Args)
	res := &resultMsg{ID: c.ID, To: c.From, From: n.inst}
	if err != nil {
		res.Err = n.handlerError(ctx, err)
	} else {
		if out == nil {
			out = Args{}
		}
		if err := checkArgs(decl.Out, out); err != nil {
			res.Err = &wireError{Kind: KindHandler, Message: "the handler returned bad results: " + err.Error()}
		} else {
			res.Out = out
		}
	}
	e.cancel()
	n.mu.Lock()
	n.running--
	n.finishLocked(e, res)
	n.mu.Unlock()
	n.send(from, res)
}

// invoke calls fn, turning a panic into an error.
func invoke(ctx context.Context, fn MethodFunc, args Args) (out Args, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("the handler panicked: %v", r)
		}
	}()
	return fn(ctx, args)
}

// handlerError classifies a handler's error.
func (n *Node) handlerError(ctx context.Context, err error) *wireError {
	var re *Error
	if errors.As(err, &re) && re.Node == "" && re.Kind != "" {
		return &wireError{Kind: re.Kind, Message: re.Message}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &wireError{Kind: KindTimeout, Message: "the call's deadline passed in the handler: " + err.Error()}
	case errors.Is(err, context.Canceled) && n.ctx.Err() != nil:
		return &wireError{Kind: KindClosed, Message: "the node closed"}
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return &wireError{Kind: KindCanceled, Message: "the caller canceled the call"}
	}
	return &wireError{Kind: KindHandler, Message: err.Error()}
}

// finishLocked records a call's result. The result is kept only while
// the call is in its caller's table and above the caller's watermark.
func (n *Node) finishLocked(e *callEntry, res *resultMsg) {
	e.finished, e.result = true, res
	cs := n.callers[e.key.node]
	if cs == nil || cs.inst != e.key.inst || cs.calls[e.key.id] != e {
		return // the caller restarted meanwhile
	}
	if e.key.id < cs.low {
		delete(cs.calls, e.key.id)
	}
}

// onCancel cancels a running call.
func (n *Node) onCancel(from slc.PeerID, c *cancelMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cs := n.callers[from]; cs != nil && cs.inst == c.From {
		if e := cs.calls[c.ID]; e != nil && !e.finished {
			e.cancel()
		}
	}
}
