package bus_test

import (
	"errors"

	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/bus"
)

// Pose is a typed message registered with slc: the bus converts it with
// msgpack under its registered name.
type Pose struct {
	X, Y, Theta float64
	Frame       string
}

func init() { slc.Register[Pose]("test.Pose") }

// Twist has a msgpack converter under a schema of its own.
type Twist struct {
	Linear, Angular float64
}

// Celsius has a user-defined text converter.
type Celsius float64

var celsiusConverter = bus.NewConverter("text/celsius",
	func(c Celsius) ([]byte, error) {
		return []byte(strconv.FormatFloat(float64(c), 'g', -1, 64) + "C"), nil
	},
	func(b []byte) (Celsius, error) {
		f, err := strconv.ParseFloat(strings.TrimSuffix(string(b), "C"), 64)
		return Celsius(f), err
	})

func testConverters(t testing.TB) *bus.Converters {
	r := bus.DefaultConverters()
	for _, c := range []bus.Converter{bus.MsgpackConverter[Twist]("test.Twist/msgpack"), celsiusConverter} {
		if err := r.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// roundTrips are values with the schema they travel under and what
// comes back (nil: the value itself).
var roundTrips = []struct {
	in     any
	schema string
	out    any
}{
	{in: nil, schema: "void"},
	{in: true, schema: "bool"},
	{in: false, schema: "bool"},
	{in: int32(math.MinInt32), schema: "int32"},
	{in: int32(math.MaxInt32), schema: "int32"},
	{in: int64(math.MinInt64), schema: "int64"},
	{in: int64(-1), schema: "int64"},
	{in: 42, schema: "int64", out: int64(42)}, // int travels as int64
	{in: uint32(math.MaxUint32), schema: "uint32"},
	{in: uint64(math.MaxUint64), schema: "uint64"},
	{in: uint(7), schema: "uint64", out: uint64(7)},
	{in: float32(-1.5), schema: "float"},
	{in: float32(math.Inf(1)), schema: "float"},
	{in: math.SmallestNonzeroFloat64, schema: "double"},
	{in: math.Inf(-1), schema: "double"},
	{in: "", schema: "utf-8-string"},
	{in: "héllo, 世界", schema: "utf-8-string"},
	{in: []byte{}, schema: "bytes"},
	{in: []byte{0, 1, 0xff}, schema: "bytes"},
	{in: Pose{X: 1, Y: -2, Theta: math.Pi, Frame: "map"}, schema: "test.Pose"},
	{in: &Pose{X: 3, Frame: "odom"}, schema: "test.Pose", out: Pose{X: 3, Frame: "odom"}},
	{in: Twist{Linear: 0.5, Angular: -0.25}, schema: "test.Twist/msgpack"},
	{in: Celsius(21.5), schema: "text/celsius"},
}

func TestConvertersRoundTrip(t *testing.T) {
	r := testConverters(t)
	for _, tc := range roundTrips {
		schema, data, err := r.Encode(tc.in)
		if err != nil || schema != tc.schema {
			t.Errorf("encode %T %v: schema %q, %v; want %q", tc.in, tc.in, schema, err, tc.schema)
			continue
		}
		got, ok, err := r.Decode(schema, data)
		want := tc.out
		if want == nil {
			want = tc.in
		}
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("decode %q %x: %T %v, %v, %v; want %T %v", schema, data, got, got, ok, err, want, want)
		}
	}
	// NaN is not equal to itself: compare the bits.
	_, data, _ := r.Encode(math.NaN())
	if got, _, _ := r.Decode("double", data); !math.IsNaN(got.(float64)) {
		t.Errorf("NaN came back as %v", got)
	}
}

func TestConverterErrors(t *testing.T) {
	r := testConverters(t)
	type unknown struct{ A int }
	if _, _, err := r.Encode(unknown{}); !errors.Is(err, bus.ErrNoConverter) {
		t.Errorf("encode of an unknown type: %v", err)
	}
	if _, _, err := r.Encode(make(chan int)); !errors.Is(err, bus.ErrNoConverter) {
		t.Errorf("encode of a channel: %v", err)
	}
	if _, _, err := r.Encode("\xff"); err == nil {
		t.Error("encode of invalid UTF-8 succeeded")
	}
	for _, tc := range []struct {
		schema string
		data   []byte
	}{
		{"int64", []byte{1, 2, 3}},
		{"int32", nil},
		{"bool", []byte{2}},
		{"double", make([]byte, 9)},
		{"utf-8-string", []byte{0xff, 0xfe}},
		{"void", []byte{1}},
		{"test.Pose", []byte{0xc1}},
		{"test.Twist/msgpack", []byte{0x91}},
		{"text/celsius", []byte("warm")},
	} {
		if v, _, err := r.Decode(tc.schema, tc.data); err == nil {
			t.Errorf("decode %q %x = %v, want an error", tc.schema, tc.data, v)
		}
	}
	// An unknown schema comes back as bytes.
	if v, ok, err := r.Decode("no.such.schema", []byte("abc")); ok || err != nil || string(v.([]byte)) != "abc" {
		t.Errorf("unknown schema: %v, %v, %v", v, ok, err)
	}
	// A type is converted by one converter only.
	if err := r.Register(bus.NewConverter("other-string",
		func(s string) ([]byte, error) { return []byte(s), nil },
		func(b []byte) (string, error) { return string(b), nil })); err == nil {
		t.Error("a second converter for string was accepted")
	}
	if err := r.Register(nil); err == nil {
		t.Error("a nil converter was accepted")
	}
	if err := bus.NewConverters().Register(bus.MsgpackConverter[Twist]("")); err == nil {
		t.Error("an empty schema was accepted")
	}
	// A converter given a value of another type.
	if _, err := celsiusConverter.Marshal(1.5); err == nil {
		t.Error("the celsius converter took a float64")
	}
}

// TestConvertersOverTheBus sends every round-trip value from one
// participant to another, and to a listener of the sender itself.
func TestConvertersOverTheBus(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	addr := freeAddr(t)
	a := join(t, addr, "conv-a", bus.WithConverters(testConverters(t)))
	b := join(t, addr, "conv-b", bus.WithConverters(testConverters(t)))
	remote := listen(t, a, "/conv/")
	local := listen(t, b, "/conv/")
	inf, err := b.NewInformer("/conv/")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range roundTrips {
		if _, err := inf.Publish(ctx, tc.in); err != nil {
			t.Fatalf("publish %T: %v", tc.in, err)
		}
	}
	for name, c := range map[string]*collector{"remote": remote, "local": local} {
		got := c.wait(ctx, t, len(roundTrips))
		for i, tc := range roundTrips {
			want := tc.out
			if want == nil {
				want = tc.in
			}
			if e := got[i]; e.Schema != tc.schema || !reflect.DeepEqual(e.Data, want) || e.Err != nil {
				t.Errorf("%s listener, event %d: %s %T %v (err %v); want %s %T %v",
					name, i, e.Schema, e.Data, e.Data, e.Err, tc.schema, want, want)
			}
		}
	}
	// A participant without the converter gets the bytes, and can tell.
	c := join(t, addr, "conv-c")
	raw := listen(t, c, "/conv/")
	if _, err := inf.Publish(ctx, Celsius(-3)); err != nil {
		t.Fatal(err)
	}
	e := raw.wait(ctx, t, 1)[0]
	if b, ok := e.Data.([]byte); !ok || string(b) != "-3C" || e.Schema != "text/celsius" {
		t.Errorf("without the converter: %s %T %v", e.Schema, e.Data, e.Data)
	}
	// Raw bytes under a schema of the publisher's choosing.
	if err := inf.PublishEvent(ctx, &bus.Event{Schema: "text/celsius", Data: []byte("4C")}); err != nil {
		t.Fatal(err)
	}
	if e := remote.wait(ctx, t, len(roundTrips)+2)[len(roundTrips)+1]; e.Data != Celsius(4) {
		t.Errorf("raw publish: %s %T %v", e.Schema, e.Data, e.Data)
	}
}
