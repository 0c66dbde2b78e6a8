package codec

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

type zstdCompressor struct{}

var defaultZstd Compressor = zstdCompressor{}

// NewZstd returns the Zstandard compressor
// (github.com/klauspost/compress/zstd, default level), with the wire name
// "zstd". Each message is one frame that records its decoded size, which
// Decompress checks against the limit before allocating. Frames from other
// encoders may not record it: those are decoded into a buffer that grows
// up to the limit and no further, but the zstd library copies the buffer
// once when a block overflows it, so such input can briefly cost about
// twice the limit before Decompress reports ErrTooLarge.
//
// Encoders and decoders are expensive to create and are pooled.
func NewZstd() Compressor { return defaultZstd }

func (zstdCompressor) Name() string   { return "zstd" }
func (zstdCompressor) Version() uint8 { return 1 }

var zstdEncoders = sync.Pool{
	New: func() any {
		// Options are constant and valid, so NewWriter cannot fail. With
		// concurrency 1 and no writer it starts no goroutines.
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			// Single-segment frames always record their size, even
			// below 256 bytes, so Decompress can allocate exactly.
			zstd.WithSingleSegment(true),
			zstd.WithZeroFrames(true),
		)
		if err != nil {
			panic(err)
		}
		return e
	},
}

var zstdDecoders = sync.Pool{
	New: func() any {
		// WithDecodeAllCapLimit makes DecodeAll stop at the capacity of
		// its destination, which is how the caller's limit is enforced.
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecodeAllCapLimit(true),
		)
		if err != nil {
			panic(err)
		}
		return d
	},
}

func (zstdCompressor) Compress(dst, src []byte) ([]byte, error) {
	e := zstdEncoders.Get().(*zstd.Encoder)
	dst = e.EncodeAll(src, dst)
	zstdEncoders.Put(e)
	return dst, nil
}

// zstdMinGuess is the smallest buffer tried first for frames that do not
// record their decoded size.
const zstdMinGuess = 4 << 10

func (zstdCompressor) Decompress(dst, src []byte, limit int) ([]byte, error) {
	limit = max(limit, 0)
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return dst, fmt.Errorf("codec: zstd: %w", err)
	}
	var want int
	if h.HasFCS {
		if h.FrameContentSize > uint64(limit) {
			return dst, ErrTooLarge
		}
		want = int(h.FrameContentSize)
	} else {
		want = min(limit, max(8*len(src), zstdMinGuess))
	}
	// A zero capacity would lift the decoder's limit; one spare byte is
	// caught by the length check below.
	want = max(want, 1)

	d := zstdDecoders.Get().(*zstd.Decoder)
	defer zstdDecoders.Put(d)
	start := len(dst)
	for {
		// The decoder stops at the capacity of the slice it is given.
		dst = grow(dst, want)
		out, err := d.DecodeAll(src, dst[:start:start+want])
		if err == nil {
			if len(out)-start > limit {
				return dst[:start], ErrTooLarge
			}
			return out, nil
		}
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return dst[:start], fmt.Errorf("codec: zstd: %w", err)
		}
		if want >= limit {
			return dst[:start], ErrTooLarge
		}
		// The output did not fit: the size was not recorded, or more
		// frames follow the first. Try once more with all the room the
		// caller allows.
		want = limit
	}
}
