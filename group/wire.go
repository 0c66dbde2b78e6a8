package group

import (
	"errors"
	"fmt"
	"slices"

	"github.com/slc-go/slc"
)

// The group layer's messages. Each is an slc message of a registered type
// named "slc.group.*", sent with the communicator's serializer over the
// ordinary sessions, so it arrives exactly once and in order per sender
// while both nodes live. docs/groups.md describes them. Field names are
// part of the wire format: only append.

// Wire type names.
const (
	typeHello   = "slc.group.Hello"
	typeDirect  = "slc.group.Direct"
	typeSubmit  = "slc.group.Submit"
	typeOrdered = "slc.group.Ordered"
	typeStable  = "slc.group.Stable"
	typeMarker  = "slc.group.Marker"
	typePropose = "slc.group.Propose"
	typeState   = "slc.group.State"
	typeNack    = "slc.group.Nack"
	typeFill    = "slc.group.Fill"
	typeFilled  = "slc.group.Filled"
	typeInstall = "slc.group.Install"
	typeAbort   = "slc.group.Abort"
	typeAck     = "slc.group.Ack"
)

var wireTypes = []string{typeHello, typeDirect, typeSubmit, typeOrdered, typeStable, typeMarker,
	typePropose, typeState, typeNack, typeFill, typeFilled, typeInstall, typeAbort, typeAck}

func init() {
	slc.Register[helloMsg](typeHello)
	slc.Register[directMsg](typeDirect)
	slc.Register[submitMsg](typeSubmit)
	slc.Register[orderedMsg](typeOrdered)
	slc.Register[stableMsg](typeStable)
	slc.Register[markerMsg](typeMarker)
	slc.Register[proposeMsg](typePropose)
	slc.Register[stateMsg](typeState)
	slc.Register[nackMsg](typeNack)
	slc.Register[fillMsg](typeFill)
	slc.Register[filledMsg](typeFilled)
	slc.Register[installMsg](typeInstall)
	slc.Register[abortMsg](typeAbort)
	slc.Register[ackMsg](typeAck)
}

// cfgID names a configuration: its coordinator and the coordinator's
// configuration counter.
type cfgID struct {
	Coord slc.PeerID `msgpack:"c" json:"c"`
	N     uint64     `msgpack:"n" json:"n"`
}

func (id cfgID) view(seq uint64) ViewID { return ViewID{Coordinator: id.Coord, Config: id.N, Seq: seq} }

// nodeRef names one instance of a node's group layer.
type nodeRef struct {
	Name slc.PeerID `msgpack:"name" json:"name"`
	Inst uint64     `msgpack:"inst" json:"inst"`
}

// peerInfo is a node as another node reports it: its instance and the
// addresses it can be dialed at.
type peerInfo struct {
	Name  slc.PeerID `msgpack:"name" json:"name"`
	Inst  uint64     `msgpack:"inst" json:"inst"`
	Addrs []string   `msgpack:"addrs,omitempty" json:"addrs,omitempty"`
}

// helloMsg introduces a node to a peer and tells it what changed: sent
// when a session starts, when the set of nodes the sender reaches
// changes, and when it installs a configuration. Reach lists the group
// nodes the sender reaches (the receiver included); the coordinator uses
// it to propose only sets of nodes that all reach each other.
type helloMsg struct {
	Inst    uint64     `msgpack:"inst" json:"inst"`
	Addrs   []string   `msgpack:"addrs,omitempty" json:"addrs,omitempty"`
	Reach   []peerInfo `msgpack:"reach,omitempty" json:"reach,omitempty"`
	Cfg     cfgID      `msgpack:"cfg" json:"cfg"`
	Members []nodeRef  `msgpack:"members,omitempty" json:"members,omitempty"`
	Closing bool       `msgpack:"closing,omitempty" json:"closing,omitempty"`
	// Broken: since Cfg was installed, the sender lost a session with a
	// member of it; messages may have been lost with it, so Cfg must be
	// replaced even if its members reach each other again.
	Broken bool `msgpack:"broken,omitempty" json:"broken,omitempty"`
}

// Message kinds of dataMsg.
const (
	kindData  uint8 = 0
	kindJoin  uint8 = 1
	kindLeave uint8 = 2
)

// dataMsg is a multicast, or a join or leave (Groups holds the one
// group), as the sender made it. (Sender, Serial) identifies it.
type dataMsg struct {
	Sender  slc.PeerID `msgpack:"from" json:"from"`
	Inst    uint64     `msgpack:"inst" json:"inst"`
	Serial  uint64     `msgpack:"serial" json:"serial"`
	Kind    uint8      `msgpack:"kind,omitempty" json:"kind,omitempty"`
	Svc     Service    `msgpack:"svc" json:"svc"`
	Groups  []string   `msgpack:"groups" json:"groups"`
	MsgType int16      `msgpack:"mtype,omitempty" json:"mtype,omitempty"`
	Type    string     `msgpack:"type,omitempty" json:"type,omitempty"`
	Ser     string     `msgpack:"ser,omitempty" json:"ser,omitempty"` // serializer name; "" is msgpack
	Body    []byte     `msgpack:"body,omitempty" json:"body,omitempty"`
}

// urgent reports whether the message waits for stability before it is
// processed: Safe messages, joins and leaves.
func (d *dataMsg) urgent() bool { return d.Kind != kindData || d.Svc.Level() == Safe }

// directMsg carries an Unreliable, Reliable or FIFO multicast from its
// sender to the members, in configuration Cfg and epoch Epoch (the number
// of joins and leaves processed in Cfg before it was sent). N numbers the
// sender's Reliable and FIFO messages in Cfg (0 for Unreliable). To lists
// the addressees. Stable is the sender's stability watermark: each of its
// messages up to that N is held by all its addressees.
type directMsg struct {
	Cfg    cfgID        `msgpack:"cfg" json:"cfg"`
	Epoch  uint64       `msgpack:"epoch" json:"epoch"`
	N      uint64       `msgpack:"n,omitempty" json:"n,omitempty"`
	To     []slc.PeerID `msgpack:"to" json:"to"`
	Stable uint64       `msgpack:"stable,omitempty" json:"stable,omitempty"`
	Data   dataMsg      `msgpack:"data" json:"data"`
}

// submitMsg hands a Causal, Agreed or Safe multicast, a join or a leave
// to the sequencer of Cfg.
type submitMsg struct {
	Cfg  cfgID   `msgpack:"cfg" json:"cfg"`
	Data dataMsg `msgpack:"data" json:"data"`
}

// orderedMsg is a submitted message with its place Seq in the total order
// of Cfg, relayed by the sequencer to the addressees To (the members of
// its groups and its sender; every node for joins and leaves). Stable is
// the sequencer's stability watermark: every message up to that Seq is
// held by all its addressees.
type orderedMsg struct {
	Cfg    cfgID        `msgpack:"cfg" json:"cfg"`
	Seq    uint64       `msgpack:"seq" json:"seq"`
	To     []slc.PeerID `msgpack:"to" json:"to"`
	Stable uint64       `msgpack:"stable,omitempty" json:"stable,omitempty"`
	Data   dataMsg      `msgpack:"data" json:"data"`
}

// stableMsg announces stability watermarks without a message to carry
// them: Seq from the sequencer, Direct for the sender's own direct
// messages.
type stableMsg struct {
	Cfg    cfgID  `msgpack:"cfg" json:"cfg"`
	Seq    uint64 `msgpack:"seq,omitempty" json:"seq,omitempty"`
	Direct uint64 `msgpack:"direct,omitempty" json:"direct,omitempty"`
}

// markerMsg closes an epoch on the sender's FIFO session: the sender
// sends no more direct messages of epoch Epoch in Cfg.
type markerMsg struct {
	Cfg   cfgID  `msgpack:"cfg" json:"cfg"`
	Epoch uint64 `msgpack:"epoch" json:"epoch"`
}

// goneRef is a node that a proposal leaves out, and why.
type goneRef struct {
	Name slc.PeerID `msgpack:"name" json:"name"`
	Inst uint64     `msgpack:"inst" json:"inst"`
	Why  uint8      `msgpack:"why" json:"why"`
}

// Why a node is gone.
const (
	whyLost    uint8 = 0 // lost, or not reachable by every member
	whyClosed  uint8 = 1 // closed its group layer or its communicator
	whyRestart uint8 = 2 // a new instance appeared
)

// proposeMsg starts a view change: the coordinator P.Coord proposes the
// configuration P with Members (sorted by name, P.Coord first).
type proposeMsg struct {
	P       cfgID     `msgpack:"p" json:"p"`
	Members []nodeRef `msgpack:"members" json:"members"`
	Gone    []goneRef `msgpack:"gone,omitempty" json:"gone,omitempty"`
}

// groupState is one group's view: its ID and members, sorted.
type groupState struct {
	Name    string       `msgpack:"name" json:"name"`
	View    ViewID       `msgpack:"view" json:"view"`
	Members []slc.PeerID `msgpack:"members" json:"members"`
}

// senderCount pairs a sender with a count of its direct messages.
type senderCount struct {
	Sender slc.PeerID `msgpack:"from" json:"from"`
	N      uint64     `msgpack:"n" json:"n"`
}

// stateMsg answers a proposal: the member stopped sending and delivering
// in its configuration Old and reports what it has of it. RecvSeq: every
// ordered message addressed to it up to there was received; ProcSeq: the
// order was processed up to there; Stable: the sequencer's watermark it
// knows; Groups: the group views at ProcSeq; Held: the ordered messages
// it holds that are not both processed and stable; DirectRecv: how many
// direct messages of each sender it received (its own: sent); HeldDirect:
// the direct messages it holds that are not both delivered and stable.
type stateMsg struct {
	P          cfgID         `msgpack:"p" json:"p"`
	Inst       uint64        `msgpack:"inst" json:"inst"`
	Old        cfgID         `msgpack:"old" json:"old"`
	RecvSeq    uint64        `msgpack:"recv" json:"recv"`
	ProcSeq    uint64        `msgpack:"proc" json:"proc"`
	Stable     uint64        `msgpack:"stable" json:"stable"`
	Groups     []groupState  `msgpack:"groups,omitempty" json:"groups,omitempty"`
	Held       []orderedMsg  `msgpack:"held,omitempty" json:"held,omitempty"`
	DirectRecv []senderCount `msgpack:"drecv,omitempty" json:"drecv,omitempty"`
	HeldDirect []directMsg   `msgpack:"dheld,omitempty" json:"dheld,omitempty"`
	// Unordered: the member's own Causal, Agreed and Safe multicasts
	// submitted in Old whose place in the order it has not seen.
	Unordered []dataMsg `msgpack:"unord,omitempty" json:"unord,omitempty"`
}

// nackMsg refuses proposal P.
type nackMsg struct {
	P      cfgID  `msgpack:"p" json:"p"`
	Reason string `msgpack:"reason,omitempty" json:"reason,omitempty"`
}

// fillMsg gives a member what it lacks of its old configuration Old, and
// the new configuration: process Old's order up to SeqEnd (Seq holds the
// ordered messages addressed to it that it had not received), with
// Stable as the watermark; deliver each sender's direct messages up to
// DirectEnd (Direct: those it had not received); then install P with
// Members and the group views Groups. Gone lists the nodes left out.
type fillMsg struct {
	P         cfgID         `msgpack:"p" json:"p"`
	Old       cfgID         `msgpack:"old" json:"old"`
	SeqEnd    uint64        `msgpack:"seqend" json:"seqend"`
	Stable    uint64        `msgpack:"stable" json:"stable"`
	DirectEnd []senderCount `msgpack:"dend,omitempty" json:"dend,omitempty"`
	Seq       []orderedMsg  `msgpack:"seq,omitempty" json:"seq,omitempty"`
	Direct    []directMsg   `msgpack:"direct,omitempty" json:"direct,omitempty"`
	Members   []nodeRef     `msgpack:"members" json:"members"`
	Groups    []groupState  `msgpack:"groups,omitempty" json:"groups,omitempty"`
	Gone      []goneRef     `msgpack:"gone,omitempty" json:"gone,omitempty"`
	// Extra: the multicasts of Old that the members hold beyond SeqEnd,
	// or that were submitted and whose order no member saw: delivered
	// after the transitional views, in this order.
	Extra []dataMsg `msgpack:"extra,omitempty" json:"extra,omitempty"`
	// With: the members that come from Old too (the transitional
	// configuration), sorted.
	With []slc.PeerID `msgpack:"with,omitempty" json:"with,omitempty"`
	// ExtraAt: where each of Extra goes in Old's order (empty: all after
	// SeqEnd).
	ExtraAt []extraPlace `msgpack:"extraat,omitempty" json:"extraat,omitempty"`
}

// extraPlace is where a multicast that ends a configuration goes in its
// order: it is delivered once the order is processed up to After, before
// the message numbered After+1. Seq is its own number, 0 when no member
// of the flush saw it ordered.
type extraPlace struct {
	After uint64 `msgpack:"after" json:"after"`
	Seq   uint64 `msgpack:"seq,omitempty" json:"seq,omitempty"`
}

// filledMsg: the member holds its fill for P.
type filledMsg struct {
	P cfgID `msgpack:"p" json:"p"`
}

// installMsg: every member holds its fill; install P.
type installMsg struct {
	P cfgID `msgpack:"p" json:"p"`
}

// abortMsg withdraws proposal P; the members resume their configuration.
type abortMsg struct {
	P cfgID `msgpack:"p" json:"p"`
}

// ackMsg acknowledges, in configuration Cfg: Seq, to the sequencer,
// every ordered message addressed to the sender up to Seq; N, to a
// sender of direct messages, its direct messages up to N. A member
// acknowledges only in its current configuration, and not while it takes
// part in a view change (its state reported what it holds): stability
// rests on these acknowledgements.
type ackMsg struct {
	Cfg cfgID  `msgpack:"cfg" json:"cfg"`
	Seq uint64 `msgpack:"seq,omitempty" json:"seq,omitempty"`
	N   uint64 `msgpack:"n,omitempty" json:"n,omitempty"`
}

// toPointer turns a decoded message (slc delivers a T) into the *T the
// core takes; other values come back as they are.
func toPointer(v any) any {
	switch m := v.(type) {
	case helloMsg:
		return &m
	case directMsg:
		return &m
	case submitMsg:
		return &m
	case orderedMsg:
		return &m
	case stableMsg:
		return &m
	case markerMsg:
		return &m
	case proposeMsg:
		return &m
	case stateMsg:
		return &m
	case nackMsg:
		return &m
	case fillMsg:
		return &m
	case filledMsg:
		return &m
	case installMsg:
		return &m
	case abortMsg:
		return &m
	case ackMsg:
		return &m
	}
	return v
}

// validate checks what the protocol core takes for granted in a message
// from the network; the core drops nothing else silently, so a message
// that fails here is dropped (and logged) before it reaches the core.
func validate(v any) error {
	switch m := v.(type) {
	case *helloMsg:
		return nil
	case *directMsg:
		return validData(&m.Data)
	case *submitMsg:
		return validData(&m.Data)
	case *orderedMsg:
		return validData(&m.Data)
	case *stableMsg, *markerMsg, *nackMsg, *filledMsg, *installMsg, *abortMsg, *ackMsg:
		return nil
	case *proposeMsg:
		return validMembers(m.P, m.Members)
	case *stateMsg:
		for i := range m.Held {
			if err := validData(&m.Held[i].Data); err != nil {
				return err
			}
		}
		for i := range m.HeldDirect {
			if err := validData(&m.HeldDirect[i].Data); err != nil {
				return err
			}
		}
		for i := range m.Unordered {
			if err := validData(&m.Unordered[i]); err != nil {
				return err
			}
		}
		return nil
	case *fillMsg:
		if err := validMembers(m.P, m.Members); err != nil {
			return err
		}
		for i := range m.Seq {
			if err := validData(&m.Seq[i].Data); err != nil {
				return err
			}
		}
		for i := range m.Direct {
			if err := validData(&m.Direct[i].Data); err != nil {
				return err
			}
		}
		for i := range m.Extra {
			if err := validData(&m.Extra[i]); err != nil {
				return err
			}
		}
		if len(m.ExtraAt) != 0 && len(m.ExtraAt) != len(m.Extra) {
			return errors.New("group: extra places do not match the extras")
		}
		for _, g := range m.Groups {
			if g.Name == "" || !slices.IsSorted(g.Members) {
				return errors.New("group: malformed group state")
			}
		}
		return nil
	}
	return fmt.Errorf("group: unexpected message %T", v)
}

func validData(d *dataMsg) error {
	switch d.Kind {
	case kindData:
		if !d.Svc.Valid() {
			return ErrInvalidService
		}
		if len(d.Groups) == 0 {
			return ErrNoGroup
		}
	case kindJoin, kindLeave:
		if len(d.Groups) != 1 || d.Groups[0] == "" {
			return errors.New("group: a join or leave names one group")
		}
	default:
		return fmt.Errorf("group: unknown message kind %d", d.Kind)
	}
	if d.Sender == "" {
		return errors.New("group: message without a sender")
	}
	return nil
}

func validMembers(p cfgID, ms []nodeRef) error {
	if len(ms) == 0 || ms[0].Name != p.Coord {
		return errors.New("group: a configuration's coordinator comes first")
	}
	if !slices.IsSortedFunc(ms, cmpRef) {
		return errors.New("group: configuration members not sorted")
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Name == ms[i-1].Name {
			return errors.New("group: a node twice in a configuration")
		}
	}
	return nil
}
