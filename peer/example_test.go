package peer_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
)

// The first part of a connection's handshake, on both ends of a loopback
// TCP connection: preamble, security (plain here) and the hello exchange.
// Each side learns the other's name; a Session then takes the connection.
func ExampleRunHandshake() {
	config := func(name string, instance uint64) *peer.Config {
		c := peer.Config{Name: name, Instance: instance, Inbox: mailbox.New(mailbox.Config{}), Timeout: 5 * time.Second}.WithDefaults()
		if err := c.Validate(); err != nil {
			panic(err)
		}
		return &c
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()

	ctx := context.Background()
	accepted := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			accepted <- err.Error()
			return
		}
		h, err := peer.RunHandshake(ctx, conn, config("robot", 2), false)
		if err != nil {
			accepted <- err.Error()
			return
		}
		defer h.Close()
		accepted <- "robot was dialed by " + h.Remote.Name
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	h, err := peer.RunHandshake(ctx, conn, config("workstation", 1), true)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	fmt.Println("workstation dialed " + h.Remote.Name)
	fmt.Println(<-accepted)
	// Output:
	// workstation dialed robot
	// robot was dialed by workstation
}
