// Command durable shows slc.WithStore: a node that keeps its state in a
// store comes back after a restart as the same node, with the messages it
// had acknowledged but not yet handed to the application, and without the
// ones it had. It runs two nodes in this process and ends by itself.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/slc-go/slc"
)

// Reading is the message the lab camera sends.
type Reading struct {
	N       int
	Celsius float64
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "durable:", err)
		os.Exit(1)
	}
}

func run() error {
	slc.Register[Reading]("example.Reading")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "slc-durable-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The workstation keeps its state in dir.
	station, err := slc.New(slc.WithName("workstation"), slc.WithStore(dir))
	if err != nil {
		return err
	}
	addr, err := station.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	camera, err := slc.New(slc.WithName("lab-camera"), slc.WithRetries(slc.RetryForever))
	if err != nil {
		return err
	}
	defer camera.Close()
	peer, err := camera.Connect(ctx, addr.String())
	if err != nil {
		return err
	}
	var last slc.MsgID
	for n := 1; n <= 5; n++ {
		if last, err = camera.Send(ctx, Reading{N: n, Celsius: 20 + float64(n)/10}, peer); err != nil {
			return err
		}
	}
	// Acknowledged: all five are in the workstation's store.
	if err := camera.WaitAcknowledged(ctx, last, peer); err != nil {
		return err
	}
	for range 2 {
		msg, err := station.Receive(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("workstation (first run): reading %d\n", msg.Body.(Reading).N)
	}
	if err := station.Close(); err != nil {
		return err
	}
	fmt.Println("workstation: stopped with 3 readings not yet taken")

	// The next run opens the same store: same node, same instance.
	station, err = slc.New(slc.WithStore(dir))
	if err != nil {
		return err
	}
	defer station.Close()
	fmt.Printf("workstation: restarted as %s with %d readings waiting\n", station.Name(), station.Pending())
	for station.Pending() > 0 {
		msg, err := station.Receive(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("workstation (second run): reading %d from %s\n", msg.Body.(Reading).N, msg.From)
	}
	fmt.Println("durable: 5 readings, each taken once across a restart")
	return nil
}
