// Command actor uses slc from protoactor actors only: no blocking calls.
// Actors send the commands of package actors (Listen, Connect, Send,
// WaitAcknowledged, Subscribe) to a communicator's facade PID, get the
// replies in their mailbox, and have received messages pushed to them as
// *actors.Received.
//
// A sensor actor on one node sends readings to a thermostat actor on
// another; the thermostat answers each with a setpoint. It ends by itself.
//
//	go run ./examples/actor
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/peer"
)

// Reading goes from the sensor to the thermostat.
type Reading struct {
	Seq     int
	Celsius float64
}

// Setpoint goes back.
type Setpoint struct {
	Seq    int
	Target float64
}

func init() {
	slc.Register[Reading]("example.actor.Reading")
	slc.Register[Setpoint]("example.actor.Setpoint")
}

const readings = 3

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	hall, err := slc.New(slc.WithName("hall"))
	if err != nil {
		return err
	}
	defer hall.Close()
	lab, err := slc.New(slc.WithName("lab"))
	if err != nil {
		return err
	}
	defer lab.Close()

	// Listen, by a request to the facade.
	root := hall.ActorSystem().Root
	res, err := root.RequestFuture(hall.PID(), &actors.Listen{Addr: "127.0.0.1:0"}, 5*time.Second).Result()
	if err != nil {
		return err
	}
	lr := res.(*actors.ListenResult)
	if lr.Err != nil {
		return lr.Err
	}

	// Events of the lab node.
	es := lab.ActorSystem().EventStream
	sub := es.Subscribe(func(ev any) {
		if e, ok := ev.(*actors.PeerConnected); ok {
			fmt.Println("lab: event PeerConnected", e.Peer)
		}
	})
	defer es.Unsubscribe(sub)

	thermostat := root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &thermostat{facade: hall.PID()}
	}))
	defer root.Stop(thermostat)

	done := make(chan error, 1)
	lroot := lab.ActorSystem().Root
	sensor := lroot.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &sensor{facade: lab.PID(), addr: lr.Addr.String(), done: done}
	}))
	defer lroot.Stop(sensor)

	select {
	case err := <-done:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Printf("actor: %d readings answered with setpoints\n", readings)
	return nil
}

// thermostat answers every Reading with a Setpoint.
type thermostat struct {
	facade *actor.PID
}

func (t *thermostat) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		// Have every received message pushed to this actor.
		ctx.Request(t.facade, &actors.Subscribe{Subscriber: ctx.Self()})
	case *actors.Received:
		r, ok := m.Message.Body.(Reading)
		if !ok {
			return
		}
		fmt.Printf("thermostat: reading %d from %s: %.1f°C\n", r.Seq, m.Message.From, r.Celsius)
		target := 21.0
		if r.Celsius > 23 {
			target = 19
		}
		ctx.Request(t.facade, &actors.Send{To: []peer.ID{m.Message.From}, Body: Setpoint{Seq: r.Seq, Target: target}})
	case *actors.SendResult:
		if m.Err != nil {
			fmt.Println("thermostat: send failed:", m.Err)
		}
	}
}

// sensor connects, sends readings one at a time and waits for a setpoint
// after each.
type sensor struct {
	facade *actor.PID
	addr   string
	done   chan<- error
	peer   peer.ID
	seq    int
}

func (s *sensor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Request(s.facade, &actors.Subscribe{Subscriber: ctx.Self()})
		ctx.Request(s.facade, &actors.Connect{Addr: s.addr})
	case *actors.ConnectResult:
		if m.Err != nil {
			s.finish(m.Err)
			return
		}
		s.peer = m.Peer
		s.send(ctx)
	case *actors.SendResult:
		if m.Err != nil {
			s.finish(m.Err)
			return
		}
		ctx.Request(s.facade, &actors.WaitAcknowledged{ID: m.ID, Peers: []peer.ID{s.peer}})
	case *actors.AckResult:
		if m.Err == nil {
			fmt.Printf("sensor: message %d acknowledged\n", m.ID)
		}
	case *actors.Received:
		sp, ok := m.Message.Body.(Setpoint)
		if !ok {
			return
		}
		fmt.Printf("sensor: setpoint %.1f°C for reading %d\n", sp.Target, sp.Seq)
		if s.seq == readings {
			s.finish(nil)
			return
		}
		s.send(ctx)
	}
}

// finish reports the outcome once; it never blocks the actor.
func (s *sensor) finish(err error) {
	select {
	case s.done <- err:
	default:
	}
}

func (s *sensor) send(ctx actor.Context) {
	s.seq++
	ctx.Request(s.facade, &actors.Send{To: []peer.ID{s.peer}, Body: Reading{Seq: s.seq, Celsius: 20 + 2*float64(s.seq)}})
}
