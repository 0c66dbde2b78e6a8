package bus

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// User infos of error replies. A reply whose "rsb:error?" is "1" carries
// the error message as its data (a utf-8-string).
const (
	InfoError     = "rsb:error?"
	InfoErrorKind = "slc:error-kind"
)

// InfoTimeout is the user info of a request whose caller's context has a
// deadline: the time left when the request was published, as a Go
// duration ("1.5s"). The server's handler gets a context with that
// timeout. A relative time does not depend on the two hosts' clocks
// agreeing.
const InfoTimeout = "slc:timeout"

// Kinds of remote errors.
const (
	KindHandler       = "handler"        // the method returned an error
	KindPanic         = "panic"          // the method panicked
	KindUnknownMethod = "unknown-method" // the server has no such method
	KindBadRequest    = "bad-request"    // the request's data is not what the method takes
	KindBadReply      = "bad-reply"      // the method's result could not be converted
)

// ErrUnknownMethod matches (errors.Is) a RemoteError for a method the
// server does not have.
var ErrUnknownMethod = errors.New("bus: unknown method")

// RemoteError is an error reported by a LocalServer to a caller.
type RemoteError struct {
	Scope   Scope  // the server's scope
	Method  string // the method called
	Kind    string // KindHandler, KindPanic, ...
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("bus: %s%s: %s: %s", e.Scope, e.Method, e.Kind, e.Message)
}

// Is makes errors.Is(err, ErrUnknownMethod) true for an unknown method.
func (e *RemoteError) Is(target error) bool {
	return target == ErrUnknownMethod && e.Kind == KindUnknownMethod
}

// Handler is a method of a LocalServer. It gets the request event and
// returns the reply's data, or an error that the caller gets as a
// *RemoteError.
//
// ctx is the request's own: it ends when the caller gives up (its
// context is canceled: the caller sends a MethodCancel event), when the
// caller's deadline passes (requests carry the time left, InfoTimeout),
// when the LocalServer or its participant closes, or when the handler
// returns. A request whose context ended gets no reply: its caller has
// stopped waiting, or the server is gone.
type Handler func(ctx context.Context, req *Event) (any, error)

// LocalServer exposes methods on a scope: a call of method m is a
// request event on scope/m/, and the reply an event on the same scope
// caused by the request. Create one with NewLocalServer.
type LocalServer struct {
	p        *Participant
	scope    Scope
	informer *Informer
	listener *Listener
	ctx      context.Context // ends at Close
	cancel   context.CancelFunc
	wake     chan struct{}

	mu      sync.RWMutex
	methods map[string]Handler

	// Requests waiting for a worker or being handled. The listener adds
	// requests and applies cancels in publication order (per caller), so
	// a cancel always finds the request it names if it is not done.
	rmu     sync.Mutex
	queue   []*request
	running map[EventID]*request
}

// request is a request being handled, with its context.
type request struct {
	e      *Event
	ctx    context.Context
	cancel func(cause error)
}

// errCallerCanceled is the cause of a request context canceled by its
// caller.
var errCallerCanceled = errors.New("bus: the caller canceled the call")

// NewLocalServer starts a server on scope. Requests are handled
// concurrently, up to the participant's workers (GOMAXPROCS by default).
func (p *Participant) NewLocalServer(ctx context.Context, scope string) (*LocalServer, error) {
	sc, err := parseUserScope(scope)
	if err != nil {
		return nil, err
	}
	s := &LocalServer{p: p, scope: sc, methods: map[string]Handler{}, running: map[EventID]*request{},
		wake: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(p.ctx)
	if s.informer, err = p.NewInformer(scope, WithReliability(Reliable)); err != nil {
		s.cancel()
		return nil, err
	}
	// Requests and cancels come in order on one goroutine (the
	// listener's); workers run the handlers.
	s.listener, err = p.NewListener(ctx, scope, s.take,
		WithFilter(func(e *Event) bool { return e.Method == MethodRequest || e.Method == MethodCancel }),
		WithOrdering(Ordered))
	if err != nil {
		s.cancel()
		s.informer.Close()
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		s.Close()
		return nil, ErrClosed
	}
	p.servers[s] = struct{}{}
	p.scopesChangedLocked()
	// Tracked by p.wg: the participant's Close waits for them.
	n := max(p.cfg.workers, 1)
	p.wg.Add(n)
	p.mu.Unlock()
	for range n {
		go s.work()
	}
	return s, nil
}

// Scope returns the server's scope.
func (s *LocalServer) Scope() Scope { return s.scope }

// AddMethod exposes h as method name (a scope component: letters,
// digits, '-' and '_'), replacing any method of that name.
func (s *LocalServer) AddMethod(name string, h Handler) error {
	if !ValidComponent(name) {
		return fmt.Errorf("%w: method name %q is not a scope component", ErrInvalidScope, name)
	}
	if h == nil {
		return fmt.Errorf("bus: method %q: nil handler", name)
	}
	s.mu.Lock()
	s.methods[name] = h
	s.mu.Unlock()
	return nil
}

// AddMethod exposes fn as method name of s, with typed request and reply
// data: a request whose data is not a Req gets a bad-request error (nil
// data is the zero Req).
func AddMethod[Req, Resp any](s *LocalServer, name string, fn func(context.Context, Req) (Resp, error)) error {
	return s.AddMethod(name, func(ctx context.Context, e *Event) (any, error) {
		req, ok := e.Data.(Req)
		if !ok && e.Data != nil {
			return nil, &RemoteError{Kind: KindBadRequest,
				Message: fmt.Sprintf("request data is %T (schema %s), want %v", e.Data, e.Schema, reflect.TypeFor[Req]())}
		}
		return fn(ctx, req)
	})
}

// Close stops the server. Requests being handled get their context
// canceled and get no reply; their handlers may still run after Close
// returns (Close may be called from a handler). The participant's Close
// waits for them.
func (s *LocalServer) Close() error {
	s.cancel()
	s.listener.Close()
	s.informer.Close()
	p := s.p
	p.mu.Lock()
	delete(p.servers, s)
	if !p.closed {
		p.scopesChangedLocked()
	}
	p.mu.Unlock()
	s.rmu.Lock()
	for _, r := range s.running {
		r.cancel(context.Canceled)
	}
	clear(s.running)
	s.queue = nil
	s.rmu.Unlock()
	return nil
}

// take is the listener's handler: it queues a request for the workers,
// with a context of its own, or cancels the requests a cancel names. It
// never blocks.
func (s *LocalServer) take(e *Event) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	if e.Method == MethodCancel {
		for _, id := range e.Causes {
			if r := s.running[id]; r != nil {
				r.cancel(errCallerCanceled)
			}
		}
		return
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	r := &request{e: e, ctx: ctx, cancel: cancel}
	if d, err := time.ParseDuration(e.Meta.UserInfos[InfoTimeout]); err == nil {
		tctx, tcancel := context.WithTimeout(ctx, d)
		r.ctx = tctx
		r.cancel = func(cause error) { cancel(cause); tcancel() }
	}
	s.running[e.ID] = r
	s.queue = append(s.queue, r)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next takes the next queued request, waiting for one; nil once the
// server is closed.
func (s *LocalServer) next() *request {
	for {
		s.rmu.Lock()
		if len(s.queue) > 0 {
			r := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			if len(s.queue) == 0 {
				s.queue = nil
			}
			more := len(s.queue) > 0
			s.rmu.Unlock()
			if more {
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
			return r
		}
		s.rmu.Unlock()
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			return nil
		}
	}
}

// work runs requests until the server closes.
func (s *LocalServer) work() {
	defer s.p.wg.Done()
	for {
		r := s.next()
		if r == nil {
			return
		}
		if r.ctx.Err() == nil {
			s.serve(r)
		}
		r.cancel(nil)
		s.rmu.Lock()
		if s.running[r.e.ID] == r {
			delete(s.running, r.e.ID)
		}
		s.rmu.Unlock()
	}
}

// serve handles one request and replies, unless its context ended: the
// caller no longer waits, or the server closed.
func (s *LocalServer) serve(r *request) {
	req := r.e
	rep := &Event{Scope: req.Scope, Method: MethodReply, Causes: []EventID{req.ID}}
	fail := func(kind, msg string) {
		rep.Data = msg
		rep.Schema = ""
		rep.Meta.SetUserInfo(InfoError, "1")
		rep.Meta.SetUserInfo(InfoErrorKind, kind)
	}
	name := ""
	if req.Scope.Parent() == s.scope {
		c := req.Scope.Components()
		name = c[len(c)-1]
	}
	s.mu.RLock()
	h := s.methods[name]
	s.mu.RUnlock()
	if h == nil {
		if name == "" {
			fail(KindUnknownMethod, fmt.Sprintf("%s is not a method scope of %s", req.Scope, s.scope))
		} else {
			fail(KindUnknownMethod, fmt.Sprintf("no method %q", name))
		}
	} else {
		v, err := s.call(r.ctx, h, req)
		var re *RemoteError
		switch {
		case r.ctx.Err() != nil:
			return // nobody waits for the reply
		case errors.As(err, &re):
			fail(re.Kind, re.Message)
		case err != nil:
			fail(KindHandler, err.Error())
		default:
			rep.Data = v
		}
	}
	if err := s.informer.PublishEvent(s.ctx, rep); err != nil && s.ctx.Err() == nil {
		fail(KindBadReply, err.Error())
		s.informer.PublishEvent(s.ctx, rep)
	}
}

// call runs h, turning a panic into an error.
func (s *LocalServer) call(ctx context.Context, h Handler, req *Event) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &RemoteError{Kind: KindPanic, Message: fmt.Sprint(r)}
		}
	}()
	return h(ctx, req)
}

// RemoteServer calls the methods of a LocalServer on a scope. Create one
// with NewRemoteServer.
type RemoteServer struct {
	p        *Participant
	scope    Scope
	informer *Informer
	listener *Listener

	mu      sync.Mutex
	pending map[EventID]chan *Event
}

// NewRemoteServer returns a client of the server on scope.
func (p *Participant) NewRemoteServer(ctx context.Context, scope string) (*RemoteServer, error) {
	sc, err := parseUserScope(scope)
	if err != nil {
		return nil, err
	}
	r := &RemoteServer{p: p, scope: sc, pending: map[EventID]chan *Event{}}
	if r.informer, err = p.NewInformer(scope, WithReliability(Reliable)); err != nil {
		return nil, err
	}
	r.listener, err = p.NewListener(ctx, scope, r.reply, WithFilter(MethodFilter(MethodReply)))
	if err != nil {
		r.informer.Close()
		return nil, err
	}
	return r, nil
}

// Scope returns the server's scope.
func (r *RemoteServer) Scope() Scope { return r.scope }

func (r *RemoteServer) reply(e *Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range e.Causes {
		if ch, ok := r.pending[c]; ok {
			delete(r.pending, c)
			ch <- e
		}
	}
}

// Call calls method with req as the request's data and returns the reply
// event. A method that failed returns a *RemoteError. A call that no
// server answers waits for ctx. The handler's context follows ctx: the
// request carries ctx's deadline (as the time left, InfoTimeout), and
// when ctx ends first Call sends the server a MethodCancel event.
func (r *RemoteServer) Call(ctx context.Context, method string, req any) (*Event, error) {
	if !ValidComponent(method) {
		return nil, fmt.Errorf("%w: method name %q is not a scope component", ErrInvalidScope, method)
	}
	sc, err := r.scope.Append(method)
	if err != nil {
		return nil, err
	}
	e := &Event{Scope: sc, Method: MethodRequest, Data: req}
	if d, ok := ctx.Deadline(); ok {
		e.Meta.SetUserInfo(InfoTimeout, time.Until(d).String())
	}
	ch := make(chan *Event, 1)
	// Hold the lock until the request is registered, so that a reply
	// arriving at once (from a server in this participant) finds it.
	r.mu.Lock()
	if err := r.informer.PublishEvent(ctx, e); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	r.pending[e.ID] = ch
	r.mu.Unlock()
	select {
	case rep := <-ch:
		if rep.Meta.UserInfos[InfoError] == "1" {
			msg, _ := rep.Data.(string)
			return rep, &RemoteError{Scope: r.scope, Method: method, Kind: rep.Meta.UserInfos[InfoErrorKind], Message: msg}
		}
		return rep, nil
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.pending, e.ID)
		r.mu.Unlock()
		// Tell the server, so that the handler's context ends too. The
		// cancel is best effort: with ctx ended, it never waits for room
		// in the window.
		r.informer.PublishEvent(ctx, &Event{Scope: sc, Method: MethodCancel, Causes: []EventID{e.ID}})
		return nil, fmt.Errorf("bus: call %s%s: %w", r.scope, method, ctx.Err())
	}
}

// Call calls method and returns the reply's data as a Resp.
func Call[Resp any](ctx context.Context, r *RemoteServer, method string, req any) (Resp, error) {
	var zero Resp
	rep, err := r.Call(ctx, method, req)
	if err != nil {
		return zero, err
	}
	if rep.Data == nil {
		return zero, nil
	}
	v, ok := rep.Data.(Resp)
	if !ok {
		return zero, fmt.Errorf("bus: call %s%s: reply data is %T (schema %s), want %v",
			r.scope, method, rep.Data, rep.Schema, reflect.TypeFor[Resp]())
	}
	return v, nil
}

// Close stops the client; calls in progress wait for their context.
func (r *RemoteServer) Close() error {
	r.listener.Close()
	r.informer.Close()
	return nil
}
