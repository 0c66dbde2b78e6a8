package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/slc-go/slc/internal/msgp"
)

// Protocol versions this implementation speaks.
const (
	MinVersion uint8 = 1
	MaxVersion uint8 = 1
)

// Magic opens every connection: "slc" and a NUL.
var Magic = [4]byte{'s', 'l', 'c', 0x00}

// PreambleLen is the size of the preamble each side sends first.
const PreambleLen = 8

// Security modes carried in the preamble. A connection proceeds only when
// both sides name the same mode.
const (
	ModePlain    uint8 = 0 // no encryption: hello and frames in the clear
	ModeNoiseXX  uint8 = 1 // Noise XX with static keys (see docs/security.md)
	ModeNoisePSK uint8 = 2 // Noise XXpsk3 with a shared network secret
)

// ModeName names a security mode for error messages.
func ModeName(m uint8) string {
	switch m {
	case ModePlain:
		return "plain"
	case ModeNoiseXX:
		return "secure (noise-xx)"
	case ModeNoisePSK:
		return "secure (noise-xx with network secret)"
	}
	return fmt.Sprintf("mode %d", m)
}

// Preamble flags (byte 7). Bits other than these are reserved: senders
// set them to 0, receivers ignore them.
const (
	// PreambleAESGCM: the sender prefers AES-256-GCM to ChaCha20-Poly1305
	// as the cipher of the Noise channel (secure modes only). The channel
	// uses AES-256-GCM when both preambles set it (docs/protocol.md,
	// section 2.3).
	PreambleAESGCM uint8 = 0x01
)

// Preamble is the first 8 bytes each side sends, before anything else:
//
//	0..3  magic "slc\x00"
//	4     lowest protocol version spoken
//	5     highest protocol version spoken
//	6     security mode
//	7     flags (PreambleAESGCM); 0 in plain mode
type Preamble struct {
	Min, Max uint8
	Mode     uint8
	// Flags is byte 7. ParsePreamble keeps it as received, reserved bits
	// included: it is for the receiver to ignore the bits it does not know.
	Flags uint8
}

// AppendPreamble appends the 8-byte encoding of p.
func AppendPreamble(b []byte, p Preamble) []byte {
	b = append(b, Magic[:]...)
	return append(b, p.Min, p.Max, p.Mode, p.Flags)
}

// ParsePreamble decodes 8 bytes read from a peer.
func ParsePreamble(b []byte) (Preamble, error) {
	if len(b) < PreambleLen {
		return Preamble{}, protoErr(CodeMalformed, "short preamble (%d bytes)", len(b))
	}
	if [4]byte(b[:4]) != Magic {
		return Preamble{}, protoErr(CodeBadMagic, "not an slc peer (first bytes %q)", b[:4])
	}
	p := Preamble{Min: b[4], Max: b[5], Mode: b[6], Flags: b[7]}
	if p.Min == 0 || p.Min > p.Max {
		return Preamble{}, protoErr(CodeMalformed, "invalid version range %d..%d", p.Min, p.Max)
	}
	return p, nil
}

// Negotiate picks the protocol version for a connection: the highest
// version both sides speak. Both sides compute the same answer from the two
// preambles, so no further round trip is needed. Mismatched security modes
// fail here too, on both sides at once.
func Negotiate(local, remote Preamble) (uint8, error) {
	if local.Mode != remote.Mode {
		return 0, protoErr(CodeSecurityMismatch, "local side is %s, remote side is %s",
			ModeName(local.Mode), ModeName(remote.Mode))
	}
	v := min(local.Max, remote.Max)
	if v < max(local.Min, remote.Min) {
		return 0, protoErr(CodeVersion, "local speaks versions %d..%d, remote %d..%d",
			local.Min, local.Max, remote.Min, remote.Max)
	}
	return v, nil
}

// HeaderLen is the size of the fixed frame header.
const HeaderLen = 8

// Frame types. The list is append-only. Types 0x80-0xFF are extensions a
// receiver that does not know them skips; an unknown type below 0x80 is a
// protocol error.
const (
	TypeHello    uint8 = 0x01
	TypeResume   uint8 = 0x02
	TypeReject   uint8 = 0x03
	TypeData     uint8 = 0x04
	TypeAck      uint8 = 0x05
	TypePing     uint8 = 0x06
	TypePong     uint8 = 0x07
	TypeGoodbye  uint8 = 0x08
	TypeProgress uint8 = 0x09

	// TypeIgnorable is the bit that marks an extension frame type.
	TypeIgnorable uint8 = 0x80
)

// TypeName names a frame type for logs and errors.
func TypeName(t uint8) string {
	switch t {
	case TypeHello:
		return "HELLO"
	case TypeResume:
		return "RESUME"
	case TypeReject:
		return "REJECT"
	case TypeData:
		return "DATA"
	case TypeAck:
		return "ACK"
	case TypePing:
		return "PING"
	case TypePong:
		return "PONG"
	case TypeGoodbye:
		return "GOODBYE"
	case TypeProgress:
		return "PROGRESS"
	}
	return fmt.Sprintf("0x%02x", t)
}

// Known reports whether t is a frame type this version understands.
func Known(t uint8) bool { return t >= TypeHello && t <= TypeProgress }

// DATA frame flags.
const (
	// FlagMore marks a chunk of a message that continues in the next DATA
	// frame. The last chunk (or a whole message) has it clear.
	FlagMore uint8 = 0x01
	// FlagAbort ends a chunked message without delivering it: its sender
	// gave up part way (its context ended while it waited for room). The
	// frame has an empty body. Receivers discard what they assembled and
	// acknowledge the sequence number, so the sender's log moves on.
	FlagAbort uint8 = 0x02
)

// Header is the fixed 8-byte frame header:
//
//	0     version (the negotiated protocol version)
//	1     type
//	2     flags
//	3     reserved, 0
//	4..7  payload length, uint32 big-endian (not counting the header)
type Header struct {
	Version uint8
	Type    uint8
	Flags   uint8
	Length  uint32
}

// AppendHeader appends an encoded header.
func AppendHeader(b []byte, h Header) []byte {
	return append(b, h.Version, h.Type, h.Flags, 0,
		byte(h.Length>>24), byte(h.Length>>16), byte(h.Length>>8), byte(h.Length))
}

// ParseHeader decodes a header and checks it against the negotiated version
// and the receiver's maximum payload length, so that a hostile length is
// refused before anything is allocated for it.
func ParseHeader(b []byte, version uint8, maxPayload uint32) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, protoErr(CodeMalformed, "short frame header")
	}
	h := Header{Version: b[0], Type: b[1], Flags: b[2], Length: binary.BigEndian.Uint32(b[4:8])}
	if h.Version != version {
		return h, protoErr(CodeVersion, "frame version %d, connection speaks %d", h.Version, version)
	}
	if h.Length > maxPayload {
		return h, protoErr(CodeFrameTooLarge, "%s frame of %d bytes exceeds the limit of %d",
			TypeName(h.Type), h.Length, maxPayload)
	}
	if !Known(h.Type) && h.Type&TypeIgnorable == 0 {
		return h, protoErr(CodeUnknownFrame, "frame type 0x%02x", h.Type)
	}
	return h, nil
}

// DataPrefixLen is the fixed part of a DATA payload before the type name.
const DataPrefixLen = 11

// MaxTypeName is the longest type name a DATA frame can carry.
const MaxTypeName = 255

// Data is a decoded DATA payload:
//
//	0..7   message sequence number (the sender's MsgID), uint64 big-endian
//	8      serializer ID (sender's numbering, announced in its hello)
//	9      compressor ID for this frame's body, 0 = none
//	10     type name length n
//	11..   type name, n bytes of UTF-8
//	...    body (this chunk), compressed when the compressor ID is not 0
type Data struct {
	Seq        uint64
	Serializer uint8
	Compressor uint8
	Type       []byte
	Body       []byte
}

// DataOverhead is the frame size beyond the body for a given type name.
func DataOverhead(typeName string) int { return HeaderLen + DataPrefixLen + len(typeName) }

// AppendData appends a complete DATA frame. body is the (possibly
// compressed) chunk; flags is 0, FlagMore or FlagAbort.
func AppendData(b []byte, version uint8, flags uint8, seq uint64, ser, comp uint8, typeName string, body []byte) []byte {
	n := DataPrefixLen + len(typeName) + len(body)
	b = AppendHeader(b, Header{Version: version, Type: TypeData, Flags: flags, Length: uint32(n)})
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, ser, comp, byte(len(typeName)))
	b = append(b, typeName...)
	return append(b, body...)
}

// ParseData decodes a DATA payload. Type and Body alias p.
func ParseData(p []byte) (Data, error) {
	d, err := ParseDataUnchecked(p)
	if err != nil {
		return Data{}, err
	}
	if err := CheckTypeName(d.Type); err != nil {
		return Data{}, err
	}
	return d, nil
}

// ParseDataUnchecked is ParseData without the check that Type is UTF-8,
// for a reader that checks each type name with CheckTypeName unless it
// is one it has checked before.
func ParseDataUnchecked(p []byte) (Data, error) {
	if len(p) < DataPrefixLen {
		return Data{}, protoErr(CodeMalformed, "DATA payload of %d bytes is shorter than its prefix", len(p))
	}
	d := Data{
		Seq:        binary.BigEndian.Uint64(p),
		Serializer: p[8],
		Compressor: p[9],
	}
	n := int(p[10])
	if len(p) < DataPrefixLen+n {
		return Data{}, protoErr(CodeMalformed, "DATA type name of %d bytes overruns the payload", n)
	}
	d.Type = p[DataPrefixLen : DataPrefixLen+n]
	d.Body = p[DataPrefixLen+n:]
	if d.Seq == 0 {
		return Data{}, protoErr(CodeSequence, "DATA with sequence number 0")
	}
	return d, nil
}

// CheckTypeName reports a DATA type name that is not UTF-8.
func CheckTypeName(name []byte) error {
	if !utf8.Valid(name) {
		return protoErr(CodeMalformed, "DATA type name is not UTF-8")
	}
	return nil
}

// AppendAck appends an ACK frame: 8 bytes, the highest sequence number the
// sender of the ACK has placed in its mailbox (cumulative).
func AppendAck(b []byte, version uint8, seq uint64) []byte {
	b = AppendHeader(b, Header{Version: version, Type: TypeAck, Length: 8})
	return binary.BigEndian.AppendUint64(b, seq)
}

// ParseAck decodes an ACK payload.
func ParseAck(p []byte) (uint64, error) {
	if len(p) != 8 {
		return 0, protoErr(CodeMalformed, "ACK payload of %d bytes, want 8", len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

// AppendPing appends a PING (or, with pong set, a PONG) carrying 8 opaque
// bytes. Every PING is answered with a PONG echoing them.
func AppendPing(b []byte, version uint8, pong bool, nonce uint64) []byte {
	t := TypePing
	if pong {
		t = TypePong
	}
	b = AppendHeader(b, Header{Version: version, Type: t, Length: 8})
	return binary.BigEndian.AppendUint64(b, nonce)
}

// ParsePing decodes a PING or PONG payload.
func ParsePing(p []byte) (uint64, error) {
	if len(p) != 8 {
		return 0, protoErr(CodeMalformed, "PING/PONG payload of %d bytes, want 8", len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

// Resume is the RESUME payload: 32 bytes. Each side sends one right after
// it has read and accepted the other's hello. Instance repeats the remote
// instance the watermarks refer to; Delivered is the highest sequence
// number from that instance already placed in the mailbox (0 when the
// instance is new to this side). When a chunked message from that
// instance is partly received, Partial is its sequence number and Chunks
// how many of its chunks this side holds (both 0 otherwise). The receiver
// of RESUME re-sends what the other side does not hold: the message
// Partial from chunk Chunks on, then every message above it.
type Resume struct {
	Instance  uint64
	Delivered uint64
	Partial   uint64
	Chunks    uint64
}

// ResumeLen is the size of a RESUME payload.
const ResumeLen = 32

// AppendResume appends a RESUME frame.
func AppendResume(b []byte, version uint8, r Resume) []byte {
	b = AppendHeader(b, Header{Version: version, Type: TypeResume, Length: ResumeLen})
	b = binary.BigEndian.AppendUint64(b, r.Instance)
	b = binary.BigEndian.AppendUint64(b, r.Delivered)
	b = binary.BigEndian.AppendUint64(b, r.Partial)
	return binary.BigEndian.AppendUint64(b, r.Chunks)
}

// ParseResume decodes a RESUME payload.
func ParseResume(p []byte) (Resume, error) {
	if len(p) != ResumeLen {
		return Resume{}, protoErr(CodeMalformed, "RESUME payload of %d bytes, want %d", len(p), ResumeLen)
	}
	r := Resume{
		Instance:  binary.BigEndian.Uint64(p),
		Delivered: binary.BigEndian.Uint64(p[8:]),
		Partial:   binary.BigEndian.Uint64(p[16:]),
		Chunks:    binary.BigEndian.Uint64(p[24:]),
	}
	if (r.Partial == 0) != (r.Chunks == 0) || r.Partial != 0 && r.Partial <= r.Delivered {
		return Resume{}, protoErr(CodeMalformed, "RESUME with an inconsistent partial message (%d chunks of %d, delivered %d)", r.Chunks, r.Partial, r.Delivered)
	}
	return r, nil
}

// Progress is the PROGRESS payload: 16 bytes. The receiver of a chunked
// message sends it as chunks arrive (batched, like ACK): it holds the
// first Chunks chunks of message Seq, and every message before Seq. The
// sender may then release those chunks, so a message larger than the
// sender's buffer flows within the buffer, and a reconnect resumes it at
// the next chunk.
type Progress struct {
	Seq    uint64
	Chunks uint64
}

// AppendProgress appends a PROGRESS frame.
func AppendProgress(b []byte, version uint8, p Progress) []byte {
	b = AppendHeader(b, Header{Version: version, Type: TypeProgress, Length: 16})
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	return binary.BigEndian.AppendUint64(b, p.Chunks)
}

// ParseProgress decodes a PROGRESS payload.
func ParseProgress(p []byte) (Progress, error) {
	if len(p) != 16 {
		return Progress{}, protoErr(CodeMalformed, "PROGRESS payload of %d bytes, want 16", len(p))
	}
	pr := Progress{Seq: binary.BigEndian.Uint64(p), Chunks: binary.BigEndian.Uint64(p[8:])}
	if pr.Seq == 0 || pr.Chunks == 0 {
		return Progress{}, protoErr(CodeMalformed, "PROGRESS for message %d with %d chunks", pr.Seq, pr.Chunks)
	}
	return pr, nil
}

// Close is the body of REJECT and GOODBYE frames: a msgpack map
// {"code": uint, "reason": str}.
type Close struct {
	Code   Code
	Reason string
}

// MaxReason bounds the reason text carried in REJECT and GOODBYE.
const MaxReason = 1024

// AppendClose appends a REJECT or GOODBYE frame (t selects which).
func AppendClose(b []byte, version uint8, t uint8, c Close) []byte {
	reason := truncate(c.Reason, MaxReason)
	var body [MaxReason + 32]byte
	p := msgp.AppendMapHeader(body[:0], 2)
	p = msgp.AppendStr(p, "code")
	p = msgp.AppendUint(p, uint64(c.Code))
	p = msgp.AppendStr(p, "reason")
	p = msgp.AppendStr(p, reason)
	b = AppendHeader(b, Header{Version: version, Type: t, Length: uint32(len(p))})
	return append(b, p...)
}

// ParseClose decodes a REJECT or GOODBYE body. Unknown keys are skipped.
func ParseClose(p []byte) (Close, error) {
	r := mpReader{b: p}
	var c Close
	n := r.mapLen()
	for i := 0; i < n && r.err == nil; i++ {
		switch r.str() {
		case "code":
			v := r.uint()
			if v > 0xffff {
				r.fail("close code out of range")
			}
			c.Code = Code(v)
		case "reason":
			c.Reason = truncate(r.str(), MaxReason)
		default:
			r.skip()
		}
	}
	if r.err != nil {
		return Close{}, r.err
	}
	if !utf8.ValidString(c.Reason) {
		c.Reason = "(invalid UTF-8)"
	}
	return c, nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Err turns a received REJECT or GOODBYE into an error.
func (c Close) Err() error {
	return &ProtocolError{Code: c.Code, Reason: c.Reason, Remote: true}
}
