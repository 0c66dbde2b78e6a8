package codec

// ID identifies a serializer or a compressor on the wire. IDs 0-15 are
// reserved for the built-in codecs and are the same in every slc process.
// IDs 16-255 are assigned to user-registered codecs in registration order;
// they are local to a process and are mapped by name during the hello
// exchange, so two processes may assign different IDs to the same codec.
type ID uint8

// Built-in serializer IDs.
const (
	Raw     ID = 0 // bytes as they are
	Msgpack ID = 1 // github.com/vmihailenco/msgpack/v5 (the default)
	JSON    ID = 2 // encoding/json
)

// Built-in compressor IDs.
const (
	None ID = 0 // no compression
	S2   ID = 1 // github.com/klauspost/compress/s2
	Zstd ID = 2 // github.com/klauspost/compress/zstd
	Gzip ID = 3 // compress/gzip (klauspost/compress/gzip)
)

// FirstCustom is the first ID handed to a user-registered codec.
const FirstCustom ID = 16

// Serializer turns Go values into bytes and back.
//
// Implementations must be safe for concurrent use by multiple goroutines.
type Serializer interface {
	// Name is the wire name, for example "msgpack". It is what two
	// processes compare in the hello exchange.
	Name() string
	// Version is bumped when the encoding changes incompatibly. Two
	// processes agree on a serializer only when name and version match.
	Version() uint8
	// Append encodes v and appends the bytes to dst.
	Append(dst []byte, v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to.
	Unmarshal(data []byte, v any) error
	// Generic decodes data without a registered type: maps, slices and
	// scalars for structured formats, []byte for raw.
	Generic(data []byte) (any, error)
}

// Compressor compresses message bodies.
//
// Implementations must be safe for concurrent use by multiple goroutines.
type Compressor interface {
	// Name is the wire name, for example "zstd".
	Name() string
	// Version is bumped when the format changes incompatibly.
	Version() uint8
	// Compress appends the compressed form of src to dst.
	Compress(dst, src []byte) ([]byte, error)
	// Decompress appends the decompressed form of src to dst. It must
	// fail with ErrTooLarge, without allocating past it, when the output
	// would exceed max bytes.
	Decompress(dst, src []byte, max int) ([]byte, error)
}
