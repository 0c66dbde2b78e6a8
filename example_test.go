package slc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/supervisor"
)

// Temperature is a typed message: registered once, it arrives as a
// Temperature value in Message.Body.
type Temperature struct {
	Sensor  string
	Celsius float64
}

func init() { slc.Register[Temperature]("example.Temperature") }

// Two nodes on loopback: listen, connect, send a typed message, receive it,
// and wait for its acknowledgement.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	camera, _ := slc.New(slc.WithName("lab-camera"))
	defer camera.Close()
	station, _ := slc.New(slc.WithName("workstation"))
	defer station.Close()

	addr, err := camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	peer, err := station.Connect(ctx, addr.String())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("connected to", peer)

	id, _ := station.Send(ctx, Temperature{Sensor: "t1", Celsius: 21.5}, peer)
	if err := station.WaitAcknowledged(ctx, id, peer); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("acknowledged:", station.IsAcknowledged(id, peer))

	msg, _ := camera.Receive(ctx)
	t := msg.Body.(Temperature)
	fmt.Printf("from %s: %s = %.1f°C\n", msg.From, t.Sensor, t.Celsius)
	// Output:
	// connected to lab-camera
	// acknowledged: true
	// from workstation: t1 = 21.5°C
}

// A communicator with its own supervision strategy: reconnect attempts
// with a fixed, short delay and a budget of two retries, watched on the
// actor system's event stream.
func ExampleWithSupervisor() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	strategy := &supervisor.Backoff{
		Initial: 20 * time.Millisecond,
		Max:     20 * time.Millisecond,
		Jitter:  -1, // no jitter: the same delay every time
		Retries: 2,
	}
	c, _ := slc.New(slc.WithName("impatient"), slc.WithSupervisor(strategy), slc.WithTimeout(time.Second))
	defer c.Close()

	sub := c.ActorSystem().EventStream.Subscribe(func(ev any) {
		if r, ok := ev.(*actors.PeerReconnecting); ok {
			fmt.Printf("attempt %d failed; retrying in %v\n", r.Attempt, r.Delay)
		}
	})
	defer c.ActorSystem().EventStream.Unsubscribe(sub)

	// Nothing listens on this address.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()

	_, err := c.Connect(ctx, addr)
	fmt.Println("gave up:", errors.Is(err, slc.ErrPeerLost))
	// Output:
	// attempt 1 failed; retrying in 20ms
	// attempt 2 failed; retrying in 20ms
	// gave up: true
}

// Actor users talk to the facade PID with the messages of package actors,
// and have deliveries pushed to their own actor.
func Example_actors() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, _ := slc.New(slc.WithName("a"))
	defer a.Close()
	b, _ := slc.New(slc.WithName("b"))
	defer b.Close()
	root := a.ActorSystem().Root

	res, _ := root.RequestFuture(a.PID(), &actors.Listen{Addr: "127.0.0.1:0"}, time.Second).Result()
	addr := res.(*actors.ListenResult).Addr

	done := make(chan struct{})
	inbox := root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if r, ok := ctx.Message().(*actors.Received); ok {
			fmt.Printf("%s sent %+v\n", r.Message.From, r.Message.Body)
			close(done)
		}
	}))
	root.RequestFuture(a.PID(), &actors.Subscribe{Subscriber: inbox}, time.Second).Wait()

	if _, err := b.Connect(ctx, addr.String()); err != nil {
		fmt.Println(err)
		return
	}
	b.Send(ctx, Temperature{Sensor: "t2", Celsius: 19})
	<-done
	// Output:
	// b sent {Sensor:t2 Celsius:19}
}
