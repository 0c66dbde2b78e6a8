// Command timernode is the rpc tests' helper: an rpc node that offers the
// Timer at /timer and runs until it is killed or its standard input
// closes. It prints "listening ADDR" once it listens.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/examples/timer/timer"
	"github.com/slc-go/slc/rpc"
)

func main() {
	name := flag.String("name", "timernode", "node name")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	if err := run(*name, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "timernode:", err)
		os.Exit(1)
	}
}

func run(name, addr string) error {
	c, err := slc.New(slc.WithName(name), slc.WithHeartbeat(100*time.Millisecond, 2*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := rpc.New(c)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Register("/timer", timer.New(timer.RealClock{}).Impl); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := c.Listen(ctx, addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", a)
	io.Copy(io.Discard, os.Stdin) // until the test closes it
	return nil
}
