package serpy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// Magic starts every serpy2 frame.
var Magic = [5]byte{0xDE, 0xCA, 0xFE, 0xCA, 0xFE}

// Type is the type byte of a serpy2 frame.
type Type byte

// The serpy2 types.
const (
	TypeInt   Type = 0x01 // 8 bytes, little-endian, signed
	TypeFloat Type = 0x11 // ASCII of Python's float.hex()
	TypeStr   Type = 0x21 // UTF-8
	TypeBytes Type = 0x81 // the bytes
)

func (t Type) String() string {
	switch t {
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float"
	case TypeStr:
		return "str"
	case TypeBytes:
		return "bytes"
	}
	return fmt.Sprintf("type(0x%02x)", byte(t))
}

// HeaderLen is the length of a serpy2 frame header: magic, type,
// checksum, length.
const HeaderLen = 14

// DefaultMaxFrame bounds the data of one received frame (and one v1
// block) unless WithMaxFrame says otherwise. The protocols allow up to
// 4 GiB; a receiver must not allocate that on a peer's word.
const DefaultMaxFrame = 64 << 20

// Errors of the serpy2 decoder. Each closes the connection that produced
// it.
var (
	ErrBadMagic      = errors.New("serpy: frame does not start with DE CA FE CA FE")
	ErrChecksum      = errors.New("serpy: frame checksum mismatch")
	ErrUnknownType   = errors.New("serpy: unknown frame type")
	ErrFrameTooLarge = errors.New("serpy: frame too large")
	ErrBadValue      = errors.New("serpy: malformed frame data")
	ErrUnsupported   = errors.New("serpy: value of an unsupported type")
)

// Checksum is the serpy2 checksum of data: the sum of its bytes modulo
// 2^32.
func Checksum(data []byte) uint32 {
	var sum uint32
	for _, b := range data {
		sum += uint32(b)
	}
	return sum
}

// Encode converts a Go value to serpy2 data, as Python's sendData does
// for the corresponding Python type. Integers of every Go integer type are
// int (8 bytes, little-endian; values outside int64 are refused, as
// Python's to_bytes(8, signed=True) refuses them), float32 and float64 are
// float, string is str (it must be valid UTF-8), and []byte is bytes.
func Encode(v any) (Type, []byte, error) {
	var i int64
	switch x := v.(type) {
	case int:
		i = int64(x)
	case int8:
		i = int64(x)
	case int16:
		i = int64(x)
	case int32:
		i = int64(x)
	case int64:
		i = x
	case uint:
		if uint64(x) > math.MaxInt64 {
			return 0, nil, fmt.Errorf("%w: %d does not fit in 8 signed bytes", ErrUnsupported, x)
		}
		i = int64(x)
	case uint8:
		i = int64(x)
	case uint16:
		i = int64(x)
	case uint32:
		i = int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return 0, nil, fmt.Errorf("%w: %d does not fit in 8 signed bytes", ErrUnsupported, x)
		}
		i = int64(x)
	case float32:
		return TypeFloat, []byte(FloatHex(float64(x))), nil
	case float64:
		return TypeFloat, []byte(FloatHex(x)), nil
	case string:
		if !utf8.ValidString(x) {
			return 0, nil, fmt.Errorf("%w: string is not valid UTF-8", ErrUnsupported)
		}
		return TypeStr, []byte(x), nil
	case []byte:
		return TypeBytes, x, nil
	default:
		return 0, nil, fmt.Errorf("%w: %T (serpy2 carries int, float, str and bytes)", ErrUnsupported, v)
	}
	return TypeInt, binary.LittleEndian.AppendUint64(nil, uint64(i)), nil
}

// AppendFrame appends the serpy2 frame of (t, data) to dst.
func AppendFrame(dst []byte, t Type, data []byte) []byte {
	dst = append(dst, Magic[:]...)
	dst = append(dst, byte(t))
	dst = binary.LittleEndian.AppendUint32(dst, Checksum(data))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	return append(dst, data...)
}

// MarshalFrame returns the serpy2 frame of v (see Encode).
func MarshalFrame(v any) ([]byte, error) {
	t, data, err := Encode(v)
	if err != nil {
		return nil, err
	}
	if uint64(len(data)) > math.MaxUint32 {
		return nil, ErrFrameTooLarge
	}
	return AppendFrame(make([]byte, 0, HeaderLen+len(data)), t, data), nil
}

// Decode converts serpy2 data of type t to a Go value, as Python's
// receiver does: int yields int64 (Python accepts any length and so does
// this decoder, as long as the value fits in an int64), float yields
// float64 (parsed as float.fromhex), str yields string (valid UTF-8 only),
// and bytes yields []byte (data itself, not copied).
func Decode(t Type, data []byte) (any, error) {
	switch t {
	case TypeInt:
		return decodeInt(data)
	case TypeFloat:
		for _, c := range data {
			if c >= 0x80 {
				return nil, fmt.Errorf("%w: float is not ASCII", ErrBadValue)
			}
		}
		f, err := ParseFloatHex(string(data))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadValue, err)
		}
		return f, nil
	case TypeStr:
		if !utf8.Valid(data) {
			return nil, fmt.Errorf("%w: str is not valid UTF-8", ErrBadValue)
		}
		return string(data), nil
	case TypeBytes:
		return data, nil
	}
	return nil, fmt.Errorf("%w 0x%02x", ErrUnknownType, byte(t))
}

// decodeInt reads a little-endian two's complement integer of any length,
// as int.from_bytes(data, 'little', signed=True) does, and fails if it does
// not fit in an int64. No bytes is 0.
func decodeInt(data []byte) (int64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	negative := data[len(data)-1]&0x80 != 0
	ext := byte(0)
	if negative {
		ext = 0xFF
	}
	// Bytes above the 8th must be sign extension, and the 8th byte's top
	// bit must agree with them.
	for _, b := range data[min(len(data), 8):] {
		if b != ext {
			return 0, fmt.Errorf("%w: int of %d bytes does not fit in an int64", ErrBadValue, len(data))
		}
	}
	var buf [8]byte
	for i := range buf {
		if i < len(data) {
			buf[i] = data[i]
		} else {
			buf[i] = ext
		}
	}
	v := int64(binary.LittleEndian.Uint64(buf[:]))
	if len(data) > 8 && (v < 0) != negative {
		return 0, fmt.Errorf("%w: int of %d bytes does not fit in an int64", ErrBadValue, len(data))
	}
	return v, nil
}

// FrameReader reads serpy2 frames from a stream.
type FrameReader struct {
	r   *bufio.Reader
	max int
	hdr [HeaderLen]byte
}

// NewFrameReader returns a reader of frames from r whose data is at most
// max bytes (DefaultMaxFrame if max <= 0).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &FrameReader{r: br, max: max}
}

// ReadFrame reads one frame and returns its type and data (a new slice).
// io.EOF means the stream ended cleanly between frames;
// io.ErrUnexpectedEOF that it ended inside one. A frame whose header does
// not start with the magic, whose length exceeds the maximum, or whose
// checksum does not match its data is an error (serpy2 itself drops the
// buffer or the block with a warning; see the package documentation).
func (fr *FrameReader) ReadFrame() (Type, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, nil, err
	}
	return fr.readBody()
}

func (fr *FrameReader) readBody() (Type, []byte, error) {
	h := fr.hdr[:]
	if [5]byte(h[:5]) != Magic {
		return 0, nil, fmt.Errorf("%w (got % x)", ErrBadMagic, h[:5])
	}
	t := Type(h[5])
	sum := binary.LittleEndian.Uint32(h[6:10])
	n := binary.LittleEndian.Uint32(h[10:14])
	if uint64(n) > uint64(fr.max) {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, fr.max)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(fr.r, data); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	if got := Checksum(data); got != sum {
		return 0, nil, fmt.Errorf("%w: header says 0x%08x, data sums to 0x%08x", ErrChecksum, sum, got)
	}
	return t, data, nil
}

// ReadValue reads one frame and decodes it (see Decode).
func (fr *FrameReader) ReadValue() (any, error) {
	t, data, err := fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	return Decode(t, data)
}
