// Command broadcast has one node send to several peers at once: Send
// without targets goes to every connected peer under one message ID, and
// each peer acknowledges it on its own. The hub prints every
// acknowledgement event as it comes, then waits until all peers have each
// message. It ends by itself.
//
//	go run ./examples/broadcast
package main

import (
	"context"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
)

// Announcement is what the hub broadcasts.
type Announcement struct {
	Seq  int
	Text string
}

func init() { slc.Register[Announcement]("example.Announcement") }

const (
	listeners     = 3
	announcements = 4
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	hub, err := slc.New(slc.WithName("hub"))
	if err != nil {
		return err
	}
	defer hub.Close()
	addr, err := hub.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}

	// Every acknowledgement is an event on the hub's EventStream. Handlers
	// run on slc's goroutines: keep them short.
	var mu sync.Mutex
	acks := map[slc.PeerID]slc.MsgID{}
	connected := make(chan slc.PeerID, listeners)
	sub := hub.ActorSystem().EventStream.Subscribe(func(ev any) {
		switch e := ev.(type) {
		case *actors.PeerConnected:
			select {
			case connected <- e.Peer:
			default: // never block in a handler
			}
		case *actors.MessagesAcknowledged:
			mu.Lock()
			acks[e.Peer] = e.UpTo
			mu.Unlock()
			fmt.Printf("hub: %s acknowledged up to message %d\n", e.Peer, e.UpTo)
		}
	})
	defer hub.ActorSystem().EventStream.Unsubscribe(sub)

	// The listeners connect to the hub and print what they receive.
	var wg sync.WaitGroup
	errs := make(chan error, listeners)
	for i := 1; i <= listeners; i++ {
		c, err := slc.New(slc.WithName(fmt.Sprintf("listener-%d", i)))
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Connect(ctx, addr.String()); err != nil {
			return err
		}
		wg.Go(func() {
			for range announcements {
				m, err := c.Receive(ctx)
				if err != nil {
					errs <- err
					return
				}
				a := m.Body.(Announcement)
				fmt.Printf("%s: received #%d %q (message %d)\n", c.Name(), a.Seq, a.Text, m.ID)
			}
		})
	}

	// Connect returns once the dialing side is up; the hub learns of each
	// listener when its side of the handshake is done.
	for range listeners {
		select {
		case p := <-connected:
			fmt.Println("hub: connected to", p)
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// Send without targets: to every peer. One ID names the message for
	// all of them; WaitAcknowledged without targets waits for all of them.
	var ids []slc.MsgID
	for seq := 1; seq <= announcements; seq++ {
		id, err := hub.Send(ctx, Announcement{Seq: seq, Text: fmt.Sprintf("announcement %d", seq)})
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if err := hub.WaitAcknowledged(ctx, id); err != nil {
			return err
		}
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	for p, upTo := range acks {
		if upTo != ids[len(ids)-1] {
			return fmt.Errorf("%s acknowledged up to %d, want %d", p, upTo, ids[len(ids)-1])
		}
	}
	fmt.Printf("broadcast: %d messages acknowledged by all %d listeners\n", len(ids), len(acks))
	return hub.Disconnect(ctx)
}
