package secure

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
)

// connPair returns a sealing Conn writing into a buffer, and a function
// that makes an opening Conn reading given bytes, with matching keys, with
// ChaCha20-Poly1305.
func connPair(t testing.TB) (w *Conn, out *bytes.Buffer, reader func([]byte) *Conn) {
	return connPairCipher(t, CipherChaCha20Poly1305)
}

// connPairCipher is connPair with cipher ciph.
func connPairCipher(t testing.TB, ciph Cipher) (w *Conn, out *bytes.Buffer, reader func([]byte) *Conn) {
	t.Helper()
	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	out = new(bytes.Buffer)
	w, err := newConn(fakeConn{w: out}, ciph, k1, k2, PublicKey{})
	if err != nil {
		t.Fatal(err)
	}
	reader = func(stream []byte) *Conn {
		r, err := newConn(fakeConn{r: bytes.NewReader(stream)}, ciph, k2, k1, PublicKey{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return w, out, reader
}

// records splits a stream into its records.
func records(t testing.TB, stream []byte) [][]byte {
	t.Helper()
	var rs [][]byte
	for len(stream) > 0 {
		if len(stream) < 2 {
			t.Fatal("truncated length")
		}
		l := int(binary.BigEndian.Uint16(stream))
		if len(stream) < 2+l {
			t.Fatal("truncated record")
		}
		rs = append(rs, stream[:2+l])
		stream = stream[2+l:]
	}
	return rs
}

func TestWriteBuffersGathers(t *testing.T) {
	w, out, reader := connPair(t)
	// Many small buffers, as the writer hands them over: one record.
	var bufs [][]byte
	var want []byte
	for i := range 200 {
		b := bytes.Repeat([]byte{byte(i)}, 1+i%7)
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	n, err := w.WriteBuffers(bufs)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("WriteBuffers = %d, %v", n, err)
	}
	if rs := records(t, out.Bytes()); len(rs) != 1 || len(rs[0]) != 2+len(want)+tagLen {
		t.Fatalf("%d records for %d bytes in 200 buffers, want 1", len(rs), len(want))
	}
	// Large buffers that do not line up with records: full records, the
	// last one shorter, and records that span buffers.
	out.Reset()
	sizes := []int{0, 100000, 3, 0, 65519, 70000, 1}
	bufs, want = nil, nil
	for i, s := range sizes {
		b := make([]byte, s)
		for j := range b {
			b[j] = byte(i*31 + j)
		}
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	if n, err := w.WriteBuffers(bufs); err != nil || n != int64(len(want)) {
		t.Fatalf("WriteBuffers = %d, %v", n, err)
	}
	rs := records(t, out.Bytes())
	if wantRecs := (len(want) + MaxRecordPlaintext - 1) / MaxRecordPlaintext; len(rs) != wantRecs {
		t.Fatalf("%d records, want %d", len(rs), wantRecs)
	}
	for _, r := range rs[:len(rs)-1] {
		if len(r) != 2+MaxNoiseMessage {
			t.Fatalf("a record of %d bytes is not full", len(r))
		}
	}
	r := reader(out.Bytes())
	r.rx.n = 1 // the first record (the small batch) was not kept
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back: %v", err)
	}
}

func mustSeal(t testing.TB, p []byte) []byte {
	w, out, _ := connPair(t)
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestReadSizes(t *testing.T) {
	w, out, reader := connPair(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var want []byte
	for range 300 {
		b := make([]byte, rng.IntN(3000))
		if rng.IntN(20) == 0 {
			b = make([]byte, 65519+rng.IntN(100000))
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want = append(want, b...)
		w.Write(b)
	}
	// Read with buffers of every size, from 1 byte to more than a record.
	for _, size := range []int{1, 7, 1000, 65519, 65520, 300000} {
		r := reader(out.Bytes())
		var got []byte
		buf := make([]byte, size)
		for {
			n, err := r.Read(buf[:1+rng.IntN(size)])
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: read %d bytes, want %d", size, len(got), len(want))
		}
	}
}

func TestReadRejectsTampering(t *testing.T) {
	w, out, reader := connPair(t)
	var plain [][]byte
	for i := range 5 {
		p := []byte(strings.Repeat(string(rune('a'+i)), 40+i))
		plain = append(plain, p)
		w.Write(p)
	}
	stream := out.Bytes()
	rs := records(t, stream)
	readAll := func(s []byte) ([]byte, error) {
		var got []byte
		r := reader(s)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				return got, err
			}
		}
	}
	if got, err := readAll(stream); err != nil || !bytes.Equal(got, bytes.Join(plain, nil)) {
		t.Fatal(err)
	}
	// Every flipped bit, in a length, a ciphertext or a tag: the records
	// before it arrive, nothing of it or after it does, and the read fails.
	start := 0
	for k, rec := range rs {
		for i := start; i < start+len(rec); i++ {
			for _, bit := range []byte{0x01, 0x80} {
				s := bytes.Clone(stream)
				s[i] ^= bit
				got, err := readAll(s)
				inLength := i < start+2
				if !errors.Is(err, ErrAuthFailed) && !(inLength && errors.Is(err, io.ErrUnexpectedEOF)) {
					t.Fatalf("record %d, byte %d, bit %#x: %v", k, i, bit, err)
				}
				if want := bytes.Join(plain[:k], nil); !bytes.Equal(got, want) {
					t.Fatalf("record %d, byte %d: read %q, want %q", k, i, got, want)
				}
			}
		}
		start += len(rec)
	}
	// A replayed record, a dropped record, swapped records, a record of
	// another connection.
	for name, s := range map[string][]byte{
		"replayed": concat(rs[0], rs[1], rs[1], rs[2]),
		"dropped":  concat(rs[0], rs[2]),
		"swapped":  concat(rs[1], rs[0]),
		"foreign":  concat(rs[0], records(t, mustSeal(t, []byte("from another connection")))[0]),
	} {
		if _, err := readAll(s); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The failure is sticky.
	r := reader(concat(rs[1]))
	_, err1 := r.Read(make([]byte, 100))
	_, err2 := r.Read(make([]byte, 100))
	if !errors.Is(err1, ErrAuthFailed) || err1 != err2 {
		t.Fatalf("not sticky: %v, %v", err1, err2)
	}
	var p interface{ Permanent() bool }
	if !errors.As(err1, &p) || p.Permanent() {
		t.Fatal("a decryption failure must be retryable")
	}
	if _, ok := wire.AsProtocolError(err1); ok {
		t.Fatal("a decryption failure must not be a ProtocolError (it would send a GOODBYE and end the session)")
	}
	// A length-0 record is the handshake abort notice when it comes first,
	// an authentication failure afterwards.
	if _, err := readAll([]byte{0, 0}); !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "rejected by peer") {
		t.Fatalf("abort notice: %v", err)
	}
	if _, err := readAll(concat(rs[0], []byte{0, 0})); !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "impossible length 0") {
		t.Fatalf("length 0 later: %v", err)
	}
	// A stream cut inside a record.
	if _, err := readAll(stream[:len(stream)-3]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut stream: %v", err)
	}
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestWriteErrorSticky(t *testing.T) {
	var k [32]byte
	c, _ := newConn(fakeConn{w: failWriter{}}, CipherChaCha20Poly1305, k, k, PublicKey{})
	_, err1 := c.Write([]byte("x"))
	_, err2 := c.Write([]byte("y"))
	if err1 == nil || err1 != err2 {
		t.Fatalf("%v %v", err1, err2)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestConnAllocations(t *testing.T) {
	for _, ciph := range []Cipher{CipherChaCha20Poly1305, CipherAESGCM} {
		t.Run(ciph.String(), func(t *testing.T) { testConnAllocations(t, ciph) })
	}
}

func testConnAllocations(t *testing.T, ciph Cipher) {
	w, out, reader := connPairCipher(t, ciph)
	bufs := [][]byte{make([]byte, 30), make([]byte, 200), make([]byte, 70000)}
	const total = 70230
	w.WriteBuffers(bufs) // buffers are allocated once
	stream := bytes.Clone(out.Bytes())
	allocs := testing.AllocsPerRun(100, func() {
		out.Reset()
		w.WriteBuffers(bufs)
	})
	if allocs != 0 {
		t.Fatalf("WriteBuffers allocates %.1f times per call", allocs)
	}
	r := reader(stream)
	src := r.nc.(fakeConn).r.(*bytes.Reader)
	buf := make([]byte, 128<<10)
	if _, err := io.ReadFull(r, buf[:total]); err != nil {
		t.Fatal(err)
	}
	allocs = testing.AllocsPerRun(50, func() {
		src.Reset(stream)
		r.rx.n, r.rpos, r.rend = 0, 0, 0 // the same records again
		if _, err := io.ReadFull(r, buf[:total]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Read allocates %.1f times per call", allocs)
	}
}

// TestReadDeadlineBoundsSilence: after the first two records, a record
// that arrives in pieces, each well within the read deadline's window but
// all together after it, is read; a connection that goes silent still
// times out. Before that, and when the deadline is not set again before
// each Read, the deadline is absolute.
func TestReadDeadlineBoundsSilence(t *testing.T) {
	const window = 500 * time.Millisecond
	w, out, _ := connPair(t)
	w.Write([]byte("hello"))
	w.Write([]byte("resume"))
	first := bytes.Clone(out.Bytes())
	out.Reset()
	w.Write(bytes.Repeat([]byte("slow link "), 200))
	record := bytes.Clone(out.Bytes())

	setup := func(t *testing.T) (remote net.Conn, r *Conn) {
		a, b := testutil.NewBufferedPipe(1 << 16)
		t.Cleanup(func() { a.Close(); b.Close() })
		var k1, k2 [32]byte
		k1[0], k2[0] = 1, 2
		r, _ = newConn(b, CipherChaCha20Poly1305, k2, k1, PublicKey{})
		return a, r
	}
	// trickle writes the record in 20 pieces, 50ms apart: a second in
	// all, twice the window.
	trickle := func(remote net.Conn) {
		step := (len(record) + 19) / 20
		for i := 0; i < len(record); i += step {
			if _, err := remote.Write(record[i:min(i+step, len(record))]); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	buf := make([]byte, 4096)

	t.Run("data phase", func(t *testing.T) {
		remote, r := setup(t)
		remote.Write(first)
		if _, err := io.ReadFull(r, buf[:11]); err != nil {
			t.Fatal(err)
		}
		go trickle(remote)
		start := time.Now()
		r.SetReadDeadline(time.Now().Add(window))
		n, err := r.Read(buf)
		if err != nil || n != 2000 {
			t.Fatalf("Read = %d, %v after %v", n, err, time.Since(start))
		}
		if took := time.Since(start); took < window {
			t.Fatalf("the record arrived in %v, before the window ended: the test proves nothing", took)
		}
		// Now nothing comes: the deadline still ends the read.
		r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("silent connection: %v", err)
		}
		// A deadline in the past interrupts at once, even mid-record.
		remote.Write(record[:10])
		r.SetReadDeadline(time.Unix(1, 0))
		if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("interrupt: %v", err)
		}
	})
	t.Run("handshake phase", func(t *testing.T) {
		remote, r := setup(t)
		go trickle(remote) // as the first record
		r.SetReadDeadline(time.Now().Add(window))
		if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a trickled first record: %v", err)
		}
	})
	t.Run("deadline set once", func(t *testing.T) {
		remote, r := setup(t)
		remote.Write(first)
		r.SetReadDeadline(time.Now().Add(window))
		if _, err := io.ReadFull(r, buf[:11]); err != nil {
			t.Fatal(err)
		}
		go trickle(remote)
		if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a trickled record under a deadline set once: %v", err)
		}
	})
}
