// Command groupchat is a Spread-style group chat between three nodes in
// one process: alice listens, bob and carol find her through a seed
// address and each other through the addresses the members gossip. They
// join the group "chat" and talk in agreed order; alice prints what she
// receives, membership messages included. Then bob's node closes and
// carol leaves the group.
//
//	go run ./examples/groupchat
package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/group"
)

// Line is one chat line.
type Line struct {
	Text string
}

func init() { slc.Register[Line]("example.groupchat.Line") }

type node struct {
	c    *slc.Communicator
	m    *group.Member
	addr string
}

func start(ctx context.Context, name string, seeds ...string) (*node, error) {
	c, err := slc.New(slc.WithName(name))
	if err != nil {
		return nil, err
	}
	addr, err := c.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		c.Close()
		return nil, err
	}
	m, err := group.New(c, group.WithAddrs(addr.String()), group.WithSeeds(seeds...))
	if err != nil {
		c.Close()
		return nil, err
	}
	return &node{c: c, m: m, addr: addr.String()}, nil
}

func (n *node) close() {
	n.m.Close()
	n.c.Close()
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lines, err := run(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("groupchat: alice saw 3 joins, 2 departures and %d lines in agreed order\n", lines)
}

// describe turns a delivery into a chat line.
func describe(d group.Delivery) string {
	switch d := d.(type) {
	case *group.Message:
		if l, ok := d.Body.(Line); ok {
			return fmt.Sprintf("<%s> %s", d.Sender, l.Text)
		}
	case *group.Membership:
		if d.Transitional {
			return ""
		}
		var out []string
		for _, p := range d.Joined {
			out = append(out, fmt.Sprintf("%s joined", p))
		}
		why := map[group.Reason]string{group.Leave: "left the group", group.Disconnect: "disconnected",
			group.Network: "network partition"}[d.Reason]
		for _, p := range d.Left {
			out = append(out, fmt.Sprintf("%s left: %s", p, why))
		}
		return strings.Join(out, "\n")
	}
	return ""
}

func run(ctx context.Context) (int, error) {
	alice, err := start(ctx, "alice")
	if err != nil {
		return 0, err
	}
	defer alice.close()
	bob, err := start(ctx, "bob", alice.addr)
	if err != nil {
		return 0, err
	}
	defer bob.close()
	carol, err := start(ctx, "carol", alice.addr)
	if err != nil {
		return 0, err
	}
	defer carol.close()
	for _, n := range []*node{alice, bob, carol} {
		if _, err := n.m.WaitConfiguration(ctx, 3); err != nil {
			return 0, err
		}
	}

	// expect prints alice's deliveries until one contains want.
	expect := func(want string) error {
		for {
			d, err := alice.m.Receive(ctx)
			if err != nil {
				return fmt.Errorf("waiting for %q: %w", want, err)
			}
			if s := describe(d); s != "" {
				fmt.Println(s)
				if strings.Contains(s, want) {
					return nil
				}
			}
		}
	}
	for _, j := range []struct {
		n    *node
		name string
	}{{alice, "alice"}, {bob, "bob"}, {carol, "carol"}} {
		if err := j.n.m.Join(ctx, "chat"); err != nil {
			return 0, err
		}
		if err := expect(j.name + " joined"); err != nil {
			return 0, err
		}
	}
	script := []struct {
		n    *node
		text string
	}{
		{bob, "hi all"},
		{carol, "hello bob, hello alice"},
		{alice, "welcome to the chat"},
		{bob, "I have to go, bye"},
	}
	for _, s := range script {
		if _, err := s.n.m.Multicast(ctx, group.Agreed, "chat", 0, Line{Text: s.text}); err != nil {
			return 0, err
		}
		if err := expect(s.text); err != nil {
			return 0, err
		}
	}
	bob.close()
	if err := expect("bob left"); err != nil {
		return 0, err
	}
	if err := carol.m.Leave(ctx, "chat"); err != nil {
		return 0, err
	}
	if err := expect("carol left"); err != nil {
		return 0, err
	}
	return len(script), nil
}
