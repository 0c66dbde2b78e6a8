package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// genericDecoder decodes msgpack into plain Go values. It runs only on
// input that checkMsgpack has accepted, so it recurses at most maxDepth
// deep and every declared length fits; it still checks bounds rather than
// trust that.
type genericDecoder struct {
	b   []byte
	pos int
	s   *msgpackSerializer // for extension types other than time
}

var errGenericShort = errors.New("msgpack: unexpected end of input")

func (d *genericDecoder) need(n uint64) ([]byte, error) {
	if n > uint64(len(d.b)-d.pos) {
		return nil, errGenericShort
	}
	p := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return p, nil
}

func (d *genericDecoder) uint(size int) (uint64, error) {
	p, err := d.need(uint64(size))
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

// unsigned returns n as an int64 when it fits and as a uint64 otherwise.
func unsigned(n uint64) any {
	if n <= math.MaxInt64 {
		return int64(n)
	}
	return n
}

func (d *genericDecoder) value() (any, error) {
	if d.pos >= len(d.b) {
		return nil, errGenericShort
	}
	start := d.pos
	c := d.b[d.pos]
	d.pos++
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c <= 0x8f:
		return d.mapN(uint64(c & 0x0f))
	case c <= 0x9f:
		return d.arrayN(uint64(c & 0x0f))
	case c <= 0xbf:
		return d.str(uint64(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6: // bin 8, 16, 32
		n, err := d.uint(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		p, err := d.need(n)
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), p...), nil
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32
		n, err := d.uint(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return d.ext(start, n)
	case 0xca:
		n, err := d.uint(4)
		return float64(math.Float32frombits(uint32(n))), err
	case 0xcb:
		n, err := d.uint(8)
		return math.Float64frombits(n), err
	case 0xcc, 0xcd, 0xce, 0xcf: // uint 8, 16, 32, 64
		n, err := d.uint(1 << (c - 0xcc))
		return unsigned(n), err
	case 0xd0:
		n, err := d.uint(1)
		return int64(int8(n)), err
	case 0xd1:
		n, err := d.uint(2)
		return int64(int16(n)), err
	case 0xd2:
		n, err := d.uint(4)
		return int64(int32(n)), err
	case 0xd3:
		n, err := d.uint(8)
		return int64(n), err
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		return d.ext(start, 1<<(c-0xd4))
	case 0xd9, 0xda, 0xdb: // str 8, 16, 32
		n, err := d.uint(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xdc, 0xdd: // array 16, 32
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.arrayN(n)
	case 0xde, 0xdf: // map 16, 32
		n, err := d.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapN(n)
	}
	return nil, fmt.Errorf("msgpack: invalid code %#x at offset %d", c, d.pos-1)
}

func (d *genericDecoder) str(n uint64) (any, error) {
	p, err := d.need(n)
	if err != nil {
		return nil, err
	}
	return string(p), nil
}

func (d *genericDecoder) arrayN(n uint64) (any, error) {
	if n > uint64(len(d.b)-d.pos) {
		return nil, errGenericShort
	}
	a := make([]any, n)
	for i := range a {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a[i] = v
	}
	return a, nil
}

func (d *genericDecoder) mapN(n uint64) (any, error) {
	if 2*n > uint64(len(d.b)-d.pos) {
		return nil, errGenericShort
	}
	m := make(map[string]any, n)
	for i := uint64(0); i < n; i++ {
		k, err := d.value()
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			return d.anyMap(m, k, n-i-1)
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m[ks] = v
	}
	return m, nil
}

// anyMap continues mapN after the first key that is not a string: it moves
// the entries decoded so far to a map[any]any, decodes the value of key k
// and then rest more entries.
func (d *genericDecoder) anyMap(sm map[string]any, k any, rest uint64) (any, error) {
	m := make(map[any]any, uint64(len(sm))+1+rest)
	for ks, v := range sm {
		m[ks] = v
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		if err := setAnyKey(m, k, v); err != nil {
			return nil, err
		}
		if rest == 0 {
			return m, nil
		}
		rest--
		if k, err = d.value(); err != nil {
			return nil, err
		}
	}
}

// setAnyKey sets m[k] = v, failing instead of panicking when k is not
// comparable: arrays and maps decode to slices and maps, and extension
// types may hold either.
func setAnyKey(m map[any]any, k, v any) (err error) {
	switch k.(type) {
	case []any, []byte, map[string]any, map[any]any:
		return fmt.Errorf("msgpack: unsupported map key of type %T", k)
	}
	defer func() {
		if recover() != nil {
			err = fmt.Errorf("msgpack: unsupported map key of type %T", k)
		}
	}()
	m[k] = v
	return nil
}

// ext decodes an extension whose type byte comes next, followed by n bytes
// of data; start is the offset of its code byte.
func (d *genericDecoder) ext(start int, n uint64) (any, error) {
	typ, err := d.uint(1)
	if err != nil {
		return nil, err
	}
	p, err := d.need(n)
	if err != nil {
		return nil, err
	}
	if int8(typ) == -1 {
		return decodeTimestamp(p)
	}
	// Other extensions are whatever msgpack.RegisterExt says they are.
	var v any
	err = d.s.decode(d.b[start:d.pos], func(dec *msgpack.Decoder) (err error) {
		v, err = dec.DecodeInterfaceLoose()
		return err
	})
	return v, err
}

// decodeTimestamp decodes the data of the msgpack timestamp extension as
// the msgpack library does: in the local time zone, except for the zero
// time, which is in UTC.
func decodeTimestamp(p []byte) (any, error) {
	var sec int64
	var nsec int64
	switch len(p) {
	case 4:
		sec = int64(binary.BigEndian.Uint32(p))
	case 8:
		n := binary.BigEndian.Uint64(p)
		nsec = int64(n >> 34)
		sec = int64(n & (1<<34 - 1))
	case 12:
		nsec = int64(binary.BigEndian.Uint32(p))
		sec = int64(binary.BigEndian.Uint64(p[4:]))
	default:
		return nil, fmt.Errorf("msgpack: invalid timestamp length %d", len(p))
	}
	tm := time.Unix(sec, nsec)
	if tm.IsZero() {
		tm = tm.UTC()
	}
	return tm, nil
}
