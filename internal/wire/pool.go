package wire

import (
	"math/bits"
	"sync"
)

// Large frame buffers. A frame that does not fit in a Reader's buffer is
// read into a buffer of its own; these come from size-classed pools, so
// that a stream of large messages does not allocate (and zero, and make
// the kernel fault in) a fresh buffer for every frame. A size class is
// the request rounded up to an eighth of its power of two, so a buffer is
// at most 12.5% larger than asked for.
const (
	largeMinBits = 16 // pooled: more than 64 KiB ...
	largeMaxBits = 26 // ... and at most 64 MiB
	largeSteps   = 8
)

var largePools [(largeMaxBits - largeMinBits) * largeSteps]sync.Pool

// largeClass returns the size class of an n-byte buffer and its pool
// index, or ok false when buffers of n bytes are not pooled.
func largeClass(n int) (size, idx int, ok bool) {
	if n <= 1<<largeMinBits || n > 1<<largeMaxBits {
		return n, 0, false
	}
	k := bits.Len(uint(n - 1)) // 2^(k-1) < n <= 2^k
	step := 1 << (k - 4)
	size = (n + step - 1) &^ (step - 1)
	idx = (k-largeMinBits-1)*largeSteps + (size-1<<(k-1))/step - 1
	return size, idx, true
}

// GetLarge returns a buffer of length n, from the pool when buffers of
// its size class are pooled. Its contents are undefined.
func GetLarge(n int) []byte {
	size, idx, ok := largeClass(n)
	if !ok {
		return make([]byte, n)
	}
	if p, _ := largePools[idx].Get().(*[]byte); p != nil {
		return (*p)[:n]
	}
	return make([]byte, n, size)
}

// PutLarge gives a buffer from GetLarge back for reuse. The caller must
// not use it, or any slice of it, afterwards. Buffers that GetLarge did
// not pool are left to the garbage collector.
func PutLarge(b []byte) {
	size, idx, ok := largeClass(cap(b))
	if !ok || size != cap(b) {
		return
	}
	b = b[:size]
	largePools[idx].Put(&b)
}
