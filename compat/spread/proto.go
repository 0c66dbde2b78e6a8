package spread

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Sizes and defaults of the Spread 4 client protocol (sp.h, sess_types.h).
const (
	DefaultPort = 4803
	DefaultAddr = "localhost:4803"

	MaxGroupName   = 32 // bytes on the wire, NUL included: names have up to 31
	MaxPrivateName = 10 // the name given to Dial
	HeaderSize     = 48 // type, sender[32], num_groups, hint, data_len

	// Version of the protocol this client speaks (Spread 4.0.0).
	VersionMajor = 4
	VersionMinor = 0
	VersionPatch = 0

	// DefaultMaxMessage bounds a received message's data (and
	// DefaultMaxGroups its group count), checked before allocating.
	DefaultMaxMessage = 1 << 20
	DefaultMaxGroups  = 1024

	// MaxMessageBody bounds what a client sends: the data plus 32 bytes
	// per group (Spread's MAX_MESSAGE_BODY_LEN, 100 packets of 1440
	// bytes).
	MaxMessageBody = 144000

	authNameLen    = 30 // MAX_AUTH_NAME
	authMethods    = 3  // MAX_AUTH_METHODS
	authChoiceSize = authNameLen * authMethods
	acceptSession  = 1
)

// Message type bits (sp.h). The service levels are in types.go.
const (
	typeRegular      = 0x0000003f // REGULAR_MESS: any level
	typeSelfDiscard  = 0x00000040
	typeCausedJoin   = 0x00000100
	typeCausedLeave  = 0x00000200
	typeCausedDiscon = 0x00000400
	typeCausedNet    = 0x00000800
	typeRegMemb      = 0x00001000 // REG_MEMB_MESS
	typeTransition   = 0x00002000 // TRANSITION_MESS
	typeMembership   = 0x00003f00 // MEMBERSHIP_MESS
	typeJoin         = 0x00010000 // JOIN_MESS
	typeLeave        = 0x00020000 // LEAVE_MESS
	typeKill         = 0x00040000 // KILL_MESS
	typeReject       = 0x00400000 // REJECT_MESS
	endianFlag       = 0x80000080 // ENDIAN_RESERVED: set by little-endian senders
)

// Errors.
var (
	// ErrClosed reports a client closed by Close.
	ErrClosed = errors.New("spread: closed")
	// ErrConnLost reports a connection to the daemon that broke. Spread
	// sessions do not survive it: Dial again, and join again.
	ErrConnLost = errors.New("spread: connection to the daemon lost")
	// ErrProtocol reports bytes from the daemon that break the protocol;
	// the connection is closed.
	ErrProtocol = errors.New("spread: protocol error")
	// ErrNoNullAuth reports a daemon that does not offer the NULL
	// authentication method, the only one this client has.
	ErrNoNullAuth = errors.New("spread: the daemon does not offer NULL authentication")
	// ErrInvalidName reports a private or group name Spread cannot take.
	ErrInvalidName = errors.New("spread: invalid name")
	// ErrInvalidService reports a service that is not exactly one level.
	ErrInvalidService = errors.New("spread: invalid service")
	// ErrTooLarge reports a message or group list over the limits.
	ErrTooLarge = errors.New("spread: message too large")
)

// Error is an error code the daemon sent instead of accepting the
// session (sp.h). Is matches it against the code constants' errors.
type Error struct {
	Code int
}

// Spread's error codes.
const (
	IllegalSpread      = -1
	CouldNotConnect    = -2
	RejectQuota        = -3
	RejectNoName       = -4
	RejectIllegalName  = -5
	RejectNotUnique    = -6
	RejectVersion      = -7
	ConnectionClosed   = -8
	RejectAuth         = -9
	IllegalSession     = -11
	IllegalService     = -12
	IllegalMessage     = -13
	IllegalGroup       = -14
	BufferTooShort     = -15
	GroupsTooShort     = -16
	MessageTooLong     = -17
	NetErrorOnSessions = -18
	SPBug              = -19
)

var codeNames = map[int]string{
	IllegalSpread: "ILLEGAL_SPREAD", CouldNotConnect: "COULD_NOT_CONNECT", RejectQuota: "REJECT_QUOTA",
	RejectNoName: "REJECT_NO_NAME", RejectIllegalName: "REJECT_ILLEGAL_NAME", RejectNotUnique: "REJECT_NOT_UNIQUE",
	RejectVersion: "REJECT_VERSION", ConnectionClosed: "CONNECTION_CLOSED", RejectAuth: "REJECT_AUTH",
	IllegalSession: "ILLEGAL_SESSION", IllegalService: "ILLEGAL_SERVICE", IllegalMessage: "ILLEGAL_MESSAGE",
	IllegalGroup: "ILLEGAL_GROUP", BufferTooShort: "BUFFER_TOO_SHORT", GroupsTooShort: "GROUPS_TOO_SHORT",
	MessageTooLong: "MESSAGE_TOO_LONG", NetErrorOnSessions: "NET_ERROR_ON_SESSION", SPBug: "SP_BUG",
}

func (e *Error) Error() string {
	if name, ok := codeNames[e.Code]; ok {
		return fmt.Sprintf("spread: daemon refused: %s (%d)", name, e.Code)
	}
	return fmt.Sprintf("spread: daemon refused: code %d", e.Code)
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// ValidPrivateName reports whether Spread takes name as a connection's
// private name: up to 10 printable ASCII characters, without '#' and
// space. The empty name asks the daemon to make one up.
func ValidPrivateName(name string) bool {
	if len(name) > MaxPrivateName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == '#' {
			return false
		}
	}
	return true
}

// ValidGroupName reports whether Spread lets a client join or leave
// name (SP_join): 1 to 31 characters from '$' (36) to '~' (126), so no
// space and no '#', which marks private groups.
func ValidGroupName(name string) bool {
	if len(name) == 0 || len(name) >= MaxGroupName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 36 || c > 126 {
			return false
		}
	}
	return true
}

// validDestination reports whether name can be a multicast's destination:
// a group name, or a private group name ("#alice#daemon"): 1 to 31
// printable characters without space.
func validDestination(name string) bool {
	if len(name) == 0 || len(name) >= MaxGroupName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// AppendConnect appends the connect message:
// [major, minor, patch, membership | priority<<4, len(name), name].
func AppendConnect(b []byte, name string, membership bool, priority int) []byte {
	flags := byte(priority&0x0f) << 4
	if membership {
		flags |= 1
	}
	b = append(b, VersionMajor, VersionMinor, VersionPatch, flags, byte(len(name)))
	return append(b, name...)
}

// AppendAuthChoice appends the 90-byte authentication choice: "NULL",
// NUL-padded.
func AppendAuthChoice(b []byte) []byte {
	var choice [authChoiceSize]byte
	copy(choice[:], "NULL")
	return append(b, choice[:]...)
}

// Header is the 48-byte message header, with the endianness flag
// removed.
type Header struct {
	Type      uint32 // service or control type bits
	Sender    string // sender (or group) name, up to 31 bytes
	NumGroups int32
	Hint      uint32 // mess_type << 8 (unused in membership messages)
	DataLen   int32
}

// MsgType returns the message type in the hint.
func (h *Header) MsgType() int16 { return int16(h.Hint >> 8) }

// AppendHeader appends h as a little-endian sender writes it: type and
// hint carry the endianness flag 0x80000080.
func AppendHeader(b []byte, h *Header) []byte {
	b = binary.LittleEndian.AppendUint32(b, h.Type&^endianFlag|endianFlag)
	b = appendName(b, h.Sender)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.NumGroups))
	b = binary.LittleEndian.AppendUint32(b, h.Hint&^endianFlag|endianFlag)
	return binary.LittleEndian.AppendUint32(b, uint32(h.DataLen))
}

// appendName appends name in a 32-byte NUL-padded field.
func appendName(b []byte, name string) []byte {
	var f [MaxGroupName]byte
	copy(f[:MaxGroupName-1], name)
	return append(b, f[:]...)
}

// cName returns the string before the first NUL of a name field; ok is
// false when the field has no NUL (Spread's names have up to 31 bytes).
func cName(f []byte) string {
	s, _ := cNameOK(f)
	return s
}

func cNameOK(f []byte) (string, bool) {
	for i, c := range f {
		if c == 0 {
			return string(f[:i]), true
		}
	}
	return string(f), false
}

// orderOf returns the byte order a little-endian reader must use for a
// field that carries the endianness flag: the flag set means the sender
// was little-endian (Spread's Same_endian); the flag reads the same in
// both orders.
func orderOf(field []byte) binary.ByteOrder {
	if binary.LittleEndian.Uint32(field)&endianFlag == endianFlag {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

// ParseHeader decodes a 48-byte header. Type, num_groups and data_len
// follow the endianness flag of type, and hint its own flag, as Spread's
// SP_scat_receive reads them. It returns the byte order of type, with
// which the membership data that follows is decoded too.
func ParseHeader(b []byte) (Header, binary.ByteOrder, error) {
	if len(b) < HeaderSize {
		return Header{}, nil, fmt.Errorf("%w: header of %d bytes", ErrProtocol, len(b))
	}
	order := orderOf(b[0:4])
	h := Header{
		Type:      order.Uint32(b[0:]) &^ endianFlag,
		Sender:    cName(b[4:36]),
		NumGroups: int32(order.Uint32(b[36:])),
		Hint:      orderOf(b[40:44]).Uint32(b[40:]) &^ endianFlag,
		DataLen:   int32(order.Uint32(b[44:])),
	}
	return h, order, nil
}

// AppendMessage appends a whole message: the header with num_groups and
// data_len set from groups and data, the 32-byte group names, the data.
func AppendMessage(b []byte, h Header, groups []string, data []byte) []byte {
	h.NumGroups = int32(len(groups))
	h.DataLen = int32(len(data))
	b = AppendHeader(b, &h)
	for _, g := range groups {
		b = appendName(b, g)
	}
	return append(b, data...)
}

// Limits bounds what ReadMessage accepts.
type Limits struct {
	MaxMessage int // data bytes (DefaultMaxMessage when 0)
	MaxGroups  int // groups (DefaultMaxGroups when 0)
}

// RawMessage is a message as read: its header, its group names and its
// data. For a rejected message, Header.Type is the original type with
// REJECT_MESS added, as SP_receive reports it.
type RawMessage struct {
	Header Header
	Order  binary.ByteOrder
	Groups []string
	Data   []byte
}

// ReadMessage reads one message from the daemon. Negative or oversized
// counts are ErrProtocol, checked before allocating.
func ReadMessage(r io.Reader, lim Limits) (*RawMessage, error) {
	if lim.MaxMessage <= 0 {
		lim.MaxMessage = DefaultMaxMessage
	}
	if lim.MaxGroups <= 0 {
		lim.MaxGroups = DefaultMaxGroups
	}
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return nil, err
	}
	h, order, _ := ParseHeader(hb[:])
	if _, ok := cNameOK(hb[4:36]); !ok {
		return nil, fmt.Errorf("%w: sender name without its NUL", ErrProtocol)
	}
	if h.NumGroups < 0 || int(h.NumGroups) > lim.MaxGroups {
		return nil, fmt.Errorf("%w: %d groups (limit %d)", ErrProtocol, h.NumGroups, lim.MaxGroups)
	}
	if h.DataLen < 0 || int(h.DataLen) > lim.MaxMessage {
		return nil, fmt.Errorf("%w: %d data bytes (limit %d)", ErrProtocol, h.DataLen, lim.MaxMessage)
	}
	m := &RawMessage{Header: h, Order: order}
	if h.Type&typeReject != 0 {
		// A rejected message carries its original type in 4 more bytes
		// before the groups.
		var old [4]byte
		if _, err := io.ReadFull(r, old[:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		m.Header.Type = order.Uint32(old[:])&^endianFlag | typeReject
	}
	buf := make([]byte, int(h.NumGroups)*MaxGroupName+int(h.DataLen))
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	m.Groups = make([]string, h.NumGroups)
	for i := range m.Groups {
		var ok bool
		if m.Groups[i], ok = cNameOK(buf[i*MaxGroupName : (i+1)*MaxGroupName]); !ok {
			return nil, fmt.Errorf("%w: group name %d without its NUL", ErrProtocol, i)
		}
	}
	m.Data = buf[int(h.NumGroups)*MaxGroupName:]
	return m, nil
}

// Decode turns a raw message into a Delivery. self is the receiving
// client's private group name, whose position in a membership message's
// members is its Index. Messages of other kinds (no service bit and no
// membership bit) are ErrProtocol.
func (m *RawMessage) Decode(self string) (Delivery, error) {
	t := m.Header.Type
	switch {
	case t&typeReject != 0 || t&typeRegular != 0 && t&typeMembership == 0:
		return &Message{
			Sender:   m.Header.Sender,
			Groups:   m.Groups,
			Service:  Service(t & (typeRegular | typeSelfDiscard)),
			MsgType:  m.Header.MsgType(),
			Body:     m.Data,
			Raw:      m.Data,
			Rejected: t&typeReject != 0,
		}, nil
	case t&typeMembership != 0:
		return m.decodeMembership(self)
	}
	return nil, fmt.Errorf("%w: message type %#x is neither regular nor membership", ErrProtocol, t)
}

func reasonOf(t uint32) Reason {
	switch {
	case t&typeCausedJoin != 0:
		return Join
	case t&typeCausedLeave != 0:
		return Leave
	case t&typeCausedDiscon != 0:
		return Disconnect
	case t&typeCausedNet != 0:
		return Network
	}
	return 0
}

// decodeMembership decodes a membership message. Its data is Spread 4's:
//
//	group_id      3 x int32: proc_id, time, index
//	num_vs_sets   int32
//	local offset  int32: where this client's VS set starts, counted
//	              from the first VS set (SP_get_memb_info)
//	VS sets       each: int32 num_members, then 32-byte names
func (m *RawMessage) decodeMembership(self string) (*Membership, error) {
	t := m.Header.Type
	mb := &Membership{Group: m.Header.Sender, Reason: reasonOf(t), Index: -1, Local: -1}
	switch {
	case t&typeTransition != 0:
		mb.Transitional = true
	case t&typeRegMemb == 0:
		// A self-leave: CAUSED_BY_LEAVE alone, no members.
		if mb.Reason != Leave {
			return nil, fmt.Errorf("%w: membership type %#x", ErrProtocol, t)
		}
		return mb, nil
	default:
		mb.Members = m.Groups
		mb.Index = slices.Index(m.Groups, self)
	}
	d, o := m.Data, m.Order
	if len(d) < 12 {
		if mb.Transitional && len(d) == 0 {
			return mb, nil
		}
		return nil, fmt.Errorf("%w: membership data of %d bytes", ErrProtocol, len(d))
	}
	mb.ViewID = ViewID{ProcID: int32(o.Uint32(d)), Time: int32(o.Uint32(d[4:])), Index: int32(o.Uint32(d[8:]))}
	if len(d) == 12 {
		return mb, nil // no VS sets (a transitional message, or Spread 3)
	}
	if len(d) < 20 {
		return nil, fmt.Errorf("%w: membership data of %d bytes", ErrProtocol, len(d))
	}
	num := o.Uint32(d[12:])
	local := o.Uint32(d[16:])
	off := uint64(20)
	// Each set takes 4 bytes at least: the count bounds the allocation.
	if uint64(num)*4 > uint64(len(d))-off {
		return nil, fmt.Errorf("%w: %d VS sets in %d bytes", ErrProtocol, num, len(d))
	}
	for range num {
		if off+4 > uint64(len(d)) {
			return nil, fmt.Errorf("%w: VS set past the data", ErrProtocol)
		}
		if off-20 == uint64(local) {
			mb.Local = len(mb.VSSets)
		}
		n := uint64(o.Uint32(d[off:]))
		off += 4
		if n*MaxGroupName > uint64(len(d))-off {
			return nil, fmt.Errorf("%w: VS set of %d members past the data", ErrProtocol, n)
		}
		set := make([]string, n)
		for i := range set {
			var ok bool
			if set[i], ok = cNameOK(d[off : off+MaxGroupName]); !ok {
				return nil, fmt.Errorf("%w: VS set member without its NUL", ErrProtocol)
			}
			off += MaxGroupName
		}
		mb.VSSets = append(mb.VSSets, set)
	}
	if num > 0 && mb.Local < 0 {
		return nil, fmt.Errorf("%w: local VS set offset %d is not a set's", ErrProtocol, local)
	}
	if !mb.Transitional {
		switch mb.Reason {
		case Join:
			if len(mb.VSSets) > 0 && len(mb.VSSets[0]) > 0 {
				mb.Joined = []string{mb.VSSets[0][0]}
			}
		case Leave, Disconnect:
			if len(mb.VSSets) > 0 && len(mb.VSSets[0]) > 0 {
				mb.Left = []string{mb.VSSets[0][0]}
			}
		}
	}
	return mb, nil
}
