package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// protoactor-go remote: actor systems that talk over gRPC streams. A
// message must be a protobuf message, so each one is a BytesValue holding
// the msgpack form of the Sample, or the raw bytes. protoactor serializes
// on its endpoint writer after Send returns, so every Send hands over its
// own copy. The batch size is cut for large messages so that a batch stays
// within the gRPC message limit, which is raised on both sides: with the
// defaults, 1000 messages of 64 KiB exceed the 4 MB limit and the batch is
// lost.
func init() {
	for _, typed := range []bool{true, false} {
		name := "protoactor"
		if !typed {
			name = "protoactor-raw"
		}
		register(&System{
			Name:  name,
			Typed: typed,
			About: "protoactor-go remote (gRPC), Root.Send to a remote actor; RequestFuture for the echo",
			OneWay: func(c Cell, rxs int, got Deliver) (Sender, error) {
				return newProtoSender(c, rxs, got)
			},
			Echo: newProtoEcho,
		})
	}
}

const (
	protoMaxGRPC   = 256 << 20 // gRPC message limit on both sides
	protoBatchSize = 16 << 20  // bytes per endpoint writer batch, at most
)

func protoSystem(msgSize int) (*actor.ActorSystem, *remote.Remote) {
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterRequestLogging(false))
	batch := max(1, min(1000, protoBatchSize/max(msgSize, 1)))
	cfg := remote.Configure("127.0.0.1", 0,
		remote.WithEndpointWriterBatchSize(batch),
		remote.WithServerOptions(grpc.MaxRecvMsgSize(protoMaxGRPC), grpc.MaxSendMsgSize(protoMaxGRPC)),
		remote.WithDialOptions(grpc.WithInsecure(), grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(protoMaxGRPC), grpc.MaxCallSendMsgSize(protoMaxGRPC))),
	)
	r := remote.NewRemote(sys, cfg)
	r.Start()
	return sys, r
}

func stopProto(sys *actor.ActorSystem, r *remote.Remote) {
	r.Shutdown(false)
	sys.Shutdown()
}

type protoSender struct {
	tx      *actor.ActorSystem
	txr     *remote.Remote
	rxs     []*actor.ActorSystem
	rxr     []*remote.Remote
	pids    []*actor.PID
	enc     *Encoder
	typed   bool
	timeout time.Duration
}

func newProtoSender(c Cell, rxs int, got Deliver) (*protoSender, error) {
	s := &protoSender{enc: c.P.NewEncoder(), typed: c.P.Typed, timeout: c.Timeout}
	s.tx, s.txr = protoSystem(c.P.Size)
	for i := 0; i < rxs; i++ {
		sys, r := protoSystem(c.P.Size)
		s.rxs, s.rxr = append(s.rxs, sys), append(s.rxr, r)
		d := c.P.NewDecoder()
		pid, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *wrapperspb.BytesValue:
				seq, err := d.Check(m.Value)
				got(i, seq, err)
			case *wrapperspb.StringValue: // the setup ping
				ctx.Respond(m)
			}
		}), "rx")
		if err != nil {
			s.Close()
			return nil, err
		}
		rpid := actor.NewPID(sys.Address(), pid.Id)
		// Make sure the endpoint is connected before the cell starts.
		if _, err := s.tx.Root.RequestFuture(rpid, wrapperspb.String("ping"), c.Timeout).Result(); err != nil {
			s.Close()
			return nil, fmt.Errorf("protoactor: connect to receiver %d: %w", i, err)
		}
		s.pids = append(s.pids, rpid)
	}
	return s, nil
}

// Send hands each target its own BytesValue with a copy of the message:
// protoactor serializes it later, on its endpoint writer.
func (s *protoSender) Send(seq uint64) error {
	b := s.enc.Encode(seq)
	for _, pid := range s.pids {
		s.tx.Root.Send(pid, &wrapperspb.BytesValue{Value: append([]byte(nil), b...)})
	}
	return nil
}

// Finish has nothing to wait for: protoactor remote neither flushes nor
// acknowledges.
func (s *protoSender) Finish(context.Context) error { return nil }

func (s *protoSender) Close() error {
	stopProto(s.tx, s.txr)
	for i := range s.rxs {
		stopProto(s.rxs[i], s.rxr[i])
	}
	return nil
}

type protoEcho struct {
	client, server   *actor.ActorSystem
	clientR, serverR *remote.Remote
	pid              *actor.PID
	enc              *Encoder
	dec              *Decoder
	timeout          time.Duration
}

func newProtoEcho(c Cell) (Requester, error) {
	e := &protoEcho{enc: c.P.NewEncoder(), dec: c.P.NewDecoder(), timeout: c.Timeout}
	e.server, e.serverR = protoSystem(c.P.Size)
	e.client, e.clientR = protoSystem(c.P.Size)
	pid, err := e.server.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*wrapperspb.BytesValue); ok {
			ctx.Respond(m)
		}
	}), "echo")
	if err != nil {
		e.Close()
		return nil, err
	}
	e.pid = actor.NewPID(e.server.Address(), pid.Id)
	return e, nil
}

func (e *protoEcho) Request(seq uint64) error {
	b := e.enc.Encode(seq)
	res, err := e.client.Root.RequestFuture(e.pid, &wrapperspb.BytesValue{Value: append([]byte(nil), b...)}, e.timeout).Result()
	if err != nil {
		return err
	}
	m, ok := res.(*wrapperspb.BytesValue)
	if !ok {
		return fmt.Errorf("reply is a %T", res)
	}
	return checkEcho(e.dec, m.Value, seq)
}

func (e *protoEcho) Close() error {
	stopProto(e.client, e.clientR)
	stopProto(e.server, e.serverR)
	return nil
}
