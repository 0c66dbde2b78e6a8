package wire

import (
	"unicode"
	"unicode/utf8"

	"github.com/slc-go/slc/internal/msgp"
)

// MaxHello bounds the HELLO payload: frames before the hello exchange are
// refused above it.
const MaxHello = 64 << 10

// Limits a hello must respect.
const (
	MaxNameLen     = 255      // bytes in a node name
	MinFrameLimit  = 16 << 10 // smallest maximum-frame size a peer may announce
	MaxFrameLimit  = 64 << 20 // largest maximum-frame size a peer may announce
	maxCodecs      = 256
	maxCodecName   = 64
	maxHeartbeatMS = 24 * 3600 * 1000
)

// CodecEntry announces one serializer or compressor: the sender's ID for
// it, its name and its version. Encoded as a msgpack array [id, name, version].
type CodecEntry struct {
	ID      uint8
	Name    string
	Version uint8
}

// Hello is the HELLO payload, a msgpack map. Each side sends one right
// after the preamble (and, in secure mode, the Noise handshake). Keys:
//
//	"name"     str    the node's unique name
//	"inst"     uint   instance ID: random per process start, or restored from a store
//	"ser"      array  serializers the node can decode, as [id, name, version]
//	"comp"     array  compressors the node can decode, as [id, name, version]
//	"maxframe" uint   largest frame payload the node accepts
//	"maxmsg"   uint   largest message (after reassembly and decompression) it accepts
//	"hb"       uint   the node's heartbeat interval in milliseconds
//
// Unknown keys are skipped, so later versions may add keys.
type Hello struct {
	Name        string
	Instance    uint64
	Serializers []CodecEntry
	Compressors []CodecEntry
	MaxFrame    uint32
	MaxMessage  uint64
	HeartbeatMS uint32
}

// AppendHello appends a complete HELLO frame.
func AppendHello(b []byte, version uint8, h *Hello) []byte {
	start := len(b)
	b = AppendHeader(b, Header{Version: version, Type: TypeHello})
	b = msgp.AppendMapHeader(b, 7)
	b = msgp.AppendStr(b, "name")
	b = msgp.AppendStr(b, h.Name)
	b = msgp.AppendStr(b, "inst")
	b = msgp.AppendUint(b, h.Instance)
	b = msgp.AppendStr(b, "ser")
	b = appendCodecs(b, h.Serializers)
	b = msgp.AppendStr(b, "comp")
	b = appendCodecs(b, h.Compressors)
	b = msgp.AppendStr(b, "maxframe")
	b = msgp.AppendUint(b, uint64(h.MaxFrame))
	b = msgp.AppendStr(b, "maxmsg")
	b = msgp.AppendUint(b, h.MaxMessage)
	b = msgp.AppendStr(b, "hb")
	b = msgp.AppendUint(b, uint64(h.HeartbeatMS))
	n := uint32(len(b) - start - HeaderLen)
	b[start+4], b[start+5], b[start+6], b[start+7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

func appendCodecs(b []byte, cs []CodecEntry) []byte {
	b = msgp.AppendArrayHeader(b, len(cs))
	for _, c := range cs {
		b = msgp.AppendArrayHeader(b, 3)
		b = msgp.AppendUint(b, uint64(c.ID))
		b = msgp.AppendStr(b, c.Name)
		b = msgp.AppendUint(b, uint64(c.Version))
	}
	return b
}

// ParseHello decodes and validates a HELLO payload.
func ParseHello(p []byte) (*Hello, error) {
	r := mpReader{b: p}
	h := new(Hello)
	n := r.mapLen()
	for i := 0; i < n && r.err == nil; i++ {
		switch r.str() {
		case "name":
			h.Name = r.str()
		case "inst":
			h.Instance = r.uint()
		case "ser":
			h.Serializers = r.codecs()
		case "comp":
			h.Compressors = r.codecs()
		case "maxframe":
			v := r.uint()
			if v > MaxFrameLimit {
				v = MaxFrameLimit + 1 // rejected by validate
			}
			h.MaxFrame = uint32(v)
		case "maxmsg":
			h.MaxMessage = r.uint()
		case "hb":
			v := r.uint()
			if v > maxHeartbeatMS {
				v = maxHeartbeatMS + 1
			}
			h.HeartbeatMS = uint32(v)
		default:
			r.skip()
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes after hello")
	}
	if r.err != nil {
		return nil, &ProtocolError{Code: CodeBadHello, Reason: r.err.(*ProtocolError).Reason}
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h, nil
}

func (r *mpReader) codecs() []CodecEntry {
	n := r.arrayLen()
	if n > maxCodecs {
		r.fail("too many codecs")
		return nil
	}
	out := make([]CodecEntry, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		if r.arrayLen() != 3 {
			r.fail("codec entry is not [id, name, version]")
			return nil
		}
		id, name, ver := r.uint(), r.str(), r.uint()
		if id > 255 || ver > 255 || len(name) == 0 || len(name) > maxCodecName {
			r.fail("invalid codec entry")
			return nil
		}
		out = append(out, CodecEntry{ID: uint8(id), Name: name, Version: uint8(ver)})
	}
	return out
}

// ValidName reports whether s may be used as a node name: 1 to 255 bytes of
// UTF-8 with no control characters or spaces at either end.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return !unicode.IsSpace(first) && !unicode.IsSpace(last)
}

// Validate checks the fields a peer must send.
func (h *Hello) Validate() error {
	switch {
	case !ValidName(h.Name):
		return protoErr(CodeBadHello, "invalid node name %q", h.Name)
	case h.Instance == 0:
		return protoErr(CodeBadHello, "missing instance ID")
	case h.MaxFrame < MinFrameLimit || h.MaxFrame > MaxFrameLimit:
		return protoErr(CodeBadHello, "maximum frame size %d outside %d..%d", h.MaxFrame, MinFrameLimit, MaxFrameLimit)
	case h.MaxMessage == 0:
		return protoErr(CodeBadHello, "missing maximum message size")
	case h.HeartbeatMS == 0 || h.HeartbeatMS > maxHeartbeatMS:
		return protoErr(CodeBadHello, "heartbeat interval %d ms out of range", h.HeartbeatMS)
	}
	return nil
}
