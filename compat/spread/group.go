package spread

import (
	"context"
	"errors"
	"fmt"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/group"
)

// GroupClient is a Client seen through slc's group types: its methods
// have the signatures of *group.Member's, so that a program written
// against an interface of them (Join, Leave, Multicast, MulticastGroups,
// Receive, TryReceive, Poll, Members, Close) runs on slc's own groups or
// on a Spread daemon, and switching is one option at start-up. Get one
// with Client.Group.
//
// The mapping: a sender or member is its Spread private group name as a
// slc.PeerID; Service and Reason are the same types; a ViewID's
// Coordinator is the daemon's proc_id in decimal, Config its membership
// time and Seq the view index; a Message's Body and Raw are the bytes
// (Type is "", as for []byte in group), Serial is 0 (Spread does not
// send the sender's serial), and a rejected message has Err
// ErrRejected. Membership.Index, VSSets and Local have no equivalent in
// group and are dropped.
type GroupClient struct {
	c *Client
}

// ErrRejected is the Err of a group.Message that the daemon rejected
// (REJECT_MESS) and sent back.
var ErrRejected = errors.New("spread: message rejected by the daemon")

// Group returns c seen through slc's group types.
func (c *Client) Group() *GroupClient { return &GroupClient{c: c} }

// Client returns the underlying client.
func (g *GroupClient) Client() *Client { return g.c }

// Join joins group (see Client.Join).
func (g *GroupClient) Join(ctx context.Context, name string) error { return g.c.Join(ctx, name) }

// Leave leaves group (see Client.Leave).
func (g *GroupClient) Leave(ctx context.Context, name string) error { return g.c.Leave(ctx, name) }

// Multicast sends v ([]byte or string) to group (see Client.Multicast).
func (g *GroupClient) Multicast(ctx context.Context, svc group.Service, name string, msgType int16, v any) (uint64, error) {
	return g.c.Multicast(ctx, svc, name, msgType, v)
}

// MulticastGroups sends v to several groups (see Client.MulticastGroups).
func (g *GroupClient) MulticastGroups(ctx context.Context, svc group.Service, groups []string, msgType int16, v any) (uint64, error) {
	return g.c.MulticastGroups(ctx, svc, groups, msgType, v)
}

// Receive returns the next delivery as a *group.Message or a
// *group.Membership.
func (g *GroupClient) Receive(ctx context.Context) (group.Delivery, error) {
	d, err := g.c.Receive(ctx)
	if err != nil {
		return nil, err
	}
	return ToGroup(d), nil
}

// TryReceive returns the next delivery if one waits.
func (g *GroupClient) TryReceive() (group.Delivery, bool) {
	d, ok := g.c.TryReceive()
	if !ok {
		return nil, false
	}
	return ToGroup(d), true
}

// Poll returns how many deliveries wait.
func (g *GroupClient) Poll() int { return g.c.Poll() }

// Members returns the members of group in the last regular view.
func (g *GroupClient) Members(name string) []slc.PeerID { return peerIDs(g.c.Members(name)) }

// Close closes the client.
func (g *GroupClient) Close() error { return g.c.Close() }

// ToGroup converts a delivery to slc's group types (see GroupClient).
func ToGroup(d Delivery) group.Delivery {
	switch d := d.(type) {
	case *Message:
		m := &group.Message{
			Sender:  slc.PeerID(d.Sender),
			Groups:  d.Groups,
			Service: d.Service,
			MsgType: d.MsgType,
			Body:    d.Body,
			Raw:     d.Raw,
		}
		if d.Rejected {
			m.Err = ErrRejected
		}
		return m
	case *Membership:
		return &group.Membership{
			Group: d.Group,
			ViewID: group.ViewID{
				Coordinator: slc.PeerID(fmt.Sprint(d.ViewID.ProcID)),
				Config:      uint64(uint32(d.ViewID.Time)),
				Seq:         uint64(uint32(d.ViewID.Index)),
			},
			Members:      peerIDs(d.Members),
			Joined:       peerIDs(d.Joined),
			Left:         peerIDs(d.Left),
			Reason:       d.Reason,
			Transitional: d.Transitional,
		}
	}
	return nil
}

func peerIDs(names []string) []slc.PeerID {
	if names == nil {
		return nil
	}
	out := make([]slc.PeerID, len(names))
	for i, n := range names {
		out[i] = slc.PeerID(n)
	}
	return out
}
