package codec

import (
	"encoding"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/slc-go/slc/internal/eface"
	"github.com/slc-go/slc/internal/msgp"
)

// The msgpack serializer encodes and decodes most structs without the
// msgpack library's reflection: the first time it meets a struct type it
// compiles a plan (field offsets, names already encoded as msgpack strings,
// and a coder per field kind), and from then on it reads and writes the
// struct's memory directly. The bytes are exactly the library's: a plan is
// used only for types whose every rule the plan follows, and only after a
// probe of the type encodes identically both ways. A plan covers booleans,
// numbers, strings, []byte, structs, and pointers to and slices of those;
// fields it does not cover (maps, arrays, interfaces, time.Time, types with
// their own marshalers) are coded by the library in place, so a struct with
// one such field still takes the fast path for the others. A slice is
// decoded by the plan only into a nil one (a fresh value): the library's
// reuse of an old slice's memory stays the library's.
//
// Decoding takes the fast path for the encodings the library itself
// produces (maps keyed by name or arrays in field order, the native code of
// each field's kind). On anything else (a nil where a string is expected,
// an integer for a float, a bin map key) the value is decoded again from the
// start by the library, which gives its result or its error. Re-decoding
// over a partly filled value gives the library's result, since each field
// is decoded by overwriting it.

// fastKind is how a plan codes one field.
type fastKind uint8

const (
	kLib fastKind = iota // by the msgpack library
	kBool
	kInt
	kInt8
	kInt16
	kInt32
	kInt64
	kUint
	kUint8
	kUint16
	kUint32
	kUint64
	kFloat32
	kFloat64
	kString
	kBytes
	kStruct
	kPtr
	kSlice
)

// fastCoder codes one value of a type: a basic kind, a struct (with its
// plan), a pointer (with its element's coder) or the library.
type fastCoder struct {
	kind fastKind
	typ  reflect.Type
	plan *fastPlan  // kStruct
	elem *fastCoder // kPtr, kSlice
	strs *strCache  // kString
	size uintptr    // kSlice: the element's size
}

// strCache keeps the last short string decoded for one field, so that a
// field whose value repeats (a sensor's name, a unit, a status) is decoded
// without an allocation: the string is shared, which is safe because
// strings are immutable. A field whose value keeps changing stops
// replacing its entry after maxStrMisses misses, so that it does not pay
// for the cache (or make decoders on several cores write the same memory)
// for ever.
type strCache struct {
	last   atomic.Pointer[strBox]
	misses atomic.Uint32
}

// strBox is a cached string and the bytes it points into, in one
// allocation.
type strBox struct {
	s string
	b [maxCachedStr]byte
}

const (
	maxCachedStr = 32
	maxStrMisses = 1024
)

// decodeString returns the string of b, from the cache when it holds it.
func (c *strCache) decodeString(b []byte) string {
	if len(b) > maxCachedStr || len(b) == 0 {
		return string(b)
	}
	if bx := c.last.Load(); bx != nil && bx.s == string(b) {
		return bx.s
	}
	if c.misses.Load() >= maxStrMisses {
		return string(b)
	}
	c.misses.Add(1)
	bx := new(strBox)
	copy(bx.b[:], b)
	bx.s = unsafe.String(&bx.b[0], len(b))
	c.last.Store(bx)
	return bx.s
}

type fastField struct {
	name      string
	key       []byte // name encoded as a msgpack string
	off       uintptr
	omitEmpty bool
	c         fastCoder
}

// fastPlan is the compiled form of a struct type.
type fastPlan struct {
	typ     reflect.Type
	fields  []fastField
	mapHead []byte // the map header when no field is omitted
	arrHead []byte // the array header (every field)
	hasOmit bool
	lib     bool // some field, here or in a nested plan, is the library's
	depth   int  // how deep the plan's own maps or arrays nest
}

var (
	marshalerIfaces = []reflect.Type{
		reflect.TypeFor[msgpack.CustomEncoder](),
		reflect.TypeFor[msgpack.Marshaler](),
		reflect.TypeFor[encoding.BinaryMarshaler](),
		reflect.TypeFor[encoding.TextMarshaler](),
		reflect.TypeFor[msgpack.CustomDecoder](),
		reflect.TypeFor[msgpack.Unmarshaler](),
		reflect.TypeFor[encoding.BinaryUnmarshaler](),
		reflect.TypeFor[encoding.TextUnmarshaler](),
	}
	isZeroerIface = reflect.TypeFor[interface{ IsZero() bool }]()
)

// hasOwnCoding reports whether t or *t implements an interface through
// which the library lets a type code itself.
func hasOwnCoding(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	for _, it := range marshalerIfaces {
		if t.Implements(it) || pt.Implements(it) {
			return true
		}
	}
	return false
}

// planCache maps a struct type to its plan, or to nil when the type is
// coded by the library. Readers load the map without a lock; a new entry
// copies it. The key is the type's descriptor (typeKey): hashing a pointer
// is cheaper than hashing a reflect.Type interface, and descriptors live
// as long as the process.
type planCache struct {
	mu sync.Mutex
	m  atomic.Pointer[map[unsafe.Pointer]*fastPlan]
}

var plans planCache

// typeKey returns the address of t's descriptor: the data word of the
// reflect.Type interface, the same for every reflect.Type of one type.
func typeKey(t reflect.Type) unsafe.Pointer {
	return eface.Data(t)
}

func (c *planCache) get(t reflect.Type) (*fastPlan, bool) {
	if m := c.m.Load(); m != nil {
		p, ok := (*m)[typeKey(t)]
		return p, ok
	}
	return nil, false
}

// lookup returns t's plan, compiling (and verifying) it on first use. nil
// means the library codes t.
func (c *planCache) lookup(t reflect.Type) *fastPlan {
	if p, ok := c.get(t); ok {
		return p
	}
	// Compiled without the lock: the probe runs the library, and so any
	// marshaler of the type's fields, which may encode with this package.
	// Two goroutines may compile the same type; the first to publish wins.
	p := compilePlan(t, map[reflect.Type]bool{})
	if p != nil && !verifyPlan(p) {
		p = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if q, ok := c.get(t); ok {
		return q
	}
	old := c.m.Load()
	nm := make(map[unsafe.Pointer]*fastPlan, 1)
	if old != nil {
		for k, v := range *old {
			nm[k] = v
		}
	}
	nm[typeKey(t)] = p
	c.m.Store(&nm)
	return p
}

// compilePlan returns the plan for struct type t, or nil when some rule of
// the library's for t is not one a plan follows. busy holds the structs
// being compiled, so recursive types are left to the library.
func compilePlan(t reflect.Type, busy map[reflect.Type]bool) *fastPlan {
	if t.Kind() != reflect.Struct || busy[t] || hasOwnCoding(t) || isDirectIface(t) {
		return nil
	}
	busy[t] = true
	defer delete(busy, t)
	p := &fastPlan{typ: t}
	seen := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("msgpack")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if f.Name == "_msgpack" || f.Anonymous {
			return nil // struct options and inlining: the library's
		}
		if !f.IsExported() {
			continue
		}
		omit := false
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "":
			case "omitempty":
				omit = true
			default:
				return nil // intern, alias, inline and the like
			}
		}
		if strings.ContainsAny(name, `'"\`) {
			return nil // quoted names: the tag parser's rules
		}
		if name == "" {
			name = f.Name
		}
		if seen[name] {
			return nil // the library logs and keeps the last
		}
		seen[name] = true
		c := compileCoder(f.Type, busy)
		if omit && !omitSimple(c) {
			return nil
		}
		p.fields = append(p.fields, fastField{
			name:      name,
			key:       append(msgp.AppendStrHeader(nil, len(name)), name...),
			off:       f.Offset,
			omitEmpty: omit,
			c:         c,
		})
		p.hasOmit = p.hasOmit || omit
		p.lib = p.lib || c.usesLib()
		p.depth = max(p.depth, c.depth())
	}
	p.depth++
	p.mapHead = msgp.AppendMapHeader(nil, len(p.fields))
	p.arrHead = msgp.AppendArrayHeader(nil, len(p.fields))
	return p
}

// usesLib reports whether coding a c goes through the library.
func (c *fastCoder) usesLib() bool {
	switch c.kind {
	case kLib:
		return true
	case kStruct:
		return c.plan.lib
	case kPtr, kSlice:
		return c.elem.usesLib()
	}
	return false
}

// depth returns how deep the maps and arrays of a value c codes nest.
func (c *fastCoder) depth() int {
	switch c.kind {
	case kStruct:
		return c.plan.depth
	case kPtr:
		return c.elem.depth()
	case kSlice:
		return 1 + c.elem.depth()
	}
	return 0
}

// omitSimple reports whether a plan can decide emptiness for omitempty the
// way the library does: for basic kinds and pointers without an IsZero
// method.
func omitSimple(c fastCoder) bool {
	if c.kind == kLib || c.kind == kStruct || c.typ.Implements(isZeroerIface) {
		return false
	}
	return true
}

func compileCoder(t reflect.Type, busy map[reflect.Type]bool) fastCoder {
	lib := fastCoder{kind: kLib, typ: t}
	if t.Kind() == reflect.Pointer {
		if hasOwnCoding(t.Elem()) {
			return lib
		}
		e := compileCoder(t.Elem(), busy)
		if e.kind == kLib || e.kind == kPtr {
			return lib
		}
		return fastCoder{kind: kPtr, typ: t, elem: &e}
	}
	if hasOwnCoding(t) {
		return lib
	}
	k := kLib
	switch t.Kind() {
	case reflect.Bool:
		k = kBool
	case reflect.Int:
		k = kInt
	case reflect.Int8:
		k = kInt8
	case reflect.Int16:
		k = kInt16
	case reflect.Int32:
		k = kInt32
	case reflect.Int64:
		k = kInt64
	case reflect.Uint:
		k = kUint
	case reflect.Uint8:
		k = kUint8
	case reflect.Uint16:
		k = kUint16
	case reflect.Uint32:
		k = kUint32
	case reflect.Uint64:
		k = kUint64
	case reflect.Float32:
		k = kFloat32
	case reflect.Float64:
		k = kFloat64
	case reflect.String:
		return fastCoder{kind: kString, typ: t, strs: new(strCache)}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			k = kBytes
			break
		}
		// Slices of what a plan codes itself; the library codes each
		// element as it would a field of that type.
		if e := compileCoder(t.Elem(), busy); e.kind != kLib {
			return fastCoder{kind: kSlice, typ: t, elem: &e, size: t.Elem().Size()}
		}
	case reflect.Struct:
		if sp := compilePlan(t, busy); sp != nil {
			return fastCoder{kind: kStruct, typ: t, plan: sp}
		}
	}
	return fastCoder{kind: k, typ: t}
}

// isDirectIface reports whether an interface holding a t stores the value
// itself in its data word instead of a pointer to it (the compiler's rule).
func isDirectIface(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Chan, reflect.Map, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() == 1 && isDirectIface(t.Elem())
	case reflect.Struct:
		return t.NumField() == 1 && isDirectIface(t.Field(0).Type)
	}
	return false
}

// verifyPlan encodes two probes of p's type (zero, and every field set and
// every pointer allocated) with the plan and with the library, both as maps
// and as arrays, and reports whether the bytes agree. It catches what the
// plan cannot see: an extension or encoder registered with the library for
// one of the types involved.
func verifyPlan(p *fastPlan) (ok bool) {
	defer func() {
		// A field's own marshaler may not expect a probe (a zero value, a
		// pointer to one): such a type is the library's.
		if recover() != nil {
			ok = false
		}
	}()
	for _, fill := range []bool{false, true} {
		v := reflect.New(p.typ)
		if fill {
			probeFill(v.Elem(), 0)
		}
		for _, arr := range []bool{false, true} {
			var w appendWriter
			enc := msgpack.NewEncoder(&w)
			enc.UseCompactInts(true)
			enc.UseArrayEncodedStructs(arr)
			if err := enc.EncodeValue(v.Elem()); err != nil {
				return false
			}
			var e msgpackEncoder
			e.enc = msgpack.NewEncoder(&e.w)
			e.enc.UseCompactInts(true)
			e.enc.UseArrayEncodedStructs(arr)
			got, err := p.append(nil, v.UnsafePointer(), &e, arr)
			if err != nil || string(got) != string(w.b) {
				return false
			}
		}
	}
	return true
}

// probeFill sets every basic field of v to a non-zero value and allocates
// every pointer, to a small depth.
func probeFill(v reflect.Value, depth int) {
	if depth > 8 || !v.CanSet() {
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.String:
		v.SetString("a")
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		probeFill(v.Index(0), depth+1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		probeFill(v.Elem(), depth+1)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			probeFill(v.Field(i), depth+1)
		}
	}
}

// planOf returns the plan for v's dynamic type and a pointer to v's struct
// when v is a struct or a non-nil pointer to one that has a plan.
func planOf(v any) (*fastPlan, unsafe.Pointer) {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil, nil
	}
	data := eface.Data(v)
	switch t.Kind() {
	case reflect.Struct:
		if p := plans.lookup(t); p != nil {
			return p, data
		}
	case reflect.Pointer:
		if data == nil || t.Elem().Kind() != reflect.Struct {
			return nil, nil
		}
		if p := plans.lookup(t.Elem()); p != nil {
			return p, data
		}
	}
	return nil, nil
}

// ---- encoding

// append encodes the struct at base after b. e supplies the library's
// encoder for the fields the plan leaves to it; its output buffer is b
// while it runs.
func (p *fastPlan) append(b []byte, base unsafe.Pointer, e *msgpackEncoder, arr bool) ([]byte, error) {
	switch {
	case arr:
		b = append(b, p.arrHead...)
	case !p.hasOmit:
		b = append(b, p.mapHead...)
	default:
		n := 0
		for i := range p.fields {
			f := &p.fields[i]
			if !f.omitEmpty || !isEmpty(&f.c, unsafe.Add(base, f.off)) {
				n++
			}
		}
		b = msgp.AppendMapHeader(b, n)
	}
	for i := range p.fields {
		f := &p.fields[i]
		fp := unsafe.Add(base, f.off)
		if !arr {
			if f.omitEmpty && isEmpty(&f.c, fp) {
				continue
			}
			b = append(b, f.key...)
		}
		var err error
		if b, err = f.c.append(b, fp, e, arr); err != nil {
			return b, err
		}
	}
	return b, nil
}

func isEmpty(c *fastCoder, p unsafe.Pointer) bool {
	switch c.kind {
	case kBool:
		return !*(*bool)(p)
	case kInt, kUint:
		return *(*uint)(p) == 0
	case kInt8, kUint8:
		return *(*uint8)(p) == 0
	case kInt16, kUint16:
		return *(*uint16)(p) == 0
	case kInt32, kUint32:
		return *(*uint32)(p) == 0
	case kInt64, kUint64:
		return *(*uint64)(p) == 0
	case kFloat32:
		return *(*float32)(p) == 0
	case kFloat64:
		return *(*float64)(p) == 0
	case kString:
		return len(*(*string)(p)) == 0
	case kBytes, kSlice:
		return len(*(*[]byte)(p)) == 0 // the length of any slice
	case kPtr:
		return *(*unsafe.Pointer)(p) == nil
	}
	return false
}

func (c *fastCoder) append(b []byte, p unsafe.Pointer, e *msgpackEncoder, arr bool) ([]byte, error) {
	switch c.kind {
	case kBool:
		if *(*bool)(p) {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case kInt:
		return msgp.AppendInt(b, int64(*(*int)(p))), nil
	case kInt8:
		return msgp.AppendInt(b, int64(*(*int8)(p))), nil
	case kInt16:
		return msgp.AppendInt(b, int64(*(*int16)(p))), nil
	case kInt32:
		return msgp.AppendInt(b, int64(*(*int32)(p))), nil
	case kInt64:
		return msgp.AppendInt(b, *(*int64)(p)), nil
	case kUint:
		return msgp.AppendUint(b, uint64(*(*uint)(p))), nil
	case kUint8:
		return msgp.AppendUint(b, uint64(*(*uint8)(p))), nil
	case kUint16:
		return msgp.AppendUint(b, uint64(*(*uint16)(p))), nil
	case kUint32:
		return msgp.AppendUint(b, uint64(*(*uint32)(p))), nil
	case kUint64:
		return msgp.AppendUint(b, *(*uint64)(p)), nil
	case kFloat32:
		return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(*(*float32)(p))), nil
	case kFloat64:
		return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(*(*float64)(p))), nil
	case kString:
		s := *(*string)(p)
		return append(msgp.AppendStrHeader(b, len(s)), s...), nil
	case kBytes:
		s := *(*[]byte)(p)
		if s == nil {
			return append(b, 0xc0), nil
		}
		return append(msgp.AppendBinHeader(b, len(s)), s...), nil
	case kStruct:
		return c.plan.append(b, p, e, arr)
	case kPtr:
		q := *(*unsafe.Pointer)(p)
		if q == nil {
			return append(b, 0xc0), nil
		}
		return c.elem.append(b, q, e, arr)
	case kSlice:
		// Any slice has the layout of a []byte: data, length, capacity.
		s := *(*[]byte)(p)
		if s == nil {
			return append(b, 0xc0), nil
		}
		b = msgp.AppendArrayHeader(b, len(s))
		base := unsafe.Pointer(unsafe.SliceData(s))
		for i := range len(s) {
			var err error
			if b, err = c.elem.append(b, unsafe.Add(base, uintptr(i)*c.size), e, arr); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	// The library, writing into b through e.
	e.w.b = b
	err := e.enc.EncodeValue(reflect.NewAt(c.typ, p).Elem())
	b = e.w.b
	e.w.b = nil
	return b, err
}

// ---- decoding

// fastDecoder reads checked msgpack input; ok turns false, for good, at
// the first encoding the fast path does not take.
type fastDecoder struct {
	b   []byte
	pos int
	ok  bool
	lib *msgpackDecoder
}

func (d *fastDecoder) fail() { d.ok = false }

func (d *fastDecoder) byte() byte {
	if d.pos >= len(d.b) {
		d.fail()
		return 0xc1
	}
	c := d.b[d.pos]
	d.pos++
	return c
}

func (d *fastDecoder) take(n int) []byte {
	if n < 0 || n > len(d.b)-d.pos {
		d.fail()
		return nil
	}
	s := d.b[d.pos : d.pos+n]
	d.pos += n
	return s
}

func (d *fastDecoder) be(n int) uint64 {
	s := d.take(n)
	var v uint64
	for _, c := range s {
		v = v<<8 | uint64(c)
	}
	return v
}

// arrayLen reads the length of an array whose header byte h was read:
// ok is false when h is no array header.
func (d *fastDecoder) arrayLen(h byte) (n int, ok bool) {
	switch {
	case h >= 0x90 && h <= 0x9f:
		return int(h & 0x0f), true
	case h == 0xdc:
		return int(d.be(2)), true
	case h == 0xdd:
		return int(d.be(4)), true
	}
	return 0, false
}

// int reads any integer encoding, as the library's int does.
func (d *fastDecoder) int() int64 {
	c := d.byte()
	switch {
	case c <= 0x7f || c >= 0xe0:
		return int64(int8(c))
	case c == 0xcc:
		return int64(d.be(1))
	case c == 0xcd:
		return int64(d.be(2))
	case c == 0xce:
		return int64(d.be(4))
	case c == 0xcf, c == 0xd3:
		return int64(d.be(8))
	case c == 0xd0:
		return int64(int8(d.be(1)))
	case c == 0xd1:
		return int64(int16(d.be(2)))
	case c == 0xd2:
		return int64(int32(d.be(4)))
	}
	d.fail()
	return 0
}

// strLen reads a str header.
func (d *fastDecoder) strLen() int {
	c := d.byte()
	switch {
	case c >= 0xa0 && c <= 0xbf:
		return int(c & 0x1f)
	case c == 0xd9:
		return int(d.be(1))
	case c == 0xda:
		return int(d.be(2))
	case c == 0xdb:
		return int(d.be(4))
	}
	d.fail()
	return 0
}

// skip passes over one value.
func (d *fastDecoder) skip() {
	n, why := msgp.Skip(d.b[d.pos:])
	if why != "" {
		d.fail()
		return
	}
	d.pos += n
}

// decode fills the struct at base.
func (p *fastPlan) decode(d *fastDecoder, base unsafe.Pointer) {
	c := d.byte()
	var n int
	switch {
	case c >= 0x80 && c <= 0x8f:
		n = int(c & 0x0f)
	case c == 0xde:
		n = int(d.be(2))
	case c == 0xdf:
		n = int(d.be(4))
	default:
		if n, isArray := d.arrayLen(c); isArray {
			p.decodeArray(d, base, n)
		} else {
			d.fail()
		}
		return
	}
	next := 0 // the field most likely to come next
	for ; n > 0 && d.ok; n-- {
		kl := d.strLen()
		key := d.take(kl)
		if !d.ok {
			return
		}
		f := p.field(key, next)
		if f < 0 {
			d.skip()
			continue
		}
		p.fields[f].c.decode(d, unsafe.Add(base, p.fields[f].off))
		next = f + 1
	}
}

// decodeArray fills the struct at base from an array of n values, the
// fields in order.
func (p *fastPlan) decodeArray(d *fastDecoder, base unsafe.Pointer, n int) {
	// The library zeroes the struct for an empty array and refuses any
	// other length than the field count.
	if n != len(p.fields) || n == 0 {
		d.fail()
		return
	}
	for i := range p.fields {
		f := &p.fields[i]
		f.c.decode(d, unsafe.Add(base, f.off))
		if !d.ok {
			return
		}
	}
}

// field returns the index of the field named key, looking at from first.
func (p *fastPlan) field(key []byte, from int) int {
	if from < len(p.fields) && string(key) == p.fields[from].name {
		return from
	}
	for i := range p.fields {
		if string(key) == p.fields[i].name {
			return i
		}
	}
	return -1
}

func (c *fastCoder) decode(d *fastDecoder, p unsafe.Pointer) {
	switch c.kind {
	case kBool:
		switch d.byte() {
		case 0xc2:
			*(*bool)(p) = false
		case 0xc3:
			*(*bool)(p) = true
		default:
			d.fail()
		}
	case kInt:
		*(*int)(p) = int(d.int())
	case kInt8:
		*(*int8)(p) = int8(d.int())
	case kInt16:
		*(*int16)(p) = int16(d.int())
	case kInt32:
		*(*int32)(p) = int32(d.int())
	case kInt64:
		*(*int64)(p) = d.int()
	case kUint:
		*(*uint)(p) = uint(d.int())
	case kUint8:
		*(*uint8)(p) = uint8(d.int())
	case kUint16:
		*(*uint16)(p) = uint16(d.int())
	case kUint32:
		*(*uint32)(p) = uint32(d.int())
	case kUint64:
		*(*uint64)(p) = uint64(d.int())
	case kFloat32:
		if d.byte() != 0xca {
			d.fail()
			return
		}
		*(*float32)(p) = math.Float32frombits(uint32(d.be(4)))
	case kFloat64:
		switch d.byte() {
		case 0xca:
			*(*float64)(p) = float64(math.Float32frombits(uint32(d.be(4))))
		case 0xcb:
			*(*float64)(p) = math.Float64frombits(d.be(8))
		default:
			d.fail()
		}
	case kString:
		s := d.take(d.strLen())
		if d.ok {
			*(*string)(p) = c.strs.decodeString(s)
		}
	case kBytes:
		c := d.byte()
		var n int
		switch c {
		case 0xc0:
			*(*[]byte)(p) = nil
			return
		case 0xc4:
			n = int(d.be(1))
		case 0xc5:
			n = int(d.be(2))
		case 0xc6:
			n = int(d.be(4))
		default:
			d.fail()
			return
		}
		s := d.take(n)
		if !d.ok {
			return
		}
		// As the library's readN: the old slice is reused when it has
		// room.
		dst := (*[]byte)(p)
		if n > 0 && (*dst == nil || n > cap(*dst)) {
			if n <= 1024 {
				// Cheaper than append's growth path for small sizes.
				b := make([]byte, n)
				copy(b, s)
				*dst = b
				return
			}
			// append does not clear memory it is about to copy over, as
			// make would.
			*dst = append([]byte(nil), s...)
			return
		}
		if *dst == nil {
			*dst = make([]byte, 0)
		} else {
			*dst = (*dst)[:n]
		}
		copy(*dst, s)
	case kStruct:
		c.plan.decode(d, p)
	case kPtr:
		if d.pos < len(d.b) && d.b[d.pos] == 0xc0 {
			d.pos++
			*(*unsafe.Pointer)(p) = nil
			return
		}
		q := (*unsafe.Pointer)(p)
		if *q == nil {
			*q = reflect.New(c.elem.typ).UnsafePointer()
		}
		c.elem.decode(d, *q)
	case kSlice:
		c.decodeSlice(d, p)
	default:
		// The library, reading from where d is.
		lib := d.lib
		rest := d.b[d.pos:]
		lib.r.Reset(rest)
		if err := lib.dec.DecodeValue(reflect.NewAt(c.typ, p).Elem()); err != nil {
			d.fail()
			return
		}
		d.pos += len(rest) - lib.r.Len()
		lib.r.Reset(nil)
	}
}

// decodeSlice decodes an array into the slice at p, which must be nil (a
// fresh value): the library's reuse of an old slice's memory is left to
// the library.
func (c *fastCoder) decodeSlice(d *fastDecoder, p unsafe.Pointer) {
	if *(*unsafe.Pointer)(p) != nil {
		d.fail()
		return
	}
	h := d.byte()
	if h == 0xc0 {
		return // stays nil
	}
	n, isArray := d.arrayLen(h)
	if !isArray {
		d.fail()
		return
	}
	// Every element takes at least a byte.
	if !d.ok || n > len(d.b)-d.pos {
		d.fail()
		return
	}
	s := reflect.MakeSlice(c.typ, n, n)
	reflect.NewAt(c.typ, p).Elem().Set(s)
	base := s.UnsafePointer()
	for i := range n {
		c.elem.decode(d, unsafe.Add(base, uintptr(i)*c.size))
		if !d.ok {
			return
		}
	}
}
