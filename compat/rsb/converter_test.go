package rsb

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

// Golden data of RSB's built-in converters (little-endian numbers, as
// Python's struct "<i", "<q", "<I", "<Q", "<f", "<d").
var goldenValues = []struct {
	v      any
	schema string
	data   []byte
}{
	{nil, SchemaVoid, []byte{}},
	{true, SchemaBool, []byte{1}},
	{false, SchemaBool, []byte{0}},
	{int32(-2), SchemaInt32, []byte{0xfe, 0xff, 0xff, 0xff}},
	{int64(258), SchemaInt64, []byte{2, 1, 0, 0, 0, 0, 0, 0}},
	{uint32(1), SchemaUint32, []byte{1, 0, 0, 0}},
	{uint64(math.MaxUint64), SchemaUint64, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	{float32(1), SchemaFloat, []byte{0, 0, 0x80, 0x3f}},
	{-2.0, SchemaDouble, []byte{0, 0, 0, 0, 0, 0, 0, 0xc0}},
	{"hé", SchemaString, []byte{'h', 0xc3, 0xa9}},
	{[]byte{0, 1}, SchemaBytes, []byte{0, 1}},
}

func TestConvertersGolden(t *testing.T) {
	for i, g := range goldenValues {
		schema, data, err := EncodeValue(g.v)
		if err != nil || schema != g.schema || !bytes.Equal(data, g.data) {
			t.Errorf("%d. EncodeValue(%#v) = %q, % x, %v; want %q, % x", i, g.v, schema, data, err, g.schema, g.data)
		}
		v, ok, err := DecodeValue(g.schema, g.data)
		if err != nil || !ok || !reflect.DeepEqual(v, g.v) {
			t.Errorf("%d. DecodeValue(%q, % x) = %#v, %v, %v; want %#v", i, g.schema, g.data, v, ok, err, g.v)
		}
	}
}

func TestConverterErrors(t *testing.T) {
	for i, tt := range []struct {
		schema string
		data   []byte
	}{
		{SchemaInt32, []byte{1}}, {SchemaDouble, make([]byte, 4)}, {SchemaBool, nil},
		{SchemaString, []byte{0xff}}, {SchemaASCII, []byte{0x80}},
	} {
		if _, ok, err := DecodeValue(tt.schema, tt.data); !ok || !errors.Is(err, ErrConvert) {
			t.Errorf("%d. DecodeValue(%q, % x) = %v, %v; want ErrConvert", i, tt.schema, tt.data, ok, err)
		}
	}
	if _, ok, err := DecodeValue(".rst.vision.Image", []byte{1}); ok || err != nil {
		t.Errorf("unknown schema: ok %v, err %v; want false, nil", ok, err)
	}
	if _, _, err := EncodeValue(struct{}{}); !errors.Is(err, ErrConvert) {
		t.Errorf("EncodeValue(struct{}{}) = %v", err)
	}
	if _, _, err := EncodeValue("\xff"); !errors.Is(err, ErrConvert) {
		t.Errorf("EncodeValue(invalid UTF-8) = %v", err)
	}
	if d, err := EncodeAs(SchemaASCII, "abc"); err != nil || string(d) != "abc" {
		t.Errorf("EncodeAs(ascii) = %q, %v", d, err)
	}
	if _, err := EncodeAs(SchemaASCII, "é"); !errors.Is(err, ErrConvert) {
		t.Errorf("EncodeAs(ascii, é) = %v", err)
	}
	if _, err := EncodeAs(SchemaInt32, int64(1)); !errors.Is(err, ErrConvert) {
		t.Errorf("EncodeAs(int32, int64) = %v", err)
	}
}
