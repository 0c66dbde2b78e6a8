package rpc

import (
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
// answers copies from the results it keeps (WithResultCache).
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
	msg := &callMsg{ID: n.nextCall.Add(1), From: n.inst, Path: path, Interface: iface, Method: method, Args: args}
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
		if !n.forget(msg.ID) {
			// The result arrived at the same time: it stands.
			o := <-p.ch
			return o.out, o.err
		}
		n.sendAsync(node, &cancelMsg{ID: msg.ID, From: n.inst})
		return nil, ctxError(ctx.Err())
	}
}

// forget removes a pending call; it reports whether it was still pending.
func (n *Node) forget(id uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.pending[id]
	delete(n.pending, id)
	return ok
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
		n.mu.Unlock()
		return
	}
	delete(n.pending, r.ID)
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
	at       time.Time
}

// callerState is what the node knows of a remote caller and subscriber.
type callerState struct {
	inst  uint64
	subs  map[uint64]subKey // remote subscription ID → event
	count map[subKey]int
}

// subKey names an event at a path.
type subKey struct {
	path, iface, event string
}

// callerLocked returns the state of caller from, whose instance is inst.
// A new instance means the caller restarted: the calls of the old one are
// canceled and its subscriptions dropped.
func (n *Node) callerLocked(from slc.PeerID, inst uint64) *callerState {
	cs := n.callers[from]
	if cs == nil {
		cs = &callerState{inst: inst, subs: map[uint64]subKey{}, count: map[subKey]int{}}
		n.callers[from] = cs
		return cs
	}
	if cs.inst != inst {
		n.cancelCallsLocked(from, cs.inst)
		cs.inst, cs.subs, cs.count = inst, map[uint64]subKey{}, map[subKey]int{}
	}
	return cs
}

// cancelCallsLocked cancels the running calls of caller from (of instance
// inst, or of every instance when inst is 0).
func (n *Node) cancelCallsLocked(from slc.PeerID, inst uint64) {
	for k, e := range n.calls {
		if k.node == from && (inst == 0 || k.inst == inst) && !e.finished {
			e.cancel()
		}
	}
}

// onCall takes a call: a copy of a known call is answered from its entry;
// a new one is checked and run on a goroutine of its own.
func (n *Node) onCall(from slc.PeerID, c *callMsg) {
	key := callKey{from, c.From, c.ID}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.callerLocked(from, c.From)
	n.evictLocked()
	if e := n.calls[key]; e != nil {
		if e.finished {
			res := e.result
			n.goLocked(func() { n.send(from, res) })
		}
		// Running: its result goes out when it ends.
		return
	}
	fn, decl, werr := n.admitLocked(c)
	if werr != nil {
		e := &callEntry{key: key}
		n.calls[key] = e
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
	n.calls[key] = e
	n.running++
	n.goLocked(func() { n.run(ctx, from, c, e, fn, decl) })
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

// finishLocked records a call's result, and drops expired results.
func (n *Node) finishLocked(e *callEntry, res *resultMsg) {
	e.finished, e.result, e.at = true, res, n.cfg.clock.Now()
	n.done = append(n.done, e)
	n.evictLocked()
}

// evictLocked drops the results older than the TTL, and the oldest ones
// past the maximum.
func (n *Node) evictLocked() {
	now := n.cfg.clock.Now()
	for len(n.done) > 0 {
		e := n.done[0]
		if len(n.done) <= n.cfg.maxResults && now.Sub(e.at) < n.cfg.resultTTL {
			break
		}
		if n.calls[e.key] == e {
			delete(n.calls, e.key)
		}
		n.done[0] = nil
		n.done = n.done[1:]
	}
}

// onCancel cancels a running call.
func (n *Node) onCancel(from slc.PeerID, c *cancelMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e := n.calls[callKey{from, c.From, c.ID}]; e != nil && !e.finished {
		e.cancel()
	}
}
