package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/internal/wire"
)

// Messages between the owner of the sessions (the facade actor, which is
// the peer actors' parent and supervisor) and a peer actor.
type (
	// Attach tells the actor that a connection waits in its session's
	// hand-off slot (see Session.Handoff).
	Attach struct{}

	// BindRequest asks the owner whether the session may use a connection
	// this actor dialed (and, for the first one, to register the session
	// under the remote's name). The owner replies with *BindReply.
	BindRequest struct {
		Session   *Session
		Handshake *Handshake
	}

	// BindReply answers BindRequest. Err rejects the connection (the actor
	// sends the code and reason to the remote). Redirected means the owner
	// took the connection for another session with the same name: the
	// requesting actor stops. Duplicate means another connection serves
	// the session (the owner closed this one): the actor waits for it.
	BindReply struct {
		Err        error
		Redirected bool
		Duplicate  bool
	}

	// Up reports a connection that completed the RESUME exchange.
	Up struct {
		Session   *Session
		Conn      *Handshake
		Addr      string
		Dialed    bool   // this side dialed
		Resumed   bool   // the session existed before this connection
		Restarted bool   // the remote's instance changed: it restarted
		Instance  uint64 // the remote's instance ID
		// Abandoned lists chunked messages that could not be resumed (the
		// remote restarted in the middle of them): never delivered.
		Abandoned []MsgID
	}

	// HandshakeFailed reports a connection that failed before it carried
	// messages: in the handshake, or before the RESUME exchange completed.
	HandshakeFailed struct {
		Session *Session
		Addr    string
		Err     error
	}

	// Down reports a connection that ended while the session goes on.
	// Retrying is true when the actor reconnects (it will fail and be
	// restarted by its supervisor); false when it waits for the remote.
	Down struct {
		Session  *Session
		Conn     *Handshake
		Err      error
		Retrying bool
	}
)

// internal messages
type (
	dialFailed struct {
		gen uint64
		op  string
		err error
	}
	lingerExpired struct{ gen uint64 }
	graceExpired  struct{ gen uint64 }
)

// Props returns the props of the actor that owns s. The actor connects
// (dialing s.DialAddr, or serving the connection handed off to it), and
// when a connection fails it either panics with a *PeerError, so its
// supervisor restarts it with backoff (sessions with a dial address), or
// waits up to Linger for the remote to come back (sessions the remote
// dialed).
func Props(s *Session) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{s: s} })
}

// Actor owns one session's connection. It is restarted, not replaced,
// to reconnect: the session it serves survives the restart.
type Actor struct {
	s          *Session
	c          *conn
	cancelDial context.CancelFunc
	linger     *time.Timer
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if a.s.State() == StateEnded {
			ctx.Stop(ctx.Self())
			return
		}
		a.next(ctx)
	case *Attach:
		a.next(ctx)
	case *dialFailed:
		if m.gen == a.s.gen.Load() {
			if m.op == "handshake" {
				ctx.Send(ctx.Parent(), &HandshakeFailed{Session: a.s, Addr: a.s.DialAddr(), Err: m.err})
			}
			a.fail(ctx, m.op, m.err)
		}
	case *connUp:
		if a.c == nil || m.gen != a.c.gen {
			return
		}
		resumed := a.s.State() != StateConnecting
		a.c.up = true
		a.s.everUp.Store(true)
		a.s.failures = 0
		a.s.state.Store(int32(StateConnected))
		ctx.Send(ctx.Parent(), &Up{Session: a.s, Conn: a.c.hs, Addr: a.c.hs.Addr, Dialed: a.c.hs.Dialed,
			Resumed: resumed, Restarted: a.c.restarted, Instance: a.c.hs.Remote.Instance, Abandoned: m.abandoned})
	case *connDown:
		if a.c == nil || m.gen != a.c.gen {
			return
		}
		a.connDown(ctx, m.err)
	case *lingerExpired:
		if m.gen == a.s.gen.Load() && a.c == nil {
			a.end(ctx, fmt.Errorf("%w: it did not reconnect within %v", ErrPeerLost, a.s.cfg.Linger))
		}
	case *graceExpired:
		if m.gen == a.s.gen.Load() && a.c == nil {
			a.fail(ctx, "connection", errors.New("slc: the connection that replaced a duplicate never arrived"))
		}
	case *actor.Restarting:
		a.teardown(nil)
	case *actor.Stopping:
		// The owner ends a session (Session.End) before stopping its
		// actor; the reason decides the goodbye the remote gets.
		var bye *wire.Close
		switch err := a.s.Err(); {
		case errors.Is(err, ErrClosed):
			bye = &wire.Close{Code: wire.CodeShutdown, Reason: "node closed"}
		case errors.Is(err, ErrDisconnected):
			bye = &wire.Close{Code: wire.CodeNone, Reason: "disconnected"}
		}
		a.teardown(bye)
	}
}

// next serves a handed-off connection, or dials, or waits.
func (a *Actor) next(ctx actor.Context) {
	hs, needsBind := a.s.takePending()
	if hs != nil {
		if needsBind {
			a.bind(ctx, hs)
			return
		}
		a.serve(ctx, hs)
		return
	}
	if a.c != nil || a.cancelDial != nil {
		return
	}
	if addr := a.s.DialAddr(); addr != "" {
		a.dial(ctx, addr)
		return
	}
	a.startLinger(ctx)
}

// dial connects to addr and runs the handshake in a tracked goroutine.
func (a *Actor) dial(ctx actor.Context, addr string) {
	gen := a.s.gen.Add(1)
	dctx, cancel := context.WithTimeout(context.Background(), a.s.cfg.Timeout)
	a.cancelDial = cancel
	self, root := ctx.Self(), ctx.ActorSystem().Root
	cfg := a.s.cfg
	a.s.wg.Add(1)
	go func() {
		defer a.s.wg.Done()
		defer cancel()
		nc, err := cfg.Transport.Dial(dctx, addr)
		if err != nil {
			root.Send(self, &dialFailed{gen: gen, op: "dial", err: err})
			return
		}
		hs, err := RunHandshake(dctx, nc, cfg, true)
		if err != nil {
			root.Send(self, &dialFailed{gen: gen, op: "handshake", err: err})
			return
		}
		if a.s.offer(hs, gen) {
			root.Send(self, &Attach{})
		}
	}()
}

// bind asks the owner to register the session under the remote's name.
func (a *Actor) bind(ctx actor.Context, hs *Handshake) {
	f := ctx.RequestFuture(ctx.Parent(), &BindRequest{Session: a.s, Handshake: hs}, a.s.cfg.Timeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		if err != nil {
			hs.Close()
			a.fail(ctx, "handshake", err)
			return
		}
		r := res.(*BindReply)
		switch {
		case r.Redirected:
			ctx.Stop(ctx.Self())
		case r.Duplicate:
			a.cancelDial = nil
			a.awaitDuplicate(ctx)
		case r.Err != nil:
			if pe, ok := wire.AsProtocolError(r.Err); ok {
				hs.Reject(pe.Code, pe.Reason)
			} else {
				hs.Close()
			}
			ctx.Send(ctx.Parent(), &HandshakeFailed{Session: a.s, Addr: hs.Addr, Err: r.Err})
			a.fail(ctx, "handshake", r.Err)
		default:
			a.serve(ctx, hs)
		}
	})
}

// serve starts the connection loops on hs, replacing any current connection.
func (a *Actor) serve(ctx actor.Context, hs *Handshake) {
	a.teardown(nil)
	a.stopLinger()
	gen := a.s.gen.Add(1)
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.c = startConn(a.s, hs, gen, func(m any) { root.Send(self, m) })
	a.s.cur.Store(a.c)
}

func (a *Actor) connDown(ctx actor.Context, err error) {
	hs, wasUp := a.c.hs, a.c.up
	a.teardown(nil)
	if !wasUp {
		ctx.Send(ctx.Parent(), &HandshakeFailed{Session: a.s, Addr: hs.Addr, Err: err})
	}
	var gb *GoodbyeError
	if errors.As(err, &gb) {
		a.end(ctx, err)
		return
	}
	retrying := a.s.DialAddr() != ""
	if !retrying && a.s.State() == StateConnecting {
		// The remote dialed, sent a hello, and never finished the
		// handshake: there is no session to wait for.
		ctx.Send(ctx.Parent(), &Down{Session: a.s, Conn: hs, Err: err})
		a.end(ctx, fmt.Errorf("%w: its first connection failed before the handshake completed: %w", ErrPeerLost, err))
		return
	}
	if a.s.State() == StateConnected {
		a.s.state.Store(int32(StateReconnecting))
	}
	ctx.Send(ctx.Parent(), &Down{Session: a.s, Conn: hs, Err: err, Retrying: retrying})
	if pe, ok := wire.AsProtocolError(err); ok && pe.Remote && pe.Code == wire.CodeDuplicate {
		// The remote keeps another connection between the two nodes (a
		// simultaneous connect): it will reach this session shortly.
		a.awaitDuplicate(ctx)
		return
	}
	if retrying {
		a.fail(ctx, "connection", err)
		return
	}
	a.startLinger(ctx)
}

// fail turns a connection failure into an actor failure: the supervisor
// decides whether to restart (reconnect, after a backoff) or stop.
func (a *Actor) fail(ctx actor.Context, op string, err error) {
	a.teardown(nil)
	a.s.failures++
	pe := &PeerError{Peer: a.s.ID(), Addr: a.s.DialAddr(), Op: op, Err: err, attempt: a.s.failures}
	a.s.setLastErr(pe)
	panic(pe)
}

// end finishes the session from inside the actor and stops it. The owner
// learns of it from the actor's termination (a system message, which
// overtakes any user message sent before it) and reads the reason from
// the session.
func (a *Actor) end(ctx actor.Context, err error) {
	a.teardown(nil)
	a.s.End(err)
	ctx.Stop(ctx.Self())
}

// awaitDuplicate waits, up to the connect timeout, for the connection that
// won over a duplicate to be handed to the session; then it reconnects.
func (a *Actor) awaitDuplicate(ctx actor.Context) {
	a.stopLinger()
	gen := a.s.gen.Load()
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.linger = time.AfterFunc(a.s.cfg.Timeout, func() { root.Send(self, &graceExpired{gen: gen}) })
}

func (a *Actor) startLinger(ctx actor.Context) {
	a.stopLinger()
	if a.s.State() == StateConnected {
		a.s.state.Store(int32(StateReconnecting))
	}
	gen := a.s.gen.Load()
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.linger = time.AfterFunc(a.s.cfg.Linger, func() { root.Send(self, &lingerExpired{gen: gen}) })
}

func (a *Actor) stopLinger() {
	if a.linger != nil {
		a.linger.Stop()
		a.linger = nil
	}
}

// teardown stops the current connection (sending bye, if given) and any dial.
func (a *Actor) teardown(bye *wire.Close) {
	if a.cancelDial != nil {
		a.cancelDial()
		a.cancelDial = nil
	}
	a.stopLinger()
	if a.c != nil {
		a.s.cur.CompareAndSwap(a.c, nil)
		a.c.shutdown(bye)
		a.s.out.abandon()
		a.c = nil
	}
}

// Messages that may reach an actor after it stopped (a connection loop, a
// timer or a dial finishing as the actor goes) are expected there: they
// are not logged as dead letters.
func (*connUp) IgnoreDeadLetterLogging()          {}
func (*connDown) IgnoreDeadLetterLogging()        {}
func (*dialFailed) IgnoreDeadLetterLogging()      {}
func (*lingerExpired) IgnoreDeadLetterLogging()   {}
func (*graceExpired) IgnoreDeadLetterLogging()    {}
func (*Attach) IgnoreDeadLetterLogging()          {}
func (*Up) IgnoreDeadLetterLogging()              {}
func (*Down) IgnoreDeadLetterLogging()            {}
func (*HandshakeFailed) IgnoreDeadLetterLogging() {}
func (*BindRequest) IgnoreDeadLetterLogging()     {}
