package group_test

import (
	"context"
	"fmt"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/group"
)

// Two members: alice and bob join "chat", alice multicasts in agreed
// order, bob leaves.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, _ := slc.New(slc.WithName("alice"))
	defer ca.Close()
	cb, _ := slc.New(slc.WithName("bob"))
	defer cb.Close()
	addr, _ := ca.Listen(ctx, "127.0.0.1:0")

	// Start the group layers before connecting.
	alice, _ := group.New(ca)
	defer alice.Close()
	bob, _ := group.New(cb)
	defer bob.Close()
	if _, err := cb.Connect(ctx, addr.String()); err != nil {
		fmt.Println(err)
		return
	}
	alice.WaitConfiguration(ctx, 2)
	bob.WaitConfiguration(ctx, 2)

	show := func(who string, m *group.Member) {
		d, err := m.Receive(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		switch d := d.(type) {
		case *group.Membership:
			fmt.Printf("%s: %s joined=%v left=%v (%s), members %v\n", who, d.Group, d.Joined, d.Left, d.Reason, d.Members)
		case *group.Message:
			fmt.Printf("%s: %q from %s, type %d, %s\n", who, d.Body, d.Sender, d.MsgType, d.Service)
		}
	}
	alice.Join(ctx, "chat")
	show("alice", alice)
	bob.Join(ctx, "chat")
	show("bob", bob)
	show("alice", alice)
	alice.Multicast(ctx, group.Agreed, "chat", 1, "hello bob")
	show("bob", bob)
	show("alice", alice)
	bob.Leave(ctx, "chat")
	show("bob", bob)
	show("alice", alice)
	// Output:
	// alice: chat joined=[alice] left=[] (join), members [alice]
	// bob: chat joined=[bob] left=[] (join), members [alice bob]
	// alice: chat joined=[bob] left=[] (join), members [alice bob]
	// bob: "hello bob" from alice, type 1, agreed
	// alice: "hello bob" from alice, type 1, agreed
	// bob: chat joined=[] left=[bob] (leave), members []
	// alice: chat joined=[] left=[bob] (leave), members [alice]
}
