package codec

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// The types below cover every kind a plan codes itself, the library's
// fields inside a plan, and the rules a plan follows (names, omitempty,
// "-", unexported fields).

type Celsius float64

type Blob []byte

type fastInner struct {
	A int16   `msgpack:"a"`
	B string  `msgpack:"a_name_that_is_longer_than_thirty_one_bytes"`
	C *uint32 `msgpack:",omitempty"`
}

// fastPlain has no field the library codes.
type fastPlain struct {
	B     bool
	I     int
	I8    int8
	I16   int16
	I32   int32
	I64   int64 `msgpack:"i64"`
	U     uint
	U8    uint8
	U16   uint16
	U32   uint32
	U64   uint64
	F32   float32
	F64   float64
	S     string
	Bs    []byte
	Blob  Blob
	C     Celsius
	In    fastInner
	PIn   *fastInner
	PI    *int
	PS    *string
	OmitI int     `msgpack:"oi,omitempty"`
	OmitS string  `msgpack:",omitempty"`
	OmitB []byte  `msgpack:",omitempty"`
	OmitP *int    `msgpack:",omitempty"`
	OmitF float64 `msgpack:",omitempty"`
	Skip  int     `msgpack:"-"`
	priv  int
	Fs    []float64
	Strs  []string
	Lbls  []Label
	Ins   []fastInner
	PIns  []*fastInner
	Nest  [][]int16
	OmitL []int `msgpack:",omitempty"`
}

type Label string

// fastMixed has fields the library codes between the plan's own.
type fastMixed struct {
	ID   uint64 `msgpack:"id"`
	M    map[string]int
	L    []int32
	T    time.Time
	Any  any
	Arr  [2]uint8
	Name string
	Ss   []string
	PT   *time.Time
	In   *fastInner
}

func TestPlansCompiled(t *testing.T) {
	for _, v := range []any{fastPlain{}, &fastPlain{}, fastMixed{}, &fastInner{}} {
		if p, _ := planOf(v); p == nil {
			t.Errorf("%T: no plan", v)
		}
	}
	p, _ := planOf(fastPlain{})
	if p.lib {
		t.Error("fastPlain: plan says it uses the library")
	}
	if p.depth != 3 {
		t.Errorf("fastPlain: depth %d, want 3 (the struct, Nest, its elements)", p.depth)
	}
	if p, _ := planOf(fastMixed{}); !p.lib {
		t.Error("fastMixed: plan says it does not use the library")
	}
	var nilPtr *fastPlain
	if p, _ := planOf(nilPtr); p != nil {
		t.Error("nil pointer: got a plan")
	}
}

// Types a plan must leave to the library.

type ownCoder struct{ A int }

func (o ownCoder) EncodeMsgpack(e *msgpack.Encoder) error { return e.EncodeString("own") }
func (o *ownCoder) DecodeMsgpack(d *msgpack.Decoder) error {
	_, err := d.DecodeString()
	return err
}

type withOwnField struct {
	A int
	O ownCoder // the field is the library's; the struct keeps a plan
}

type Embedded struct{ X int }

type withEmbedded struct {
	Embedded
	Y int
}

type recursive struct {
	V    int
	Next *recursive
}

type asArray struct {
	_msgpack struct{} `msgpack:",as_array"`
	A        int
}

type interned struct {
	S string `msgpack:",intern"`
}

type aliased struct {
	S string `msgpack:"s,alias:t"`
}

type dupName struct {
	A int `msgpack:"x"`
	B int `msgpack:"x"`
}

type onePointer struct{ P *int }

type omitStruct struct {
	In fastInner `msgpack:",omitempty"`
}

// registeredTemp has no methods; an encoder registered with the library
// for it is found only by the probe.
type registeredTemp float64

type withRegistered struct {
	A int
	T registeredTemp
}

type registeredWhole struct{ A int }

func init() {
	msgpack.RegisterExtEncoder(17, registeredTemp(0), func(e *msgpack.Encoder, v reflect.Value) ([]byte, error) {
		return []byte{byte(v.Float())}, nil
	})
	msgpack.RegisterExtDecoder(17, registeredTemp(0), func(d *msgpack.Decoder, v reflect.Value, n int) error {
		b := make([]byte, n)
		if err := d.ReadFull(b); err != nil {
			return err
		}
		v.SetFloat(float64(b[0]))
		return nil
	})
	msgpack.Register(registeredWhole{}, func(e *msgpack.Encoder, v reflect.Value) error {
		return e.EncodeString("whole")
	}, nil)
}

func TestPlansLeftToLibrary(t *testing.T) {
	for _, v := range []any{
		ownCoder{}, withEmbedded{}, asArray{}, interned{},
		aliased{}, dupName{}, onePointer{}, omitStruct{}, withRegistered{},
		registeredWhole{}, time.Time{},
	} {
		if p, _ := planOf(v); p != nil {
			t.Errorf("%T: got a plan, want the library", v)
		}
	}
	for _, v := range []any{withOwnField{}, recursive{}} {
		if p, _ := planOf(v); p == nil || !p.lib {
			t.Errorf("%T: want a plan with a field left to the library", v)
		}
	}
	// Whatever codes them, the bytes are the library's.
	x := 5
	for _, v := range []any{
		ownCoder{1}, withOwnField{1, ownCoder{2}}, withEmbedded{Embedded{1}, 2},
		recursive{1, &recursive{V: 2}}, interned{"s"}, aliased{"s"},
		onePointer{&x}, omitStruct{}, withRegistered{1, 7}, registeredWhole{3},
	} {
		for _, s := range testSerializers() {
			got, err := s.Append(nil, v)
			if err != nil {
				t.Fatalf("%T: %v", v, err)
			}
			want, err := s.appendLib(nil, v)
			if err != nil {
				t.Fatalf("%T: library: %v", v, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%T: got % x, library % x", v, got, want)
			}
		}
	}
}

func testSerializers() []*msgpackSerializer {
	return []*msgpackSerializer{
		NewMsgpack(MsgpackOptions{}).(*msgpackSerializer),
		NewMsgpack(MsgpackOptions{ArrayStructs: true}).(*msgpackSerializer),
	}
}

// Generators.

func genInner(t *rapid.T, label string) fastInner {
	in := fastInner{
		A: rapid.Int16().Draw(t, label+".A"),
		B: rapid.String().Draw(t, label+".B"),
	}
	if rapid.Bool().Draw(t, label+".hasC") {
		c := rapid.Uint32().Draw(t, label+".C")
		in.C = &c
	}
	return in
}

func genBytes(t *rapid.T, label string) []byte {
	switch rapid.IntRange(0, 3).Draw(t, label+".shape") {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		return rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, label)
	}
	// Long enough for bin16.
	return bytes.Repeat([]byte{rapid.Byte().Draw(t, label)}, rapid.IntRange(250, 70000).Draw(t, label+".n"))
}

func genString(t *rapid.T, label string) string {
	if rapid.Bool().Draw(t, label+".long") {
		return string(bytes.Repeat([]byte("x"), rapid.IntRange(20, 70000).Draw(t, label+".n")))
	}
	return rapid.String().Draw(t, label)
}

func genFloat64(t *rapid.T, label string) float64 {
	switch rapid.IntRange(0, 4).Draw(t, label+".kind") {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(-1)
	case 2:
		return math.Copysign(0, -1)
	}
	return rapid.Float64().Draw(t, label)
}

// genSlice draws a nil, empty, short or (now and then) long slice.
func genSlice[E any](t *rapid.T, label string, elem func(*rapid.T, string) E) []E {
	var n int
	switch rapid.IntRange(0, 9).Draw(t, label+".shape") {
	case 0:
		return nil
	case 1:
		return []E{}
	case 2:
		n = rapid.IntRange(16, 70).Draw(t, label+".n") // array16
	default:
		n = rapid.IntRange(1, 4).Draw(t, label+".n")
	}
	s := make([]E, n)
	for i := range s {
		s[i] = elem(t, label)
	}
	return s
}

func genPlain(t *rapid.T) fastPlain {
	v := fastPlain{
		B:     rapid.Bool().Draw(t, "B"),
		I:     rapid.Int().Draw(t, "I"),
		I8:    rapid.Int8().Draw(t, "I8"),
		I16:   rapid.Int16().Draw(t, "I16"),
		I32:   rapid.Int32().Draw(t, "I32"),
		I64:   rapid.Int64().Draw(t, "I64"),
		U:     rapid.Uint().Draw(t, "U"),
		U8:    rapid.Uint8().Draw(t, "U8"),
		U16:   rapid.Uint16().Draw(t, "U16"),
		U32:   rapid.Uint32().Draw(t, "U32"),
		U64:   rapid.Uint64().Draw(t, "U64"),
		F32:   float32(genFloat64(t, "F32")),
		F64:   genFloat64(t, "F64"),
		S:     genString(t, "S"),
		Bs:    genBytes(t, "Bs"),
		Blob:  genBytes(t, "Blob"),
		C:     Celsius(genFloat64(t, "C")),
		In:    genInner(t, "In"),
		OmitI: rapid.IntRange(-1, 1).Draw(t, "OmitI"),
		OmitS: rapid.SampledFrom([]string{"", "x"}).Draw(t, "OmitS"),
		OmitB: genBytes(t, "OmitB"),
		OmitF: rapid.SampledFrom([]float64{0, math.Copysign(0, -1), 1}).Draw(t, "OmitF"),
		Skip:  rapid.Int().Draw(t, "Skip"),
	}
	if rapid.Bool().Draw(t, "hasPIn") {
		in := genInner(t, "PIn")
		v.PIn = &in
	}
	if rapid.Bool().Draw(t, "hasPI") {
		i := rapid.Int().Draw(t, "PI")
		v.PI = &i
	}
	if rapid.Bool().Draw(t, "hasPS") {
		s := rapid.String().Draw(t, "PS")
		v.PS = &s
	}
	v.Fs = genSlice(t, "Fs", func(t *rapid.T, l string) float64 { return genFloat64(t, l) })
	v.Strs = genSlice(t, "Strs", func(t *rapid.T, l string) string { return rapid.String().Draw(t, l) })
	v.Lbls = genSlice(t, "Lbls", func(t *rapid.T, l string) Label { return Label(rapid.String().Draw(t, l)) })
	v.Ins = genSlice(t, "Ins", genInner)
	v.PIns = genSlice(t, "PIns", func(t *rapid.T, l string) *fastInner {
		if rapid.Bool().Draw(t, l+".nil") {
			return nil
		}
		in := genInner(t, l)
		return &in
	})
	v.Nest = genSlice(t, "Nest", func(t *rapid.T, l string) []int16 {
		return genSlice(t, l, func(t *rapid.T, l string) int16 { return rapid.Int16().Draw(t, l) })
	})
	v.OmitL = genSlice(t, "OmitL", func(t *rapid.T, l string) int { return rapid.Int().Draw(t, l) })
	if rapid.Bool().Draw(t, "hasOmitP") {
		i := rapid.Int().Draw(t, "OmitP")
		v.OmitP = &i
	}
	return v
}

func genMixed(t *rapid.T) fastMixed {
	v := fastMixed{
		ID:   rapid.Uint64().Draw(t, "ID"),
		L:    rapid.SliceOfN(rapid.Int32(), -1, 5).Draw(t, "L"),
		Arr:  [2]uint8{rapid.Uint8().Draw(t, "A0"), rapid.Uint8().Draw(t, "A1")},
		Name: rapid.String().Draw(t, "Name"),
		Ss:   rapid.SliceOfN(rapid.String(), -1, 3).Draw(t, "Ss"),
		Any:  rapid.SampledFrom([]any{nil, int64(-3), "s", []any{true, 1.5}}).Draw(t, "Any"),
	}
	// At most one map entry, so that the library's map order cannot make
	// two encodings differ.
	if rapid.Bool().Draw(t, "hasM") {
		v.M = map[string]int{}
		if rapid.Bool().Draw(t, "oneM") {
			v.M[rapid.String().Draw(t, "Mk")] = rapid.Int().Draw(t, "Mv")
		}
	}
	if rapid.Bool().Draw(t, "hasT") {
		v.T = time.Unix(rapid.Int64Range(-1e10, 1e10).Draw(t, "T"), rapid.Int64Range(0, 999999999).Draw(t, "Tn"))
	}
	if rapid.Bool().Draw(t, "hasPT") {
		pt := time.Unix(rapid.Int64Range(0, 1e10).Draw(t, "PT"), 0)
		v.PT = &pt
	}
	if rapid.Bool().Draw(t, "hasIn") {
		in := genInner(t, "In")
		v.In = &in
	}
	return v
}

// sortedLib encodes v with the library, to compare two decoded values byte
// for byte (NaN included).
func libBytes(t *rapid.T, v any) []byte {
	var w appendWriter
	enc := msgpack.NewEncoder(&w)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("re-encoding %T: %v", v, err)
	}
	return w.b
}

// checkSame encodes v with the plan and the library (it must give the same
// bytes), then decodes those bytes with both, into fresh values and into
// values already holding other, and compares the results.
func checkSame[T any](t *rapid.T, v, other T) {
	for _, s := range testSerializers() {
		got, err := s.Append(nil, &v)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		want, err := s.appendLib(nil, &v)
		if err != nil {
			t.Fatalf("library Append: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("array %v: plan % x\nlibrary % x", s.arrayStructs, got, want)
		}
		byValue, err := s.Append(nil, v)
		if err != nil || !bytes.Equal(byValue, want) {
			t.Fatalf("by value: % x, %v", byValue, err)
		}
		for _, pre := range []bool{false, true} {
			var a, b T
			if pre {
				// The library cannot decode into an interface that holds
				// a value already (it panics, and Unmarshal reports it).
				setAny(&other)
				// Each side gets its own copy (the library reuses old
				// slices and pointers).
				if err := s.unmarshalLib(s.mustAppend(t, &other), &b); err != nil {
					t.Fatal(err)
				}
				if err := s.unmarshalLib(s.mustAppend(t, &other), &a); err != nil {
					t.Fatal(err)
				}
			}
			errA := s.Unmarshal(want, &a)
			errB := s.unmarshalLib(want, &b)
			if errA != nil || errB != nil {
				t.Fatalf("decode errors: plan %v, library %v", errA, errB)
			}
			// Bytes compare NaNs; DeepEqual maps whose order the library's
			// encoding does not fix.
			if ga, gb := libBytes(t, &a), libBytes(t, &b); !bytes.Equal(ga, gb) && !reflect.DeepEqual(a, b) {
				t.Fatalf("decoded (pre %v) differ:\nplan    %+v\nlibrary %+v\n% x\n% x\ninput % x", pre, a, b, ga, gb, want)
			}
		}
	}
}

func setAny(v any) {
	if m, ok := v.(*fastMixed); ok {
		m.Any = nil
	}
}

func (s *msgpackSerializer) mustAppend(t *rapid.T, v any) []byte {
	b, err := s.appendLib(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPlanMatchesLibrary(t *testing.T) {
	t.Run("plain", rapid.MakeCheck(func(t *rapid.T) {
		checkSame(t, genPlain(t), genPlain(t))
	}))
	t.Run("mixed", rapid.MakeCheck(func(t *rapid.T) {
		checkSame(t, genMixed(t), genMixed(t))
	}))
}

// Input the library accepts in forms the plan gives up on (and then hands
// back) must decode the same: nil for a string or a number, integers for
// floats, bin strings, bin keys, an empty array for a struct, unknown keys.
func TestPlanDecodeUnusualForms(t *testing.T) {
	s := testSerializers()[0]
	inputs := [][]byte{
		{0x81, 0xa1, 'S', 0xc0},                                   // nil string
		{0x81, 0xa1, 'I', 0xc0},                                   // nil int
		{0x81, 0xa3, 'F', '6', '4', 0x05},                         // int for a float64
		{0x81, 0xa3, 'F', '3', '2', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, // float64 for a float32
		{0x81, 0xa1, 'S', 0xc4, 1, 'x'},                           // bin for a string
		{0x81, 0xa2, 'B', 's', 0xa1, 'x'},                         // str for bytes
		{0x81, 0xc4, 1, 'I', 0x07},                                // bin key
		{0x90},                                                    // empty array
		{0x91, 0x01},                                              // short array
		{0xc0},                                                    // nil struct
		{0x82, 0xa3, 'z', 'z', 'z', 0x92, 0x81, 0xa1, 'q', 0xc3, 0xd4, 1, 2, 0xa1, 'I', 0x09}, // unknown key skipped
		{0x81, 0xa2, 'I', 'n', 0xc0},      // nil nested struct
		{0x81, 0xa3, 'P', 'I', 'n', 0xc0}, // nil pointer
		{0x81, 0xa1, 'B', 0x01},           // int for a bool
		{0x81, 0xa1, 'I', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // uint64 into int
		{0x81, 0xa2, 'I', '8', 0xcd, 0x12, 0x34},                                // truncated into int8
		{0x82, 0xa1, 'I', 0x01, 0xa1, 'I', 0x02},                                // duplicate key
		{0x81, 0xa1, 'I'},                                                       // truncated
		{0x81, 0xa1, 'I', 0x01, 0x00},                                           // trailing byte
	}
	for _, in := range inputs {
		var a, b fastPlain
		errA := s.Unmarshal(in, &a)
		errB := checkMsgpack(in, s.maxDepth)
		if errB == nil {
			errB = s.unmarshalLib(in, &b)
		}
		if (errA == nil) != (errB == nil) {
			t.Errorf("% x: errors differ: plan %v, library %v", in, errA, errB)
			continue
		}
		if errA != nil {
			// On an error, what was decoded before it is not specified
			// (the library leaves it too); the error must be the same.
			if errA.Error() != errB.Error() {
				t.Errorf("% x: error %q, library %q", in, errA, errB)
			}
			continue
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("% x: plan %+v, library %+v", in, a, b)
		}
	}
}

// A serializer's MaxDepth still bounds a type nested deeper than it.
func TestPlanRespectsMaxDepth(t *testing.T) {
	s := NewMsgpack(MsgpackOptions{MaxDepth: 1})
	data, err := s.Append(nil, &fastPlain{})
	if err != nil {
		t.Fatal(err)
	}
	var v fastPlain
	if err := s.Unmarshal(data, &v); err == nil {
		t.Fatal("MaxDepth 1 accepted a struct nested two deep")
	}
}

func BenchmarkPlanEncodeDecode(b *testing.B) {
	s := testSerializers()[0]
	v := fastPlain{S: "sensor-1", F64: 1.5, Bs: []byte("twelve bytes")}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = s.Append(buf[:0], &v)
		var out fastPlain
		if err := s.Unmarshal(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzPlanDecode decodes arbitrary input into types with plans, with the
// plan and with the library alone: both must fail, or both succeed with
// the same value.
func FuzzPlanDecode(f *testing.F) {
	s := testSerializers()[0]
	x := 3
	str := "p"
	seeds := []any{
		&fastPlain{I: -5, S: "s", Bs: []byte{1}, PI: &x, PS: &str, PIn: &fastInner{A: 2}, OmitI: 1,
			Fs: []float64{1.5}, Strs: []string{}, Ins: []fastInner{{A: 1}}, PIns: []*fastInner{nil, {B: "b"}},
			Nest: [][]int16{{1, -2}, nil}, OmitL: []int{3}},
		&fastMixed{ID: 9, M: map[string]int{"k": 1}, L: []int32{1}, T: time.Unix(5, 0), Any: "a", Name: "n"},
		&fastInner{A: -1, B: "b"},
	}
	for _, v := range seeds {
		for _, ser := range testSerializers() {
			b, err := ser.Append(nil, v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSame[fastPlain](t, s, data)
		fuzzSame[fastMixed](t, s, data)
		fuzzSame[fastInner](t, s, data)
	})
}

func fuzzSame[T any](t *testing.T, s *msgpackSerializer, data []byte) {
	var a, b T
	errA := s.Unmarshal(data, &a)
	errB := checkMsgpack(data, s.maxDepth)
	if errB == nil {
		errB = s.unmarshalLib(data, &b)
	}
	if (errA == nil) != (errB == nil) {
		t.Fatalf("%T: plan error %v, library error %v", a, errA, errB)
	}
	if errA != nil {
		if errA.Error() != errB.Error() {
			t.Fatalf("%T: plan error %q, library error %q", a, errA, errB)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		ea, _ := s.appendLib(nil, &a)
		eb, _ := s.appendLib(nil, &b)
		if !bytes.Equal(ea, eb) {
			t.Fatalf("%T: plan %+v, library %+v", a, a, b)
		}
	}
}

type named struct {
	Name string
	N    int
}

// A string field whose value repeats decodes without allocating, and
// shares the cached string; values that keep changing stay correct, and
// the cache stops replacing its entry after maxStrMisses misses.
func TestPlanStringCache(t *testing.T) {
	s := testSerializers()[0]
	p, _ := planOf(named{})
	cache := p.fields[0].c.strs
	same, _ := s.Append(nil, &named{Name: "sensor-0001"})
	var v named
	if err := s.Unmarshal(same, &v); err != nil {
		t.Fatal(err)
	}
	first := v.Name
	if n := testing.AllocsPerRun(100, func() {
		if err := s.Unmarshal(same, &v); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("repeated value: %.1f allocations per decode, want 0", n)
	}
	if unsafe.StringData(v.Name) != unsafe.StringData(first) || v.Name != "sensor-0001" {
		t.Errorf("repeated value not shared: %q", v.Name)
	}
	long := string(bytes.Repeat([]byte("L"), maxCachedStr+1))
	data, _ := s.Append(nil, &named{Name: long})
	if err := s.Unmarshal(data, &v); err != nil || v.Name != long {
		t.Fatalf("long string: %q, %v", v.Name, err)
	}
	if got := cache.last.Load().s; got != "sensor-0001" {
		t.Errorf("a long string replaced the cached one: %q", got)
	}
	for i := range maxStrMisses + 10 {
		want := fmt.Sprintf("s%d", i)
		data, _ := s.Append(nil, &named{Name: want})
		if err := s.Unmarshal(data, &v); err != nil || v.Name != want {
			t.Fatalf("value %d: %q, %v", i, v.Name, err)
		}
	}
	if m := cache.misses.Load(); m != maxStrMisses {
		t.Errorf("misses %d, want the cap %d", m, maxStrMisses)
	}
	if got := cache.last.Load().s; got == fmt.Sprintf("s%d", maxStrMisses+9) {
		t.Error("the cache kept replacing its entry past the cap")
	}
}

// Decoders on several goroutines share a field's cache; each gets its own
// values.
func TestPlanStringCacheConcurrent(t *testing.T) {
	s := testSerializers()[0]
	type tagged struct{ Tag string }
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				want := fmt.Sprintf("g%d-%d", g, i%3)
				data, _ := s.Append(nil, &tagged{Tag: want})
				var v tagged
				if err := s.Unmarshal(data, &v); err != nil || v.Tag != want {
					t.Errorf("got %q, %v; want %q", v.Tag, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// panicky's encoder does not accept its zero value, which the probe hands
// it.
type panicky struct{ N int }

func (p panicky) EncodeMsgpack(e *msgpack.Encoder) error {
	if p.N == 0 {
		panic("panicky: zero")
	}
	return e.EncodeInt(int64(p.N))
}

func (p *panicky) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeInt()
	p.N = n
	return err
}

type withPanicky struct {
	A int
	P panicky
}

// A type whose probe panics in a field's own encoder is left to the
// library, and its real values still encode.
func TestPlanProbePanics(t *testing.T) {
	if p, _ := planOf(withPanicky{}); p != nil {
		t.Fatal("withPanicky: got a plan")
	}
	s := testSerializers()[0]
	got, err := s.Append(nil, withPanicky{A: 1, P: panicky{N: 2}})
	if err != nil {
		t.Fatal(err)
	}
	var v withPanicky
	if err := s.Unmarshal(got, &v); err != nil || v != (withPanicky{A: 1, P: panicky{N: 2}}) {
		t.Fatalf("round trip: %+v, %v", v, err)
	}
}

type reentrantInner struct{ Y int }

// reentrant's encoder encodes another struct type with this package while
// the probe of the type holding it runs.
type reentrant struct{ X int }

func (r reentrant) EncodeMsgpack(e *msgpack.Encoder) error {
	b, err := defaultMsgpack.Append(nil, reentrantInner{Y: r.X})
	if err != nil {
		return err
	}
	return e.EncodeBytes(b)
}

func (r *reentrant) DecodeMsgpack(d *msgpack.Decoder) error {
	b, err := d.DecodeBytes()
	if err != nil {
		return err
	}
	var in reentrantInner
	err = defaultMsgpack.Unmarshal(b, &in)
	r.X = in.Y
	return err
}

type withReentrant struct{ R reentrant }

// Making a plan does not hold a lock that a field's own encoder, using
// this package for another type, would need.
func TestPlanReentrantEncoder(t *testing.T) {
	b, err := defaultMsgpack.Append(nil, withReentrant{R: reentrant{X: 7}})
	if err != nil {
		t.Fatal(err)
	}
	var v withReentrant
	if err := defaultMsgpack.Unmarshal(b, &v); err != nil || v.R.X != 7 {
		t.Fatalf("round trip: %+v, %v", v, err)
	}
	if p, _ := planOf(withReentrant{}); p == nil || !p.lib {
		t.Error("withReentrant: want a plan with R left to the library")
	}
}
