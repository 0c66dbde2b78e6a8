package group

import (
	"fmt"
	"strings"

	"github.com/slc-go/slc"
)

// Service is a message's service level, with Spread's names and values.
// Exactly one level is set; SelfDiscard may be added to it:
//
//	m.Multicast(ctx, group.Agreed|group.SelfDiscard, "chat", 0, text)
type Service uint16

// Service levels. Their ordering guarantees hold among messages of the
// same path (docs/groups.md): Unreliable, Reliable and FIFO go straight
// from the sender to the members; Causal, Agreed and Safe go through the
// configuration's sequencer and share one total order.
const (
	// Unreliable: delivered at most once, may be dropped (during view
	// changes), never re-sent.
	Unreliable Service = 0x01
	// Reliable: delivered exactly once to every member that stays in the
	// view, in no promised order (in practice per-sender order).
	Reliable Service = 0x02
	// FIFO: Reliable, and in the order each sender sent them.
	FIFO Service = 0x04
	// Causal: delivered after every Causal, Agreed or Safe message that
	// had been delivered at its sender before it was sent.
	Causal Service = 0x08
	// Agreed: one total order of Causal, Agreed and Safe messages, the
	// same at every member, consistent with causal order.
	Agreed Service = 0x10
	// Safe: Agreed, and delivered only once every member of the current
	// view has received it.
	Safe Service = 0x20
	// SelfDiscard: the sender does not get its own copy.
	SelfDiscard Service = 0x40
)

const levels = Unreliable | Reliable | FIFO | Causal | Agreed | Safe

// Level returns the service level without SelfDiscard.
func (s Service) Level() Service { return s & levels }

// Valid reports whether exactly one level is set and no unknown bit.
func (s Service) Valid() bool {
	l := s.Level()
	return l != 0 && l&(l-1) == 0 && s&^(levels|SelfDiscard) == 0
}

// sequenced reports whether the level goes through the sequencer.
func (s Service) sequenced() bool { return s.Level() >= Causal }

// String returns the level's name, with "|self-discard" when set.
func (s Service) String() string {
	var name string
	switch s.Level() {
	case Unreliable:
		name = "unreliable"
	case Reliable:
		name = "reliable"
	case FIFO:
		name = "fifo"
	case Causal:
		name = "causal"
	case Agreed:
		name = "agreed"
	case Safe:
		name = "safe"
	default:
		return fmt.Sprintf("service(%#x)", uint16(s))
	}
	if s&SelfDiscard != 0 {
		name += "|self-discard"
	}
	return name
}

// ParseService parses a level name ("fifo", "agreed", ...), optionally
// followed by "|self-discard".
func ParseService(s string) (Service, error) {
	var out Service
	for _, part := range strings.Split(strings.ToLower(s), "|") {
		switch strings.TrimSpace(part) {
		case "unreliable":
			out |= Unreliable
		case "reliable":
			out |= Reliable
		case "fifo":
			out |= FIFO
		case "causal":
			out |= Causal
		case "agreed":
			out |= Agreed
		case "safe":
			out |= Safe
		case "self-discard", "selfdiscard":
			out |= SelfDiscard
		default:
			return 0, fmt.Errorf("group: unknown service %q", part)
		}
	}
	if !out.Valid() {
		return 0, fmt.Errorf("group: service %q must name exactly one level", s)
	}
	return out, nil
}

// ViewID identifies a view of a group. Views installed by a configuration
// change have Seq 0; a join or a leave makes the view whose Seq is its
// position in the configuration's total order. IDs are unique; they are
// not ordered across configurations.
type ViewID struct {
	// Coordinator and Config identify the configuration: its coordinator
	// and that coordinator's configuration counter.
	Coordinator slc.PeerID `msgpack:"c" json:"coordinator"`
	Config      uint64     `msgpack:"n" json:"config"`
	// Seq is the position of the join or leave that made the view in the
	// configuration's order, 0 for a view made by the configuration.
	Seq uint64 `msgpack:"s,omitempty" json:"seq,omitempty"`
}

// String formats the ID as "coordinator/config.seq".
func (v ViewID) String() string { return fmt.Sprintf("%s/%d.%d", v.Coordinator, v.Config, v.Seq) }

// IsZero reports whether v is the zero ViewID.
func (v ViewID) IsZero() bool { return v == ViewID{} }

// Reason tells why a view changed.
type Reason uint8

// Reasons, as Spread's CAUSED_BY_* flags.
const (
	// Join: a member joined (Joined).
	Join Reason = iota + 1
	// Leave: a member left with Leave (Left). The member that left gets a
	// membership message of its own, with no Members.
	Leave
	// Disconnect: members' nodes closed, or restarted, without leaving
	// first (Left).
	Disconnect
	// Network: members' nodes were lost (crash or partition) or
	// configurations merged (Joined, Left, or both).
	Network
)

// String returns "join", "leave", "disconnect" or "network partition".
func (r Reason) String() string {
	switch r {
	case Join:
		return "join"
	case Leave:
		return "leave"
	case Disconnect:
		return "disconnect"
	case Network:
		return "network partition"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Delivery is what Receive returns: a *Message or a *Membership.
type Delivery interface {
	delivery()
}

// Message is a multicast, as delivered to a member.
type Message struct {
	// Sender is the sending node, Serial its number for the message:
	// (Sender, Serial) identifies the message.
	Sender slc.PeerID
	Serial uint64
	// Groups are the groups it was sent to; the member belongs to one or
	// more of them.
	Groups  []string
	Service Service
	// MsgType is the application's message type (Spread's mess_type).
	MsgType int16
	// Type is the registered type name of the body ("" for []byte or an
	// unregistered value); Body the decoded body (a T for types
	// registered with slc.Register), Raw its serialized bytes, Err a
	// decoding failure.
	Type string
	Body any
	Raw  []byte
	Err  error
}

func (*Message) delivery() {}

// Membership is a membership message: the view of Group that the member
// is in from now on, or a transitional view.
type Membership struct {
	Group  string
	ViewID ViewID
	// Members of the view, sorted; empty in the message that tells a
	// member that its own Leave took effect.
	Members []slc.PeerID
	// Joined and Left: the members that came and went with this change.
	Joined []slc.PeerID
	Left   []slc.PeerID
	Reason Reason
	// Transitional marks a transitional view: the configuration is
	// changing (Network or Disconnect). Members are the members of the
	// previous view that move on together with this one; messages of the
	// previous view that still arrive are delivered after it, before the
	// next regular view. ViewID is that of the previous view.
	Transitional bool
}

func (*Membership) delivery() {}

// String describes the change in one line, e.g. "chat: bob left
// (disconnect), members [alice carol]".
func (m *Membership) String() string {
	var b strings.Builder
	b.WriteString(m.Group)
	b.WriteString(": ")
	if m.Transitional {
		fmt.Fprintf(&b, "transitional view (%s), members %v", m.Reason, m.Members)
		return b.String()
	}
	if len(m.Joined) > 0 {
		fmt.Fprintf(&b, "%v joined", m.Joined)
		if len(m.Left) > 0 {
			b.WriteString(", ")
		}
	}
	if len(m.Left) > 0 {
		fmt.Fprintf(&b, "%v left", m.Left)
	}
	if len(m.Joined) == 0 && len(m.Left) == 0 {
		b.WriteString("new view")
	}
	fmt.Fprintf(&b, " (%s), members %v, view %s", m.Reason, m.Members, m.ViewID)
	return b.String()
}

// Configuration is published on the EventStream when the node installs a
// configuration: the nodes that see each other and share one total
// order, and the coordinator that orders it.
type Configuration struct {
	Coordinator slc.PeerID
	Config      uint64
	Members     []slc.PeerID
}
