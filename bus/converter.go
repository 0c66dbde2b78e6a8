package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/slc-go/slc/codec"
)

// ErrNoConverter reports a value whose Go type no converter handles.
var ErrNoConverter = errors.New("bus: no converter for this type")

// A Converter turns values of one Go type into bytes on the wire, under a
// schema name, and back. Implementations must be safe for concurrent use.
type Converter interface {
	// Schema is the wire schema: the name receivers look converters up by.
	Schema() string
	// Type is the Go type Marshal accepts and Unmarshal returns.
	Type() reflect.Type
	// Marshal encodes v, a value of Type. The result must not share
	// memory with v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes b into a value of Type. It must not keep b, and
	// must not panic on malformed input.
	Unmarshal(b []byte) (any, error)
}

// Schemas of the built-in converters.
const (
	SchemaVoid   = "void"         // nil
	SchemaBool   = "bool"         // 1 byte, 0 or 1
	SchemaInt32  = "int32"        // 4 bytes, big-endian two's complement
	SchemaInt64  = "int64"        // 8 bytes, big-endian two's complement; Go int too
	SchemaUint32 = "uint32"       // 4 bytes, big-endian
	SchemaUint64 = "uint64"       // 8 bytes, big-endian; Go uint too
	SchemaFloat  = "float"        // float32, 4 bytes IEEE 754, big-endian
	SchemaDouble = "double"       // float64, 8 bytes IEEE 754, big-endian
	SchemaString = "utf-8-string" // the UTF-8 bytes
	SchemaBytes  = "bytes"        // the bytes
)

// Converters is a registry of converters, looked up by Go type to encode
// and by schema to decode. It is safe for concurrent use.
//
// Values whose type has no converter but is registered with slc.Register
// are encoded with msgpack under their registered name as the schema, and
// decoded back into that type: typed slc messages need no converter.
type Converters struct {
	mu  sync.Mutex // serializes Register
	cur atomic.Pointer[convTable]
}

// convTable is an immutable snapshot of a registry: lookups take no lock.
type convTable struct {
	byType   map[reflect.Type]Converter
	bySchema map[string]Converter
}

// NewConverters returns an empty registry. Most programs want
// DefaultConverters.
func NewConverters() *Converters {
	r := &Converters{}
	r.cur.Store(&convTable{byType: map[reflect.Type]Converter{}, bySchema: map[string]Converter{}})
	return r
}

// DefaultConverters returns a new registry holding the built-in
// converters: nil (void), bool, int32, int64 and int, uint32, uint64 and
// uint, float32 (float), float64 (double), string (utf-8-string) and
// []byte (bytes).
func DefaultConverters() *Converters {
	r := NewConverters()
	for _, c := range builtinConverters() {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
	return r
}

// Register adds c. It fails if c's Go type already has a converter. When
// its schema already has one, c only encodes: the first converter of a
// schema is the one that decodes it (int encodes as int64 and decodes as
// int64).
func (r *Converters) Register(c Converter) error {
	if c == nil {
		return errors.New("bus: register converter: nil")
	}
	if c.Schema() == "" || len(c.Schema()) > 255 {
		return fmt.Errorf("bus: register converter for %v: schema must be 1 to 255 bytes", c.Type())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	t := c.Type()
	if o, ok := old.byType[t]; ok {
		return fmt.Errorf("bus: register converter %q: type %v already converted by %q", c.Schema(), t, o.Schema())
	}
	nt := &convTable{byType: maps.Clone(old.byType), bySchema: maps.Clone(old.bySchema)}
	nt.byType[t] = c
	if _, ok := nt.bySchema[c.Schema()]; !ok {
		nt.bySchema[c.Schema()] = c
	}
	r.cur.Store(nt)
	return nil
}

// ForType returns the converter registered for t.
func (r *Converters) ForType(t reflect.Type) (Converter, bool) {
	c, ok := r.cur.Load().byType[t]
	return c, ok
}

// ForSchema returns the converter that decodes schema.
func (r *Converters) ForSchema(schema string) (Converter, bool) {
	c, ok := r.cur.Load().bySchema[schema]
	return c, ok
}

// Encode converts v with the converter of its Go type, or with msgpack
// under its slc.Register name. It fails with ErrNoConverter otherwise.
func (r *Converters) Encode(v any) (schema string, data []byte, err error) {
	t := reflect.TypeOf(v)
	if c, ok := r.ForType(t); ok {
		data, err = c.Marshal(v)
		return c.Schema(), data, err
	}
	if name, ok := codec.TypeName(v); ok {
		data, err = msgpackSerializer().Append(nil, v)
		return name, data, err
	}
	return "", nil, fmt.Errorf("%w: %v (register a Converter, or the type with slc.Register)", ErrNoConverter, t)
}

// Decode converts data of the given schema back into a Go value. Data
// under a schema no converter knows and no slc.Register name matches is
// returned as it is, as a []byte, with ok false.
func (r *Converters) Decode(schema string, data []byte) (v any, ok bool, err error) {
	if c, found := r.ForSchema(schema); found {
		v, err = c.Unmarshal(data)
		return v, true, err
	}
	if slcType(schema) {
		v, err = codec.Decode(schema, msgpackSerializer(), data)
		return v, true, err
	}
	return data, false, nil
}

// knownTypes caches the slc type names found registered (registrations
// are never undone).
var knownTypes sync.Map

// slcType reports whether name is registered with slc.Register.
func slcType(name string) bool {
	if _, ok := knownTypes.Load(name); ok {
		return true
	}
	if slicesContains(codec.Types(), name) {
		knownTypes.Store(name, struct{}{})
		return true
	}
	return false
}

// canonical reports whether v's type is what the schema's converter
// decodes into and is immutable, so that a local listener may get v
// itself rather than a decoded copy.
func (r *Converters) canonical(schema string, v any) bool {
	switch v.(type) {
	case nil, bool, int32, int64, uint32, uint64, float32, float64, string:
	default:
		return false
	}
	c, ok := r.ForSchema(schema)
	return ok && c.Type() == reflect.TypeOf(v)
}

func slicesContains(names []string, s string) bool {
	// codec.Types is sorted.
	lo, hi := 0, len(names)
	for lo < hi {
		m := (lo + hi) / 2
		if names[m] < s {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(names) && names[lo] == s
}

func msgpackSerializer() codec.Serializer {
	s, _ := codec.SerializerByID(codec.Msgpack)
	return s
}

// funcConverter is a Converter made of two functions.
type funcConverter[T any] struct {
	schema    string
	marshal   func(T) ([]byte, error)
	unmarshal func([]byte) (T, error)
}

func (c funcConverter[T]) Schema() string     { return c.schema }
func (c funcConverter[T]) Type() reflect.Type { return reflect.TypeFor[T]() }

func (c funcConverter[T]) Marshal(v any) ([]byte, error) {
	t, ok := v.(T)
	if !ok {
		return nil, fmt.Errorf("bus: converter %q: got %T, want %v", c.schema, v, c.Type())
	}
	return c.marshal(t)
}

func (c funcConverter[T]) Unmarshal(b []byte) (any, error) {
	v, err := c.unmarshal(b)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// NewConverter returns a converter for T under schema, made of a marshal
// and an unmarshal function. unmarshal must not keep its argument.
func NewConverter[T any](schema string, marshal func(T) ([]byte, error), unmarshal func([]byte) (T, error)) Converter {
	return funcConverter[T]{schema: schema, marshal: marshal, unmarshal: unmarshal}
}

// MsgpackConverter returns a converter that encodes T (usually a struct)
// with msgpack under schema. Unlike the slc.Register fallback it lets the
// schema differ from any slc type name.
func MsgpackConverter[T any](schema string) Converter {
	return NewConverter(schema,
		func(v T) ([]byte, error) { return msgpackSerializer().Append(nil, &v) },
		func(b []byte) (T, error) {
			var v T
			err := msgpackSerializer().Unmarshal(b, &v)
			return v, err
		})
}

func fixedLen(schema string, b []byte, n int) error {
	if len(b) != n {
		return fmt.Errorf("bus: %s: %d bytes, want %d", schema, len(b), n)
	}
	return nil
}

func builtinConverters() []Converter {
	// Numbers are little-endian, as RSB encodes them (rsb-python's
	// converter, Python's struct "<"), so the schemas mean the same bytes
	// on both buses.
	be := binary.LittleEndian
	return []Converter{
		voidConverter{},
		NewConverter(SchemaBool,
			func(v bool) ([]byte, error) {
				if v {
					return []byte{1}, nil
				}
				return []byte{0}, nil
			},
			func(b []byte) (bool, error) {
				if err := fixedLen(SchemaBool, b, 1); err != nil {
					return false, err
				}
				if b[0] > 1 {
					return false, fmt.Errorf("bus: bool: byte %d", b[0])
				}
				return b[0] == 1, nil
			}),
		NewConverter(SchemaInt32,
			func(v int32) ([]byte, error) { return be.AppendUint32(nil, uint32(v)), nil },
			func(b []byte) (int32, error) {
				err := fixedLen(SchemaInt32, b, 4)
				if err != nil {
					return 0, err
				}
				return int32(be.Uint32(b)), nil
			}),
		NewConverter(SchemaInt64,
			func(v int64) ([]byte, error) { return be.AppendUint64(nil, uint64(v)), nil },
			func(b []byte) (int64, error) {
				err := fixedLen(SchemaInt64, b, 8)
				if err != nil {
					return 0, err
				}
				return int64(be.Uint64(b)), nil
			}),
		NewConverter(SchemaInt64,
			func(v int) ([]byte, error) { return be.AppendUint64(nil, uint64(int64(v))), nil },
			func(b []byte) (int, error) {
				err := fixedLen(SchemaInt64, b, 8)
				if err != nil {
					return 0, err
				}
				return int(int64(be.Uint64(b))), nil
			}),
		NewConverter(SchemaUint32,
			func(v uint32) ([]byte, error) { return be.AppendUint32(nil, v), nil },
			func(b []byte) (uint32, error) {
				err := fixedLen(SchemaUint32, b, 4)
				if err != nil {
					return 0, err
				}
				return be.Uint32(b), nil
			}),
		NewConverter(SchemaUint64,
			func(v uint64) ([]byte, error) { return be.AppendUint64(nil, v), nil },
			func(b []byte) (uint64, error) {
				err := fixedLen(SchemaUint64, b, 8)
				if err != nil {
					return 0, err
				}
				return be.Uint64(b), nil
			}),
		NewConverter(SchemaUint64,
			func(v uint) ([]byte, error) { return be.AppendUint64(nil, uint64(v)), nil },
			func(b []byte) (uint, error) {
				err := fixedLen(SchemaUint64, b, 8)
				if err != nil {
					return 0, err
				}
				return uint(be.Uint64(b)), nil
			}),
		NewConverter(SchemaFloat,
			func(v float32) ([]byte, error) { return be.AppendUint32(nil, math.Float32bits(v)), nil },
			func(b []byte) (float32, error) {
				err := fixedLen(SchemaFloat, b, 4)
				if err != nil {
					return 0, err
				}
				return math.Float32frombits(be.Uint32(b)), nil
			}),
		NewConverter(SchemaDouble,
			func(v float64) ([]byte, error) { return be.AppendUint64(nil, math.Float64bits(v)), nil },
			func(b []byte) (float64, error) {
				err := fixedLen(SchemaDouble, b, 8)
				if err != nil {
					return 0, err
				}
				return math.Float64frombits(be.Uint64(b)), nil
			}),
		NewConverter(SchemaString,
			func(v string) ([]byte, error) {
				if !utf8.ValidString(v) {
					return nil, errors.New("bus: utf-8-string: invalid UTF-8")
				}
				return []byte(v), nil
			},
			func(b []byte) (string, error) {
				if !utf8.Valid(b) {
					return "", errors.New("bus: utf-8-string: invalid UTF-8")
				}
				return string(b), nil
			}),
		bytesConverter{},
	}
}

// bytesConverter is the converter of []byte. Receivers may give listeners
// the received bytes without a copy (see decoder).
type bytesConverter struct{}

func (bytesConverter) Schema() string     { return SchemaBytes }
func (bytesConverter) Type() reflect.Type { return reflect.TypeFor[[]byte]() }
func (bytesConverter) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("bus: converter %q: got %T, want []byte", SchemaBytes, v)
	}
	return append([]byte{}, b...), nil
}
func (bytesConverter) Unmarshal(b []byte) (any, error) { return append([]byte{}, b...), nil }

// bytesBuiltin reports whether []byte is converted by the built-in bytes
// converter.
func (r *Converters) bytesBuiltin() bool {
	c, ok := r.cur.Load().byType[reflect.TypeFor[[]byte]()]
	_, builtin := c.(bytesConverter)
	return ok && builtin
}

// decoder returns how received data of schema is decoded, for data the
// caller owns and never changes, so that bytes are given without a copy
// (as are the bytes of an unknown schema).
func (r *Converters) decoder(schema string) func([]byte) (any, error) {
	c, ok := r.ForSchema(schema)
	switch {
	case ok:
		if _, isBytes := c.(bytesConverter); isBytes {
			return shareBytes
		}
		return c.Unmarshal
	case slcType(schema):
		return func(b []byte) (any, error) { return codec.Decode(schema, msgpackSerializer(), b) }
	}
	return shareBytes
}

func shareBytes(b []byte) (any, error) { return b[:len(b):len(b)], nil }

// voidConverter handles nil: an event without data.
type voidConverter struct{}

func (voidConverter) Schema() string              { return SchemaVoid }
func (voidConverter) Type() reflect.Type          { return nil }
func (voidConverter) Marshal(any) ([]byte, error) { return nil, nil }
func (voidConverter) Unmarshal(b []byte) (any, error) {
	if len(b) != 0 {
		return nil, fmt.Errorf("bus: void: %d bytes of data", len(b))
	}
	return nil, nil
}
