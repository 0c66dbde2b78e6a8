package actors_test

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/peer"
)

// Reading is the typed message of the examples.
type Reading struct {
	Seq     int
	Celsius float64
}

func init() { slc.Register[Reading]("actors_example.Reading") }

// wait bounds each request of the examples.
const wait = 5 * time.Second

// A node driven only by commands to its facade PID: the camera listens and
// has its messages pushed to an actor of its own; the workstation
// connects, sends a typed reading and waits for its acknowledgement. Each
// command's reply is the type named in its comment.
func Example() {
	camera, err := slc.New(slc.WithName("camera"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer camera.Close()
	station, err := slc.New(slc.WithName("workstation"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer station.Close()
	cameraRoot, stationRoot := camera.ActorSystem().Root, station.ActorSystem().Root

	// Listen: the reply carries the bound address.
	res, err := cameraRoot.RequestFuture(camera.PID(), &actors.Listen{Addr: "127.0.0.1:0"}, wait).Result()
	if err != nil {
		fmt.Println(err)
		return
	}
	lr := res.(*actors.ListenResult)
	if lr.Err != nil {
		fmt.Println(lr.Err)
		return
	}

	// Subscribe: received messages go to this actor as *actors.Received
	// instead of waiting for Receive.
	got := make(chan peer.Message, 1)
	inbox := cameraRoot.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if r, ok := ctx.Message().(*actors.Received); ok {
			got <- r.Message
		}
	}))
	if _, err := cameraRoot.RequestFuture(camera.PID(), &actors.Subscribe{Subscriber: inbox}, wait).Result(); err != nil {
		fmt.Println(err)
		return
	}

	// Connect: the reply names the remote node.
	res, err = stationRoot.RequestFuture(station.PID(), &actors.Connect{Addr: lr.Addr.String()}, wait).Result()
	if err != nil {
		fmt.Println(err)
		return
	}
	cr := res.(*actors.ConnectResult)
	if cr.Err != nil {
		fmt.Println(cr.Err)
		return
	}
	fmt.Println("workstation connected to", cr.Peer)

	// Send a typed message, then wait until it is in the camera's mailbox.
	res, err = stationRoot.RequestFuture(station.PID(), &actors.Send{To: []peer.ID{cr.Peer}, Body: Reading{Seq: 1, Celsius: 21.5}}, wait).Result()
	if err != nil {
		fmt.Println(err)
		return
	}
	sr := res.(*actors.SendResult)
	if sr.Err != nil {
		fmt.Println(sr.Err)
		return
	}
	res, err = stationRoot.RequestFuture(station.PID(), &actors.WaitAcknowledged{ID: sr.ID, Peers: []peer.ID{cr.Peer}}, wait).Result()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("acknowledged:", res.(*actors.AckResult).Err == nil)

	select {
	case m := <-got:
		fmt.Printf("camera's actor received %+v from %s\n", m.Body, m.From)
	case <-time.After(wait):
		fmt.Println("nothing received")
	}

	// GetPeers: the sessions, with the address each one redials.
	res, err = stationRoot.RequestFuture(station.PID(), &actors.GetPeers{}, wait).Result()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range res.(*actors.Peers).Peers {
		fmt.Printf("workstation's peer %s: dialed %v\n", p.ID, p.Dial != "")
	}
	// Output:
	// workstation connected to camera
	// acknowledged: true
	// camera's actor received {Seq:1 Celsius:21.5} from workstation
	// workstation's peer camera: dialed true
}

// Subscribe with From takes only the messages of the named peers; the
// others wait in the mailbox for Receive (or TryReceive).
func ExampleSubscribe() {
	camera, err := slc.New(slc.WithName("camera"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer camera.Close()
	root := camera.ActorSystem().Root
	res, err := root.RequestFuture(camera.PID(), &actors.Listen{Addr: "127.0.0.1:0"}, wait).Result()
	if err != nil {
		fmt.Println(err)
		return
	}
	addr := res.(*actors.ListenResult).Addr.String()

	got := make(chan peer.Message, 1)
	inbox := root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if r, ok := ctx.Message().(*actors.Received); ok {
			got <- r.Message
		}
	}))
	sub := &actors.Subscribe{Subscriber: inbox, From: []peer.ID{"station-b"}}
	if _, err := root.RequestFuture(camera.PID(), sub, wait).Result(); err != nil {
		fmt.Println(err)
		return
	}

	// Two workstations send a reading each, and wait for its
	// acknowledgement, with the commands of their own facades.
	for i, name := range []string{"station-a", "station-b"} {
		s, err := slc.New(slc.WithName(name))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer s.Close()
		sroot := s.ActorSystem().Root
		res, err := sroot.RequestFuture(s.PID(), &actors.Connect{Addr: addr}, wait).Result()
		if err != nil {
			fmt.Println(err)
			return
		}
		to := []peer.ID{res.(*actors.ConnectResult).Peer}
		res, err = sroot.RequestFuture(s.PID(), &actors.Send{To: to, Body: Reading{Seq: i + 1, Celsius: 20}}, wait).Result()
		if err != nil {
			fmt.Println(err)
			return
		}
		id := res.(*actors.SendResult).ID
		if _, err := sroot.RequestFuture(s.PID(), &actors.WaitAcknowledged{ID: id, Peers: to}, wait).Result(); err != nil {
			fmt.Println(err)
			return
		}
	}

	select {
	case m := <-got:
		fmt.Printf("subscriber: reading %d from %s\n", m.Body.(Reading).Seq, m.From)
	case <-time.After(wait):
		fmt.Println("nothing received")
	}
	if m, ok := camera.TryReceive(); ok {
		fmt.Printf("mailbox: reading %d from %s\n", m.Body.(Reading).Seq, m.From)
	}
	// Output:
	// subscriber: reading 2 from station-b
	// mailbox: reading 1 from station-a
}
