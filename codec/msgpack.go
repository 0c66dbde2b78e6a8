package codec

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// DefaultMaxDepth is the nesting depth of arrays and maps above which the
// msgpack serializer refuses input.
const DefaultMaxDepth = 512

// maxPooledInput is the largest input after which a msgpack decoder is
// dropped instead of pooled, so that one large message does not pin the
// decoder's scratch buffer for the life of the process.
const maxPooledInput = 64 << 10

// MsgpackOptions configures a msgpack serializer made by NewMsgpack. The
// zero value gives the built-in serializer's behaviour.
type MsgpackOptions struct {
	// ArrayStructs encodes structs as arrays of field values, in field
	// order, instead of maps keyed by field name. The output is smaller
	// and faster to produce, but both sides must agree on the field list.
	// Decoding accepts both forms whatever this is set to, so the wire
	// name stays "msgpack".
	ArrayStructs bool
	// MaxDepth is the deepest nesting of arrays and maps accepted when
	// decoding; 0 means DefaultMaxDepth.
	MaxDepth int
}

type msgpackSerializer struct {
	arrayStructs bool
	maxDepth     int
	encoders     sync.Pool // of *msgpackEncoder
	decoders     sync.Pool // of *msgpackDecoder
}

type msgpackEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var defaultMsgpack = NewMsgpack(MsgpackOptions{})

// NewMsgpack returns a serializer for github.com/vmihailenco/msgpack/v5
// with the wire name "msgpack". The serializer registered under the
// Msgpack ID is NewMsgpack(MsgpackOptions{}).
//
// Encoding uses the most compact integer form for each value
// (UseCompactInts), the "msgpack" struct tag, and the msgpack timestamp
// extension (type -1) for time.Time. Decoding accepts structs encoded as
// maps or as arrays.
//
// Before decoding, input is checked in one pass: it must hold exactly one
// msgpack value, nest at most MaxDepth arrays and maps, and declare no
// string, array, map or extension longer than the bytes that remain. This
// bounds the work and memory of hostile input by the input's size.
//
// Generic, and Unmarshal into a *any, produce:
//
//	nil                      nil
//	bool                     bool
//	integers                 int64 (uint64 above math.MaxInt64)
//	float32, float64         float64
//	str                      string
//	bin                      []byte
//	array                    []any
//	map with string keys     map[string]any
//	map with other keys      map[any]any
//	timestamp extension      time.Time (in the local time zone)
//
// Extensions registered with msgpack.RegisterExt decode to their Go types.
// Fields of type any inside a typed value are decoded by the msgpack
// library, with the same result except that integers keep the signedness
// of their encoding (uint64 for values above 127 written by a compact
// encoder) and bin decodes as string.
func NewMsgpack(opts MsgpackOptions) Serializer {
	s := &msgpackSerializer{arrayStructs: opts.ArrayStructs, maxDepth: opts.MaxDepth}
	if s.maxDepth <= 0 {
		s.maxDepth = DefaultMaxDepth
	}
	s.encoders.New = func() any {
		e := new(msgpackEncoder)
		e.enc = msgpack.NewEncoder(&e.w)
		e.enc.UseCompactInts(true)
		e.enc.UseArrayEncodedStructs(s.arrayStructs)
		return e
	}
	s.decoders.New = func() any {
		d := new(msgpackDecoder)
		d.dec = msgpack.NewDecoder(&d.r)
		d.dec.UseLooseInterfaceDecoding(true)
		d.dec.SetMapDecoder(decodeGenericMap)
		return d
	}
	return s
}

func (s *msgpackSerializer) Name() string   { return "msgpack" }
func (s *msgpackSerializer) Version() uint8 { return 1 }

func (s *msgpackSerializer) Append(dst []byte, v any) ([]byte, error) {
	if p, base := planOf(v); p != nil {
		var e *msgpackEncoder
		if p.lib {
			e = s.encoders.Get().(*msgpackEncoder)
			defer s.encoders.Put(e)
		}
		out, err := p.append(dst, base, e, s.arrayStructs)
		if err != nil {
			return dst, err
		}
		return out, nil
	}
	return s.appendLib(dst, v)
}

// appendLib encodes v with the msgpack library alone.
func (s *msgpackSerializer) appendLib(dst []byte, v any) ([]byte, error) {
	e := s.encoders.Get().(*msgpackEncoder)
	e.w.b = dst
	err := e.enc.Encode(v)
	out := e.w.b
	e.w.b = nil
	s.encoders.Put(e)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func (s *msgpackSerializer) Unmarshal(data []byte, v any) error {
	p, base := planOf(v)
	if p != nil && (base == nil || reflect.TypeOf(v).Kind() != reflect.Pointer) {
		p = nil
	}
	return s.unmarshalPlanned(data, v, p, base)
}

// unmarshalPlanned is Unmarshal with v's plan known: p is the plan of the
// struct v points to, at base, or nil (no plan, or v is no pointer to a
// struct).
func (s *msgpackSerializer) unmarshalPlanned(data []byte, v any, p *fastPlan, base unsafe.Pointer) error {
	// Without library fields, the fast path checks every length against
	// the input itself, nests no deeper than the type, and takes exactly
	// one value: the checking pass is needed only when it gives up.
	if p != nil && !p.lib && p.depth <= s.maxDepth && s.fastDecode(p, data, base) {
		return nil
	}
	if err := checkMsgpack(data, s.maxDepth); err != nil {
		return err
	}
	if p, ok := v.(*any); ok && p != nil {
		g, err := s.generic(data)
		if err == nil {
			*p = g
		}
		return err
	}
	if p != nil && p.lib && isZeroMem(base, p.typ.Size()) {
		if s.fastDecode(p, data, base) {
			return nil
		}
		// Decoding a library field over what the fast path left (an
		// interface holding a value, say) is not what decoding it fresh
		// gives; start again from the zero value the caller passed.
		reflect.NewAt(p.typ, base).Elem().SetZero()
	}
	return s.unmarshalLib(data, v)
}

// zeroMem is compared with a struct's memory to tell a fresh value.
var zeroMem [1024]byte

// isZeroMem reports whether the size bytes at p are all zero (and size is
// small enough to tell).
func isZeroMem(p unsafe.Pointer, size uintptr) bool {
	return size <= uintptr(len(zeroMem)) && string(unsafe.Slice((*byte)(p), size)) == string(zeroMem[:size])
}

// unmarshalLib decodes checked input into v with the msgpack library
// alone.
func (s *msgpackSerializer) unmarshalLib(data []byte, v any) error {
	return s.decode(data, func(d *msgpack.Decoder) error { return d.Decode(v) })
}

// fastDecode decodes checked input into the struct at base with its plan,
// and reports whether the fast path took all of it. When it did not, the
// caller decodes again with the library.
func (s *msgpackSerializer) fastDecode(p *fastPlan, data []byte, base unsafe.Pointer) (ok bool) {
	d := fastDecoder{b: data, ok: true}
	if p.lib {
		d.lib = s.decoders.Get().(*msgpackDecoder)
	}
	defer func() {
		// A library field can panic on malformed input (as in decode);
		// the library's own pass then reports it.
		if r := recover(); r != nil {
			ok = false
			return
		}
		if d.lib != nil {
			d.lib.r.Reset(nil)
			s.decoders.Put(d.lib)
		}
	}()
	p.decode(&d, base)
	return d.ok && d.pos == len(data)
}

func (s *msgpackSerializer) Generic(data []byte) (any, error) {
	if err := checkMsgpack(data, s.maxDepth); err != nil {
		return nil, err
	}
	return s.generic(data)
}

// generic decodes checked input with genericDecoder.
func (s *msgpackSerializer) generic(data []byte) (v any, err error) {
	defer func() {
		// Only a registered extension type's decoder can get here.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("msgpack: malformed input: %v", r)
		}
	}()
	d := genericDecoder{b: data, s: s}
	return d.value()
}

// decode runs f with a pooled decoder reading data. The msgpack library
// panics on some malformed input (a nil where a struct is expected, for
// instance); decode turns such a panic into an error and drops the
// decoder.
func (s *msgpackSerializer) decode(data []byte, f func(*msgpack.Decoder) error) (err error) {
	d := s.decoders.Get().(*msgpackDecoder)
	d.r.Reset(data)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("msgpack: malformed input: %v", r)
			return
		}
		d.r.Reset(nil)
		if len(data) <= maxPooledInput {
			s.decoders.Put(d)
		}
	}()
	return f(d.dec)
}

// decodeGenericMap decodes a map into map[string]any when every key is a
// string and into map[any]any otherwise.
func decodeGenericMap(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil {
		return nil, err
	}
	if n == -1 {
		return nil, nil
	}
	// checkMsgpack has verified that n entries fit in the input.
	m := make(map[string]any, n)
	for i := 0; i < n; i++ {
		k, err := d.DecodeInterfaceLoose()
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			return decodeGenericAnyMap(d, m, k, n-i-1)
		}
		v, err := d.DecodeInterfaceLoose()
		if err != nil {
			return nil, err
		}
		m[ks] = v
	}
	return m, nil
}

// decodeGenericAnyMap continues decodeGenericMap after the first key that
// is not a string: it moves the entries decoded so far to a map[any]any,
// decodes the value of key k and then rest more entries.
func decodeGenericAnyMap(d *msgpack.Decoder, sm map[string]any, k any, rest int) (any, error) {
	m := make(map[any]any, len(sm)+1+rest)
	for ks, v := range sm {
		m[ks] = v
	}
	for {
		v, err := d.DecodeInterfaceLoose()
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
		if k, err = d.DecodeInterfaceLoose(); err != nil {
			return nil, err
		}
	}
}
