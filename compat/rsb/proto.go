package rsb

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of rsb.protocol messages (rsb-protocol: Notification.proto,
// EventId.proto, EventMetaData.proto; all proto2).
const (
	fieldNotificationScope      = 6
	fieldNotificationWireSchema = 7
	fieldNotificationData       = 9
	fieldNotificationCauses     = 13
	fieldNotificationMethod     = 14
	fieldNotificationMetaData   = 15
	fieldNotificationEventID    = 108 // "the odd field number is a historical artifact"

	fieldEventIDSender = 1
	fieldEventIDSeq    = 2

	fieldMetaCreate    = 2
	fieldMetaSend      = 3
	fieldMetaReceive   = 4
	fieldMetaDeliver   = 5
	fieldMetaUserTimes = 6
	fieldMetaUserInfos = 7

	fieldKey       = 1
	fieldValue     = 2 // UserInfo.value
	fieldTimestamp = 2 // UserTime.timestamp
)

// ErrMalformed reports a notification that does not decode.
var ErrMalformed = errors.New("rsb: malformed notification")

// UUID is a 16-byte identifier: the ID of an RSB participant.
type UUID [16]byte

// String formats the UUID in the usual 8-4-4-4-12 form.
func (u UUID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// ParseUUID parses the 8-4-4-4-12 form.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("rsb: bad UUID %q", s)
	}
	j := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return UUID{}, fmt.Errorf("rsb: bad UUID %q", s)
		}
		u[j] = hi<<4 | lo
		j++
		i++
	}
	return u, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// EventID is rsb.protocol.EventId: the sending participant's UUID and the
// event's sequence number within that participant.
type EventID struct {
	Sender UUID
	Seq    uint32
}

func (id EventID) String() string { return fmt.Sprintf("%s:%d", id.Sender, id.Seq) }

// UserTime is rsb.protocol.UserTime: a named timestamp in microseconds
// since the UNIX epoch.
type UserTime struct {
	Key       string
	Timestamp uint64
}

// UserInfo is rsb.protocol.UserInfo: a key-value pair.
type UserInfo struct {
	Key, Value string
}

// MetaData is rsb.protocol.EventMetaData. Times are microseconds since
// the UNIX epoch. CreateTime and SendTime are required by the protocol;
// ReceiveTime and DeliverTime are optional, and 0 means absent.
type MetaData struct {
	CreateTime  int64
	SendTime    int64
	ReceiveTime int64
	DeliverTime int64
	UserTimes   []UserTime
	UserInfos   []UserInfo
}

// Notification is rsb.protocol.Notification, the unit the RSB socket
// transport carries. Scope, WireSchema and Data are always encoded (RSB
// sets them on every event, empty or not); Method only when not empty.
type Notification struct {
	EventID    EventID
	Scope      string
	Method     string
	WireSchema string
	Data       []byte
	Causes     []EventID
	MetaData   MetaData
}

// Marshal returns the protobuf encoding of n, with fields in field-number
// order as the protobuf libraries write them.
func (n *Notification) Marshal() []byte {
	return n.AppendMarshal(make([]byte, 0, 64+len(n.Scope)+len(n.WireSchema)+len(n.Data)))
}

// AppendMarshal appends the encoding of n to b.
func (n *Notification) AppendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, fieldNotificationScope, protowire.BytesType)
	b = protowire.AppendString(b, n.Scope)
	b = protowire.AppendTag(b, fieldNotificationWireSchema, protowire.BytesType)
	b = protowire.AppendString(b, n.WireSchema)
	b = protowire.AppendTag(b, fieldNotificationData, protowire.BytesType)
	b = protowire.AppendBytes(b, n.Data)
	for _, c := range n.Causes {
		b = protowire.AppendTag(b, fieldNotificationCauses, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(eventIDSize(c)))
		b = appendEventID(b, c)
	}
	if n.Method != "" {
		b = protowire.AppendTag(b, fieldNotificationMethod, protowire.BytesType)
		b = protowire.AppendString(b, n.Method)
	}
	b = protowire.AppendTag(b, fieldNotificationMetaData, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(metaDataSize(&n.MetaData)))
	b = appendMetaData(b, &n.MetaData)
	b = protowire.AppendTag(b, fieldNotificationEventID, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(eventIDSize(n.EventID)))
	return appendEventID(b, n.EventID)
}

func eventIDSize(id EventID) int {
	return protowire.SizeTag(fieldEventIDSender) + protowire.SizeBytes(len(id.Sender)) +
		protowire.SizeTag(fieldEventIDSeq) + protowire.SizeVarint(uint64(id.Seq))
}

func appendEventID(b []byte, id EventID) []byte {
	b = protowire.AppendTag(b, fieldEventIDSender, protowire.BytesType)
	b = protowire.AppendBytes(b, id.Sender[:])
	b = protowire.AppendTag(b, fieldEventIDSeq, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(id.Seq))
}

func metaDataSize(m *MetaData) int {
	n := protowire.SizeTag(fieldMetaCreate) + protowire.SizeVarint(uint64(m.CreateTime)) +
		protowire.SizeTag(fieldMetaSend) + protowire.SizeVarint(uint64(m.SendTime))
	if m.ReceiveTime != 0 {
		n += protowire.SizeTag(fieldMetaReceive) + protowire.SizeVarint(uint64(m.ReceiveTime))
	}
	if m.DeliverTime != 0 {
		n += protowire.SizeTag(fieldMetaDeliver) + protowire.SizeVarint(uint64(m.DeliverTime))
	}
	for _, ut := range m.UserTimes {
		n += protowire.SizeTag(fieldMetaUserTimes) + protowire.SizeBytes(userTimeSize(ut))
	}
	for _, ui := range m.UserInfos {
		n += protowire.SizeTag(fieldMetaUserInfos) + protowire.SizeBytes(userInfoSize(ui))
	}
	return n
}

func userTimeSize(ut UserTime) int {
	return protowire.SizeTag(fieldKey) + protowire.SizeBytes(len(ut.Key)) +
		protowire.SizeTag(fieldTimestamp) + protowire.SizeVarint(ut.Timestamp)
}

func userInfoSize(ui UserInfo) int {
	return protowire.SizeTag(fieldKey) + protowire.SizeBytes(len(ui.Key)) +
		protowire.SizeTag(fieldValue) + protowire.SizeBytes(len(ui.Value))
}

func appendMetaData(b []byte, m *MetaData) []byte {
	// int64 fields are varints of the two's complement, as protobuf's int64.
	b = protowire.AppendTag(b, fieldMetaCreate, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.CreateTime))
	b = protowire.AppendTag(b, fieldMetaSend, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.SendTime))
	if m.ReceiveTime != 0 {
		b = protowire.AppendTag(b, fieldMetaReceive, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.ReceiveTime))
	}
	if m.DeliverTime != 0 {
		b = protowire.AppendTag(b, fieldMetaDeliver, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.DeliverTime))
	}
	for _, ut := range m.UserTimes {
		b = protowire.AppendTag(b, fieldMetaUserTimes, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(userTimeSize(ut)))
		b = protowire.AppendTag(b, fieldKey, protowire.BytesType)
		b = protowire.AppendString(b, ut.Key)
		b = protowire.AppendTag(b, fieldTimestamp, protowire.VarintType)
		b = protowire.AppendVarint(b, ut.Timestamp)
	}
	for _, ui := range m.UserInfos {
		b = protowire.AppendTag(b, fieldMetaUserInfos, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(userInfoSize(ui)))
		b = protowire.AppendTag(b, fieldKey, protowire.BytesType)
		b = protowire.AppendString(b, ui.Key)
		b = protowire.AppendTag(b, fieldValue, protowire.BytesType)
		b = protowire.AppendString(b, ui.Value)
	}
	return b
}

// fieldReader walks the fields of one message.
type fieldReader struct {
	b   []byte
	err error
}

// next returns the next field. ok is false at the end or on an error.
func (r *fieldReader) next() (num protowire.Number, typ protowire.Type, val []byte, v uint64, ok bool) {
	if r.err != nil || len(r.b) == 0 {
		return 0, 0, nil, 0, false
	}
	num, typ, n := protowire.ConsumeTag(r.b)
	if n < 0 {
		r.err = protowire.ParseError(n)
		return 0, 0, nil, 0, false
	}
	r.b = r.b[n:]
	switch typ {
	case protowire.VarintType:
		v, n = protowire.ConsumeVarint(r.b)
	case protowire.BytesType:
		val, n = protowire.ConsumeBytes(r.b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, r.b)
	}
	if n < 0 {
		r.err = protowire.ParseError(n)
		return 0, 0, nil, 0, false
	}
	r.b = r.b[n:]
	return num, typ, val, v, true
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// wrongType reports a known field with the wrong wire type.
func wrongType(msg string, num protowire.Number, got protowire.Type) error {
	return malformed("%s field %d has wire type %d", msg, num, got)
}

// Unmarshal decodes a notification. Unknown fields are skipped, as proto2
// parsers do; a missing required field (event_id, its sender_id and
// sequence_number, and create_time and send_time when meta_data is
// present) is an error, as rsb-python's parser reports. A sender_id must
// be 16 bytes. A repeated singular field keeps its last value; an
// embedded message given twice is merged, as protobuf does.
func (n *Notification) Unmarshal(b []byte) error {
	*n = Notification{}
	r := fieldReader{b: b}
	var haveID, haveMeta bool
	var idBytes, metaBytes [][]byte
	for {
		num, typ, val, _, ok := r.next()
		if !ok {
			break
		}
		switch num {
		case fieldNotificationScope, fieldNotificationWireSchema, fieldNotificationData, fieldNotificationMethod:
			if typ != protowire.BytesType {
				return wrongType("Notification", num, typ)
			}
			switch num {
			case fieldNotificationScope:
				n.Scope = string(val)
			case fieldNotificationWireSchema:
				n.WireSchema = string(val)
			case fieldNotificationData:
				n.Data = append([]byte(nil), val...)
			case fieldNotificationMethod:
				n.Method = string(val)
			}
		case fieldNotificationCauses:
			if typ != protowire.BytesType {
				return wrongType("Notification", num, typ)
			}
			id, err := unmarshalEventID([][]byte{val})
			if err != nil {
				return fmt.Errorf("cause %d: %w", len(n.Causes), err)
			}
			n.Causes = append(n.Causes, id)
		case fieldNotificationMetaData:
			if typ != protowire.BytesType {
				return wrongType("Notification", num, typ)
			}
			haveMeta = true
			metaBytes = append(metaBytes, val)
		case fieldNotificationEventID:
			if typ != protowire.BytesType {
				return wrongType("Notification", num, typ)
			}
			haveID = true
			idBytes = append(idBytes, val)
		}
	}
	if r.err != nil {
		return malformed("%v", r.err)
	}
	if !haveID {
		return malformed("required field event_id (108) is missing")
	}
	id, err := unmarshalEventID(idBytes)
	if err != nil {
		return fmt.Errorf("event_id: %w", err)
	}
	n.EventID = id
	if haveMeta {
		if err := n.MetaData.unmarshal(metaBytes); err != nil {
			return err
		}
	}
	return nil
}

// unmarshalEventID decodes an EventId given in one or more parts (merged).
func unmarshalEventID(parts [][]byte) (EventID, error) {
	var id EventID
	var haveSender, haveSeq bool
	for _, b := range parts {
		r := fieldReader{b: b}
		for {
			num, typ, val, v, ok := r.next()
			if !ok {
				break
			}
			switch num {
			case fieldEventIDSender:
				if typ != protowire.BytesType {
					return id, wrongType("EventId", num, typ)
				}
				if len(val) != 16 {
					return id, malformed("sender_id is %d bytes; a UUID is 16", len(val))
				}
				copy(id.Sender[:], val)
				haveSender = true
			case fieldEventIDSeq:
				if typ != protowire.VarintType {
					return id, wrongType("EventId", num, typ)
				}
				id.Seq = uint32(v) // a uint32 field keeps the low 32 bits
				haveSeq = true
			}
		}
		if r.err != nil {
			return id, malformed("%v", r.err)
		}
	}
	if !haveSender || !haveSeq {
		return id, malformed("EventId misses a required field (sender_id %v, sequence_number %v)", haveSender, haveSeq)
	}
	return id, nil
}

func (m *MetaData) unmarshal(parts [][]byte) error {
	var haveCreate, haveSend bool
	for _, b := range parts {
		if err := m.unmarshalPart(b, &haveCreate, &haveSend); err != nil {
			return err
		}
	}
	if !haveCreate || !haveSend {
		return malformed("EventMetaData misses a required field (create_time %v, send_time %v)", haveCreate, haveSend)
	}
	return nil
}

func (m *MetaData) unmarshalPart(b []byte, haveCreate, haveSend *bool) error {
	r := fieldReader{b: b}
	for {
		num, typ, val, v, ok := r.next()
		if !ok {
			break
		}
		switch num {
		case fieldMetaCreate, fieldMetaSend, fieldMetaReceive, fieldMetaDeliver:
			if typ != protowire.VarintType {
				return wrongType("EventMetaData", num, typ)
			}
			switch num {
			case fieldMetaCreate:
				m.CreateTime, *haveCreate = int64(v), true
			case fieldMetaSend:
				m.SendTime, *haveSend = int64(v), true
			case fieldMetaReceive:
				m.ReceiveTime = int64(v)
			case fieldMetaDeliver:
				m.DeliverTime = int64(v)
			}
		case fieldMetaUserTimes:
			if typ != protowire.BytesType {
				return wrongType("EventMetaData", num, typ)
			}
			var ut UserTime
			var haveKey, haveTS bool
			fr := fieldReader{b: val}
			for {
				num, typ, val, v, ok := fr.next()
				if !ok {
					break
				}
				switch {
				case num == fieldKey && typ == protowire.BytesType:
					ut.Key, haveKey = string(val), true
				case num == fieldTimestamp && typ == protowire.VarintType:
					ut.Timestamp, haveTS = v, true
				case num == fieldKey || num == fieldTimestamp:
					return wrongType("UserTime", num, typ)
				}
			}
			if fr.err != nil {
				return malformed("%v", fr.err)
			}
			if !haveKey || !haveTS {
				return malformed("UserTime misses a required field")
			}
			m.UserTimes = append(m.UserTimes, ut)
		case fieldMetaUserInfos:
			if typ != protowire.BytesType {
				return wrongType("EventMetaData", num, typ)
			}
			var ui UserInfo
			var haveKey, haveValue bool
			fr := fieldReader{b: val}
			for {
				num, typ, val, _, ok := fr.next()
				if !ok {
					break
				}
				switch {
				case num == fieldKey && typ == protowire.BytesType:
					ui.Key, haveKey = string(val), true
				case num == fieldValue && typ == protowire.BytesType:
					ui.Value, haveValue = string(val), true
				case num == fieldKey || num == fieldValue:
					return wrongType("UserInfo", num, typ)
				}
			}
			if fr.err != nil {
				return malformed("%v", fr.err)
			}
			if !haveKey || !haveValue {
				return malformed("UserInfo misses a required field")
			}
			m.UserInfos = append(m.UserInfos, ui)
		}
	}
	if r.err != nil {
		return malformed("%v", r.err)
	}
	return nil
}
