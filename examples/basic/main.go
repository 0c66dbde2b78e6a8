// Command basic is a tour of the Communicator API, with three nodes in one
// process: a camera that listens, a workstation that connects to it, and
// an archive the workstation forwards readings to. It shows Listen,
// Connect, Send, SendRaw, Receive, TryReceive, IsAcknowledged,
// WaitAcknowledged, Forward, Peers, Disconnect and Close, and ends by
// itself.
//
//	go run ./examples/basic
package main

import (
	"context"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/slc-go/slc"
)

// Temperature is a typed message. Registered under a wire name, it arrives
// as a Temperature value in Message.Body.
type Temperature struct {
	Sensor  string
	Celsius float64
}

func init() {
	slc.Register[Temperature]("lab.Temperature")
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("basic: done")
}

func run(ctx context.Context) error {
	// A node that listens. Port 0 lets the system pick a free port.
	camera, err := slc.New(slc.WithName("lab-camera"))
	if err != nil {
		return err
	}
	defer camera.Close()
	addr, err := camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println("lab-camera listens on", addr)

	// A node that connects. Connect returns the remote node's name.
	station, err := slc.New(slc.WithName("workstation"))
	if err != nil {
		return err
	}
	defer station.Close()
	peer, err := station.Connect(ctx, addr.String())
	if err != nil {
		return err
	}
	fmt.Println("workstation connected to", peer)

	// Send a typed message and wait until it is in the camera's mailbox.
	id, err := station.Send(ctx, Temperature{Sensor: "ccd", Celsius: -20.5}, peer)
	if err != nil {
		return err
	}
	if err := station.WaitAcknowledged(ctx, id, peer); err != nil {
		return err
	}
	fmt.Printf("message %d acknowledged: %v\n", id, station.IsAcknowledged(id, peer))

	// Receive it on the camera: a Temperature, as it was sent.
	msg, err := camera.Receive(ctx)
	if err != nil {
		return err
	}
	t := msg.Body.(Temperature)
	fmt.Printf("%s received from %s: %s = %.1f°C (type %q)\n", camera.Name(), msg.From, t.Sensor, t.Celsius, msg.Type)

	// Raw bytes go without serialization and arrive in Message.Raw.
	rawID, err := camera.SendRaw(ctx, []byte{0xca, 0xfe, 0xba, 0xbe}, "workstation")
	if err != nil {
		return err
	}
	raw, err := station.Receive(ctx, "lab-camera")
	if err != nil {
		return err
	}
	fmt.Printf("workstation received raw message %d: % x\n", rawID, raw.Raw)

	// TryReceive never blocks: the mailbox is empty now.
	if _, ok := station.TryReceive(); !ok {
		fmt.Println("workstation's mailbox is empty")
	}

	// Forward: the workstation passes the camera's readings on to an
	// archive, as they are.
	archive, err := slc.New(slc.WithName("archive"))
	if err != nil {
		return err
	}
	defer archive.Close()
	archiveAddr, err := archive.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	if _, err := station.Connect(ctx, archiveAddr.String()); err != nil {
		return err
	}
	peers := station.Peers()
	slices.Sort(peers)
	fmt.Println("workstation's peers:", peers)

	var last slc.MsgID
	for i := range 3 {
		if last, err = camera.Send(ctx, Temperature{Sensor: "ccd", Celsius: -21 - float64(i)}, "workstation"); err != nil {
			return err
		}
	}
	if err := camera.WaitAcknowledged(ctx, last, "workstation"); err != nil {
		return err
	}
	n, err := station.Forward(ctx, "lab-camera", "archive")
	if err != nil {
		return err
	}
	fmt.Println("workstation forwarded", n, "readings to archive")
	for range n {
		m, err := archive.Receive(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("archive received from %s: %+v\n", m.From, m.Body)
	}

	// Disconnect waits until everything sent is acknowledged, then says
	// goodbye; Close (deferred above) stops the node.
	if err := station.Disconnect(ctx); err != nil {
		return err
	}
	fmt.Println("workstation disconnected; peers left:", len(station.Peers()))
	return nil
}
