package bus

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// EventID identifies an event on the bus: the participant that published
// it, that participant's run, and a sequence number that starts at 1 and
// increases with every event the participant publishes (on any of its
// informers).
type EventID struct {
	// Sender is the publishing participant's name (its slc node name).
	Sender string
	// Instance identifies the participant's run: a participant that joins
	// again under the same name gets a new one, and its sequence starts
	// over.
	Instance uint64
	// Seq is the participant's sequence number of the event.
	Seq uint64
}

// IsZero reports whether id is the zero EventID.
func (id EventID) IsZero() bool { return id == EventID{} }

// String formats id as sender/instance:seq, the instance in hex.
func (id EventID) String() string {
	return id.Sender + "/" + strconv.FormatUint(id.Instance, 16) + ":" + strconv.FormatUint(id.Seq, 10)
}

// Method names of the events of remote calls.
const (
	MethodRequest = "REQUEST"
	MethodReply   = "REPLY"
	// MethodCancel: the caller gave up on the request its cause names
	// (its context ended); the server cancels the handler's context.
	MethodCancel = "CANCEL"
)

// Event is a message on the bus.
//
// A listener's handler owns the *Event it is given, but Data, Causes and
// the MetaData maps may be shared with the other listeners of the same
// participant: treat them as read-only.
type Event struct {
	// ID is set by the informer when it publishes.
	ID EventID
	// Scope is where the event was published.
	Scope Scope
	// Method is "" for plain events; remote calls use MethodRequest,
	// MethodReply and MethodCancel.
	Method string
	// Schema is the wire schema of Data, chosen by the converter that
	// encoded it ("utf-8-string", "int64", a registered type name, ...).
	// When publishing, it may be left empty; it is set from the converter.
	Schema string
	// Data is the payload. Received events carry what the schema's
	// converter decoded, or the bytes as they came ([]byte) when no
	// converter knows the schema.
	Data any
	// Causes are the IDs of the events that caused this one.
	Causes []EventID
	// Meta holds the timestamps and user data.
	Meta MetaData
	// Err is set on a received event whose data the schema's converter
	// could not decode; Data then holds the bytes as they came.
	Err error
}

// MetaData holds an event's timestamps and user data.
//
// The four timestamps follow the event through the pipeline:
//
//	CreateTime   the informer made the event (Publish), or the time the
//	             publisher set
//	SendTime     the participant handed it to its transport: to slc for
//	             remote listeners, to the local dispatch for listeners of
//	             the same participant
//	ReceiveTime  the receiving participant got it from slc (or from the
//	             local dispatch)
//	DeliverTime  the listener's handler or channel was given it
//
// Create and send times come from the publisher's clock, receive and
// deliver times from the receiver's. In one process they never decrease
// along the pipeline, between participants too: the default clock is
// one per process (see WithClock). Between processes on one host they
// agree unless the system clock was stepped between the processes'
// first Joins (each process anchors its clock to the wall clock then):
// a step offsets one process's times from the other's by the step.
// Across hosts they are only as consistent as the hosts' clocks.
type MetaData struct {
	CreateTime  time.Time
	SendTime    time.Time
	ReceiveTime time.Time
	DeliverTime time.Time
	// UserInfos are free-form key-value pairs set by the publisher.
	UserInfos map[string]string
	// UserTimes are named timestamps set by the publisher.
	UserTimes map[string]time.Time
}

// SetUserInfo sets a user info, creating the map if needed.
func (m *MetaData) SetUserInfo(key, value string) {
	if m.UserInfos == nil {
		m.UserInfos = map[string]string{}
	}
	m.UserInfos[key] = value
}

// SetUserTime sets a user time, creating the map if needed.
func (m *MetaData) SetUserTime(key string, t time.Time) {
	if m.UserTimes == nil {
		m.UserTimes = map[string]time.Time{}
	}
	m.UserTimes[key] = t
}

// AddCause records that the event was caused by id.
func (e *Event) AddCause(id EventID) {
	if !slices.Contains(e.Causes, id) {
		e.Causes = append(e.Causes, id)
	}
}

// String describes the event on one line.
func (e *Event) String() string {
	s := fmt.Sprintf("%s %s", e.ID, e.Scope)
	if e.Method != "" {
		s += " " + e.Method
	}
	return s + fmt.Sprintf(" %s %v", e.Schema, e.Data)
}

// clone returns a shallow copy of e with copies of the slices and maps
// the publisher may reuse.
func (e *Event) clone() *Event {
	c := *e
	c.Causes = slices.Clone(e.Causes)
	c.Meta.UserInfos = maps.Clone(e.Meta.UserInfos)
	c.Meta.UserTimes = maps.Clone(e.Meta.UserTimes)
	return &c
}
