// Package codec turns message bodies into bytes and back: serializers
// encode Go values, compressors shrink the encoded bytes, and process-wide
// registries give both, and the Go types of message bodies, the names and
// IDs that peers exchange.
//
// # Serializers
//
// A Serializer encodes values by appending to a caller-owned slice and
// decodes into a pointer (Unmarshal) or into generic maps and slices
// (Generic). Three are built in, each under a fixed ID:
//
//	Raw     "raw"      []byte and string, as they are
//	Msgpack "msgpack"  github.com/vmihailenco/msgpack/v5, the default
//	JSON    "json"     encoding/json
//
// The msgpack serializer is the fast path: encoding a small struct into a
// reused slice does not allocate, and decoding allocates only what the
// decoded value holds. NewMsgpack makes variants, for instance one that
// encodes structs as arrays; every variant decodes both struct forms.
//
// Structs are coded without the msgpack library's reflection: the first
// time the serializer meets a struct type it compiles a plan (field
// offsets, names already encoded, a coder per field kind) and from then on
// reads and writes the struct's memory directly, four to six times faster
// than the library for a small struct. The bytes are exactly the
// library's, and so are the decoded values: a plan follows the library's
// rules (the "msgpack" tag's name, "-" and omitempty, unexported fields
// skipped, compact integers, nil for a nil slice or pointer); booleans,
// numbers, strings, []byte, structs, and pointers to and slices of those
// are coded by the plan; fields it does not cover (maps, arrays,
// interfaces, time.Time, types with their own marshalers) are coded by the
// library in place; and a type is left to the library entirely when it uses what a
// plan does not follow (embedded structs, the _msgpack field, tag options
// other than omitempty). A plan is checked when it is made: a probe of the
// type must encode the same both ways, which also catches an extension or
// encoder registered with the library for one of its field types; register
// those before a type is first encoded or decoded. On decoding, forms the
// library accepts and a plan does not take (a nil for a string, an integer
// for a float, a bin map key) are decoded again by the library. A string
// field of up to 32 bytes whose value repeats from one message to the next
// (a sensor's name, a unit) is decoded without an allocation: the decoded
// values share one string.
//
//	s, _ := codec.SerializerByID(codec.Msgpack)
//	buf, err = s.Append(buf[:0], &order) // reuse buf for the next message
//
// Unmarshal and Generic treat their input as hostile and do not panic on
// it. The msgpack serializer checks its input before decoding and refuses
// arrays and maps nested deeper than DefaultMaxDepth, and lengths that
// claim more data than the input holds; encoding/json refuses nesting
// deeper than 10000 levels.
//
// # Compressors
//
// A Compressor compresses an encoded body. Four are built in:
//
//	None "none"  no compression
//	S2   "s2"    github.com/klauspost/compress/s2 block format, fastest
//	Zstd "zstd"  github.com/klauspost/compress/zstd, best ratio
//	Gzip "gzip"  github.com/klauspost/compress/gzip, standard format
//
// Decompress takes the largest output the caller accepts and fails with
// ErrTooLarge, without allocating past that size, when the input would
// expand beyond it. This protects receivers from decompression bombs. (The
// one exception is a zstd frame that does not record its size, which this
// package never writes: see NewZstd.)
//
//	body, err := c.Decompress(body[:0], frame, maxMessage)
//	if errors.Is(err, codec.ErrTooLarge) {
//		// refuse the message
//	}
//
// # Registries
//
// Serializers and compressors are looked up by ID on every message and by
// name during the hello exchange, where each side announces what it has
// (Serializers and Compressors list them). IDs below FirstCustom are the
// built-ins; RegisterSerializer and RegisterCompressor add custom codecs
// with IDs from FirstCustom upward, in registration order:
//
//	id, err := codec.RegisterCompressor(myLZ4{})
//
// Custom IDs are local to a process; peers agree on codecs by name and
// version. Register custom codecs during initialization, before opening
// connections, so that every hello announces them. ParseCompressor turns a
// command-line flag into a compressor ID.
//
// # Types
//
// RegisterType[T](name), which backs slc.Register, ties a Go type to the
// name carried with each message. The sender asks TypeName for the name of
// the value it sends (a *T reports T's name); the receiver passes that name
// to Decode, which returns a T, or generic data if the name is unknown:
//
//	codec.RegisterType[Order]("shop.Order")
//	...
//	name, _ := codec.TypeName(&order)       // "shop.Order"
//	v, err := codec.Decode(name, s, data)   // v.(Order)
//
// Type names are at most MaxTypeName bytes and need not be Go names; use
// the same name for the same type on every peer.
//
// # Concurrency
//
// Every function and every built-in Serializer and Compressor in this
// package may be called from any number of goroutines at once.
// Registration may run concurrently with lookups: lookups never block and
// see either the registry before a registration or after it. Serializers
// and compressors passed to RegisterSerializer and RegisterCompressor must
// themselves be safe for concurrent use, as the interfaces require.
package codec
