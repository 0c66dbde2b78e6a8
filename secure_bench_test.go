package slc_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/secure"
)

// Secure mode benchmarks, with the plain-mode figures and two baselines in
// the same file so that ratios come from one run:
//
//	go test -run XXX -bench Secure -benchmem .
//
// Baseline (a) is what secure mode avoids: every message is encoded,
// sealed on its own and written on its own. Baseline (b) is the ceiling
// for large messages: 1 MiB frames sealed with AES-256-GCM and written on
// a bare TCP connection, without slc.

// securePair is benchPair in secure mode (Noise XX, authorized keys).
func securePair(b *testing.B, opts ...slc.Option) (rx, tx *slc.Communicator, to slc.PeerID) {
	b.Helper()
	idRx, err := secure.GenerateIdentity()
	if err != nil {
		b.Fatal(err)
	}
	idTx, err := secure.GenerateIdentity()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rx, err = slc.New(append([]slc.Option{slc.WithName("rx"), slc.WithIdentity(idRx),
		slc.WithAuthorizedPeer("tx", idTx.PublicKey())}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rx.Close() })
	tx, err = slc.New(append([]slc.Option{slc.WithName("tx"), slc.WithIdentity(idTx),
		slc.WithAuthorizedPeer("rx", idRx.PublicKey())}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tx.Close() })
	addr, err := rx.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if to, err = tx.Connect(ctx, addr.String()); err != nil {
		b.Fatal(err)
	}
	return rx, tx, to
}

func benchTyped64(b *testing.B, rx, tx *slc.Communicator, to slc.PeerID) {
	msg := Small{Sensor: "sensor-0001", Value: 21.5, Note: "0123456789abcdef0123456789abcdef"}
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	done := receiveN(b, rx, b.N)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		msg.Seq = uint64(i)
		if _, err := tx.Send(ctx, msg, to); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func benchRawPair(b *testing.B, rx, tx *slc.Communicator, to slc.PeerID, size int) {
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	done := receiveN(b, rx, b.N)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := tx.SendRaw(ctx, payload, to); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSecureTyped64 sends typed messages of about 64 bytes in secure
// mode: the figure to compare with baseline (a).
func BenchmarkSecureTyped64(b *testing.B) {
	rx, tx, to := securePair(b)
	benchTyped64(b, rx, tx, to)
}

// BenchmarkSecureRaw64 sends 64-byte raw payloads in secure mode.
func BenchmarkSecureRaw64(b *testing.B) {
	rx, tx, to := securePair(b)
	benchRawPair(b, rx, tx, to, 64)
}

// BenchmarkSecureRaw1KiB sends 1 KiB raw payloads in secure mode.
func BenchmarkSecureRaw1KiB(b *testing.B) {
	rx, tx, to := securePair(b)
	benchRawPair(b, rx, tx, to, 1<<10)
}

// BenchmarkSecureRaw1MiB sends 1 MiB raw payloads in secure mode: the
// figure to compare with baseline (b).
func BenchmarkSecureRaw1MiB(b *testing.B) {
	rx, tx, to := securePair(b)
	benchRawPair(b, rx, tx, to, 1<<20)
}

// The same in plain mode, for the cost of encryption.

func BenchmarkSecurePlainTyped64(b *testing.B) {
	rx, tx, to := benchPair(b)
	benchTyped64(b, rx, tx, to)
}

func BenchmarkSecurePlainRaw1KiB(b *testing.B) {
	rx, tx, to := benchPair(b)
	benchRawPair(b, rx, tx, to, 1<<10)
}

func BenchmarkSecurePlainRaw1MiB(b *testing.B) {
	rx, tx, to := benchPair(b)
	benchRawPair(b, rx, tx, to, 1<<20)
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(b *testing.B) (client, server net.Conn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-acc
	if server == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// baselineSeal64 is baseline (a): each Small message is encoded with
// msgpack, sealed with ChaCha20-Poly1305 (counter nonce) and written as
// [2-byte length][ciphertext]; the receiver reads through a 64 KiB
// bufio.Reader, opens and decodes each one. With buffered false every
// message is its own write call, as in a naive per-message design; with
// buffered true the writes go through a 64 KiB bufio.Writer, so only the
// per-message sealing remains.
func baselineSeal64(b *testing.B, buffered bool) {
	client, server := tcpPair(b)
	key := make([]byte, chacha20poly1305.KeySize)
	done := make(chan error, 1)
	go func() {
		aead, _ := chacha20poly1305.New(key)
		r := bufio.NewReaderSize(server, 64<<10)
		var nonce [chacha20poly1305.NonceSize]byte
		var hdr [2]byte
		buf := make([]byte, 65536)
		var m Small
		br := bytes.NewReader(nil)
		dec := msgpack.NewDecoder(br)
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				done <- err
				return
			}
			ct := buf[:binary.BigEndian.Uint16(hdr[:])]
			if _, err := io.ReadFull(r, ct); err != nil {
				done <- err
				return
			}
			binary.LittleEndian.PutUint64(nonce[4:], uint64(i))
			p, err := aead.Open(ct[:0], nonce[:], ct, nil)
			if err != nil {
				done <- err
				return
			}
			br.Reset(p)
			dec.Reset(br)
			if err := dec.Decode(&m); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	aead, _ := chacha20poly1305.New(key)
	var nonce [chacha20poly1305.NonceSize]byte
	var w io.Writer = client
	var bw *bufio.Writer
	if buffered {
		bw = bufio.NewWriterSize(client, 64<<10)
		w = bw
	}
	msg := Small{Sensor: "sensor-0001", Value: 21.5, Note: "0123456789abcdef0123456789abcdef"}
	var eb bytes.Buffer
	enc := msgpack.NewEncoder(&eb)
	out := make([]byte, 0, 256)
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg.Seq = uint64(i)
		eb.Reset()
		if err := enc.Encode(&msg); err != nil {
			b.Fatal(err)
		}
		binary.LittleEndian.PutUint64(nonce[4:], uint64(i))
		out = aead.Seal(out[:2], nonce[:], eb.Bytes(), nil)
		binary.BigEndian.PutUint16(out, uint16(len(out)-2))
		if _, err := w.Write(out); err != nil {
			b.Fatal(err)
		}
	}
	if bw != nil {
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSecureBaselineSealPerMessage64 is baseline (a): seal and write
// each message on its own.
func BenchmarkSecureBaselineSealPerMessage64(b *testing.B) { baselineSeal64(b, false) }

// BenchmarkSecureBaselineSealPerMessageBuffered64 is baseline (a) with the
// writes coalesced by a bufio.Writer: per-message sealing only.
func BenchmarkSecureBaselineSealPerMessageBuffered64(b *testing.B) { baselineSeal64(b, true) }

// BenchmarkSecureBaselineAESGCM1MiB is baseline (b): 1 MiB frames sealed
// with AES-256-GCM, written as [4-byte length][ciphertext] on a bare TCP
// connection; the receiver reads each frame whole and opens it in place.
func BenchmarkSecureBaselineAESGCM1MiB(b *testing.B) {
	const size = 1 << 20
	client, server := tcpPair(b)
	newAEAD := func() cipher.AEAD {
		blk, _ := aes.NewCipher(make([]byte, 32))
		a, _ := cipher.NewGCM(blk)
		return a
	}
	done := make(chan error, 1)
	go func() {
		aead := newAEAD()
		var nonce [12]byte
		var hdr [4]byte
		buf := make([]byte, size+aead.Overhead())
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(server, hdr[:]); err != nil {
				done <- err
				return
			}
			ct := buf[:binary.BigEndian.Uint32(hdr[:])]
			if _, err := io.ReadFull(server, ct); err != nil {
				done <- err
				return
			}
			binary.BigEndian.PutUint64(nonce[4:], uint64(i))
			if _, err := aead.Open(ct[:0], nonce[:], ct, nil); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	aead := newAEAD()
	var nonce [12]byte
	payload := make([]byte, size)
	out := make([]byte, 4, 4+size+aead.Overhead())
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint64(nonce[4:], uint64(i))
		out = aead.Seal(out[:4], nonce[:], payload, nil)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := client.Write(out); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSecureHandshake measures complete Noise XX handshakes (three
// messages, four X25519 operations per side) over loopback TCP, each on a
// new connection; handshakes/s = 1e9 / ns/op.
func BenchmarkSecureHandshake(b *testing.B) {
	ida, _ := secure.GenerateIdentity()
	idb, _ := secure.GenerateIdentity()
	ca, cb := secure.NewConfig(), secure.NewConfig()
	ca.SetIdentity(ida)
	ca.AddAuthorizedKeys(secure.AuthorizedKey{Key: idb.PublicKey()})
	cb.SetIdentity(idb)
	cb.AddAuthorizedKeys(secure.AuthorizedKey{Key: ida.PublicKey()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ctx := context.Background()
	errs := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		go func() {
			c, err := ln.Accept()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_, _, err = cb.Handshake(ctx, c, false)
			errs <- err
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := ca.Handshake(ctx, c, true); err != nil {
			b.Fatal(err)
		}
		c.Close()
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}
