package peer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
)

// testParent plays the owner of the sessions for one peer actor: it
// spawns it, answers its BindRequests and records what it reports.
type testParent struct {
	s     *Session
	bind  func(*BindRequest) *BindReply
	got   chan any
	child chan *actor.PID
}

func (p *testParent) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.child <- ctx.Spawn(Props(p.s))
	case *actor.Stopping, *actor.Stopped, *actor.Restarting:
	case *BindRequest:
		reply := &BindReply{}
		if p.bind != nil {
			reply = p.bind(m)
		} else if m.Session.ID() == "" {
			m.Session.SetID(ID(m.Handshake.Remote.Name))
		}
		ctx.Respond(reply)
	default:
		p.got <- m
	}
}

type actorHarness struct {
	t        *testing.T
	sys      *actor.ActorSystem
	parent   *actor.PID
	child    *actor.PID
	p        *testParent
	failures chan any // panics of the peer actor, as its supervisor saw them
}

// startActor spawns a peer actor for s under a test parent. The parent's
// supervisor restarts the actor while restarts > 0, then stops it.
func startActor(t *testing.T, s *Session, restarts int, bind func(*BindRequest) *BindReply) *actorHarness {
	t.Helper()
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(time.Millisecond),
	)
	h := &actorHarness{t: t, sys: sys, failures: make(chan any, 16)}
	h.p = &testParent{s: s, bind: bind, got: make(chan any, 64), child: make(chan *actor.PID, 1)}
	left := restarts
	strategy := actor.NewOneForOneStrategy(100, time.Minute, func(reason any) actor.Directive {
		h.failures <- reason
		if left > 0 {
			left--
			return actor.RestartDirective
		}
		return actor.StopDirective
	})
	h.parent = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return h.p }, actor.WithSupervisor(strategy)))
	h.child = <-h.p.child
	t.Cleanup(func() {
		if s.State() != StateEnded {
			s.End(ErrClosed)
		}
		sys.Root.StopFuture(h.parent).Wait()
		s.Wait()
		sys.Shutdown()
	})
	return h
}

// next returns the next report of type T, skipping others.
func next[T any](h *actorHarness) T {
	h.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-h.p.got:
			if v, ok := m.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			h.t.Fatalf("no %T from the peer actor", zero)
			return zero
		}
	}
}

func (h *actorHarness) failure() *PeerError {
	h.t.Helper()
	select {
	case r := <-h.failures:
		pe, ok := r.(*PeerError)
		if !ok {
			h.t.Fatalf("the actor failed with %T %v, want a *PeerError", r, r)
		}
		return pe
	case <-time.After(10 * time.Second):
		h.t.Fatal("the actor did not fail")
		return nil
	}
}

// TestActorInboundLifecycle: a session the remote dialed is served,
// lingers after a protocol violation (answered with a GOODBYE), takes the
// remote's next connection as a resume, and says goodbye when the node
// closes.
func TestActorInboundLifecycle(t *testing.T) {
	cfg := testConfig(t, "local")
	s := newSession(cfg, "remote")
	hs, r := connect(t, cfg, remoteHello("remote"))
	s.Handoff(hs)
	h := startActor(t, s, 0, nil)

	r.resume(0)
	if up := next[*Up](h); up.Session != s || up.Resumed || up.Instance != instanceOf("remote") {
		t.Fatalf("Up %+v", up)
	}
	if s.State() != StateConnected {
		t.Fatalf("state %v", s.State())
	}

	r.send(wire.AppendHello(nil, 1, remoteHello("remote")))
	r.expectClose(wire.TypeGoodbye, wire.CodeUnexpectedFrame)
	down := next[*Down](h)
	wantProto(t, down.Err, wire.CodeUnexpectedFrame)
	if down.Retrying || s.State() != StateReconnecting {
		t.Fatalf("Down %+v in state %v: an inbound session waits for its remote", down, s.State())
	}

	// The remote comes back.
	hs2, r2 := connect(t, cfg, remoteHello("remote"))
	if !s.Handoff(hs2) {
		t.Fatal("handoff refused")
	}
	h.sys.Root.Send(h.child, &Attach{})
	r2.resume(0)
	if up := next[*Up](h); !up.Resumed {
		t.Fatalf("Up after the reconnect %+v, want Resumed", up)
	}

	// The node closes: the remote gets a shutdown GOODBYE.
	s.End(ErrClosed)
	h.sys.Root.StopFuture(h.child).Wait()
	r2.expectClose(wire.TypeGoodbye, wire.CodeShutdown)
}

// TestActorRemoteGoodbye: a GOODBYE from the remote ends the session, and
// what it had not acknowledged is reported undelivered.
func TestActorRemoteGoodbye(t *testing.T) {
	cfg := testConfig(t, "local")
	s := newSession(cfg, "remote")
	ids := cfg.IDs
	for i := 0; i < 3; i++ {
		if _, err := Send(context.Background(), []*Session{s}, ids, rawMsg([]byte("m"))); err != nil {
			t.Fatal(err)
		}
	}
	hs, r := connect(t, cfg, remoteHello("remote"))
	s.Handoff(hs)
	h := startActor(t, s, 0, nil)
	r.resume(0)
	next[*Up](h)
	r.dataFrames(3)
	r.send(wire.AppendAck(nil, 1, 1), wire.AppendClose(nil, 1, wire.TypeGoodbye, wire.Close{Reason: "leaving"}))
	if term := next[*actor.Terminated](h); !term.Who.Equal(h.child) {
		t.Fatalf("terminated %v", term.Who)
	}
	var gb *GoodbyeError
	if !errors.As(s.Err(), &gb) || gb.Close.Reason != "leaving" || s.State() != StateEnded {
		t.Fatalf("session %v: %v", s.State(), s.Err())
	}
	if got := s.Undelivered(); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("undelivered %v, want [2 3]", got)
	}
	if _, err := Send(context.Background(), []*Session{s}, ids, rawMsg(nil)); !errors.As(err, new(*PeerError)) {
		t.Fatalf("send after the goodbye = %v", err)
	}
}

// TestActorLinger: an inbound session whose remote does not come back
// within Linger ends with ErrPeerLost.
func TestActorLinger(t *testing.T) {
	cfg := testConfig(t, "local", func(c *Config) { c.Linger = 100 * time.Millisecond })
	s := newSession(cfg, "remote")
	hs, r := connect(t, cfg, remoteHello("remote"))
	s.Handoff(hs)
	h := startActor(t, s, 0, nil)
	r.resume(0)
	next[*Up](h)
	start := time.Now()
	r.nc.Close()
	next[*Down](h)
	next[*actor.Terminated](h)
	if !errors.Is(s.Err(), ErrPeerLost) {
		t.Fatalf("session ended with %v", s.Err())
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("ended after %v, before the linger time", took)
	}
}

// memTransport dials and listens on an in-memory network.
type memTransport struct{ n *testutil.Network }

func (m memTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return m.n.Dial(ctx, addr)
}
func (m memTransport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	return m.n.Listen(addr)
}

// TestActorDials: a session with an address dials it, asks the owner to
// bind the connection, and serves it.
func TestActorDials(t *testing.T) {
	mem := testutil.NewNetwork()
	ln, err := mem.Listen("remote-addr")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, "local", func(c *Config) { c.Transport = memTransport{mem} })
	s := NewSession(cfg, "remote-addr")
	h := startActor(t, s, 0, nil)
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := newRemote(t, nc, remoteHello("remote"))
	defer nc.Close()
	r.handshake()
	r.resume(0)
	up := next[*Up](h)
	if !up.Dialed || up.Resumed || s.ID() != "remote" || s.DialAddr() != "remote-addr" {
		t.Fatalf("Up %+v for session %q at %q", up, s.ID(), s.DialAddr())
	}
}

// TestActorBindRejected: the owner refuses a dialed connection (the name
// is taken): the remote gets a REJECT with the code, and the actor fails
// with a PeerError its supervisor can classify.
func TestActorBindRejected(t *testing.T) {
	mem := testutil.NewNetwork()
	ln, _ := mem.Listen("remote-addr")
	defer ln.Close()
	cfg := testConfig(t, "local", func(c *Config) { c.Transport = memTransport{mem} })
	s := NewSession(cfg, "remote-addr")
	h := startActor(t, s, 0, func(*BindRequest) *BindReply {
		return &BindReply{Err: &wire.ProtocolError{Code: wire.CodeNameInUse, Reason: "taken"}}
	})
	nc, _ := ln.Accept()
	defer nc.Close()
	r := newRemote(t, nc, remoteHello("remote"))
	r.handshake()
	c := r.expectClose(wire.TypeReject, wire.CodeNameInUse)
	if c.Reason != "taken" {
		t.Fatalf("REJECT reason %q", c.Reason)
	}
	pe := h.failure()
	if pe.Op != "handshake" || pe.Attempt() != 1 || pe.Addr != "remote-addr" {
		t.Fatalf("failure %+v (attempt %d)", pe, pe.Attempt())
	}
	wantProto(t, pe, wire.CodeNameInUse)
	next[*actor.Terminated](h)
}

// TestActorDialRetries: dials to an address nobody listens on fail, and
// each failure counts one more consecutive attempt for the supervisor.
func TestActorDialRetries(t *testing.T) {
	mem := testutil.NewNetwork()
	cfg := testConfig(t, "local", func(c *Config) { c.Transport = memTransport{mem} })
	s := NewSession(cfg, "nobody")
	h := startActor(t, s, 2, nil)
	for attempt := 1; attempt <= 3; attempt++ {
		pe := h.failure()
		if pe.Op != "dial" || pe.Attempt() != attempt || pe.Addr != "nobody" {
			t.Fatalf("failure %d: %+v (attempt %d)", attempt, pe, pe.Attempt())
		}
		var oe *net.OpError
		if !errors.As(pe, &oe) {
			t.Fatalf("failure %d does not carry the dial error: %v", attempt, pe)
		}
	}
	next[*actor.Terminated](h)
	if s.LastErr() == nil {
		t.Fatal("LastErr not recorded")
	}
}
