package slc_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slc-go/slc"
)

// Send goes to every peer when no peer is named, or to the named ones. Here
// a camera connects to two workstations, sends one reading to both and
// one to the second only.
func ExampleCommunicator_Send() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	camera, err := slc.New(slc.WithName("camera"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer camera.Close()
	var stations []*slc.Communicator
	for _, name := range []string{"station-1", "station-2"} {
		s, err := slc.New(slc.WithName(name))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer s.Close()
		addr, err := s.Listen(ctx, "127.0.0.1:0")
		if err != nil {
			fmt.Println(err)
			return
		}
		if _, err := camera.Connect(ctx, addr.String()); err != nil {
			fmt.Println(err)
			return
		}
		stations = append(stations, s)
	}

	// No peer named: every peer.
	all, err := camera.Send(ctx, Temperature{Sensor: "ccd", Celsius: -20})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Only station-2.
	one, err := camera.Send(ctx, Temperature{Sensor: "lens", Celsius: 4}, "station-2")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Once acknowledged, the readings wait in the stations' mailboxes.
	if err := camera.WaitAcknowledged(ctx, all); err != nil {
		fmt.Println(err)
		return
	}
	if err := camera.WaitAcknowledged(ctx, one, "station-2"); err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range stations {
		for msg, ok := s.TryReceive(); ok; msg, ok = s.TryReceive() {
			fmt.Printf("%s received %+v from %s\n", s.Name(), msg.Body, msg.From)
		}
	}

	// A peer that is not connected is an error.
	_, err = camera.Send(ctx, Temperature{Sensor: "ccd", Celsius: -21}, "station-3")
	fmt.Println("unknown peer:", errors.Is(err, slc.ErrUnknownPeer))
	// Output:
	// station-1 received {Sensor:ccd Celsius:-20} from camera
	// station-2 received {Sensor:ccd Celsius:-20} from camera
	// station-2 received {Sensor:lens Celsius:4} from camera
	// unknown peer: true
}

// Receive takes the next message from any peer, or from the named peers
// only; it waits until one arrives or its context ends. TryReceive never
// waits.
func ExampleCommunicator_Receive() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	camera, err := slc.New(slc.WithName("camera"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer camera.Close()
	addr, err := camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Two workstations send a reading each, the first one first. Each
	// waits for its acknowledgement: the reading is then in the camera's
	// mailbox.
	for i, name := range []string{"station-a", "station-b"} {
		s, err := slc.New(slc.WithName(name))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer s.Close()
		peer, err := s.Connect(ctx, addr.String())
		if err != nil {
			fmt.Println(err)
			return
		}
		id, err := s.Send(ctx, Temperature{Sensor: "t" + fmt.Sprint(i+1), Celsius: 20 + float64(i)}, peer)
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := s.WaitAcknowledged(ctx, id, peer); err != nil {
			fmt.Println(err)
			return
		}
	}

	// From station-b only, although station-a's reading came first.
	msg, err := camera.Receive(ctx, "station-b")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("from %s: %+v\n", msg.From, msg.Body)
	// From any peer.
	msg, err = camera.Receive(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("from %s: %+v\n", msg.From, msg.Body)

	_, ok := camera.TryReceive()
	fmt.Println("another message waiting:", ok)
	wait, cancelWait := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelWait()
	_, err = camera.Receive(wait)
	fmt.Println("Receive on an empty mailbox:", err)
	// Output:
	// from station-b: {Sensor:t2 Celsius:21}
	// from station-a: {Sensor:t1 Celsius:20}
	// another message waiting: false
	// Receive on an empty mailbox: context deadline exceeded
}

// A peer acknowledges a message once it is in its mailbox, before the
// application has received it. Acknowledgements are cumulative: when the
// last message is acknowledged, so are those sent before it.
func ExampleCommunicator_WaitAcknowledged() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	camera, err := slc.New(slc.WithName("camera"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer camera.Close()
	addr, err := camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	station, err := slc.New(slc.WithName("workstation"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer station.Close()
	peer, err := station.Connect(ctx, addr.String())
	if err != nil {
		fmt.Println(err)
		return
	}

	var ids []slc.MsgID
	for i := range 3 {
		id, err := station.Send(ctx, Temperature{Sensor: "t1", Celsius: 20 + float64(i)}, peer)
		if err != nil {
			fmt.Println(err)
			return
		}
		ids = append(ids, id)
	}
	if err := station.WaitAcknowledged(ctx, ids[2], peer); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("first acknowledged too:", station.IsAcknowledged(ids[0], peer))
	fmt.Println("waiting in the camera's mailbox:", camera.Pending())
	// Output:
	// first acknowledged too: true
	// waiting in the camera's mailbox: 3
}

// A receiver of large raw messages hands each buffer back once it is done
// with it, so the next large message reuses it instead of a fresh one.
func ExampleMessage_Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	recorder, _ := slc.New(slc.WithName("recorder"))
	defer recorder.Close()
	camera, _ := slc.New(slc.WithName("camera"))
	defer camera.Close()
	addr, err := recorder.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	peer, err := camera.Connect(ctx, addr.String())
	if err != nil {
		fmt.Println(err)
		return
	}

	frame := make([]byte, 1<<20)
	for i := range 3 {
		frame[0] = byte(i)
		if _, err := camera.SendRaw(ctx, frame, peer); err != nil {
			fmt.Println(err)
			return
		}
	}
	sum := 0
	for range 3 {
		m, err := recorder.Receive(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		sum += len(m.Raw)
		fmt.Println("frame", m.Raw[0])
		m.Release() // done with m.Raw: its buffer can carry the next frame
	}
	fmt.Println(sum, "bytes")
	// Output:
	// frame 0
	// frame 1
	// frame 2
	// 3145728 bytes
}
