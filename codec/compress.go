package codec

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// ErrTooLarge is returned by Decompress when the output would exceed the
// caller's limit.
var ErrTooLarge = errors.New("codec: decompressed size exceeds limit")

type noneCompressor struct{}

var defaultNone Compressor = noneCompressor{}

// NewNone returns the compressor that copies bytes unchanged, with the wire
// name "none".
func NewNone() Compressor { return defaultNone }

func (noneCompressor) Name() string   { return "none" }
func (noneCompressor) Version() uint8 { return 1 }

func (noneCompressor) Compress(dst, src []byte) ([]byte, error) {
	return append(dst, src...), nil
}

func (noneCompressor) Decompress(dst, src []byte, limit int) ([]byte, error) {
	if len(src) > max(limit, 0) {
		return dst, ErrTooLarge
	}
	return append(dst, src...), nil
}

type s2Compressor struct{}

var defaultS2 Compressor = s2Compressor{}

// NewS2 returns the compressor for the S2 block format
// (github.com/klauspost/compress/s2), with the wire name "s2". It is the
// fastest of the built-in compressors. A block starts with its decoded
// length, which Decompress checks against the limit before allocating.
func NewS2() Compressor { return defaultS2 }

func (s2Compressor) Name() string   { return "s2" }
func (s2Compressor) Version() uint8 { return 1 }

func (s2Compressor) Compress(dst, src []byte) ([]byte, error) {
	n := s2.MaxEncodedLen(len(src))
	if n < 0 {
		return dst, fmt.Errorf("codec: s2: %d bytes is too large for a block", len(src))
	}
	dst = grow(dst, n)
	out := s2.Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+len(out)], nil
}

func (s2Compressor) Decompress(dst, src []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return dst, fmt.Errorf("codec: s2: %w", err)
	}
	if n > max(limit, 0) {
		return dst, ErrTooLarge
	}
	dst = grow(dst, n)
	out, err := s2.Decode(dst[len(dst):len(dst)+n], src)
	if err != nil {
		return dst, fmt.Errorf("codec: s2: %w", err)
	}
	return dst[:len(dst)+len(out)], nil
}
