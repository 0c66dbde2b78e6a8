// Command hello is the README's example: a camera listens, a workstation
// connects and sends it a typed message, and the camera receives it once
// the workstation has seen it acknowledged. It ends by itself.
//
//	go run ./examples/hello
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/slc-go/slc"
)

type Temperature struct {
	Sensor  string
	Celsius float64
}

func init() { slc.Register[Temperature]("lab.Temperature") }

func run(ctx context.Context) error {
	camera, err := slc.New(slc.WithName("lab-camera"))
	if err != nil {
		return err
	}
	defer camera.Close()
	addr, err := camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}

	station, err := slc.New(slc.WithName("workstation"))
	if err != nil {
		return err
	}
	defer station.Close()
	peer, err := station.Connect(ctx, addr.String())
	if err != nil {
		return err
	}

	id, err := station.Send(ctx, Temperature{"t1", 21.5}, peer)
	if err != nil {
		return err
	}
	if err := station.WaitAcknowledged(ctx, id, peer); err != nil { // in the camera's mailbox
		return err
	}

	msg, err := camera.Receive(ctx)
	if err != nil {
		return err
	}
	fmt.Println(msg.From, msg.Body.(Temperature).Celsius) // workstation 21.5
	return nil
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}
