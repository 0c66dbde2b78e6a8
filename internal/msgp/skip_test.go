package msgp_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/slc-go/slc/internal/msgp"
)

// Skip steps over exactly one value of every msgpack type, the bytes after
// it untouched, and refuses input that does not hold a whole one.
func TestSkip(t *testing.T) {
	values := []any{
		nil, true, false, 5, -5, 200, -200, 70000, -70000, int64(1) << 40, uint64(1) << 63,
		float32(1.5), 2.5, "", "short", string(bytes.Repeat([]byte("s"), 300)), string(bytes.Repeat([]byte("s"), 70000)),
		[]byte{}, []byte("bin"), bytes.Repeat([]byte("b"), 300), bytes.Repeat([]byte("b"), 70000),
		[]any{1, "two", []any{3.0, map[string]any{"four": nil}}}, make([]int, 20), make([]int, 70000),
		map[string]any{"a": 1, "b": []any{true}}, time.Unix(1, 0), time.Unix(1<<40, 5),
	}
	for _, v := range values {
		enc, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		in := append(bytes.Clone(enc), 0xc1, 0xff) // trailing bytes stay
		if n, why := msgp.Skip(in); n != len(enc) || why != "" {
			t.Errorf("%T: Skip = %d, %q; want %d", v, n, why, len(enc))
		}
		if n, why := msgp.Skip(enc[:len(enc)-1]); why != msgp.ReasonTruncated && why != msgp.ReasonLength || n != 0 {
			t.Errorf("%T truncated: Skip = %d, %q; want a refusal", v, n, why)
		}
	}
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{nil, msgp.ReasonTruncated},
		{[]byte{0xc1}, msgp.ReasonCode},
		{[]byte{0x92, 0xc1}, msgp.ReasonCode},
		{[]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1}, msgp.ReasonLength},
		{[]byte{0xdf, 0, 0, 0, 2, 1, 2, 3}, msgp.ReasonLength},
		{[]byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}, msgp.ReasonTruncated},
		{[]byte{0xc9, 0, 0, 0}, msgp.ReasonTruncated},
	} {
		if n, why := msgp.Skip(c.in); why != c.want || n != 0 {
			t.Errorf("Skip(% x) = %d, %q; want %q", c.in, n, why, c.want)
		}
	}
}

// FuzzSkip: Skip never panics, stays within its input, and the value it
// steps over is whole by itself.
func FuzzSkip(f *testing.F) {
	for _, v := range []any{nil, 1, "s", []any{1, []byte("b")}, map[string]any{"k": 1.5}} {
		b, _ := msgpack.Marshal(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, why := msgp.Skip(b)
		if why != "" {
			if n != 0 {
				t.Fatalf("refused (%s) with n = %d", why, n)
			}
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("Skip = %d for %d bytes", n, len(b))
		}
		if m, why := msgp.Skip(b[:n]); m != n || why != "" {
			t.Fatalf("Skip of its own value = %d, %q; want %d", m, why, n)
		}
	})
}

func TestSkipAllocs(t *testing.T) {
	b, _ := msgpack.Marshal(map[string]any{"a": []any{1, "x"}})
	if n := testing.AllocsPerRun(100, func() { msgp.Skip(b) }); n != 0 {
		t.Errorf("%.1f allocations per Skip, want 0", n)
	}
}
