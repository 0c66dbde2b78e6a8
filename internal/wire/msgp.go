package wire

import (
	"math"

	"github.com/slc-go/slc/internal/msgp"
)

// A minimal, bounded msgpack subset used for the control bodies (HELLO,
// REJECT, GOODBYE), written with package msgp. The bytes are standard
// msgpack, so any msgpack library can read them, but decoding here never allocates more than the input
// holds and never recurses, which matters for bytes read from a peer that
// has not yet been authenticated.

// mpReader decodes the subset. Every method reports malformed input through
// r.err and then returns zero values, so callers check r.err once at the end.
type mpReader struct {
	b   []byte
	err error
}

func (r *mpReader) fail(msg string) {
	if r.err == nil {
		r.err = &ProtocolError{Code: CodeMalformed, Reason: msg}
	}
}

func (r *mpReader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b) < n {
		r.fail("truncated msgpack body")
		return false
	}
	return true
}

func (r *mpReader) byte1() byte {
	if !r.need(1) {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *mpReader) be(n int) uint64 {
	if !r.need(n) {
		return 0
	}
	var v uint64
	for i := 0; i < n; i++ {
		v = v<<8 | uint64(r.b[i])
	}
	r.b = r.b[n:]
	return v
}

// length reads a container or string header and checks that the declared
// count can fit in what is left (each element needs at least one byte).
func (r *mpReader) container(fix, fixMask byte, c16, c32 byte, what string) int {
	c := r.byte1()
	if r.err != nil {
		return 0
	}
	var n uint64
	switch {
	case c&fixMask == fix:
		n = uint64(c &^ fixMask)
	case c == c16:
		n = r.be(2)
	case c == c32:
		n = r.be(4)
	default:
		r.fail("expected msgpack " + what)
		return 0
	}
	if n > uint64(len(r.b)) {
		r.fail("msgpack " + what + " length exceeds body")
		return 0
	}
	return int(n)
}

func (r *mpReader) mapLen() int   { return r.container(0x80, 0xf0, 0xde, 0xdf, "map") }
func (r *mpReader) arrayLen() int { return r.container(0x90, 0xf0, 0xdc, 0xdd, "array") }

func (r *mpReader) str() string {
	c := r.byte1()
	if r.err != nil {
		return ""
	}
	var n uint64
	switch {
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xd9:
		n = r.be(1)
	case c == 0xda:
		n = r.be(2)
	case c == 0xdb:
		n = r.be(4)
	default:
		r.fail("expected msgpack string")
		return ""
	}
	if !r.need(int(min(n, uint64(math.MaxInt32)))) {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *mpReader) bin() []byte {
	c := r.byte1()
	if r.err != nil {
		return nil
	}
	var n uint64
	switch c {
	case 0xc4:
		n = r.be(1)
	case 0xc5:
		n = r.be(2)
	case 0xc6:
		n = r.be(4)
	default:
		r.fail("expected msgpack binary")
		return nil
	}
	if !r.need(int(min(n, uint64(math.MaxInt32)))) {
		return nil
	}
	p := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return p
}

func (r *mpReader) uint() uint64 {
	c := r.byte1()
	if r.err != nil {
		return 0
	}
	switch {
	case c < 0x80:
		return uint64(c)
	case c == 0xcc:
		return r.be(1)
	case c == 0xcd:
		return r.be(2)
	case c == 0xce:
		return r.be(4)
	case c == 0xcf:
		return r.be(8)
	}
	r.fail("expected msgpack unsigned integer")
	return 0
}

// skip steps over one value of any msgpack type without recursion, so an
// unknown field added by a newer peer is ignored however it is nested.
func (r *mpReader) skip() {
	if r.err != nil {
		return
	}
	n, why := msgp.Skip(r.b)
	if why != "" {
		r.fail(why)
		return
	}
	r.b = r.b[n:]
}
