package wire

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func TestLargeClass(t *testing.T) {
	seen := map[int]int{} // idx -> size
	for n := 1; n <= 1<<largeMaxBits+1; n += 1 + n/37 {
		size, idx, ok := largeClass(n)
		if want := n > 1<<largeMinBits && n <= 1<<largeMaxBits; ok != want {
			t.Fatalf("largeClass(%d) pooled = %v, want %v", n, ok, want)
		}
		if !ok {
			continue
		}
		if size < n || size > n+n/8 {
			t.Fatalf("largeClass(%d) = %d: not within 12.5%% above", n, size)
		}
		if idx < 0 || idx >= len(largePools) {
			t.Fatalf("largeClass(%d) index %d out of range", n, idx)
		}
		if s, dup := seen[idx]; dup && s != size {
			t.Fatalf("pool %d holds sizes %d and %d", idx, s, size)
		}
		seen[idx] = size
		if s2, idx2, _ := largeClass(size); s2 != size || idx2 != idx {
			t.Fatalf("a class size %d maps to %d/%d, not to itself/%d", size, s2, idx2, idx)
		}
	}
	if len(seen) != len(largePools) {
		t.Fatalf("%d of %d pools used", len(seen), len(largePools))
	}
}

// largeStream is n DATA frames whose payloads (200 KiB, larger than the
// readers' buffers) each start with a different byte.
func largeStream(n int) (stream []byte, payloads [][]byte) {
	for i := range n {
		body := bytes.Repeat([]byte{byte(i)}, 200<<10)
		f := AppendData(nil, 1, 0, uint64(i+1), 0, 0, "", body)
		payloads = append(payloads, f[HeaderLen:])
		stream = append(stream, f...)
		// A small frame between the large ones goes through the regular buffer.
		stream = AppendAck(stream, 1, uint64(i))
	}
	return stream, payloads
}

// A large frame's buffer is reused for a later one once nothing refers to
// it, and every payload reads right while it is current.
func TestReaderReusesLargeBuffers(t *testing.T) {
	stream, want := largeStream(50)
	fr := NewReader(iotest.HalfReader(bytes.NewReader(stream)), 64<<10)
	fr.Version, fr.MaxPayload = 1, 1<<20
	bufs := map[*byte]bool{}
	large, reused := 0, 0
	for {
		h, p, ok, err := fr.Buffered()
		if err != nil {
			t.Fatal(err)
		}
		if ok && h.Type == TypeData {
			if !bytes.Equal(p, want[large]) {
				t.Fatalf("large frame %d differs", large)
			}
			large++
			continue
		}
		if ok {
			continue
		}
		if fr.pooled {
			key := &fr.buf[:1][0]
			if bufs[key] {
				reused++
			}
			bufs[key] = true
		}
		if err := fr.Fill(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if large != len(want) {
		t.Fatalf("read %d large frames, want %d", large, len(want))
	}
	// sync.Pool may drop buffers (always some under the race detector),
	// but not nearly all of them.
	if reused == 0 {
		t.Fatalf("no large buffer was reused over %d frames", large)
	}
}

// Payloads of large frames that were retained, or held and not released,
// are never overwritten by later frames.
func TestReaderKeepsRetainedLargeFrames(t *testing.T) {
	for _, hold := range []bool{false, true} {
		stream, want := largeStream(20)
		fr := NewReader(iotest.HalfReader(bytes.NewReader(stream)), 64<<10)
		fr.Version, fr.MaxPayload = 1, 1<<20
		var kept [][]byte
		for {
			h, p, ok, err := fr.Buffered()
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				if h.Type == TypeData {
					kept = append(kept, p)
					if !hold {
						fr.Retain()
					} else if l, i := fr.Hold(); l == nil || i != 0 || !l.large {
						t.Fatalf("Hold of a large frame: lease %v, number %d", l, i)
					}
				}
				continue
			}
			if err := fr.Fill(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		for i := range want {
			if !bytes.Equal(kept[i], want[i]) {
				t.Fatalf("hold=%v: kept frame %d was overwritten", hold, i)
			}
		}
	}
}

func TestPutLargeIgnoresForeignBuffers(t *testing.T) {
	PutLarge(make([]byte, 100))     // too small to pool
	PutLarge(make([]byte, 1<<20+1)) // not a class size
	b := GetLarge(1<<20 + 1)
	if len(b) != 1<<20+1 || cap(b) != 1<<20+1<<17 {
		t.Fatalf("GetLarge(1 MiB+1): len %d cap %d", len(b), cap(b))
	}
	if b := GetLarge(100); len(b) != 100 {
		t.Fatalf("GetLarge(100): len %d", len(b))
	}
}

// readRecorder counts the bytes its reads return into requests of at
// most small bytes (the regular buffer's reads, not a large frame's).
type readRecorder struct {
	r          io.Reader
	small      int
	smallBytes int
}

func (rr *readRecorder) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if len(p) <= rr.small {
		rr.smallBytes += n
	}
	return n, err
}

// After a large frame, the next header is read alone, so a following
// large frame's body goes straight into its own buffer and is not first
// read into the regular one and copied.
func TestReaderReadsHeaderAloneAfterLargeFrame(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i := range 6 {
		body := bytes.Repeat([]byte{byte(i)}, 200<<10)
		stream = AppendData(stream, 1, 0, uint64(i+1), 0, 0, "", body)
		want = append(want, stream[len(stream)-len(body)-DataPrefixLen:])
	}
	// A small frame after the large ones still reads right.
	stream = AppendAck(stream, 1, 9)
	rr := &readRecorder{r: bytes.NewReader(stream), small: 64 << 10}
	fr := NewReader(rr, 64<<10)
	fr.Version, fr.MaxPayload = 1, 1<<20
	got := 0
	for {
		h, p, err := fr.ReadFrame()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if h.Type == TypeAck {
			if seq, err := ParseAck(p); err != nil || seq != 9 || got != len(want) {
				t.Fatalf("ACK %d (%v) after %d frames", seq, err, got)
			}
			continue
		}
		if !bytes.Equal(p, want[got]) {
			t.Fatalf("frame %d differs", got)
		}
		got++
	}
	// The first read fills the first buffer (minBuf); after that, five
	// headers of HeaderLen bytes and the ACK's.
	if limit := minBuf + 6*HeaderLen + 16; rr.smallBytes > limit {
		t.Fatalf("%d bytes went through the regular buffer, want at most %d", rr.smallBytes, limit)
	}
}
