package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc"
)

// slc in its default configuration: typed Samples (Send, msgpack) or raw
// bytes (SendRaw). The sender finishes a cell when the last message is
// acknowledged, that is, in the receiver's mailbox.
func init() {
	registerSLC("slc", true, "slc typed messages (Send, msgpack), acknowledged", nil)
	registerSLC("slc-raw", false, "slc SendRaw, acknowledged", nil)
}

// slcOptions returns the options of a system's node name, beyond its
// name. It is called once per node, in the process that runs it;
// idlePeers is the number of peers of the idle workload.
type slcOptions func(name string, idlePeers int) ([]slc.Option, error)

// registerSLC adds an slc system. opts, when not nil, adds options to
// every node (secure mode).
func registerSLC(name string, typed bool, about string, opts slcOptions) {
	if opts == nil {
		opts = func(string, int) ([]slc.Option, error) { return nil, nil }
	}
	cfg := slcSystem{opts: opts}
	register(&System{
		Name:  name,
		Typed: typed,
		About: about,
		OneWay: func(c Cell, rxs int, got Deliver) (Sender, error) {
			return cfg.newSender(c, rxs, got)
		},
		Echo: cfg.newEcho,
		Idle: idleIf(typed, &Idle{Listen: cfg.idleListen, Peers: cfg.idlePeers}),
	})
}

type slcSystem struct{ opts slcOptions }

func (sys slcSystem) node(name string, extra ...slc.Option) (*slc.Communicator, error) {
	return sys.idleNode(name, 0, extra...)
}

func (sys slcSystem) idleNode(name string, idlePeers int, extra ...slc.Option) (*slc.Communicator, error) {
	opts, err := sys.opts(name, idlePeers)
	if err != nil {
		return nil, err
	}
	return slc.New(append(append([]slc.Option{slc.WithName(name)}, opts...), extra...)...)
}

type slcSender struct {
	tx    *slc.Communicator
	rxs   []*slc.Communicator
	to    []slc.PeerID
	enc   *Encoder
	typed bool
	last  slc.MsgID
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	once  sync.Once
}

func (sys slcSystem) newSender(c Cell, rxs int, got Deliver) (s *slcSender, err error) {
	ctx, stop := context.WithCancel(context.Background())
	s = &slcSender{enc: c.P.NewEncoder(), typed: c.P.Typed, ctx: ctx, stop: stop}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.tx, err = sys.node("tx"); err != nil {
		return nil, err
	}
	setup, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	for i := 0; i < rxs; i++ {
		rx, err := sys.node(fmt.Sprintf("rx-%d", i))
		if err != nil {
			return nil, err
		}
		s.rxs = append(s.rxs, rx)
		addr, err := rx.Listen(setup, "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		id, err := s.tx.Connect(setup, addr.String())
		if err != nil {
			return nil, err
		}
		s.to = append(s.to, id)
		s.receive(rx, c.P, i, got)
	}
	return s, nil
}

// receive runs receiver i: it takes every message from rx's mailbox.
func (s *slcSender) receive(rx *slc.Communicator, p *Payload, i int, got Deliver) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		d := p.NewDecoder()
		for {
			m, err := rx.Receive(s.ctx)
			if err != nil {
				if s.ctx.Err() == nil && !errors.Is(err, slc.ErrClosed) {
					got(i, 0, err)
				}
				return
			}
			seq, err := checkSLC(d, m)
			m.Release() // checked: done with its buffer
			got(i, seq, err)
		}
	}()
}

// checkSLC verifies a received message: a Sample in Body, or raw bytes.
func checkSLC(d *Decoder, m slc.Message) (uint64, error) {
	if m.Err != nil {
		return 0, m.Err
	}
	if !d.p.Typed {
		return d.Check(m.Raw)
	}
	s, ok := m.Body.(Sample)
	if !ok {
		return 0, fmt.Errorf("body is a %T, not a Sample", m.Body)
	}
	return d.CheckSample(&s)
}

func (s *slcSender) Send(seq uint64) (err error) {
	if s.typed {
		s.last, err = s.tx.Send(s.ctx, s.enc.Sample(seq), s.to...)
	} else {
		s.last, err = s.tx.SendRaw(s.ctx, s.enc.Encode(seq), s.to...)
	}
	return err
}

// Finish waits until the last message is acknowledged by every receiver.
func (s *slcSender) Finish(ctx context.Context) error {
	if s.last == 0 {
		return nil
	}
	return s.tx.WaitAcknowledged(ctx, s.last, s.to...)
}

func (s *slcSender) Close() error {
	s.once.Do(func() {
		s.stop()
		if s.tx != nil {
			s.tx.Close()
		}
		for _, rx := range s.rxs {
			rx.Close()
		}
		s.wg.Wait()
	})
	return nil
}

// slcEcho: the client sends a message and receives the server's echo; the
// server receives and sends back what it got (the Sample, or the raw
// bytes).
type slcEcho struct {
	client, server *slc.Communicator
	srv            slc.PeerID
	enc            *Encoder
	dec            *Decoder
	typed          bool
	ctx            context.Context
	stop           context.CancelFunc
	wg             sync.WaitGroup
}

func (sys slcSystem) newEcho(c Cell) (r Requester, err error) {
	ctx, stop := context.WithCancel(context.Background())
	e := &slcEcho{enc: c.P.NewEncoder(), dec: c.P.NewDecoder(), typed: c.P.Typed, ctx: ctx, stop: stop}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.server, err = sys.node("echo-server"); err != nil {
		return nil, err
	}
	if e.client, err = sys.node("echo-client"); err != nil {
		return nil, err
	}
	setup, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	addr, err := e.server.Listen(setup, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if e.srv, err = e.client.Connect(setup, addr.String()); err != nil {
		return nil, err
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			m, err := e.server.Receive(ctx)
			if err != nil {
				return
			}
			if e.typed {
				_, err = e.server.Send(ctx, m.Body, m.From)
			} else {
				_, err = e.server.SendRaw(ctx, m.Raw, m.From)
			}
			if err != nil {
				return
			}
		}
	}()
	return e, nil
}

func (e *slcEcho) Request(seq uint64) (err error) {
	if e.typed {
		_, err = e.client.Send(e.ctx, e.enc.Sample(seq), e.srv)
	} else {
		_, err = e.client.SendRaw(e.ctx, e.enc.Encode(seq), e.srv)
	}
	if err != nil {
		return err
	}
	m, err := e.client.Receive(e.ctx, e.srv)
	if err != nil {
		return err
	}
	got, err := checkSLC(e.dec, m)
	if err != nil {
		return err
	}
	if got != seq {
		return fmt.Errorf("reply %d to request %d", got, seq)
	}
	return nil
}

func (e *slcEcho) Close() error {
	e.stop()
	if e.client != nil {
		e.client.Close()
	}
	if e.server != nil {
		e.server.Close()
	}
	e.wg.Wait()
	return nil
}

// Idle peers: one node listens; the child process runs n nodes that share
// one actor system and connect to it.

type slcIdleServer struct {
	hub  *slc.Communicator
	addr string
}

func (sys slcSystem) idleListen(n int, timeout time.Duration) (IdleServer, error) {
	hub, err := sys.idleNode("hub", n)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addr, err := hub.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		hub.Close()
		return nil, err
	}
	return &slcIdleServer{hub: hub, addr: addr.String()}, nil
}

func (s *slcIdleServer) Addr() string   { return s.addr }
func (s *slcIdleServer) Connected() int { return len(s.hub.Peers()) }
func (s *slcIdleServer) Close() error   { return s.hub.Close() }

func (sys slcSystem) idlePeers(addr string, n, parallel int, timeout time.Duration) (func() error, func(), error) {
	as := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterRequestLogging(false))
	nodes := make([]*slc.Communicator, 0, n)
	closeAll := func() {
		var wg sync.WaitGroup
		for _, c := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
		}
		wg.Wait()
		as.Shutdown()
	}
	for i := 0; i < n; i++ {
		c, err := sys.idleNode(idlePeerName(i), n, slc.WithActorSystem(as))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		nodes = append(nodes, c)
	}
	connect := func() error {
		return dialAll(n, parallel, func(i int) error {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, err := nodes[i].Connect(ctx, addr)
			return err
		})
	}
	return connect, closeAll, nil
}

func idlePeerName(i int) string { return fmt.Sprintf("peer-%d", i) }

func idlePeerNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = idlePeerName(i)
	}
	return names
}
