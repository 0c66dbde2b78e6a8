package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATS core through an embedded server: publishers and subscribers are
// separate client connections, as they would be across processes. The
// only settings changed from the defaults are the largest payload (1 MiB
// messages do not fit the default 1 MB) and the subscribers' pending
// limits (unlimited, so the client never drops as a slow consumer).
func init() {
	for _, typed := range []bool{true, false} {
		name := "nats"
		if !typed {
			name = "nats-raw"
		}
		register(&System{
			Name:  name,
			Typed: typed,
			About: "NATS core, embedded nats-server; Publish, then Flush at the end; subscription callbacks",
			OneWay: func(c Cell, rxs int, got Deliver) (Sender, error) {
				return newNATSSender(c, rxs, got)
			},
			Echo: newNATSEcho,
			Idle: idleIf(typed, &Idle{Listen: natsIdleListen, Peers: natsIdlePeers}),
		})
	}
}

func startNATS(timeout time.Duration) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(timeout) {
		s.Shutdown()
		return nil, errors.New("nats-server did not start")
	}
	return s, nil
}

func stopNATS(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

func natsConnect(url string, timeout time.Duration, opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(url, append([]nats.Option{nats.Timeout(timeout), nats.NoReconnect()}, opts...)...)
}

type natsSender struct {
	srv  *server.Server
	pub  *nats.Conn
	subs []*nats.Conn
	enc  *Encoder
}

const natsSubject = "bench.data"

func newNATSSender(c Cell, rxs int, got Deliver) (s *natsSender, err error) {
	s = &natsSender{enc: c.P.NewEncoder()}
	if s.srv, err = startNATS(c.Timeout); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.pub, err = natsConnect(s.srv.ClientURL(), c.Timeout); err != nil {
		return nil, err
	}
	for i := 0; i < rxs; i++ {
		// A subscriber the server drops (as a slow consumer) loses
		// messages: say so.
		nc, err := natsConnect(s.srv.ClientURL(), c.Timeout, nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				got(i, 0, fmt.Errorf("nats: disconnected: %w", err))
			}
		}))
		if err != nil {
			return nil, err
		}
		s.subs = append(s.subs, nc)
		d := c.P.NewDecoder()
		sub, err := nc.Subscribe(natsSubject, func(m *nats.Msg) {
			seq, err := d.Check(m.Data)
			got(i, seq, err)
		})
		if err != nil {
			return nil, err
		}
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return nil, err
		}
		nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			got(i, 0, fmt.Errorf("nats: %w", err))
		})
		if err := nc.FlushTimeout(c.Timeout); err != nil { // the subscription is in place
			return nil, err
		}
	}
	return s, nil
}

func (s *natsSender) Send(seq uint64) error {
	return s.pub.Publish(natsSubject, s.enc.Encode(seq))
}

// Finish flushes the publisher: a PING/PONG round trip with the server
// once everything before it is written.
func (s *natsSender) Finish(ctx context.Context) error { return s.pub.FlushWithContext(ctx) }

func (s *natsSender) Close() error {
	if s.pub != nil {
		s.pub.Close()
	}
	for _, nc := range s.subs {
		nc.Close()
	}
	stopNATS(s.srv)
	return nil
}

// natsEcho: Request on the client, Respond in the server's callback.
type natsEcho struct {
	srv            *server.Server
	client, server *nats.Conn
	enc            *Encoder
	dec            *Decoder
	timeout        time.Duration
}

func newNATSEcho(c Cell) (r Requester, err error) {
	e := &natsEcho{enc: c.P.NewEncoder(), dec: c.P.NewDecoder(), timeout: c.Timeout}
	if e.srv, err = startNATS(c.Timeout); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.server, err = natsConnect(e.srv.ClientURL(), c.Timeout); err != nil {
		return nil, err
	}
	if _, err = e.server.Subscribe("bench.echo", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		return nil, err
	}
	if err = e.server.FlushTimeout(c.Timeout); err != nil {
		return nil, err
	}
	if e.client, err = natsConnect(e.srv.ClientURL(), c.Timeout); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *natsEcho) Request(seq uint64) error {
	m, err := e.client.Request("bench.echo", e.enc.Encode(seq), e.timeout)
	if err != nil {
		return err
	}
	return checkEcho(e.dec, m.Data, seq)
}

func (e *natsEcho) Close() error {
	if e.client != nil {
		e.client.Close()
	}
	if e.server != nil {
		e.server.Close()
	}
	stopNATS(e.srv)
	return nil
}

// Idle peers: client connections to the embedded server.

type natsIdleServer struct{ srv *server.Server }

func natsIdleListen(_ int, timeout time.Duration) (IdleServer, error) {
	s, err := startNATS(timeout)
	if err != nil {
		return nil, err
	}
	return &natsIdleServer{srv: s}, nil
}

func (s *natsIdleServer) Addr() string   { return s.srv.ClientURL() }
func (s *natsIdleServer) Connected() int { return s.srv.NumClients() }
func (s *natsIdleServer) Close() error   { stopNATS(s.srv); return nil }

func natsIdlePeers(addr string, n, parallel int, timeout time.Duration) (func() error, func(), error) {
	conns := newConnSet(n)
	connect := func() error {
		return dialAll(n, parallel, func(i int) error {
			nc, err := natsConnect(addr, timeout)
			if err != nil {
				return err
			}
			conns.add(i, nc.Close)
			return nil
		})
	}
	return connect, conns.closeAll, nil
}
