package codec_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc/codec"
)

// order is a small four-field struct, the typical shape of a message.
type order struct {
	ID    uint64  `msgpack:"id" json:"id"`
	Name  string  `msgpack:"name" json:"name"`
	Price float64 `msgpack:"price" json:"price"`
	Paid  bool    `msgpack:"paid" json:"paid"`
}

type nested struct {
	When  time.Time         `msgpack:"when" json:"when"`
	Tags  []string          `msgpack:"tags" json:"tags"`
	Attrs map[string]string `msgpack:"attrs" json:"attrs"`
	Inner *order            `msgpack:"inner" json:"inner"`
	Extra any               `msgpack:"extra" json:"extra"`
	Blob  []byte            `msgpack:"blob" json:"blob"`
}

var msgpackArray = codec.NewMsgpack(codec.MsgpackOptions{ArrayStructs: true})

func builtinSerializer(t testing.TB, id codec.ID) codec.Serializer {
	t.Helper()
	s, ok := codec.SerializerByID(id)
	if !ok {
		t.Fatalf("SerializerByID(%d) not found", id)
	}
	return s
}

func TestStructuredRoundTrip(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	values := []any{
		order{ID: 1, Name: "book", Price: 12.5, Paid: true},
		order{},
		nested{
			When:  when,
			Tags:  []string{"a", "b"},
			Attrs: map[string]string{"k": "v"},
			Inner: &order{ID: 1 << 40, Name: "x"},
			Extra: "extra",
			Blob:  []byte{0, 1, 2, 255},
		},
	}
	sers := []codec.Serializer{
		builtinSerializer(t, codec.Msgpack),
		msgpackArray,
		builtinSerializer(t, codec.JSON),
	}
	for _, s := range sers {
		for i, v := range values {
			b, err := s.Append([]byte("prefix"), v)
			if err != nil {
				t.Fatalf("%s: %d. Append(%+v) error: %v", s.Name(), i, v, err)
			}
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatalf("%s: %d. Append(%+v) lost the prefix: %q", s.Name(), i, v, b)
			}
			p := reflect.New(reflect.TypeOf(v))
			if err := s.Unmarshal(b[len("prefix"):], p.Interface()); err != nil {
				t.Fatalf("%s: %d. Unmarshal(%q) error: %v", s.Name(), i, b, err)
			}
			got := p.Elem().Interface()
			if n, ok := got.(nested); ok {
				// Time zones are not part of either encoding.
				if !n.When.Equal(when) {
					t.Errorf("%s: %d. When = %v; want %v", s.Name(), i, n.When, when)
				}
				n.When = when
				got = n
			}
			if !reflect.DeepEqual(got, v) {
				t.Errorf("%s: %d. Unmarshal(Append(%+v)) = %+v; want %+v", s.Name(), i, v, got, v)
			}
		}
	}
}

func TestMsgpackDecodesBothStructForms(t *testing.T) {
	want := order{ID: 7, Name: "n", Price: 1.5, Paid: true}
	mapForm, err := builtinSerializer(t, codec.Msgpack).Append(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	arrayForm, err := msgpackArray.Append(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(mapForm, arrayForm) {
		t.Fatalf("array form equals map form: %x", mapForm)
	}
	if msgpackArray.Name() != "msgpack" {
		t.Errorf("array-struct Name() = %q; want %q", msgpackArray.Name(), "msgpack")
	}
	for i, s := range []codec.Serializer{builtinSerializer(t, codec.Msgpack), msgpackArray} {
		for j, b := range [][]byte{mapForm, arrayForm} {
			var got order
			if err := s.Unmarshal(b, &got); err != nil {
				t.Fatalf("%d.%d. Unmarshal(%x) error: %v", i, j, b, err)
			}
			if got != want {
				t.Errorf("%d.%d. Unmarshal(%x) = %+v; want %+v", i, j, b, got, want)
			}
		}
	}
}

type golden struct {
	ID   int    `msgpack:"id"`
	Name string `msgpack:"name"`
	OK   bool   `msgpack:"ok"`
}

func TestMsgpackGolden(t *testing.T) {
	mp := builtinSerializer(t, codec.Msgpack)
	tests := []struct {
		s    codec.Serializer
		v    any
		want string
	}{
		{mp, golden{ID: 300, Name: "ab", OK: true}, "83a26964cd012ca46e616d65a26162a26f6bc3"},
		{msgpackArray, golden{ID: 300, Name: "ab", OK: true}, "93cd012ca26162c3"},
		// Compact integers: the smallest encoding whatever the Go type.
		{mp, int64(1), "01"},
		{mp, int64(-1), "ff"},
		{mp, uint64(200), "ccc8"},
		{mp, int32(-200), "d1ff38"},
		// time.Time uses the timestamp extension, type -1, in its 32-, 64-
		// and 96-bit forms.
		{mp, time.Unix(1700000000, 0), "d6ff6553f100"},
		{mp, time.Unix(1700000000, 5), "d7ff000000146553f100"},
		{mp, time.Unix(-1, 0), "c70cff00000000ffffffffffffffff"},
	}
	for i, tt := range tests {
		b, err := tt.s.Append(nil, tt.v)
		if err != nil {
			t.Fatalf("%d. Append(%v) error: %v", i, tt.v, err)
		}
		if got := hex.EncodeToString(b); got != tt.want {
			t.Errorf("%d. Append(%v) = %s; want %s", i, tt.v, got, tt.want)
		}
	}
}

func TestMsgpackTimeRoundTrip(t *testing.T) {
	mp := builtinSerializer(t, codec.Msgpack)
	times := []time.Time{
		time.Unix(1700000000, 0),
		time.Unix(1700000000, 999999999),
		time.Unix(-1, 0),
		time.Date(3000, 1, 1, 0, 0, 0, 1, time.UTC),
	}
	for i, tm := range times {
		b, err := mp.Append(nil, tm)
		if err != nil {
			t.Fatal(err)
		}
		var got time.Time
		if err := mp.Unmarshal(b, &got); err != nil {
			t.Fatalf("%d. Unmarshal(%x) error: %v", i, b, err)
		}
		if !got.Equal(tm) {
			t.Errorf("%d. Unmarshal(Append(%v)) = %v; want %v", i, tm, got, tm)
		}
	}
}

func TestMsgpackGeneric(t *testing.T) {
	mp := builtinSerializer(t, codec.Msgpack)
	in := map[string]any{
		"int":   -5,
		"uint":  uint64(1 << 63),
		"small": 7,
		"float": 1.5,
		"f32":   float32(2.5),
		"str":   "s",
		"bin":   []byte("b"),
		"u8":    uint8(200),
		"u32":   uint32(1 << 31),
		"i16":   int16(-300),
		"list":  []any{1, "two", nil, true},
		"map":   map[string]any{"k": false},
		"nil":   nil,
		"order": order{ID: 1, Name: "n"},
	}
	b, err := mp.Append(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mp.Generic(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"int":   int64(-5),
		"uint":  uint64(1 << 63),
		"small": int64(7),
		"float": 1.5,
		"f32":   2.5,
		"str":   "s",
		"bin":   []byte("b"),
		"u8":    int64(200),
		"u32":   int64(1 << 31),
		"i16":   int64(-300),
		"list":  []any{int64(1), "two", nil, true},
		"map":   map[string]any{"k": false},
		"nil":   nil,
		"order": map[string]any{"id": int64(1), "name": "n", "price": 0.0, "paid": false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Generic(%x) = %#v; want %#v", b, got, want)
	}
	var v any
	if err := mp.Unmarshal(b, &v); err != nil || !reflect.DeepEqual(v, want) {
		t.Errorf("Unmarshal(%x, *any) = %#v, %v; want %#v", b, v, err, want)
	}

	tm := time.Unix(1700000000, 5)
	b, _ = mp.Append(nil, []any{tm, time.Time{}})
	got, err = mp.Generic(b)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := got.([]any); !ok || len(l) != 2 || !l[0].(time.Time).Equal(tm) || !l[1].(time.Time).IsZero() {
		t.Errorf("Generic(times) = %#v; want [%v, zero time]", got, tm)
	}
}

func TestMsgpackGenericNonStringKeys(t *testing.T) {
	mp := builtinSerializer(t, codec.Msgpack)
	tests := []struct {
		in   any
		want any
	}{
		{map[int]string{1: "a"}, map[any]any{int64(1): "a"}},
		{map[string]int{}, map[string]any{}},
		// A string key first, then an integer one.
		{[]byte("\x82\xa1a\x01\x02\x03"), map[any]any{"a": int64(1), int64(2): int64(3)}},
	}
	for i, tt := range tests {
		b, ok := tt.in.([]byte)
		if !ok {
			var err error
			if b, err = mp.Append(nil, tt.in); err != nil {
				t.Fatal(err)
			}
		}
		got, err := mp.Generic(b)
		if err != nil {
			t.Fatalf("%d. Generic(%x) error: %v", i, b, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%d. Generic(%x) = %#v; want %#v", i, b, got, tt.want)
		}
	}
	// An array as a map key cannot be represented in Go.
	if got, err := mp.Generic([]byte("\x81\x91\x01\x02")); err == nil {
		t.Errorf("Generic(map with array key) = %v; want error", got)
	}
}

func TestJSONGeneric(t *testing.T) {
	js := builtinSerializer(t, codec.JSON)
	got, err := js.Generic([]byte(`{"a":[1,"x",null,true],"b":{"c":2.5}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": []any{1.0, "x", nil, true}, "b": map[string]any{"c": 2.5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Generic = %#v; want %#v", got, want)
	}
}

func TestRaw(t *testing.T) {
	raw := builtinSerializer(t, codec.Raw)
	tests := []struct {
		v    any
		want string
	}{
		{[]byte("bytes"), "pre:bytes"},
		{"string", "pre:string"},
		{[]byte{}, "pre:"},
	}
	for i, tt := range tests {
		got, err := raw.Append([]byte("pre:"), tt.v)
		if err != nil {
			t.Fatalf("%d. Append(%q) error: %v", i, tt.v, err)
		}
		if string(got) != tt.want {
			t.Errorf("%d. Append(%q) = %q; want %q", i, tt.v, got, tt.want)
		}
	}
	if _, err := raw.Append(nil, 42); err == nil || !strings.Contains(err.Error(), "int") {
		t.Errorf("Append(42) error = %v; want one naming int", err)
	}

	data := []byte("payload")
	var b []byte
	if err := raw.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	data[0] = 'P'
	if string(b) != "payload" {
		t.Errorf("Unmarshal into *[]byte = %q; want a copy %q", b, "payload")
	}
	var s string
	if err := raw.Unmarshal(data, &s); err != nil || s != "Payload" {
		t.Errorf("Unmarshal into *string = %q, %v; want %q, nil", s, err, "Payload")
	}
	var n int
	if err := raw.Unmarshal(data, &n); err == nil {
		t.Errorf("Unmarshal into *int succeeded; want error")
	}
	if err := raw.Unmarshal(data, (*[]byte)(nil)); err == nil {
		t.Errorf("Unmarshal into nil *[]byte succeeded; want error")
	}
	g, err := raw.Generic(data)
	if err != nil {
		t.Fatal(err)
	}
	if gb, ok := g.([]byte); !ok || &gb[0] != &data[0] {
		t.Errorf("Generic(data) = %T %v; want data itself", g, g)
	}
}

func TestSerializerErrorsKeepDst(t *testing.T) {
	for _, id := range []codec.ID{codec.Raw, codec.Msgpack, codec.JSON} {
		s := builtinSerializer(t, id)
		dst := []byte("keep")
		got, err := s.Append(dst, make(chan int))
		if err == nil {
			t.Errorf("%s: Append(chan) succeeded; want error", s.Name())
		}
		if string(got) != "keep" {
			t.Errorf("%s: Append(chan) = %q after error; want %q", s.Name(), got, "keep")
		}
	}
}

func TestHostileMsgpack(t *testing.T) {
	mp := builtinSerializer(t, codec.Msgpack)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unused code", []byte{0xc1}},
		{"truncated uint64", []byte{0xcf, 1, 2}},
		{"str32 claims 4 GiB", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}},
		{"bin32 claims 4 GiB", []byte{0xc6, 0xff, 0xff, 0xff, 0xff}},
		{"array32 claims 4G items", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}},
		{"map32 claims 4G entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2}},
		{"map16 odd items", []byte{0xde, 0x00, 0x02, 1, 2, 3}},
		{"ext32 claims 4 GiB", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"trailing bytes", []byte{0x01, 0x02}},
		{"bad time ext length", []byte{0xd4, 0xff, 0x00}},
		{"unknown ext", []byte{0xd4, 0x42, 0x00}},
	}
	for i, tt := range tests {
		if got, err := mp.Generic(tt.in); err == nil {
			t.Errorf("%d. Generic(%s %x) = %v; want error", i, tt.name, tt.in, got)
		}
		var o order
		if err := mp.Unmarshal(tt.in, &o); err == nil {
			t.Errorf("%d. Unmarshal(%s %x) succeeded; want error", i, tt.name, tt.in)
		}
	}
}

func nestedArrays(depth int) []byte {
	b := bytes.Repeat([]byte{0x91}, depth)
	return append(b, 0x01)
}

func TestMsgpackDepthLimit(t *testing.T) {
	mp := builtinSerializer(t, codec.Msgpack)
	if _, err := mp.Generic(nestedArrays(codec.DefaultMaxDepth)); err != nil {
		t.Errorf("Generic(%d nested arrays) error: %v", codec.DefaultMaxDepth, err)
	}
	for _, depth := range []int{codec.DefaultMaxDepth + 1, 100000} {
		in := nestedArrays(depth)
		if _, err := mp.Generic(in); err == nil || !strings.Contains(err.Error(), "nesting") {
			t.Errorf("Generic(%d nested arrays) error = %v; want a nesting error", depth, err)
		}
		var v any
		if err := mp.Unmarshal(in, &v); err == nil {
			t.Errorf("Unmarshal(%d nested arrays) succeeded; want error", depth)
		}
	}
	// Maps count too, and so do empty containers at the bottom.
	deepMaps := append(bytes.Repeat([]byte{0x81, 0xa1, 'k'}, codec.DefaultMaxDepth), 0x90)
	if _, err := mp.Generic(deepMaps); err == nil {
		t.Errorf("Generic(%d nested maps around an empty array) succeeded; want error", codec.DefaultMaxDepth)
	}

	shallow := codec.NewMsgpack(codec.MsgpackOptions{MaxDepth: 3})
	if _, err := shallow.Generic(nestedArrays(3)); err != nil {
		t.Errorf("MaxDepth 3: Generic(3 nested arrays) error: %v", err)
	}
	if _, err := shallow.Generic(nestedArrays(4)); err == nil {
		t.Errorf("MaxDepth 3: Generic(4 nested arrays) succeeded; want error")
	}
}

func TestJSONDepthLimit(t *testing.T) {
	js := builtinSerializer(t, codec.JSON)
	in := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	if _, err := js.Generic([]byte(in)); err == nil {
		t.Errorf("Generic(100000 nested arrays) succeeded; want error")
	}
	var v any
	if err := js.Unmarshal([]byte(in), &v); err == nil {
		t.Errorf("Unmarshal(100000 nested arrays) succeeded; want error")
	}
}

func TestMsgpackAllocs(t *testing.T) {
	mp := builtinSerializer(t, codec.Msgpack)
	for _, s := range []codec.Serializer{mp, msgpackArray} {
		o := order{ID: 42, Name: "widget", Price: 9.99, Paid: true}
		var v any = &o
		buf := make([]byte, 0, 256)
		allocs := steadyAllocs(func() {
			var err error
			buf, err = s.Append(buf[:0], v)
			if err != nil {
				panic(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s (array structs %t): Append allocs = %v; want 0", s.Name(), s == msgpackArray, allocs)
		}

		var got order
		allocs = steadyAllocs(func() {
			if err := s.Unmarshal(buf, &got); err != nil {
				panic(err)
			}
		})
		// The only allocation is the Name string. The msgpack library
		// tries the map form first and boxes an error when it meets an
		// array-encoded struct: one more allocation per struct.
		want := 1.0
		if s == msgpackArray {
			want = 2
		}
		if allocs > want {
			t.Errorf("%s (array structs %t): Unmarshal allocs = %v; want at most %v", s.Name(), s == msgpackArray, allocs, want)
		}
		if got != o {
			t.Errorf("%s: Unmarshal = %+v; want %+v", s.Name(), got, o)
		}
	}
}

func TestSerializersConcurrent(t *testing.T) {
	sers := []codec.Serializer{builtinSerializer(t, codec.Msgpack), msgpackArray, builtinSerializer(t, codec.JSON)}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			var err error
			defer func() { errs <- err }()
			buf := make([]byte, 0, 64)
			for i := range 200 {
				s := sers[(g+i)%len(sers)]
				want := order{ID: uint64(g*1000 + i), Name: fmt.Sprint(i)}
				if buf, err = s.Append(buf[:0], &want); err != nil {
					return
				}
				var got order
				if err = s.Unmarshal(buf, &got); err != nil {
					return
				}
				if got != want {
					err = fmt.Errorf("%s: got %+v; want %+v", s.Name(), got, want)
					return
				}
			}
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// steadyAllocs is the least of a few testing.AllocsPerRun measurements:
// under the race detector sync.Pool drops items at random, which adds
// allocations now and then; the steady state is what the tests pin.
func steadyAllocs(f func()) float64 {
	least := testing.AllocsPerRun(1000, f)
	for i := 0; i < 4; i++ {
		least = min(least, testing.AllocsPerRun(1000, f))
	}
	return least
}
