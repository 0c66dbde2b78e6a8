package rsb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// The wire schemas of RSB's built-in converters (rsb-python converter.py,
// rsb-cpp converter/): numbers are little-endian, as Python's struct
// formats "<i", "<q", "<I", "<Q", "<f", "<d" write them.
const (
	SchemaVoid   = "void"         // no data; Go nil
	SchemaBool   = "bool"         // 1 byte: 0 or 1
	SchemaInt32  = "int32"        // 4 bytes little-endian
	SchemaInt64  = "int64"        // 8 bytes little-endian
	SchemaUint32 = "uint32"       // 4 bytes little-endian
	SchemaUint64 = "uint64"       // 8 bytes little-endian
	SchemaFloat  = "float"        // IEEE 754 single, little-endian
	SchemaDouble = "double"       // IEEE 754 double, little-endian
	SchemaString = "utf-8-string" // UTF-8 text
	SchemaASCII  = "ascii-string" // ASCII text
	SchemaBytes  = "bytes"        // the bytes
)

// ErrConvert reports a value no RSB converter takes, or data that does not
// fit its schema.
var ErrConvert = errors.New("rsb: conversion failed")

// EncodeValue converts a Go value with RSB's built-in converters: nil is
// void, bool, int32, int64 (and int), uint32, uint64 (and uint), float32
// (float), float64 (double), string (utf-8-string) and []byte (bytes).
func EncodeValue(v any) (schema string, data []byte, err error) {
	switch x := v.(type) {
	case nil:
		return SchemaVoid, []byte{}, nil
	case bool:
		if x {
			return SchemaBool, []byte{1}, nil
		}
		return SchemaBool, []byte{0}, nil
	case int32:
		return SchemaInt32, binary.LittleEndian.AppendUint32(nil, uint32(x)), nil
	case int64:
		return SchemaInt64, binary.LittleEndian.AppendUint64(nil, uint64(x)), nil
	case int:
		return SchemaInt64, binary.LittleEndian.AppendUint64(nil, uint64(x)), nil
	case uint32:
		return SchemaUint32, binary.LittleEndian.AppendUint32(nil, x), nil
	case uint64:
		return SchemaUint64, binary.LittleEndian.AppendUint64(nil, x), nil
	case uint:
		return SchemaUint64, binary.LittleEndian.AppendUint64(nil, uint64(x)), nil
	case float32:
		return SchemaFloat, binary.LittleEndian.AppendUint32(nil, math.Float32bits(x)), nil
	case float64:
		return SchemaDouble, binary.LittleEndian.AppendUint64(nil, math.Float64bits(x)), nil
	case string:
		if !utf8.ValidString(x) {
			return "", nil, fmt.Errorf("%w: string is not valid UTF-8", ErrConvert)
		}
		return SchemaString, []byte(x), nil
	case []byte:
		return SchemaBytes, x, nil
	}
	return "", nil, fmt.Errorf("%w: no RSB converter for %T", ErrConvert, v)
}

// EncodeAs converts v to the given schema: a []byte is taken as already
// encoded for any schema; other values must be of the schema's Go type
// (see EncodeValue; ascii-string takes an ASCII string).
func EncodeAs(schema string, v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	if schema == SchemaASCII {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s needs a string, not %T", ErrConvert, schema, v)
		}
		for i := range len(s) {
			if s[i] >= 0x80 {
				return nil, fmt.Errorf("%w: %q is not ASCII", ErrConvert, s)
			}
		}
		return []byte(s), nil
	}
	got, data, err := EncodeValue(v)
	if err != nil {
		return nil, err
	}
	if got != schema {
		return nil, fmt.Errorf("%w: a %T encodes as %s, not %s", ErrConvert, v, got, schema)
	}
	return data, nil
}

// DecodeValue converts data of a built-in schema to a Go value: nil, bool,
// int32, int64, uint32, uint64, float32, float64, string (for both string
// schemas) or []byte (a copy). ok is false for a schema without a built-in
// converter; data that does not fit its schema is an error.
func DecodeValue(schema string, data []byte) (v any, ok bool, err error) {
	size := func(n int) error {
		if len(data) != n {
			return fmt.Errorf("%w: %s data is %d bytes; want %d", ErrConvert, schema, len(data), n)
		}
		return nil
	}
	switch schema {
	case SchemaVoid:
		return nil, true, nil
	case SchemaBool:
		if err := size(1); err != nil {
			return nil, true, err
		}
		return data[0] != 0, true, nil
	case SchemaInt32:
		if err := size(4); err != nil {
			return nil, true, err
		}
		return int32(binary.LittleEndian.Uint32(data)), true, nil
	case SchemaInt64:
		if err := size(8); err != nil {
			return nil, true, err
		}
		return int64(binary.LittleEndian.Uint64(data)), true, nil
	case SchemaUint32:
		if err := size(4); err != nil {
			return nil, true, err
		}
		return binary.LittleEndian.Uint32(data), true, nil
	case SchemaUint64:
		if err := size(8); err != nil {
			return nil, true, err
		}
		return binary.LittleEndian.Uint64(data), true, nil
	case SchemaFloat:
		if err := size(4); err != nil {
			return nil, true, err
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(data)), true, nil
	case SchemaDouble:
		if err := size(8); err != nil {
			return nil, true, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(data)), true, nil
	case SchemaString:
		if !utf8.Valid(data) {
			return nil, true, fmt.Errorf("%w: utf-8-string data is not valid UTF-8", ErrConvert)
		}
		return string(data), true, nil
	case SchemaASCII:
		for _, c := range data {
			if c >= 0x80 {
				return nil, true, fmt.Errorf("%w: ascii-string data is not ASCII", ErrConvert)
			}
		}
		return string(data), true, nil
	case SchemaBytes:
		return append([]byte{}, data...), true, nil
	}
	return nil, false, nil
}
