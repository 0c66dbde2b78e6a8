package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/pub"
	"go.nanomsg.org/mangos/v3/protocol/pull"
	"go.nanomsg.org/mangos/v3/protocol/push"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/req"
	"go.nanomsg.org/mangos/v3/protocol/sub"
	_ "go.nanomsg.org/mangos/v3/transport/tcp"
)

// mangos v3 (nanomsg): PUSH/PULL one way, PUB/SUB for the fan-out (its
// only one-to-many pattern), REQ/REP for the echo. The receive limit,
// 1 MB by default, is lifted (0) so that 1 MiB messages pass.
func init() {
	for _, typed := range []bool{true, false} {
		name := "mangos"
		if !typed {
			name = "mangos-raw"
		}
		register(&System{
			Name:  name,
			Typed: typed,
			About: "mangos v3: PUSH/PULL one way, PUB/SUB fan-out, REQ/REP echo; no receive limit",
			OneWay: func(c Cell, rxs int, got Deliver) (Sender, error) {
				return newMangosSender(c, rxs, got)
			},
			Echo: newMangosEcho,
			Idle: idleIf(typed, &Idle{Listen: mangosIdleListen, Peers: mangosIdlePeers}),
		})
	}
}

// mangosListen makes s listen on a free loopback port and returns the
// address.
func mangosListen(s mangos.Socket) (string, error) {
	if err := s.SetOption(mangos.OptionMaxRecvSize, 0); err != nil {
		return "", err
	}
	l, err := s.NewListener("tcp://127.0.0.1:0", nil)
	if err != nil {
		return "", err
	}
	if err := l.Listen(); err != nil {
		return "", err
	}
	return l.Address(), nil
}

func mangosDial(s mangos.Socket, addr string) error {
	if err := s.SetOption(mangos.OptionMaxRecvSize, 0); err != nil {
		return err
	}
	return s.Dial(addr)
}

// attached counts a socket's connected pipes.
func attached(s mangos.Socket) *atomic.Int64 {
	n := new(atomic.Int64)
	s.SetPipeEventHook(func(ev mangos.PipeEvent, _ mangos.Pipe) {
		switch ev {
		case mangos.PipeEventAttached:
			n.Add(1)
		case mangos.PipeEventDetached:
			n.Add(-1)
		}
	})
	return n
}

func waitFor(cond func() bool, timeout time.Duration, what string) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

type mangosSender struct {
	tx    mangos.Socket
	rxs   []mangos.Socket
	enc   *Encoder
	wg    sync.WaitGroup
	close sync.Once
}

func newMangosSender(c Cell, rxs int, got Deliver) (s *mangosSender, err error) {
	s = &mangosSender{enc: c.P.NewEncoder()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if rxs == 1 {
		// PUSH dials the PULL receiver.
		if s.tx, err = push.NewSocket(); err != nil {
			return nil, err
		}
		rx, err := pull.NewSocket()
		if err != nil {
			return nil, err
		}
		s.rxs = append(s.rxs, rx)
		addr, err := mangosListen(rx)
		if err != nil {
			return nil, err
		}
		if err := mangosDial(s.tx, addr); err != nil {
			return nil, err
		}
	} else {
		// PUB listens; every SUB dials it and subscribes to everything.
		if s.tx, err = pub.NewSocket(); err != nil {
			return nil, err
		}
		n := attached(s.tx)
		addr, err := mangosListen(s.tx)
		if err != nil {
			return nil, err
		}
		for i := 0; i < rxs; i++ {
			rx, err := sub.NewSocket()
			if err != nil {
				return nil, err
			}
			s.rxs = append(s.rxs, rx)
			if err := rx.SetOption(mangos.OptionSubscribe, []byte{}); err != nil {
				return nil, err
			}
			if err := mangosDial(rx, addr); err != nil {
				return nil, err
			}
		}
		if err := waitFor(func() bool { return n.Load() == int64(rxs) }, c.Timeout, "subscribers"); err != nil {
			return nil, err
		}
	}
	for i, rx := range s.rxs {
		d := c.P.NewDecoder()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				m, err := rx.RecvMsg()
				if err != nil {
					return // closed
				}
				seq, err := d.Check(m.Body)
				m.Free()
				got(i, seq, err)
			}
		}()
	}
	return s, nil
}

func (s *mangosSender) Send(seq uint64) error { return s.tx.Send(s.enc.Encode(seq)) }

// Finish has nothing to wait for: mangos neither flushes nor
// acknowledges.
func (s *mangosSender) Finish(context.Context) error { return nil }

func (s *mangosSender) Close() error {
	s.close.Do(func() {
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

type mangosEcho struct {
	client, server mangos.Socket
	enc            *Encoder
	dec            *Decoder
	wg             sync.WaitGroup
}

func newMangosEcho(c Cell) (r Requester, err error) {
	e := &mangosEcho{enc: c.P.NewEncoder(), dec: c.P.NewDecoder()}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.server, err = rep.NewSocket(); err != nil {
		return nil, err
	}
	addr, err := mangosListen(e.server)
	if err != nil {
		return nil, err
	}
	if e.client, err = req.NewSocket(); err != nil {
		return nil, err
	}
	if err = mangosDial(e.client, addr); err != nil {
		return nil, err
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			m, err := e.server.RecvMsg()
			if err != nil {
				return
			}
			if err := e.server.SendMsg(m); err != nil {
				return
			}
		}
	}()
	return e, nil
}

func (e *mangosEcho) Request(seq uint64) error {
	if err := e.client.Send(e.enc.Encode(seq)); err != nil {
		return err
	}
	m, err := e.client.RecvMsg()
	if err != nil {
		return err
	}
	err = checkEcho(e.dec, m.Body, seq)
	m.Free()
	return err
}

func (e *mangosEcho) Close() error {
	if e.client != nil {
		e.client.Close()
	}
	if e.server != nil {
		e.server.Close()
	}
	e.wg.Wait()
	return nil
}

// Idle peers: PUSH sockets in the child dial one PULL socket.

type mangosIdleServer struct {
	s    mangos.Socket
	n    *atomic.Int64
	addr string
}

func mangosIdleListen(int, time.Duration) (IdleServer, error) {
	s, err := pull.NewSocket()
	if err != nil {
		return nil, err
	}
	n := attached(s)
	addr, err := mangosListen(s)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &mangosIdleServer{s: s, n: n, addr: addr}, nil
}

func (s *mangosIdleServer) Addr() string   { return s.addr }
func (s *mangosIdleServer) Connected() int { return int(s.n.Load()) }
func (s *mangosIdleServer) Close() error   { return s.s.Close() }

func mangosIdlePeers(addr string, n, parallel int, timeout time.Duration) (func() error, func(), error) {
	conns := newConnSet(n)
	connect := func() error {
		return dialAll(n, parallel, func(i int) error {
			s, err := push.NewSocket()
			if err != nil {
				return err
			}
			if err := s.Dial(addr); err != nil {
				s.Close()
				return err
			}
			conns.add(i, func() { s.Close() })
			return nil
		})
	}
	return connect, conns.closeAll, nil
}
