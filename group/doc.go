// Package group gives slc nodes Spread's group communication, without a
// daemon: named groups that nodes join and leave, multicast to one group
// or several at once with a chosen service level, and membership
// messages that say who is in a group and why that changed.
//
// # Usage
//
// A Member is the group layer of one Communicator. Start it before
// connecting, then connect the nodes (directly, through seed addresses,
// or through discovery); the members that reach each other form one
// configuration:
//
//	c, _ := slc.New(slc.WithName("alice"))
//	addr, _ := c.Listen(ctx, "127.0.0.1:7000")
//	m, _ := group.New(c, group.WithAddrs(addr.String()), group.WithSeeds("10.0.0.2:7000"))
//	defer m.Close()
//	m.Join(ctx, "chat")
//	m.Multicast(ctx, group.Agreed|group.SelfDiscard, "chat", 0, "hello")
//	for {
//		d, err := m.Receive(ctx)
//		...
//		switch d := d.(type) {
//		case *group.Message:    // d.Sender, d.Groups, d.MsgType, d.Body
//		case *group.Membership: // d.Group, d.ViewID, d.Members, d.Joined, d.Left, d.Reason
//		}
//	}
//
// Poll tells how many deliveries wait. Membership messages and installed
// configurations are also published on the communicator's EventStream
// as *Membership and *Configuration.
//
// # Service levels
//
// Unreliable, Reliable, FIFO, Causal, Agreed and Safe have Spread's
// meanings; SelfDiscard may be added to any of them. Unreliable,
// Reliable and FIFO go straight from the sender to the members; Causal,
// Agreed and Safe go through the configuration's sequencer and share one
// total order, so Causal is delivered in agreed order as well.
//
// # Protocol
//
// The protocol is the Isis family's: a fixed sequencer per configuration
// orders Causal, Agreed and Safe messages (Kaashoek and Tanenbaum's
// "PB" method), stability is learnt from the members' acknowledgements,
// and a view change runs a flush (Birman and Joseph's
// virtual synchrony, as in Isis and Spread's extended virtual synchrony):
// the coordinator collects every member's state, gives each the messages
// of the old configuration it lacks, and installs the new one once all
// hold them. The messages that end a configuration (among them those
// whose place in the total order a partition hid from their senders) are
// delivered after its transitional views, in causal order. Joins and
// leaves are ordered like messages. docs/groups.md describes the
// protocol, its guarantees, and their limits, including partitions.
//
// # Concurrency
//
// All methods of Member are safe for concurrent use. Deliveries come in
// one order whichever goroutine calls Receive.
package group
