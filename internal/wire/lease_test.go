package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"testing/iotest"
	"unsafe"
)

// A lease's count reaches zero once the Reader has left the buffer and
// every payload held from it is released, in either order; a payload
// released twice, or after that, counts once.
func TestLeaseCounts(t *testing.T) {
	for _, n := range []uint32{1, 3, 63, 64, 65, 130} {
		for _, closeFirst := range []bool{false, true} {
			l := newLease(make([]byte, 4096), false)
			if closeFirst {
				l.close(n)
			}
			// Every payload but one, the last in the middle, in a
			// scrambled order, every third twice (a copy of a message).
			last := n / 2
			for k := range n {
				i := (k * 7) % n
				if n%7 == 0 {
					i = k
				}
				if i == last {
					continue
				}
				l.Release(i)
				if i%3 == 0 {
					l.Release(i)
				}
			}
			l.Release(1 << 20)
			if !closeFirst {
				if l.refs.Load() == 0 {
					t.Fatalf("n=%d: done before the Reader left", n)
				}
				l.close(n)
			}
			if l.refs.Load() == 0 {
				t.Fatalf("n=%d closeFirst=%v: done with payload %d held", n, closeFirst, last)
			}
			l.Release(last)
			if got := l.refs.Load(); got != 0 {
				t.Fatalf("n=%d closeFirst=%v: count %d after the last release, want 0", n, closeFirst, got)
			}
			// Late releases of payloads already released change nothing.
			for i := range n {
				l.Release(i)
			}
			if got := l.refs.Load(); got != 0 {
				t.Fatalf("n=%d closeFirst=%v: count %d after late releases, want 0", n, closeFirst, got)
			}
		}
	}
}

// Payloads released concurrently, each several times, while the Reader
// closes the lease: the count ends at exactly zero.
func TestLeaseConcurrentReleases(t *testing.T) {
	const n = 2000
	l := newLease(make([]byte, 64<<10), false)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range uint32(n) {
				l.Release((i + uint32(g)*500) % n)
			}
		})
	}
	l.close(n)
	wg.Wait()
	if got := l.refs.Load(); got != 0 {
		t.Fatalf("count %d after every payload was released, want 0", got)
	}
}

// smallStream is n DATA frames of size bytes, each payload starting with
// its number.
func smallStream(n, size int) (stream []byte, payloads [][]byte) {
	for i := range n {
		body := bytes.Repeat([]byte{byte(i)}, size)
		binary.BigEndian.PutUint64(body, uint64(i))
		start := len(stream)
		stream = AppendData(stream, 1, 0, uint64(i+1), 0, 0, "", body)
		payloads = append(payloads, stream[start+HeaderLen:])
	}
	return stream, payloads
}

// Payloads are held; all but every keep-th are released, some twice. The
// ones kept are never overwritten, and the buffers whose payloads were all
// released are read into again.
func TestReaderHoldReusesReleasedBuffers(t *testing.T) {
	for _, keep := range []int{0, 7} {
		stream, want := smallStream(20000, 100)
		fr := NewReader(iotest.HalfReader(bytes.NewReader(stream)), 16<<10)
		fr.Version, fr.MaxPayload = 1, 1<<20
		var kept [][]byte
		seen := map[*byte]bool{}
		var cur *byte
		reused, got := 0, 0
		for {
			_, p, ok, err := fr.Buffered()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				if base := unsafe.SliceData(fr.buf); base != nil && base != cur {
					if seen[base] {
						reused++
					}
					seen[base], cur = true, base
				}
				if err := fr.Fill(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				continue
			}
			if !bytes.Equal(p, want[got]) {
				t.Fatalf("keep=%d: payload %d differs when read", keep, got)
			}
			l, i := fr.Hold()
			if l == nil {
				t.Fatalf("payload %d: no lease", got)
			}
			// Every payload stays referenced, so no buffer's memory can
			// come back from the garbage collector: a buffer seen again
			// was reused through its lease.
			kept = append(kept, p)
			if keep == 0 || got%keep != 0 {
				l.Release(i)
				if got%3 == 0 {
					l.Release(i)
				}
			}
			got++
		}
		if got != len(want) {
			t.Fatalf("keep=%d: read %d payloads, want %d", keep, got, len(want))
		}
		for i := 0; keep > 0 && i < len(want); i += keep {
			if !bytes.Equal(kept[i], want[i]) {
				t.Fatalf("keep=%d: payload %d, held and not released, was overwritten", keep, i)
			}
		}
		// sync.Pool drops some buffers (more under the race detector), but
		// not nearly all.
		if keep == 0 && reused == 0 {
			t.Fatalf("no buffer was reused over %d buffers", len(seen))
		}
		if keep > 0 && reused > 0 {
			// With a payload of every 7 held, every buffer has one.
			t.Fatalf("keep=%d: %d buffers holding an unreleased payload were reused", keep, reused)
		}
	}
}

// Retain keeps a buffer from reuse even when it also has held payloads,
// all released.
func TestReaderRetainPins(t *testing.T) {
	stream, want := smallStream(5000, 100)
	fr := NewReader(bytes.NewReader(stream), 16<<10)
	fr.Version, fr.MaxPayload = 1, 1<<20
	var kept [][]byte
	got := 0
	for {
		_, p, ok, err := fr.Buffered()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if err := fr.Fill(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got%2 == 0 {
			fr.Retain()
			kept = append(kept, p)
		} else if l, i := fr.Hold(); l != nil {
			l.Release(i)
		}
		got++
	}
	for i, p := range kept {
		if !bytes.Equal(p, want[2*i]) {
			t.Fatalf("retained payload %d was overwritten", 2*i)
		}
	}
}

// FuzzReaderHold reads an arbitrary stream in pieces of arbitrary sizes,
// holding, releasing later (some twice) and retaining payloads as the
// control bytes say. Whatever was held and not released, or retained, reads the
// same at the end as when it was handed out.
func FuzzReaderHold(f *testing.F) {
	// 100 frames of 19 bytes: more than the 64 payloads one word of a
	// lease counts.
	var stream []byte
	for i := range 100 {
		stream = AppendData(stream, 1, 0, uint64(i+1), 0, 0, "", nil)
	}
	f.Add(stream, []byte{2, 2, 2, 0, 2, 1, 4})
	// A frame larger than the Reader's buffer, between small ones.
	large := AppendData(nil, 1, 0, 1, 0, 0, "", bytes.Repeat([]byte{7}, 2100))
	f.Add(append(append(stream[:190:190], large...), stream[190:]...), []byte{1, 255, 2, 6})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, b, ctl []byte) {
		if len(ctl) == 0 {
			ctl = []byte{0}
		}
		fr := NewReader(&sizedReader{b: b, sizes: ctl}, 2048)
		fr.Version, fr.MaxPayload = 1, 1<<18
		type kept struct{ p, want []byte }
		type held struct {
			l *Lease
			i uint32
		}
		var keep []kept
		var later []held
		for k := 0; k < 5000; k++ {
			_, p, ok, err := fr.Buffered()
			if err != nil {
				break
			}
			if !ok {
				if fr.Fill() != nil {
					break
				}
				continue
			}
			switch c := ctl[k%len(ctl)]; c % 4 {
			case 0: // handed out and dropped; an earlier payload released
				if len(later) > 0 {
					h := later[0]
					later = later[1:]
					h.l.Release(h.i)
					if c&4 != 0 {
						h.l.Release(h.i) // through a copy
					}
				}
			case 1: // held and kept
				if l, _ := fr.Hold(); l == nil {
					t.Fatal("no lease")
				}
				keep = append(keep, kept{p, bytes.Clone(p)})
			case 2: // held, to be released later
				l, i := fr.Hold()
				later = append(later, held{l, i})
			case 3:
				fr.Retain()
				keep = append(keep, kept{p, bytes.Clone(p)})
			}
		}
		for i, kp := range keep {
			if !bytes.Equal(kp.p, kp.want) {
				t.Fatalf("kept payload %d was overwritten", i)
			}
		}
	})
}

// sizedReader returns b in reads of the sizes given in turn (1 to 256
// bytes, wrapping around).
type sizedReader struct {
	b     []byte
	sizes []byte
	n     int
}

func (r *sizedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	size := int(r.sizes[r.n%len(r.sizes)]) + 1
	r.n++
	n := copy(p[:min(len(p), size)], r.b)
	r.b = r.b[n:]
	return n, nil
}
