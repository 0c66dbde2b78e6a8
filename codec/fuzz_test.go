package codec_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/slc-go/slc/codec"
)

func FuzzMsgpackGeneric(f *testing.F) {
	mp := builtinSerializer(f, codec.Msgpack)
	seeds := []any{
		order{ID: 1, Name: "x", Price: 2.5, Paid: true},
		nested{When: time.Unix(1700000000, 5), Tags: []string{"a"}, Attrs: map[string]string{"k": "v"}, Extra: []any{1, "2"}},
		map[int]any{1: []any{nil, true, 1.5, "s", []byte("b")}},
		time.Unix(-1, 0),
		uint64(1 << 63),
	}
	for _, v := range seeds {
		b, err := mp.Append(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		a, _ := msgpackArray.Append(nil, v)
		f.Add(a)
	}
	f.Add(nestedArrays(600))
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		var o nested
		_ = mp.Unmarshal(data, &o) // must not panic; errors are expected
		v, err := mp.Generic(data)
		if err != nil {
			return
		}
		// Whatever decodes generically must encode again, and the
		// result must decode to the same thing.
		b, err := mp.Append(nil, v)
		if err != nil {
			t.Fatalf("Append(Generic(%x)) error: %v", data, err)
		}
		if _, err := mp.Generic(b); err != nil {
			t.Fatalf("Generic(Append(Generic(%x))) error: %v", data, err)
		}
	})
}

func FuzzJSONGeneric(f *testing.F) {
	js := builtinSerializer(f, codec.JSON)
	for _, v := range []any{order{ID: 1, Name: "x"}, nested{Tags: []string{"a"}}, []any{1, "a", nil}} {
		b, _ := js.Append(nil, v)
		f.Add(b)
	}
	f.Add([]byte(`[[[[[[[[[[1]]]]]]]]]]`))
	f.Add([]byte(`{"a":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var o nested
		_ = js.Unmarshal(data, &o) // must not panic; errors are expected
		v, err := js.Generic(data)
		if err != nil {
			return
		}
		if _, err := js.Append(nil, v); err != nil {
			t.Fatalf("Append(Generic(%q)) error: %v", data, err)
		}
	})
}

func FuzzDecompress(f *testing.F) {
	cs := builtinCompressors(f)
	for i, c := range cs {
		for _, src := range [][]byte{nil, []byte("hello hello hello"), semiCompressible(2000)} {
			b, _ := c.Compress(nil, src)
			f.Add(uint8(i), b, uint16(len(src)))
		}
	}
	f.Add(uint8(codec.Zstd), zstdRLEFrame(3), uint16(1000))
	f.Fuzz(func(t *testing.T, which uint8, data []byte, limit uint16) {
		c := cs[int(which)%len(cs)]
		out, err := c.Decompress([]byte("dst"), data, int(limit))
		if err != nil {
			if string(out) != "dst" {
				t.Fatalf("%s: Decompress(%x, %d) = %q, %v; want dst unchanged on error", c.Name(), data, limit, out, err)
			}
			return
		}
		if !bytes.HasPrefix(out, []byte("dst")) {
			t.Fatalf("%s: Decompress(%x, %d) lost dst", c.Name(), data, limit)
		}
		if n := len(out) - 3; n > int(limit) {
			t.Fatalf("%s: Decompress(%x, %d) = %d bytes; want ErrTooLarge", c.Name(), data, limit, n)
		}
		// What decompresses must compress and come back the same.
		comp, err := c.Compress(nil, out[3:])
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.Decompress(nil, comp, len(out)-3)
		if err != nil || !bytes.Equal(back, out[3:]) {
			t.Fatalf("%s: round trip of %d decompressed bytes = %d bytes, %v", c.Name(), len(out)-3, len(back), err)
		}
	})
}
