// Command timer is supcon's Timer example on slc's rpc layer: a node
// offers the interface com.example.Timer at /timer, and a client adds a
// timer, sees it listed, and gets the timeout event when it expires.
//
// By default both run in this process and the program ends by itself:
//
//	go run ./examples/timer
//
// The client adds a 5-second timer, as in supcon's example (-seconds sets
// another duration). The Timer itself is package
// github.com/slc-go/slc/examples/timer/timer, whose timers run on an
// injected clock: the tests drive this program with a fake one.
//
// They can also run apart, and the slc command can talk to the server:
//
//	go run ./examples/timer -serve 127.0.0.1:7000     # runs until Ctrl-C
//	go run ./examples/timer -connect 127.0.0.1:7000
//	slc describe -c 127.0.0.1:7000 timer
//	slc watch -c 127.0.0.1:7000 timer /timer com.example.Timer timeout
//	slc call -c 127.0.0.1:7000 timer /timer com.example.Timer add name=tea seconds=3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/examples/timer/timer"
	"github.com/slc-go/slc/rpc"
)

func main() {
	serve := flag.String("serve", "", "only serve the Timer, listening on this address, until Ctrl-C")
	connect := flag.String("connect", "", "only run the client, against the server at this address")
	seconds := flag.Float64("seconds", 5, "the client's timer, in seconds")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	clock := timer.RealClock{}
	var err error
	switch {
	case *serve != "":
		err = runServer(ctx, *serve, clock, func(addr string) { fmt.Println("timer: serving on", addr) })
	case *connect != "":
		err = runClient(ctx, os.Stdout, *connect, clock, *seconds)
	default:
		err = runBoth(ctx, os.Stdout, clock, *seconds)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// runBoth runs the server and the client in this process, on clock.
func runBoth(ctx context.Context, out io.Writer, clock timer.Clock, seconds float64) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second+time.Duration(seconds*float64(time.Second)))
	defer cancel()
	sctx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runServer(sctx, "127.0.0.1:0", clock, func(addr string) { ready <- addr }) }()
	var err error
	select {
	case addr := <-ready:
		err = runClient(ctx, out, addr, clock, seconds)
	case err = <-done:
		return err
	}
	stopServer()
	return errors.Join(err, <-done)
}

// runServer offers the Timer, on clock, on a node named "timer" until ctx
// ends.
func runServer(ctx context.Context, addr string, clock timer.Clock, listening func(string)) error {
	c, err := slc.New(slc.WithName("timer"))
	if err != nil {
		return err
	}
	defer c.Close()
	node, err := rpc.New(c)
	if err != nil {
		return err
	}
	defer node.Close()
	t := timer.New(clock)
	defer t.Stop()
	if err := node.Register("/timer", t.Impl); err != nil {
		return err
	}
	a, err := c.Listen(ctx, addr)
	if err != nil {
		return err
	}
	listening(a.String())
	<-ctx.Done()
	return nil
}

// runClient adds a timer of the given seconds on the server and waits
// for its timeout. clock is the server's, to check that the timer did not
// fire early.
func runClient(ctx context.Context, out io.Writer, addr string, clock timer.Clock, seconds float64) error {
	c, err := slc.New(slc.WithName("timer-client"))
	if err != nil {
		return err
	}
	defer c.Close()
	node, err := rpc.New(c)
	if err != nil {
		return err
	}
	defer node.Close()
	peer, err := node.Connect(ctx, addr)
	if err != nil {
		return err
	}

	// What does the node offer?
	d, err := node.Describe(ctx, peer)
	if err != nil {
		return err
	}
	for _, p := range d.Paths {
		for _, i := range p.Interfaces {
			fmt.Fprintf(out, "%s offers %s at %s: %s\n", peer, i.Name, p.Path, i.Description)
		}
	}

	// Subscribe to timeout, and wait until the node holds the subscription.
	fired := make(chan string, 1)
	sub, err := timer.TimeoutEv.On(node, peer, "/timer", func(from slc.PeerID, ev timer.Timeout) { fired <- ev.Name })
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := sub.Wait(ctx); err != nil {
		return err
	}

	// Add a timer and see it listed.
	start := clock.Now()
	if _, err := timer.Add.Call(ctx, node, peer, "/timer", timer.AddIn{Name: "tea", Seconds: seconds}); err != nil {
		return err
	}
	running, err := timer.List.Call(ctx, node, peer, "/timer", rpc.Empty{})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "running timers:", running.Names)

	// A typo is a typed remote error.
	_, err = node.Call(ctx, peer, "/timer", "com.example.Timer", "ad", rpc.Args{"name": "x"})
	fmt.Fprintln(out, "unknown method:", errors.Is(err, rpc.ErrUnknownMethod), "-", err)

	select {
	case name := <-fired:
		if clock.Now().Sub(start) < time.Duration(seconds*float64(time.Second)) {
			return errors.New("the timer fired early")
		}
		fmt.Fprintf(out, "timer: %s timed out after %vs\n", name, seconds)
	case <-ctx.Done():
		return fmt.Errorf("no timeout event: %w", ctx.Err())
	}
	return nil
}
