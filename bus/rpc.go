package bus

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// User infos of error replies. A reply whose "rsb:error?" is "1" carries
// the error message as its data (a utf-8-string).
const (
	InfoError     = "rsb:error?"
	InfoErrorKind = "slc:error-kind"
)

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
type Handler func(ctx context.Context, req *Event) (any, error)

// LocalServer exposes methods on a scope: a call of method m is a
// request event on scope/m/, and the reply an event on the same scope
// caused by the request. Create one with NewLocalServer.
type LocalServer struct {
	p        *Participant
	scope    Scope
	informer *Informer
	listener *Listener
	ctx      context.Context
	cancel   context.CancelFunc

	mu      sync.RWMutex
	methods map[string]Handler
}

// NewLocalServer starts a server on scope. Requests are handled
// concurrently, up to the participant's workers (GOMAXPROCS by default).
func (p *Participant) NewLocalServer(ctx context.Context, scope string) (*LocalServer, error) {
	sc, err := parseUserScope(scope)
	if err != nil {
		return nil, err
	}
	s := &LocalServer{p: p, scope: sc, methods: map[string]Handler{}}
	s.ctx, s.cancel = context.WithCancel(p.ctx)
	if s.informer, err = p.NewInformer(scope, WithReliability(Reliable)); err != nil {
		return nil, err
	}
	s.listener, err = p.NewListener(ctx, scope, s.serve,
		WithFilter(MethodFilter(MethodRequest)), WithOrdering(Unordered))
	if err != nil {
		s.informer.Close()
		return nil, err
	}
	p.mu.Lock()
	p.servers[s] = struct{}{}
	if !p.closed {
		p.scopesChangedLocked()
	}
	p.mu.Unlock()
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
// canceled; their replies may still be sent.
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
	return nil
}

// serve handles one request.
func (s *LocalServer) serve(req *Event) {
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
		v, err := s.call(h, req)
		var re *RemoteError
		switch {
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
func (s *LocalServer) call(h Handler, req *Event) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &RemoteError{Kind: KindPanic, Message: fmt.Sprint(r)}
		}
	}()
	return h(s.ctx, req)
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
// server answers waits for ctx.
func (r *RemoteServer) Call(ctx context.Context, method string, req any) (*Event, error) {
	if !ValidComponent(method) {
		return nil, fmt.Errorf("%w: method name %q is not a scope component", ErrInvalidScope, method)
	}
	sc, err := r.scope.Append(method)
	if err != nil {
		return nil, err
	}
	e := &Event{Scope: sc, Method: MethodRequest, Data: req}
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
