package codec_test

import (
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/slc-go/slc/codec"
)

type shipment struct {
	OrderID uint64   `msgpack:"order" json:"order"`
	Items   []string `msgpack:"items" json:"items"`
}

type unregistered struct {
	A int    `msgpack:"a" json:"a"`
	B string `msgpack:"b" json:"b"`
}

type (
	typeA  struct{ X int }
	typeB  struct{ X int }
	typeP  struct{ X int }
	status int
)

func mustRegister[T any](t testing.TB, name string) {
	t.Helper()
	if err := codec.RegisterType[T](name); err != nil {
		t.Fatalf("RegisterType[%T](%q) error: %v", *new(T), name, err)
	}
}

func TestDecodeRegisteredType(t *testing.T) {
	mustRegister[shipment](t, "test.shipment")
	want := shipment{OrderID: 9, Items: []string{"a", "b"}}
	for _, id := range []codec.ID{codec.Msgpack, codec.JSON} {
		s := builtinSerializer(t, id)
		for i, v := range []any{want, &want} {
			name, ok := codec.TypeName(v)
			if !ok || name != "test.shipment" {
				t.Fatalf("%d. TypeName(%T) = %q, %t; want %q, true", i, v, name, ok, "test.shipment")
			}
			data, err := s.Append(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := codec.Decode(name, s, data)
			if err != nil {
				t.Fatalf("%s: %d. Decode(%q) error: %v", s.Name(), i, name, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %d. Decode(%q) = %T %+v; want %T %+v", s.Name(), i, name, got, got, want, want)
			}
			got, err = codec.DecodeBytesName([]byte(name), s, data)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %d. DecodeBytesName(%q) = %T %+v, %v; want %T %+v", s.Name(), i, name, got, got, err, want, want)
			}
		}
	}
	if _, err := codec.Decode("test.shipment", builtinSerializer(t, codec.Msgpack), []byte{0xc1}); err == nil {
		t.Errorf("Decode(registered, garbage) succeeded; want error")
	}
	if _, err := codec.Decode("test.shipment", nil, nil); err == nil {
		t.Errorf("Decode with a nil serializer succeeded; want error")
	}
}

func TestDecodeUnregistered(t *testing.T) {
	v := unregistered{A: 1, B: "x"}
	if name, ok := codec.TypeName(v); ok {
		t.Errorf("TypeName(unregistered) = %q, true; want false", name)
	}
	if name, ok := codec.TypeName(nil); ok {
		t.Errorf("TypeName(nil) = %q, true; want false", name)
	}
	tests := []struct {
		id   codec.ID
		want any
	}{
		{codec.Msgpack, map[string]any{"a": int64(1), "b": "x"}},
		{codec.JSON, map[string]any{"a": 1.0, "b": "x"}},
	}
	for i, tt := range tests {
		s := builtinSerializer(t, tt.id)
		data, err := s.Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.Decode("", s, data)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%d. %s: Decode(\"\") = %#v, %v; want %#v", i, s.Name(), got, err, tt.want)
		}
	}
	raw := builtinSerializer(t, codec.Raw)
	got, err := codec.Decode("no.such.type", raw, []byte("bytes"))
	if b, ok := got.([]byte); err != nil || !ok || string(b) != "bytes" {
		t.Errorf("Decode(unknown, raw) = %#v, %v; want []byte(\"bytes\")", got, err)
	}
}

func TestRegisterTypeErrors(t *testing.T) {
	mustRegister[typeA](t, "test.A")
	mustRegister[typeA](t, "test.A") // idempotent
	mustRegister[status](t, "test.status")

	tests := []struct {
		register func() error
		want     string
	}{
		{func() error { return codec.RegisterType[typeB]("") }, "empty"},
		{func() error { return codec.RegisterType[typeB](strings.Repeat("n", codec.MaxTypeName+1)) }, "longer"},
		{func() error { return codec.RegisterType[typeB]("test.A") }, "already registered for"},
		{func() error { return codec.RegisterType[typeA]("test.A2") }, "already registered as"},
		{func() error { return codec.RegisterType[fmt.Stringer]("test.stringer") }, "interface"},
		{func() error { return codec.RegisterType[any]("test.any") }, "interface"},
	}
	for i, tt := range tests {
		err := tt.register()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%d. RegisterType error = %v; want one containing %q", i, err, tt.want)
		}
	}
	// A name of exactly the maximum length is fine.
	long := strings.Repeat("n", codec.MaxTypeName)
	mustRegister[typeB](t, long)

	names := codec.Types()
	for _, want := range []string{"test.A", "test.status", long} {
		if !slices.Contains(names, want) {
			t.Errorf("Types() = %v; want it to contain %q", names, want)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("Types() = %v; want sorted", names)
	}
}

func TestPointerTypes(t *testing.T) {
	mustRegister[typeP](t, "test.P")
	mustRegister[*typeP](t, "test.P.ptr")
	tests := []struct {
		v    any
		want string
	}{
		{typeP{}, "test.P"},
		{&typeP{}, "test.P.ptr"}, // *T registered itself wins over T
		{status(1), "test.status"},
		{new(status), "test.status"},
	}
	mustRegister[status](t, "test.status")
	for i, tt := range tests {
		if got, ok := codec.TypeName(tt.v); !ok || got != tt.want {
			t.Errorf("%d. TypeName(%T) = %q, %t; want %q, true", i, tt.v, got, ok, tt.want)
		}
	}
	var pp **typeA
	if name, ok := codec.TypeName(pp); ok {
		t.Errorf("TypeName(**T) = %q, true; want false", name)
	}

	mp := builtinSerializer(t, codec.Msgpack)
	data, _ := mp.Append(nil, &typeP{X: 5})
	got, err := codec.Decode("test.P.ptr", mp, data)
	if p, ok := got.(*typeP); err != nil || !ok || p.X != 5 {
		t.Errorf("Decode(%q) = %#v, %v; want &typeP{X: 5}", "test.P.ptr", got, err)
	}
}

func TestTypeNameAllocs(t *testing.T) {
	mustRegister[shipment](t, "test.shipment")
	v := any(&shipment{})
	name := []byte("test.shipment")
	mp := builtinSerializer(t, codec.Msgpack)
	data, _ := mp.Append(nil, shipment{OrderID: 1})
	var got string
	allocs := testing.AllocsPerRun(100, func() { got, _ = codec.TypeName(v) })
	if allocs != 0 || got != "test.shipment" {
		t.Errorf("TypeName allocs = %v (name %q); want 0", allocs, got)
	}
	// Decoding a shipment with no items allocates the new value and its
	// copy in the interface; the lookup by a []byte name adds nothing.
	// The race detector makes sync.Pool drop items at random, which adds
	// allocations now and then: the steady state is the least of a few
	// measurements.
	steady := func(f func()) float64 {
		least := testing.AllocsPerRun(100, f)
		for i := 0; i < 4; i++ {
			least = min(least, testing.AllocsPerRun(100, f))
		}
		return least
	}
	base := steady(func() { _, _ = codec.Decode("test.shipment", mp, data) })
	allocs = steady(func() { _, _ = codec.DecodeBytesName(name, mp, data) })
	if allocs != base || allocs > 2 {
		t.Errorf("DecodeBytesName allocs = %v, Decode allocs = %v; want equal and at most 2", allocs, base)
	}
}

func TestTypesConcurrent(t *testing.T) {
	type c0 struct{ A int }
	type c1 struct{ A int }
	type c2 struct{ A int }
	type c3 struct{ A int }
	regs := []func() error{
		func() error { return codec.RegisterType[c0]("test.c0") },
		func() error { return codec.RegisterType[c1]("test.c1") },
		func() error { return codec.RegisterType[c2]("test.c2") },
		func() error { return codec.RegisterType[c3]("test.c3") },
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			// Every goroutine registers every type: all must succeed.
			for j := range regs {
				if err := regs[(i+j)%len(regs)](); err != nil {
					errs <- err
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				if _, ok := codec.TypeName(c0{}); ok {
					continue
				}
				_ = codec.Types()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, v := range []any{c0{}, c1{}, c2{}, c3{}} {
		if name, ok := codec.TypeName(v); !ok || name != fmt.Sprintf("test.c%d", i) {
			t.Errorf("TypeName(%T) = %q, %t; want %q", v, name, ok, fmt.Sprintf("test.c%d", i))
		}
	}
}

type pointerShaped struct{ P *int }

type shapeInt int

type bigValue struct {
	A, B, C, D int64
	S          string
}

// Decode returns a T, by value, for every shape of T: one an interface
// holds in its data word (a pointer-shaped struct, an int) and one it
// holds by pointer; each decoded value is its own, and stays intact
// across collections.
func TestDecodeValueShapes(t *testing.T) {
	for _, name := range []string{"test.shape.ptr", "test.shape.big", "test.shape.int"} {
		var err error
		switch name {
		case "test.shape.ptr":
			err = codec.RegisterType[pointerShaped](name)
		case "test.shape.big":
			err = codec.RegisterType[bigValue](name)
		default:
			err = codec.RegisterType[shapeInt](name)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mp := builtinSerializer(t, codec.Msgpack)
	x := 7
	cases := []struct {
		name string
		v    any
	}{
		{"test.shape.ptr", pointerShaped{&x}},
		{"test.shape.big", bigValue{1, 2, 3, 4, "four"}},
		{"test.shape.int", shapeInt(9)},
	}
	for _, c := range cases {
		data, err := mp.Append(nil, c.v)
		if err != nil {
			t.Fatal(err)
		}
		var got []any
		for range 3 {
			v, err := codec.Decode(c.name, mp, data)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			got = append(got, v)
			runtime.GC()
		}
		for _, v := range got {
			if reflect.TypeOf(v) != reflect.TypeOf(c.v) {
				t.Fatalf("%s: decoded a %T, want %T", c.name, v, c.v)
			}
			if c.name == "test.shape.ptr" {
				if *v.(pointerShaped).P != x {
					t.Fatalf("%s: got %d", c.name, *v.(pointerShaped).P)
				}
				continue
			}
			if !reflect.DeepEqual(v, c.v) {
				t.Fatalf("%s: got %+v, want %+v", c.name, v, c.v)
			}
		}
	}
}
