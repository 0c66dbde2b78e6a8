// Command chat is a two-way chat between two nodes, with scripted lines
// instead of a keyboard: alice listens, bob connects, and they take turns.
// Each side sends its next line when it has received the other's. For the
// interactive version, run "slc chat --listen ADDR" and "slc chat ADDR".
//
//	go run ./examples/chat
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/slc-go/slc"
)

// Line is one chat line.
type Line struct {
	Text string
}

func init() { slc.Register[Line]("example.chat.Line") }

var (
	aliceSays = []string{"hi bob", "the camera is ready", "sending the first frame now", "bye"}
	bobSays   = []string{"hi alice", "great, I am watching", "got it, looks sharp", "bye"}
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("chat: both sides said all their lines")
}

func run(ctx context.Context) error {
	alice, err := slc.New(slc.WithName("alice"))
	if err != nil {
		return err
	}
	defer alice.Close()
	addr, err := alice.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	bob, err := slc.New(slc.WithName("bob"))
	if err != nil {
		return err
	}
	defer bob.Close()
	if _, err := bob.Connect(ctx, addr.String()); err != nil {
		return err
	}

	errs := make(chan error, 2)
	go func() { errs <- talk(ctx, alice, "bob", aliceSays, true) }()
	go func() { errs <- talk(ctx, bob, "alice", bobSays, false) }()
	for range 2 {
		if err := <-errs; err != nil {
			return err
		}
	}
	// Both said bye: bob hangs up. Disconnect flushes first.
	return bob.Disconnect(ctx)
}

// talk says lines to the other node, one per line received from it; first
// is true for the side that speaks first.
func talk(ctx context.Context, c *slc.Communicator, other slc.PeerID, lines []string, first bool) error {
	for i, text := range lines {
		if !first || i > 0 {
			m, err := c.Receive(ctx, other)
			if err != nil {
				return err
			}
			fmt.Printf("%-5s < %s: %s\n", c.Name(), m.From, m.Body.(Line).Text)
		}
		if _, err := c.Send(ctx, Line{Text: text}, other); err != nil {
			return err
		}
	}
	if first { // the last line of the other side
		m, err := c.Receive(ctx, other)
		if err != nil {
			return err
		}
		fmt.Printf("%-5s < %s: %s\n", c.Name(), m.From, m.Body.(Line).Text)
	}
	return nil
}
