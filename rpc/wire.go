package rpc

import (
	"github.com/slc-go/slc"
)

// The rpc layer's messages. Each is an slc message of a registered type,
// sent with the communicator's serializer over the ordinary session, so
// it is delivered exactly once and in order while both nodes live.
// docs/rpc.md describes them. Field names are part of the wire format:
// only append.
//
// Instances: every message a node sends carries the random instance ID of
// its rpc node (From, or Instance), so that a receiver tells a restarted
// node from the one it knew, whatever order slc's events and messages
// arrive in.

// Wire type names.
const (
	typeHello        = "slc.rpc.Hello"
	typePeers        = "slc.rpc.Peers"
	typeRegistered   = "slc.rpc.Registered"
	typeUnregistered = "slc.rpc.Unregistered"
	typeRefused      = "slc.rpc.Refused"
	typeCall         = "slc.rpc.Call"
	typeResult       = "slc.rpc.Result"
	typeCancel       = "slc.rpc.Cancel"
	typeSubscribe    = "slc.rpc.Subscribe"
	typeUnsubscribe  = "slc.rpc.Unsubscribe"
	typeSubscribed   = "slc.rpc.Subscribed"
	typeEvent        = "slc.rpc.Event"
	typeDescribe     = "slc.rpc.Describe"
	typeDescription  = "slc.rpc.Description"
)

var wireTypes = []string{typeHello, typePeers, typeRegistered, typeUnregistered, typeRefused,
	typeCall, typeResult, typeCancel, typeSubscribe, typeUnsubscribe, typeSubscribed, typeEvent,
	typeDescribe, typeDescription}

func init() {
	slc.Register[helloMsg](typeHello)
	slc.Register[peersMsg](typePeers)
	slc.Register[registeredMsg](typeRegistered)
	slc.Register[unregisteredMsg](typeUnregistered)
	slc.Register[refusedMsg](typeRefused)
	slc.Register[callMsg](typeCall)
	slc.Register[resultMsg](typeResult)
	slc.Register[cancelMsg](typeCancel)
	slc.Register[subscribeMsg](typeSubscribe)
	slc.Register[unsubscribeMsg](typeUnsubscribe)
	slc.Register[subscribedMsg](typeSubscribed)
	slc.Register[eventMsg](typeEvent)
	slc.Register[describeMsg](typeDescribe)
	slc.Register[descriptionMsg](typeDescription)
}

// nodeRef names one instance of a node.
type nodeRef struct {
	Name     slc.PeerID `msgpack:"name" json:"name"`
	Instance uint64     `msgpack:"inst" json:"inst"`
	Started  int64      `msgpack:"started" json:"started"` // Unix nanoseconds
}

// helloMsg introduces a node to a peer. A node sends one when a
// connection starts a new session or reaches a restarted peer; Ask asks
// the peer to answer with its own, which carries Ping back as Pong (a
// node pings a peer to check that it is alive before it refuses another
// node of the same name). Peers lists the sender's peers, except the
// receiver.
type helloMsg struct {
	Instance uint64            `msgpack:"inst" json:"inst"`
	Started  int64             `msgpack:"started" json:"started"`
	Ask      bool              `msgpack:"ask,omitempty" json:"ask,omitempty"`
	Paths    []PathDescription `msgpack:"paths,omitempty" json:"paths,omitempty"`
	Peers    []nodeRef         `msgpack:"peers,omitempty" json:"peers,omitempty"`
	Ping     uint64            `msgpack:"ping,omitempty" json:"ping,omitempty"`
	Pong     uint64            `msgpack:"pong,omitempty" json:"pong,omitempty"`
}

// peersMsg lists the sender's connected rpc peers, except the receiver,
// after a change.
type peersMsg struct {
	Instance uint64    `msgpack:"inst" json:"inst"`
	Peers    []nodeRef `msgpack:"peers,omitempty" json:"peers,omitempty"`
}

// registeredMsg: the sender registered an implementation.
type registeredMsg struct {
	Instance  uint64    `msgpack:"inst" json:"inst"`
	Path      string    `msgpack:"path" json:"path"`
	Interface Interface `msgpack:"iface" json:"iface"`
}

// unregisteredMsg: the sender unregistered an implementation.
type unregisteredMsg struct {
	Instance  uint64 `msgpack:"inst" json:"inst"`
	Path      string `msgpack:"path" json:"path"`
	Interface string `msgpack:"iface" json:"iface"`
}

// refusedMsg: node Node (that instance) may not use its name, since Holder
// has it. The receiver is the refused node, or a peer of it that passes
// the message on and disconnects it.
type refusedMsg struct {
	Node   nodeRef    `msgpack:"node" json:"node"`
	Holder nodeRef    `msgpack:"holder" json:"holder"`
	By     slc.PeerID `msgpack:"by" json:"by"`
}

// callMsg calls a method. ID is unique per caller instance (From). To is
// the instance of the callee the caller knew when it first sent the call
// (0: none yet); Retry marks a copy sent again after the callee changed.
// Timeout is the time the caller had left, in nanoseconds (0: none).
// Low is the caller's watermark for this callee: the lowest ID of its
// calls to it whose results it still awaits (this call's ID, or lower);
// the callee drops the results below it. 0 (absent): no news, nothing
// is dropped.
type callMsg struct {
	ID        uint64 `msgpack:"id" json:"id"`
	From      uint64 `msgpack:"from" json:"from"`
	To        uint64 `msgpack:"to,omitempty" json:"to,omitempty"`
	Retry     bool   `msgpack:"retry,omitempty" json:"retry,omitempty"`
	Timeout   int64  `msgpack:"timeout,omitempty" json:"timeout,omitempty"`
	Path      string `msgpack:"path" json:"path"`
	Interface string `msgpack:"iface" json:"iface"`
	Method    string `msgpack:"method" json:"method"`
	Args      Args   `msgpack:"args,omitempty" json:"args,omitempty"`
	Low       uint64 `msgpack:"low,omitempty" json:"low,omitempty"`
}

// wireError is a failed call's error.
type wireError struct {
	Kind    Kind   `msgpack:"kind" json:"kind"`
	Message string `msgpack:"msg,omitempty" json:"msg,omitempty"`
}

// resultMsg answers a call: Out, or Err. To is the caller's instance.
type resultMsg struct {
	ID   uint64     `msgpack:"id" json:"id"`
	To   uint64     `msgpack:"to" json:"to"`
	From uint64     `msgpack:"from" json:"from"`
	Out  Args       `msgpack:"out,omitempty" json:"out,omitempty"`
	Err  *wireError `msgpack:"err,omitempty" json:"err,omitempty"`
}

// cancelMsg cancels call ID of caller instance From.
type cancelMsg struct {
	ID   uint64 `msgpack:"id" json:"id"`
	From uint64 `msgpack:"from" json:"from"`
}

// subscribeMsg subscribes the sender to an event; ID is unique per
// subscriber instance.
type subscribeMsg struct {
	ID        uint64 `msgpack:"id" json:"id"`
	From      uint64 `msgpack:"from" json:"from"`
	Path      string `msgpack:"path" json:"path"`
	Interface string `msgpack:"iface" json:"iface"`
	Event     string `msgpack:"event" json:"event"`
}

// unsubscribeMsg ends subscription ID.
type unsubscribeMsg struct {
	ID   uint64 `msgpack:"id" json:"id"`
	From uint64 `msgpack:"from" json:"from"`
}

// subscribedMsg confirms that the sender holds subscription ID of
// subscriber instance To, or, with Err, that it refused it (unknown
// path, interface or event).
type subscribedMsg struct {
	ID  uint64     `msgpack:"id" json:"id"`
	To  uint64     `msgpack:"to" json:"to"`
	Err *wireError `msgpack:"err,omitempty" json:"err,omitempty"`
}

// eventMsg is a fired event, sent once to each subscribed node.
type eventMsg struct {
	From      uint64 `msgpack:"from" json:"from"`
	Path      string `msgpack:"path" json:"path"`
	Interface string `msgpack:"iface" json:"iface"`
	Event     string `msgpack:"event" json:"event"`
	Args      Args   `msgpack:"args,omitempty" json:"args,omitempty"`
}

// describeMsg asks a peer for the description of Node, one of the peer's
// own peers (Describe of a node known through it). ID is unique per
// sender instance (From).
type describeMsg struct {
	ID   uint64     `msgpack:"id" json:"id"`
	From uint64     `msgpack:"from" json:"from"`
	Node slc.PeerID `msgpack:"node" json:"node"`
}

// descriptionMsg answers a describeMsg: what the sender knows of Node
// (from its hello and registrations), or Err (the sender has no such
// peer). To is the asker's instance.
type descriptionMsg struct {
	ID       uint64            `msgpack:"id" json:"id"`
	To       uint64            `msgpack:"to" json:"to"`
	Node     slc.PeerID        `msgpack:"node" json:"node"`
	Instance uint64            `msgpack:"inst,omitempty" json:"inst,omitempty"`
	Started  int64             `msgpack:"started,omitempty" json:"started,omitempty"`
	Paths    []PathDescription `msgpack:"paths,omitempty" json:"paths,omitempty"`
	Err      *wireError        `msgpack:"err,omitempty" json:"err,omitempty"`
}
