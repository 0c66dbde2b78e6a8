package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/codec"
)

// The bus sends two slc message types. Handle routes both to the bus, out
// of the application's mailbox.
const (
	typeEvents  = "slc.bus.Events"
	typeControl = "slc.bus.Control"
)

func init() {
	slc.Register[eventsMsg](typeEvents)
	slc.Register[controlMsg](typeControl)
}

// eventsMsg carries a batch of events, and an acknowledgement for the
// receiver's own events. From a participant to its server, Events holds
// that participant's events; from the server to a participant, the
// events its listeners' scopes match, from any publisher.
type eventsMsg struct {
	// Ack, from the server, acknowledges every event of the receiver's
	// current instance up to this sequence number: the server delivered
	// it to every listening participant (each has it in its queue), so
	// the publisher may forget it. 0: no acknowledgement.
	Ack uint64
	// Events are event records back to back (see appendEvent).
	Events []byte
}

// EncodeMsgpack encodes m as the array [Ack, Events], a layout
// rawEvents finds in Message.Raw.
func (m eventsMsg) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeArrayLen(2); err != nil {
		return err
	}
	if err := enc.EncodeUint(m.Ack); err != nil {
		return err
	}
	return enc.EncodeBytes(m.Events)
}

// DecodeMsgpack decodes Ack and leaves Events: the receiver takes them
// from Message.Raw (rawEvents), which it owns, without copying them, and
// checks them there. Only a msgpack body is decoded this way; other
// serializers fill Events.
func (m *eventsMsg) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 2 {
		return fmt.Errorf("bus: events message: array of %d, want 2", n)
	}
	m.Ack, err = dec.DecodeUint64()
	return err
}

// rawEvents returns the Events of an eventsMsg from its msgpack
// encoding (see EncodeMsgpack), sharing raw's memory.
func rawEvents(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != 0x92 {
		return nil, errMalformed
	}
	i := 1
	switch c := raw[i]; {
	case c <= 0x7f:
		i++
	case c == 0xcc:
		i += 2
	case c == 0xcd:
		i += 3
	case c == 0xce:
		i += 5
	case c == 0xcf:
		i += 9
	default:
		return nil, errMalformed
	}
	if i >= len(raw) {
		return nil, errMalformed
	}
	var n, hdr int
	switch raw[i] {
	case 0xc0: // nil
		return nil, nil
	case 0xc4:
		if i+2 > len(raw) {
			return nil, errMalformed
		}
		n, hdr = int(raw[i+1]), 2
	case 0xc5:
		if i+3 > len(raw) {
			return nil, errMalformed
		}
		n, hdr = int(binary.BigEndian.Uint16(raw[i+1:])), 3
	case 0xc6:
		if i+5 > len(raw) {
			return nil, errMalformed
		}
		n, hdr = int(binary.BigEndian.Uint32(raw[i+1:])), 5
	default:
		return nil, errMalformed
	}
	i += hdr
	if n != len(raw)-i {
		return nil, errMalformed
	}
	return raw[i:len(raw):len(raw)], nil
}

// eventsOf returns the events of a received eventsMsg.
func eventsOf(m *slc.Message, b *eventsMsg) ([]byte, error) {
	if m.Serializer == codec.Msgpack {
		return rawEvents(m.Raw)
	}
	return b.Events, nil
}

// controlMsg is a control message. Scope names its kind, under the
// reserved scope.
type controlMsg struct {
	Scope   string
	Member  *memberWire  `msgpack:",omitempty" json:",omitempty"`
	Members []memberWire `msgpack:",omitempty" json:",omitempty"`
	Server  string       `msgpack:",omitempty" json:",omitempty"`
	Epoch   uint64       `msgpack:",omitempty" json:",omitempty"`
}

// Control scopes.
const (
	// ctlJoin: participant → server. Member describes the participant
	// (its rank from earlier servers, its scopes). The server answers
	// with ctlMembers.
	ctlJoin = ReservedScope + "join/"
	// ctlScopes: participant → server. Member carries the participant's
	// scopes at a new Version.
	ctlScopes = ReservedScope + "scopes/"
	// ctlMembers: server → every participant, after every change. The
	// membership: Server, Epoch, Members in rank order.
	ctlMembers = ReservedScope + "members/"
	// ctlLeave: a participant leaving (to its server), or the server
	// leaving (to every participant, which then elects a new server).
	ctlLeave = ReservedScope + "leave/"
)

// memberWire describes a participant in control messages.
type memberWire struct {
	Name     string
	Instance uint64
	// Rank is the join order: 1 for the participant that founded the
	// bus, then increasing. A participant keeps its rank across
	// changeovers. 0 in a first Join.
	Rank     uint64
	Host     string
	PID      int
	CanServe bool
	// Version counts the participant's scope changes; a participant
	// knows the server routes by its scopes once a ctlMembers lists this
	// version or a later one.
	Version   uint64
	Listeners []string `msgpack:",omitempty" json:",omitempty"`
	Informers []string `msgpack:",omitempty" json:",omitempty"`
	Servers   []string `msgpack:",omitempty" json:",omitempty"`
	// Away: the server is waiting for the participant to come back (its
	// connection dropped, or it has not joined since a changeover).
	Away bool `msgpack:",omitempty" json:",omitempty"`
}

// Event records. Each is a 4-byte big-endian length, then:
//
//	flags     1 byte (flagReliable, flagMethod, flagCauses, flagInfos, flagTimes)
//	send      8 bytes, big-endian Unix ns (0 = none), set when sent
//	sender    str
//	instance  uvarint
//	seq       uvarint
//	scope     str
//	schema    str
//	method    str                        if flagMethod
//	create    varint (Unix ns, 0 = none)
//	causes    uvarint n, n × (str uvarint uvarint)   if flagCauses
//	infos     uvarint n, n × (str str)               if flagInfos
//	times     uvarint n, n × (str varint)            if flagTimes
//	data      str
//
// where str is a uvarint length and the bytes. The server forwards
// records as they are: it reads only the fields up to scope.
const (
	flagReliable = 1 << iota
	flagMethod
	flagCauses
	flagInfos
	flagTimes
)

// sendOffset is where a record's send time is, from its start.
const sendOffset = 4 + 1

// maxRecord bounds one event record.
const maxRecord = 1 << 30

var errMalformed = errors.New("bus: malformed event record")

// outEvent is an event being published: converted, not yet encoded.
type outEvent struct {
	seq      uint64
	reliable bool
	scope    string
	schema   string
	method   string
	create   time.Time
	causes   []EventID
	infos    map[string]string
	times    map[string]time.Time
	data     []byte
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// maxSize bounds the size of e's record (sender is the sender's length).
func (e *outEvent) maxSize(sender int) int {
	n := 4 + 1 + 8 + 3*binary.MaxVarintLen64 + 5*binary.MaxVarintLen32 +
		sender + len(e.scope) + len(e.schema) + len(e.method) + len(e.data)
	for _, c := range e.causes {
		n += binary.MaxVarintLen32 + 2*binary.MaxVarintLen64 + len(c.Sender)
	}
	for k, v := range e.infos {
		n += 2*binary.MaxVarintLen32 + len(k) + len(v)
	}
	for k := range e.times {
		n += binary.MaxVarintLen32 + binary.MaxVarintLen64 + len(k)
	}
	return n + 3*binary.MaxVarintLen32
}

// appendEvent appends e's record, with the given send time.
func appendEvent(b []byte, e *outEvent, sender string, instance uint64, send time.Time) []byte {
	start := len(b)
	b = appendRecord(b, e, sender, instance)
	setSendTime(b[start:], send)
	return b
}

// appendRecord appends e's record, without a send time.
func appendRecord(b []byte, e *outEvent, sender string, instance uint64) []byte {
	start := len(b)
	var flags byte
	if e.reliable {
		flags |= flagReliable
	}
	if e.method != "" {
		flags |= flagMethod
	}
	if len(e.causes) > 0 {
		flags |= flagCauses
	}
	if len(e.infos) > 0 {
		flags |= flagInfos
	}
	if len(e.times) > 0 {
		flags |= flagTimes
	}
	b = append(b, 0, 0, 0, 0, flags, 0, 0, 0, 0, 0, 0, 0, 0)
	b = appendStr(b, sender)
	b = binary.AppendUvarint(b, instance)
	b = binary.AppendUvarint(b, e.seq)
	b = appendStr(b, e.scope)
	b = appendStr(b, e.schema)
	if e.method != "" {
		b = appendStr(b, e.method)
	}
	b = binary.AppendVarint(b, unixNano(e.create))
	if len(e.causes) > 0 {
		b = binary.AppendUvarint(b, uint64(len(e.causes)))
		for _, c := range e.causes {
			b = appendStr(b, c.Sender)
			b = binary.AppendUvarint(b, c.Instance)
			b = binary.AppendUvarint(b, c.Seq)
		}
	}
	if len(e.infos) > 0 {
		b = binary.AppendUvarint(b, uint64(len(e.infos)))
		for k, v := range e.infos {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
	}
	if len(e.times) > 0 {
		b = binary.AppendUvarint(b, uint64(len(e.times)))
		for k, v := range e.times {
			b = appendStr(b, k)
			b = binary.AppendVarint(b, unixNano(v))
		}
	}
	b = appendBytes(b, e.data)
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// setSendTime sets the send time of the record at the start of rec.
func setSendTime(rec []byte, t time.Time) {
	binary.BigEndian.PutUint64(rec[sendOffset:], uint64(unixNano(t)))
}

// reader decodes the fields of a record. The first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errMalformed
	}
	r.off = len(r.b)
}

func (r *reader) byte1() byte {
	if r.off >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)-r.off) {
		r.fail()
		return nil
	}
	s := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return s
}

// count reads a list length; each element takes at least min bytes.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if r.err != nil || n > uint64((len(r.b)-r.off)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

// header is what the server reads of a record to route it.
type header struct {
	flags    byte
	send     int64
	sender   []byte
	instance uint64
	seq      uint64
	scope    []byte
	record   []byte // the whole record, length prefix included
	body     reader // positioned after scope
}

// nextRecord splits the first record off b. It returns the header, the
// rest of b, and an error for a malformed record.
func nextRecord(b []byte) (h header, rest []byte, err error) {
	if len(b) < 4 {
		return h, nil, errMalformed
	}
	n := binary.BigEndian.Uint32(b)
	if n > maxRecord || int64(n) > int64(len(b)-4) {
		return h, nil, errMalformed
	}
	h.record = b[:4+n]
	h.body = reader{b: b[4 : 4+n]}
	r := &h.body
	h.flags = r.byte1()
	if len(r.b)-r.off < 8 {
		return h, nil, errMalformed
	}
	h.send = int64(binary.BigEndian.Uint64(r.b[r.off:]))
	r.off += 8
	h.sender = r.bytes()
	h.instance = r.uvarint()
	h.seq = r.uvarint()
	h.scope = r.bytes()
	if r.err != nil {
		return h, nil, r.err
	}
	return h, b[4+n:], nil
}

// wireEvent is a decoded record, before its data is converted.
type wireEvent struct {
	method string
	schema []byte
	create time.Time
	send   time.Time
	causes []EventID
	infos  map[string]string
	times  map[string]time.Time
	data   []byte
}

// decodeRest decodes the fields of h's record after the scope.
func decodeRest(h *header) (w wireEvent, err error) {
	r := &h.body
	w.schema = r.bytes()
	if h.flags&flagMethod != 0 {
		w.method = string(r.bytes())
	}
	w.create = fromUnixNano(r.varint())
	w.send = fromUnixNano(h.send)
	if h.flags&flagCauses != 0 {
		n := r.count(3)
		w.causes = make([]EventID, 0, n)
		for range n {
			s := string(r.bytes())
			inst := r.uvarint()
			seq := r.uvarint()
			w.causes = append(w.causes, EventID{Sender: s, Instance: inst, Seq: seq})
		}
	}
	if h.flags&flagInfos != 0 {
		n := r.count(2)
		w.infos = make(map[string]string, n)
		for range n {
			k := string(r.bytes())
			w.infos[k] = string(r.bytes())
		}
	}
	if h.flags&flagTimes != 0 {
		n := r.count(2)
		w.times = make(map[string]time.Time, n)
		for range n {
			k := string(r.bytes())
			w.times[k] = fromUnixNano(r.varint())
		}
	}
	w.data = r.bytes()
	if r.err == nil && r.off != len(r.b) {
		return w, fmt.Errorf("%w: %d trailing bytes", errMalformed, len(r.b)-r.off)
	}
	return w, r.err
}
