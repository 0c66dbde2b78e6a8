package msgp

// Reasons Skip gives for input it cannot step over.
const (
	ReasonTruncated = "truncated msgpack body"
	ReasonLength    = "msgpack container length exceeds body"
	ReasonCode      = "invalid msgpack code"
)

// Skip returns the length of the msgpack value at the start of b, of any
// type, found without recursion however deeply it nests; or, when b does
// not start with a whole value, a reason (one of the Reason constants). A
// container that declares more elements than b has bytes left is refused
// at once, so the work is bounded by len(b).
func Skip(b []byte) (n int, reason string) {
	pos := 0
	need := func(k uint64) bool {
		if k > uint64(len(b)-pos) {
			reason = ReasonTruncated
			return false
		}
		return true
	}
	be := func(k int) uint64 {
		if !need(uint64(k)) {
			return 0
		}
		var v uint64
		for _, c := range b[pos : pos+k] {
			v = v<<8 | uint64(c)
		}
		pos += k
		return v
	}
	skipN := func(k uint64) {
		if need(k) {
			pos += int(k)
		}
	}
	count := func(k, per uint64) int {
		if reason != "" {
			return 0
		}
		if k*per > uint64(len(b)-pos) {
			reason = ReasonLength
			return 0
		}
		return int(k * per)
	}
	for pending := 1; pending > 0 && reason == ""; pending-- {
		if !need(1) {
			break
		}
		c := b[pos]
		pos++
		switch {
		case c < 0x80 || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c&0xf0 == 0x80:
			pending += 2 * int(c&0x0f)
		case c&0xf0 == 0x90:
			pending += int(c & 0x0f)
		case c&0xe0 == 0xa0:
			skipN(uint64(c & 0x1f))
		default:
			switch c {
			case 0xcc, 0xd0:
				skipN(1)
			case 0xcd, 0xd1:
				skipN(2)
			case 0xce, 0xd2, 0xca:
				skipN(4)
			case 0xcf, 0xd3, 0xcb:
				skipN(8)
			case 0xc4, 0xd9:
				skipN(be(1))
			case 0xc5, 0xda:
				skipN(be(2))
			case 0xc6, 0xdb:
				skipN(be(4))
			case 0xdc:
				pending += count(be(2), 1)
			case 0xdd:
				pending += count(be(4), 1)
			case 0xde:
				pending += count(be(2), 2)
			case 0xdf:
				pending += count(be(4), 2)
			case 0xd4:
				skipN(2)
			case 0xd5:
				skipN(3)
			case 0xd6:
				skipN(5)
			case 0xd7:
				skipN(9)
			case 0xd8:
				skipN(17)
			case 0xc7:
				skipN(be(1) + 1)
			case 0xc8:
				skipN(be(2) + 1)
			case 0xc9:
				skipN(be(4) + 1)
			default:
				reason = ReasonCode
			}
		}
	}
	if reason != "" {
		return 0, reason
	}
	return pos, ""
}
