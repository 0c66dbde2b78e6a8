package mailbox_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
)

func text(from peer.ID, id peer.MsgID, s string) peer.Message {
	return peer.Message{From: from, ID: id, Raw: []byte(s)}
}

func Example() {
	ib := mailbox.New(mailbox.Config{MaxMessages: 100})
	defer ib.Close()
	ctx := context.Background()

	// Each connection's reader pushes its messages in order and
	// acknowledges the n that were placed.
	n, err := ib.Push(nil, "alice", []peer.Message{
		text("alice", 1, "hi"),
		text("alice", 2, "how are you?"),
	})
	fmt.Println("placed", n, err)
	ib.Push(nil, "bob", []peer.Message{text("bob", 1, "hello")})
	ib.Push(nil, "alice", []peer.Message{text("alice", 3, "bye")})

	// A filtered receive takes the oldest message among the named sources.
	m, _ := ib.Receive(ctx, "bob")
	fmt.Printf("from bob: %s/%d %q\n", m.From, m.ID, m.Raw)

	// Unfiltered receives follow arrival order.
	for ib.Len() > 0 {
		m, _ := ib.Receive(ctx)
		fmt.Printf("%s/%d %q\n", m.From, m.ID, m.Raw)
	}
	// Output:
	// placed 2 <nil>
	// from bob: bob/1 "hello"
	// alice/1 "hi"
	// alice/2 "how are you?"
	// alice/3 "bye"
}

func ExampleInbox_Subscribe() {
	ib := mailbox.New(mailbox.Config{})
	defer ib.Close()
	ib.Push(nil, "alice", []peer.Message{text("alice", 1, "queued before")})
	ib.Push(nil, "bob", []peer.Message{text("bob", 1, "for Receive")})

	// Queued messages from alice are flushed first, then new ones follow.
	cancel := ib.Subscribe(mailbox.SubscriberFunc(func(m peer.Message) {
		fmt.Printf("delivered %s/%d %q\n", m.From, m.ID, m.Raw)
	}), "alice")
	ib.Push(nil, "alice", []peer.Message{text("alice", 2, "pushed after")})

	// After cancel, alice's messages queue again.
	cancel()
	ib.Push(nil, "alice", []peer.Message{text("alice", 3, "queued again")})
	fmt.Println("waiting:", ib.Sources())
	// Output:
	// delivered alice/1 "queued before"
	// delivered alice/2 "pushed after"
	// waiting: [bob alice]
}

func ExampleInbox_Take() {
	ib := mailbox.New(mailbox.Config{})
	defer ib.Close()
	ib.Push(nil, "alice", []peer.Message{
		text("alice", 1, "a"), text("alice", 2, "b"), text("alice", 3, "c"),
	})

	// Forward alice's messages; the link fails on the second one, which
	// stays queued with everything after it.
	errLinkDown := errors.New("link down")
	n, err := ib.Take("alice", func(m peer.Message) error {
		if m.ID == 2 {
			return errLinkDown
		}
		fmt.Printf("forwarded %s/%d\n", m.From, m.ID)
		return nil
	})
	fmt.Println(n, err, "still waiting:", ib.Len("alice"))
	// Output:
	// forwarded alice/1
	// 1 link down still waiting: 2
}
