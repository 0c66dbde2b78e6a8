package secure

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzConnRead feeds arbitrary bytes to a connection's reader: the
// 2-byte length and ciphertext framing. It must never panic, never return
// more bytes than asked or than the stream holds, and fail only with an
// end of stream or an authentication error.
func FuzzConnRead(f *testing.F) {
	w, out, _ := connPair(f)
	w.Write([]byte("hello"))
	w.Write(bytes.Repeat([]byte("y"), 70000))
	f.Add(out.Bytes(), uint16(100))
	f.Add([]byte{0, 0}, uint16(1))
	f.Add([]byte{0, 15, 1, 2, 3}, uint16(10))
	f.Add([]byte{0xff, 0xff}, uint16(65535))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, stream []byte, size uint16) {
		_, _, reader := connPair(t)
		r := reader(stream)
		buf := make([]byte, int(size)+1)
		total := 0
		for range 10000 {
			n, err := r.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d for a %d-byte buffer", n, len(buf))
			}
			total += n
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
		}
		if total > len(stream) {
			t.Fatalf("read %d plaintext bytes from %d bytes", total, len(stream))
		}
	})
}

// FuzzWriteRead checks that any split of any data into buffers reads back
// unchanged, with either cipher.
func FuzzWriteRead(f *testing.F) {
	f.Add([]byte("hello world"), []byte{3, 0, 5})
	f.Add(bytes.Repeat([]byte{7}, 70000), []byte{200, 255, 1})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		for _, ciph := range []Cipher{CipherChaCha20Poly1305, CipherAESGCM} {
			w, out, reader := connPairCipher(t, ciph)
			var bufs [][]byte
			rest := data
			for _, c := range cuts {
				k := min(int(c)*300, len(rest))
				bufs = append(bufs, rest[:k])
				rest = rest[k:]
			}
			bufs = append(bufs, rest)
			if n, err := w.WriteBuffers(bufs); err != nil || n != int64(len(data)) {
				t.Fatalf("%v: WriteBuffers = %d, %v", ciph, n, err)
			}
			got, err := io.ReadAll(reader(out.Bytes()))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%v: read back %d bytes (%v), want %d", ciph, len(got), err, len(data))
			}
		}
	})
}

func FuzzParseAuthorizedKeys(f *testing.F) {
	f.Add([]byte("# c\nx25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks= lab camera\n\n"))
	f.Add([]byte("x25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks=\t\tname\r\n"))
	f.Add([]byte("HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseAuthorizedKeys(data)
		if err != nil {
			return
		}
		// What parsed writes back and parses the same.
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(k.String() + "\n")
		}
		again, err := ParseAuthorizedKeys([]byte(b.String()))
		if err != nil || len(again) != len(keys) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range keys {
			if again[i] != keys[i] {
				t.Fatalf("entry %d: %v became %v", i, keys[i], again[i])
			}
		}
		newAuthSet(keys).check("name", PublicKey{1})
	})
}

func FuzzParseKnownPeers(f *testing.F) {
	f.Add([]byte("# pins\nx25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks= lab-camera\n"))
	f.Add([]byte("x25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pins, err := ParseKnownPeers(data)
		if err != nil {
			return
		}
		again, err := ParseKnownPeers(formatKnownPeers(pins))
		if err != nil || len(again) != len(pins) {
			t.Fatalf("round trip: %v", err)
		}
		for name, k := range pins {
			if again[name] != k {
				t.Fatalf("%q changed", name)
			}
		}
	})
}

func FuzzParseIdentity(f *testing.F) {
	id, _ := GenerateIdentity()
	f.Add(id.marshal())
	f.Add([]byte("slc private key v1\nprivate AAAA\n"))
	f.Add([]byte("slc private key v1\r\n#\r\npublic x25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks=\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseIdentity(data)
		if err != nil {
			return
		}
		again, err := ParseIdentity(got.marshal())
		if err != nil || again.private != got.private || again.PublicKey() != got.PublicKey() {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add("x25519:HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks=")
	f.Add("HSMXcG8j5M1GVTtrwaUfpp4Tf3BfBH5JLe2RqDSpPks")
	f.Fuzz(func(t *testing.T, s string) {
		pk, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		if again, err := ParsePublicKey(pk.String()); err != nil || again != pk {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}
