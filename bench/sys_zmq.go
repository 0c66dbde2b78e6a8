package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
)

// zmq4, the pure-Go ZeroMQ: PUSH/PULL one way, PUB/SUB for the fan-out,
// REQ/REP for the echo. PUSH sends synchronously, so its message may be
// reused once Send returns; PUB queues, so each publish gets its own copy.
func init() {
	for _, typed := range []bool{true, false} {
		name := "zmq4"
		if !typed {
			name = "zmq4-raw"
		}
		register(&System{
			Name:  name,
			Typed: typed,
			About: "go-zeromq/zmq4: PUSH/PULL one way, PUB/SUB fan-out, REQ/REP echo",
			OneWay: func(c Cell, rxs int, got Deliver) (Sender, error) {
				return newZMQSender(c, rxs, got)
			},
			Echo: newZMQEcho,
			Idle: idleIf(typed, &Idle{Listen: zmqIdleListen, Peers: zmqIdlePeers}),
		})
	}
}

const zmqListenAddr = "tcp://127.0.0.1:0"

func zmqAddr(s zmq4.Socket) string { return "tcp://" + s.Addr().String() }

type zmqSender struct {
	tx     zmq4.Socket
	rxs    []zmq4.Socket
	enc    *Encoder
	pub    bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func newZMQSender(c Cell, rxs int, got Deliver) (s *zmqSender, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	s = &zmqSender{enc: c.P.NewEncoder(), pub: rxs > 1, ctx: ctx, cancel: cancel}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ready := make([]atomic.Bool, rxs)
	if !s.pub {
		rx := zmq4.NewPull(ctx)
		s.rxs = append(s.rxs, rx)
		if err := rx.Listen(zmqListenAddr); err != nil {
			return nil, err
		}
		s.tx = zmq4.NewPush(ctx)
		if err := s.tx.Dial(zmqAddr(rx)); err != nil {
			return nil, err
		}
	} else {
		s.tx = zmq4.NewPub(ctx)
		if err := s.tx.Listen(zmqListenAddr); err != nil {
			return nil, err
		}
		for i := 0; i < rxs; i++ {
			rx := zmq4.NewSub(ctx)
			s.rxs = append(s.rxs, rx)
			if err := rx.SetOption(zmq4.OptionSubscribe, ""); err != nil {
				return nil, err
			}
			if err := rx.Dial(zmqAddr(s.tx)); err != nil {
				return nil, err
			}
		}
	}
	for i, rx := range s.rxs {
		d := c.P.NewDecoder()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				m, err := rx.Recv()
				if err != nil {
					return // closed
				}
				b := m.Bytes()
				if len(b) == 0 { // a probe: the subscription is in place
					ready[i].Store(true)
					continue
				}
				seq, err := d.Check(b)
				got(i, seq, err)
			}
		}()
	}
	if s.pub {
		// A subscription takes effect once the publisher has read it:
		// publish empty probes until every subscriber got one.
		all := func() bool {
			for i := range ready {
				if !ready[i].Load() {
					return false
				}
			}
			return true
		}
		deadline := time.Now().Add(c.Timeout)
		for !all() {
			if time.Now().After(deadline) {
				return nil, errTimeout("zmq4 subscriptions")
			}
			if err := s.tx.Send(zmq4.NewMsg([]byte{})); err != nil {
				return nil, err
			}
			time.Sleep(time.Millisecond)
		}
	}
	return s, nil
}

func (s *zmqSender) Send(seq uint64) error {
	b := s.enc.Encode(seq)
	if s.pub {
		b = append([]byte(nil), b...)
	}
	return s.tx.Send(zmq4.NewMsg(b))
}

// Finish has nothing to wait for: zmq4 neither flushes nor acknowledges.
func (s *zmqSender) Finish(context.Context) error { return nil }

func (s *zmqSender) Close() error {
	s.once.Do(func() {
		s.cancel()
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

type zmqEcho struct {
	client, server zmq4.Socket
	enc            *Encoder
	dec            *Decoder
	cancel         context.CancelFunc
	wg             sync.WaitGroup
}

func newZMQEcho(c Cell) (r Requester, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	e := &zmqEcho{enc: c.P.NewEncoder(), dec: c.P.NewDecoder(), cancel: cancel}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	e.server = zmq4.NewRep(ctx)
	if err := e.server.Listen(zmqListenAddr); err != nil {
		return nil, err
	}
	e.client = zmq4.NewReq(ctx)
	if err := e.client.Dial(zmqAddr(e.server)); err != nil {
		return nil, err
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			m, err := e.server.Recv()
			if err != nil {
				return
			}
			if err := e.server.Send(m); err != nil {
				return
			}
		}
	}()
	return e, nil
}

func (e *zmqEcho) Request(seq uint64) error {
	if err := e.client.Send(zmq4.NewMsg(e.enc.Encode(seq))); err != nil {
		return err
	}
	m, err := e.client.Recv()
	if err != nil {
		return err
	}
	return checkEcho(e.dec, m.Bytes(), seq)
}

func (e *zmqEcho) Close() error {
	e.cancel()
	if e.client != nil {
		e.client.Close()
	}
	if e.server != nil {
		e.server.Close()
	}
	e.wg.Wait()
	return nil
}

// Idle peers: PUSH sockets in the child dial one PULL socket. zmq4 does not
// tell how many peers are connected; the child's Dial returns once the
// ZMTP handshake is done.

type zmqIdleServer struct {
	s      zmq4.Socket
	cancel context.CancelFunc
}

func zmqIdleListen(int, time.Duration) (IdleServer, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := zmq4.NewPull(ctx)
	if err := s.Listen(zmqListenAddr); err != nil {
		cancel()
		return nil, err
	}
	return &zmqIdleServer{s: s, cancel: cancel}, nil
}

func (s *zmqIdleServer) Addr() string   { return zmqAddr(s.s) }
func (s *zmqIdleServer) Connected() int { return -1 }
func (s *zmqIdleServer) Close() error {
	s.cancel()
	return s.s.Close()
}

func zmqIdlePeers(addr string, n, parallel int, timeout time.Duration) (func() error, func(), error) {
	conns := newConnSet(n)
	connect := func() error {
		return dialAll(n, parallel, func(i int) error {
			ctx, cancel := context.WithCancel(context.Background())
			s := zmq4.NewPush(ctx, zmq4.WithDialerTimeout(timeout))
			if err := s.Dial(addr); err != nil {
				cancel()
				s.Close()
				return err
			}
			conns.add(i, func() { cancel(); s.Close() })
			return nil
		})
	}
	return connect, conns.closeAll, nil
}
