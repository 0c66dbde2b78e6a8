package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/klauspost/compress/gzip"
)

type gzipCompressor struct{}

var defaultGzip Compressor = gzipCompressor{}

// NewGzip returns the gzip compressor (github.com/klauspost/compress/gzip,
// default level), with the wire name "gzip". It is the slowest of the
// built-in compressors; use it to talk to peers that need a standard
// format. gzip does not record the decoded size up front, so Decompress
// reads at most max+1 bytes of output before giving up.
func NewGzip() Compressor { return defaultGzip }

func (gzipCompressor) Name() string   { return "gzip" }
func (gzipCompressor) Version() uint8 { return 1 }

type gzipWriter struct {
	w  appendWriter
	zw *gzip.Writer
}

type gzipReader struct {
	r  bytes.Reader
	zr gzip.Reader
}

var gzipWriters = sync.Pool{
	New: func() any {
		w := new(gzipWriter)
		w.zw = gzip.NewWriter(&w.w)
		return w
	},
}

var gzipReaders = sync.Pool{
	New: func() any { return new(gzipReader) },
}

func (gzipCompressor) Compress(dst, src []byte) ([]byte, error) {
	w := gzipWriters.Get().(*gzipWriter)
	w.w.b = dst
	w.zw.Reset(&w.w)
	_, err := w.zw.Write(src)
	if err == nil {
		err = w.zw.Close()
	}
	out := w.w.b
	w.w.b = nil
	gzipWriters.Put(w)
	if err != nil {
		return dst, fmt.Errorf("codec: gzip: %w", err)
	}
	return out, nil
}

func (gzipCompressor) Decompress(dst, src []byte, limit int) ([]byte, error) {
	limit = max(limit, 0)
	r := gzipReaders.Get().(*gzipReader)
	defer gzipReaders.Put(r)
	r.r.Reset(src)
	defer r.r.Reset(nil)
	if err := r.zr.Reset(&r.r); err != nil {
		return dst, fmt.Errorf("codec: gzip: %w", err)
	}
	out, err := readLimited(dst, &r.zr, limit, gzipSizeHint(src))
	if err != nil && err != ErrTooLarge {
		return dst, fmt.Errorf("codec: gzip: %w", err)
	}
	return out, err
}

// gzipSizeHint guesses the decompressed size of src from the trailer of its
// last member, which records the size modulo 4 GiB. The trailer may lie, so
// the guess is capped at what deflate can produce from len(src) bytes.
func gzipSizeHint(src []byte) int {
	const maxRatio = 1032 // deflate's largest expansion
	if len(src) < 18 {
		return 0
	}
	n := binary.LittleEndian.Uint32(src[len(src)-4:])
	return int(min(uint64(n), uint64(len(src))*maxRatio))
}
