package wire

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// A Lease counts the payloads a Reader handed out of one of its buffers
// and the caller kept (Reader.Hold), so that the buffer can be read into
// again once every one of them has been released.
//
// Payload i is bit i%64 of word i/64 of rel; Release sets it. A word is
// done when all its bits are set: the Reader sets the bits of the last
// word that it never handed out when it leaves the buffer. refs counts the
// words not done: while the Reader still reads into the buffer, it is
// leaseOpen less the words done; when it leaves, it adds the number of
// words it used less leaseOpen. So refs reaches zero exactly once, when
// the Reader is gone and the last payload is released, whichever comes
// last, and that one caller gives the buffer back. Only the Release that
// sets a bit counts (one per word, the Release that completes it, touches
// refs), so a late Release of a payload already released, on a copy of a
// message say, does nothing, even after the buffer was reused: a lease is
// never used again.
type Lease struct {
	buf   []byte
	large bool            // buf is a GetLarge buffer: it goes back with PutLarge
	refs  atomic.Int64    // see above
	rel   []atomic.Uint64 // bit i%64 of word i/64 set: payload i released
}

// leaseOpen is a lease's count while its Reader still reads into the
// buffer: more than it can ever hand out.
const leaseOpen = 1 << 62

// minHeld is the least room a held payload takes in a buffer, its frame
// header and a DATA frame's prefix, which bounds how many payloads one
// buffer can hand out.
const minHeld = HeaderLen + DataPrefixLen

func newLease(buf []byte, large bool) *Lease {
	words := (len(buf)/minHeld + 64) / 64
	if large {
		words = 1 // a large buffer holds one frame
	}
	l := &Lease{buf: buf, large: large, rel: make([]atomic.Uint64, words)}
	l.refs.Store(leaseOpen)
	return l
}

// Release gives payload i back. Only the first Release of a payload counts;
// after the last one, the buffer is reused, and no payload handed out of it
// may be used again.
func (l *Lease) Release(i uint32) {
	if int(i/64) < len(l.rel) {
		l.set(i/64, uint64(1)<<(i%64))
	}
}

// set sets bits in word w, and counts the word done if they complete it.
func (l *Lease) set(w uint32, bits uint64) {
	if old := l.rel[w].Or(bits); old|bits == ^uint64(0) && old != ^uint64(0) {
		if l.refs.Add(-1) == 0 {
			l.recycle()
		}
	}
}

// close is called by the Reader when it leaves the buffer, having handed
// out n > 0 payloads of it.
func (l *Lease) close(n uint32) {
	words := (n + 63) / 64
	if l.refs.Add(int64(words)-leaseOpen) == 0 {
		l.recycle()
		return
	}
	if n%64 != 0 {
		// The last word's bits past n belong to no payload.
		l.set(words-1, ^uint64(0)<<(n%64))
	}
}

func (l *Lease) recycle() {
	if l.large {
		PutLarge(l.buf)
		return
	}
	putRegular(l.buf)
}

// Regular read buffers whose payloads were all released are pooled by size,
// a power of two between minBuf and 1<<regularMaxBits bytes.
const regularMaxBits = 26

var regularPools [regularMaxBits + 1]sync.Pool

// regularClass returns the pool index of an n-byte buffer, or ok false when
// buffers of n bytes are not pooled.
func regularClass(n int) (idx int, ok bool) {
	if n < minBuf || n&(n-1) != 0 || n > 1<<regularMaxBits {
		return 0, false
	}
	return bits.Len(uint(n)) - 1, true
}

// getRegular returns a buffer of n bytes for a Reader, reused when one of
// that size was given back. Its contents are undefined.
func getRegular(n int) []byte {
	if idx, ok := regularClass(n); ok {
		if p, _ := regularPools[idx].Get().(*[]byte); p != nil {
			return *p
		}
	}
	return make([]byte, n)
}

// putRegular gives a buffer nothing refers to any more back for reuse.
func putRegular(b []byte) {
	if idx, ok := regularClass(len(b)); ok && cap(b) == len(b) {
		regularPools[idx].Put(&b)
	}
}
