package spread

import (
	"fmt"
	"strings"

	"github.com/slc-go/slc/group"
)

// Service is a message's service level: slc's group.Service, whose names
// and values are those of Spread (sp.h). Exactly one level is set, and
// SelfDiscard may be added to it.
//
//	c.Multicast(ctx, spread.Agreed|spread.SelfDiscard, "chat", 0, text)
type Service = group.Service

// Service levels, with Spread's meanings (see group.Service).
const (
	Unreliable  = group.Unreliable  // UNRELIABLE_MESS
	Reliable    = group.Reliable    // RELIABLE_MESS
	FIFO        = group.FIFO        // FIFO_MESS
	Causal      = group.Causal      // CAUSAL_MESS
	Agreed      = group.Agreed      // AGREED_MESS
	Safe        = group.Safe        // SAFE_MESS
	SelfDiscard = group.SelfDiscard // SELF_DISCARD: the sender does not get its own copy
)

// ParseService parses a level name ("fifo", "agreed", ...), optionally
// followed by "|self-discard": it is group.ParseService, whose errors it
// reports as this package's.
func ParseService(s string) (Service, error) {
	svc, err := group.ParseService(s)
	if err != nil {
		return 0, fmt.Errorf("spread: %s", strings.TrimPrefix(err.Error(), "group: "))
	}
	return svc, nil
}

// ViewID is Spread's group_id: it identifies a view of a group.
type ViewID struct {
	ProcID int32 // the daemon that made the view (memb_id.proc_id)
	Time   int32 // its membership's time stamp (memb_id.time)
	Index  int32 // the view's index within that membership
}

// String formats the ID as "proc/time.index".
func (v ViewID) String() string { return fmt.Sprintf("%d/%d.%d", v.ProcID, v.Time, v.Index) }

// IsZero reports whether v is the zero ViewID.
func (v ViewID) IsZero() bool { return v == ViewID{} }

// Reason tells why a view changed: Spread's CAUSED_BY_* flags. It is
// slc's group.Reason, whose values are Spread's.
type Reason = group.Reason

// Reasons, with Spread's meanings (see group.Reason).
const (
	Join       = group.Join       // CAUSED_BY_JOIN
	Leave      = group.Leave      // CAUSED_BY_LEAVE
	Disconnect = group.Disconnect // CAUSED_BY_DISCONNECT
	Network    = group.Network    // CAUSED_BY_NETWORK
)

// Delivery is what Receive returns: a *Message or a *Membership.
type Delivery interface {
	delivery()
}

// Message is a regular message, as the daemon delivers it.
type Message struct {
	// Sender is the sender's private group name ("#user#daemon").
	Sender string
	// Groups are the groups it was sent to.
	Groups  []string
	Service Service
	// MsgType is the application's message type (Spread's mess_type).
	MsgType int16
	// Body is the data; Raw the same bytes (as in group.Message, whose
	// Body is the decoded value).
	Body []byte
	Raw  []byte
	// Rejected marks a message of this client that the daemon sent back
	// (REJECT_MESS) instead of delivering it.
	Rejected bool
}

func (*Message) delivery() {}

// Membership is a membership message.
type Membership struct {
	Group  string
	ViewID ViewID
	// Members of the view, in the daemon's order; empty in the message
	// that tells this client that its own Leave took effect, and in
	// transitional messages.
	Members []string
	// Joined and Left: the members that came and went (see the package
	// doc for how they are found).
	Joined []string
	Left   []string
	Reason Reason
	// Transitional marks Spread's TRANSITION_MESS: the configuration is
	// changing; a regular membership message follows.
	Transitional bool
	// Index is this client's position in Members (Spread sends it in
	// mess_type), -1 when it is not a member.
	Index int
	// VSSets are Spread 4's virtual-synchrony sets: the groups of members
	// that moved together into this view; Local indexes this client's.
	VSSets [][]string
	Local  int
}

func (*Membership) delivery() {}

// String describes the change in one line, e.g. "chat: [#bob#d1] left
// (disconnect), members [#alice#d1]".
func (m *Membership) String() string {
	var b strings.Builder
	b.WriteString(m.Group)
	b.WriteString(": ")
	if m.Transitional {
		b.WriteString("transitional view")
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
	fmt.Fprintf(&b, " (%s), members %v, view %s", m.Reason, m.Members, m.ViewID)
	return b.String()
}
