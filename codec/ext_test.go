package codec_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/slc-go/slc/codec"
	"github.com/vmihailenco/msgpack/v5"
)

// rgb is a msgpack extension type: three bytes.
type rgb struct{ R, G, B uint8 }

func (c *rgb) MarshalMsgpack() ([]byte, error) { return []byte{c.R, c.G, c.B}, nil }

func (c *rgb) UnmarshalMsgpack(b []byte) error {
	if len(b) != 3 {
		return errors.New("rgb: want 3 bytes")
	}
	c.R, c.G, c.B = b[0], b[1], b[2]
	return nil
}

func init() {
	msgpack.RegisterExt(42, (*rgb)(nil))
}

func TestMsgpackRegisteredExtension(t *testing.T) {
	mp := builtinSerializer(t, codec.Msgpack)
	b, err := mp.Append(nil, map[string]any{"color": &rgb{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := mp.Generic(b)
	if err != nil {
		t.Fatalf("Generic(%x) error: %v", b, err)
	}
	want := map[string]any{"color": &rgb{1, 2, 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Generic(%x) = %#v; want %#v", b, got, want)
	}
	// The right type but the wrong length.
	if got, err := mp.Generic([]byte{0xd4, 42, 0x00}); err == nil {
		t.Errorf("Generic(short rgb) = %#v; want error", got)
	}
}

func TestMsgpackAnyFieldsInStructs(t *testing.T) {
	type holder struct {
		V any `msgpack:"v"`
	}
	mp := builtinSerializer(t, codec.Msgpack)
	tests := []struct {
		in   any
		want any
	}{
		{5, int64(5)},
		{200, uint64(200)}, // the msgpack library keeps the unsigned encoding
		{[]byte("b"), "b"},
		{map[int]int{1: 2}, map[any]any{int64(1): int64(2)}},
		{map[string]int{"a": 1}, map[string]any{"a": int64(1)}},
	}
	for i, tt := range tests {
		b, err := mp.Append(nil, holder{tt.in})
		if err != nil {
			t.Fatal(err)
		}
		var h holder
		if err := mp.Unmarshal(b, &h); err != nil {
			t.Fatalf("%d. Unmarshal(%x) error: %v", i, b, err)
		}
		if !reflect.DeepEqual(h.V, tt.want) {
			t.Errorf("%d. Unmarshal(Append(%#v)).V = %#v; want %#v", i, tt.in, h.V, tt.want)
		}
	}
}
