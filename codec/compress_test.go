package codec_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/slc-go/slc/codec"
)

func builtinCompressor(t testing.TB, id codec.ID) codec.Compressor {
	t.Helper()
	c, ok := codec.CompressorByID(id)
	if !ok {
		t.Fatalf("CompressorByID(%d) not found", id)
	}
	return c
}

func builtinCompressors(t testing.TB) []codec.Compressor {
	return []codec.Compressor{
		builtinCompressor(t, codec.None),
		builtinCompressor(t, codec.S2),
		builtinCompressor(t, codec.Zstd),
		builtinCompressor(t, codec.Gzip),
	}
}

// semiCompressible returns n bytes of words drawn from a small vocabulary
// with random numbers mixed in: it compresses, but not to nothing.
func semiCompressible(n int) []byte {
	words := []string{"order", "price", "quantity", "customer", "id", "true", "false", "{", "}", ":", ","}
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, n+16)
	for len(b) < n {
		if r.IntN(4) == 0 {
			b = append(b, byte('0'+r.IntN(10)), byte('0'+r.IntN(10)), byte(r.IntN(256)))
		} else {
			b = append(b, words[r.IntN(len(words))]...)
		}
	}
	return b[:n]
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestCompressRoundTrip(t *testing.T) {
	inputs := [][]byte{
		nil,
		[]byte("a"),
		[]byte("hello, hello, hello, hello"),
		semiCompressible(64 << 10),
		randomBytes(10 << 10),
		make([]byte, 1<<20),
		semiCompressible(3 << 20), // more than one zstd block and s2 chunk
	}
	for _, c := range builtinCompressors(t) {
		for i, src := range inputs {
			comp, err := c.Compress([]byte("pre"), src)
			if err != nil {
				t.Fatalf("%s: %d. Compress(%d bytes) error: %v", c.Name(), i, len(src), err)
			}
			if !bytes.HasPrefix(comp, []byte("pre")) {
				t.Fatalf("%s: %d. Compress(%d bytes) lost the prefix", c.Name(), i, len(src))
			}
			comp = comp[3:]
			got, err := c.Decompress([]byte("out"), comp, len(src))
			if err != nil {
				t.Fatalf("%s: %d. Decompress(Compress(%d bytes), %d) error: %v", c.Name(), i, len(src), len(src), err)
			}
			if !bytes.Equal(got, append([]byte("out"), src...)) {
				t.Errorf("%s: %d. Decompress(Compress(%d bytes)) = %d bytes, not the input", c.Name(), i, len(src), len(got)-3)
			}
			if len(src) == 0 {
				continue
			}
			got, err = c.Decompress([]byte("out"), comp, len(src)-1)
			if !errors.Is(err, codec.ErrTooLarge) {
				t.Errorf("%s: %d. Decompress(Compress(%d bytes), %d) error = %v; want ErrTooLarge", c.Name(), i, len(src), len(src)-1, err)
			}
			if string(got) != "out" {
				t.Errorf("%s: %d. Decompress with a low limit returned %q...; want dst unchanged", c.Name(), i, got[:min(len(got), 8)])
			}
		}
	}
}

func TestZstdMultipleFrames(t *testing.T) {
	z := builtinCompressor(t, codec.Zstd)
	a, b := semiCompressible(100<<10), randomBytes(200<<10)
	comp, _ := z.Compress(nil, a)
	comp, _ = z.Compress(comp, b)
	want := append(append([]byte(nil), a...), b...)
	got, err := z.Decompress(nil, comp, len(want))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Decompress(two frames) = %d bytes, %v; want %d bytes, nil", len(got), err, len(want))
	}
	if _, err := z.Decompress(nil, comp, len(want)-1); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("Decompress(two frames, %d) error = %v; want ErrTooLarge", len(want)-1, err)
	}
}

// zstdRLEFrame returns a zstd frame that does not record its content size
// and holds blocks run-length blocks of 128 KiB zeros: 4 bytes of input per
// 128 KiB of output.
func zstdRLEFrame(blocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50} // magic, no FCS, 1 MiB window
	for i := range blocks {
		h := uint32(128<<10)<<3 | 1<<1 // size, RLE
		if i == blocks-1 {
			h |= 1 // last block
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0x00)
	}
	return b
}

// gzipZeros returns gzip data that expands to n zero bytes.
func gzipZeros(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	chunk := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := w.Write(chunk[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestZstdUnrecordedSize(t *testing.T) {
	z := builtinCompressor(t, codec.Zstd)
	frame := zstdRLEFrame(2)
	got, err := z.Decompress(nil, frame, 256<<10)
	if err != nil || len(got) != 256<<10 {
		t.Fatalf("Decompress(256 KiB RLE frame, 256 KiB) = %d bytes, %v; want %d bytes, nil", len(got), err, 256<<10)
	}
	if _, err := z.Decompress(nil, frame, 256<<10-1); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("Decompress(256 KiB RLE frame, 256 KiB-1) error = %v; want ErrTooLarge", err)
	}
}

// allocated returns the bytes allocated by the process while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecompressionBombs(t *testing.T) {
	const limit = 1 << 20
	s2Bomb, _ := builtinCompressor(t, codec.S2).Compress(nil, make([]byte, 64<<20))
	zstdBomb, _ := builtinCompressor(t, codec.Zstd).Compress(nil, make([]byte, 64<<20))
	// Allocation allowed, as a multiple of the limit. Formats that record
	// the decoded size are refused before allocating. gzip reads into a
	// buffer that stops one byte past the limit. A zstd frame without a
	// recorded size is decoded into buffers that stop at the limit, but
	// the zstd library copies the buffer once when a block overflows it.
	tests := []struct {
		id     codec.ID
		name   string
		in     []byte
		factor float64
	}{
		{codec.None, "2 MiB", make([]byte, 2<<20), 0},
		{codec.S2, "64 MiB of zeros", s2Bomb, 0},
		{codec.S2, "header claiming 4 GiB", []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00}, 0},
		{codec.Zstd, "64 MiB of zeros", zstdBomb, 0},
		{codec.Zstd, "1 GiB without recorded size", zstdRLEFrame(8192), 3.5},
		{codec.Gzip, "256 MiB of zeros", gzipZeros(t, 256<<20), 1.05},
	}
	for i, tt := range tests {
		c := builtinCompressor(t, tt.id)
		// Warm the pools, so that only the decompression is measured.
		if _, err := c.Decompress(nil, tt.in, limit); !errors.Is(err, codec.ErrTooLarge) {
			t.Fatalf("%d. %s: Decompress(%s, %d) error = %v; want ErrTooLarge", i, c.Name(), tt.name, limit, err)
		}
		var err error
		n := allocated(func() { _, err = c.Decompress(nil, tt.in, limit) })
		if !errors.Is(err, codec.ErrTooLarge) {
			t.Fatalf("%d. %s: Decompress(%s, %d) error = %v; want ErrTooLarge", i, c.Name(), tt.name, limit, err)
		}
		if max := uint64(tt.factor * limit); n > max {
			t.Errorf("%d. %s: Decompress(%s, %d) allocated %d bytes; want at most %d", i, c.Name(), tt.name, limit, n, max)
		}
		t.Logf("%s: %s (%d bytes) allocated %d bytes", c.Name(), tt.name, len(tt.in), n)
	}
}

func TestDecompressCorrupt(t *testing.T) {
	valid := semiCompressible(10 << 10)
	for _, c := range builtinCompressors(t)[1:] {
		comp, _ := c.Compress(nil, valid)
		flipped := append([]byte(nil), comp...)
		flipped[len(flipped)/2] ^= 0xff
		tests := []struct {
			name string
			in   []byte
		}{
			{"empty", nil},
			{"plain text", []byte("not compressed at all")},
			{"truncated", comp[:len(comp)/2]},
			{"trailing bytes", append(append([]byte(nil), comp...), "trailing"...)},
			{"flipped byte", flipped},
		}
		for i, tt := range tests {
			got, err := c.Decompress([]byte("dst"), tt.in, 1<<20)
			if err == nil {
				// S2 blocks carry no checksum, so a changed byte can
				// decode to different data of the right length.
				if c.Name() == "s2" && tt.name == "flipped byte" {
					continue
				}
				t.Errorf("%s: %d. Decompress(%s) = %d bytes, nil; want error", c.Name(), i, tt.name, len(got)-3)
				continue
			}
			if errors.Is(err, codec.ErrTooLarge) {
				t.Errorf("%s: %d. Decompress(%s) error = %v; want a format error", c.Name(), i, tt.name, err)
			}
			if string(got) != "dst" {
				t.Errorf("%s: %d. Decompress(%s) changed dst to %q", c.Name(), i, tt.name, got[:min(len(got), 8)])
			}
		}
	}
}

func TestNegativeLimit(t *testing.T) {
	for _, c := range builtinCompressors(t) {
		comp, _ := c.Compress(nil, []byte("x"))
		if _, err := c.Decompress(nil, comp, -1); !errors.Is(err, codec.ErrTooLarge) {
			t.Errorf("%s: Decompress(1 byte, -1) error = %v; want ErrTooLarge", c.Name(), err)
		}
		empty, _ := c.Compress(nil, nil)
		if got, err := c.Decompress(nil, empty, -1); err != nil || len(got) != 0 {
			t.Errorf("%s: Decompress(empty, -1) = %q, %v; want empty, nil", c.Name(), got, err)
		}
	}
}

func TestCompressorsConcurrent(t *testing.T) {
	cs := builtinCompressors(t)
	src := semiCompressible(32 << 10)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			var err error
			defer func() { errs <- err }()
			var comp, out []byte
			for i := range 50 {
				c := cs[(g+i)%len(cs)]
				if comp, err = c.Compress(comp[:0], src); err != nil {
					return
				}
				if out, err = c.Decompress(out[:0], comp, len(src)); err != nil {
					return
				}
				if !bytes.Equal(out, src) {
					err = errors.New(c.Name() + ": round trip mismatch")
					return
				}
			}
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
