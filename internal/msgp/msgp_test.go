package msgp_test

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/slc-go/slc/internal/msgp"
)

// lib encodes v with the msgpack library as slc's serializer configures it.
func lib(t *testing.T, f func(*msgpack.Encoder) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := f(enc); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Every form, at and around each boundary, is the library's.
func TestSameAsLibrary(t *testing.T) {
	for _, n := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64} {
		if got, want := msgp.AppendInt(nil, n), lib(t, func(e *msgpack.Encoder) error { return e.EncodeInt(n) }); !bytes.Equal(got, want) {
			t.Errorf("AppendInt(%d) = % x, library % x", n, got, want)
		}
		if n >= 0 {
			if got, want := msgp.AppendUint(nil, uint64(n)), lib(t, func(e *msgpack.Encoder) error { return e.EncodeUint(uint64(n)) }); !bytes.Equal(got, want) {
				t.Errorf("AppendUint(%d) = % x, library % x", n, got, want)
			}
		}
	}
	if got, want := msgp.AppendUint(nil, math.MaxUint64), lib(t, func(e *msgpack.Encoder) error { return e.EncodeUint(math.MaxUint64) }); !bytes.Equal(got, want) {
		t.Errorf("AppendUint(max) = % x, library % x", got, want)
	}
	for _, n := range []int{0, 15, 16, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("x", n)
		if got, want := msgp.AppendStr(nil, s), lib(t, func(e *msgpack.Encoder) error { return e.EncodeString(s) }); !bytes.Equal(got, want) {
			t.Errorf("AppendStr(%d bytes): header % x, library % x", n, got[:min(5, len(got))], want[:min(5, len(want))])
		}
		p := []byte(s)
		if got, want := msgp.AppendBin(nil, p), lib(t, func(e *msgpack.Encoder) error { return e.EncodeBytes(p) }); !bytes.Equal(got, want) {
			t.Errorf("AppendBin(%d bytes): header % x, library % x", n, got[:min(5, len(got))], want[:min(5, len(want))])
		}
		if got, want := msgp.AppendMapHeader(nil, n), lib(t, func(e *msgpack.Encoder) error { return e.EncodeMapLen(n) }); !bytes.Equal(got, want) {
			t.Errorf("AppendMapHeader(%d) = % x, library % x", n, got, want)
		}
		if got, want := msgp.AppendArrayHeader(nil, n), lib(t, func(e *msgpack.Encoder) error { return e.EncodeArrayLen(n) }); !bytes.Equal(got, want) {
			t.Errorf("AppendArrayHeader(%d) = % x, library % x", n, got, want)
		}
	}
}

func Example() {
	b := msgp.AppendMapHeader(nil, 2)
	b = msgp.AppendStr(b, "code")
	b = msgp.AppendUint(b, 300)
	b = msgp.AppendStr(b, "ok")
	b = msgp.AppendInt(b, -1)
	fmt.Printf("% x\n", b)
	// Output: 82 a4 63 6f 64 65 cd 01 2c a2 6f 6b ff
}
