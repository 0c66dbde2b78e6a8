package secure

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

// tcpPair returns the two ends of a loopback TCP connection, closed when
// the test ends.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

type result struct {
	conn net.Conn
	id   peer.Identity
	err  error
}

// preamble is what a node in mode sends with no flags.
func preamble(mode uint8) [8]byte {
	return [8]byte(wire.AppendPreamble(nil, wire.Preamble{Min: wire.MinVersion, Max: wire.MaxVersion, Mode: mode}))
}

// preambleOf is what peer.RunHandshake sends for c: its mode and flags.
func preambleOf(c *Config) [8]byte {
	return [8]byte(wire.AppendPreamble(nil, wire.Preamble{Min: wire.MinVersion, Max: wire.MaxVersion, Mode: c.Mode(), Flags: c.PreambleFlags()}))
}

// handshake runs both sides at once: dialer initiates. The preambles are
// the ones each side sent and received; recvByResponder lets a test alter
// what the responder "received" from the initiator.
func handshake(t testing.TB, dialer, listener *Config, recvByResponder *[8]byte) (init, resp result) {
	t.Helper()
	client, server := tcpPair(t)
	ip, rp := preambleOf(dialer), preambleOf(listener)
	got := ip
	if recvByResponder != nil {
		got = *recvByResponder
	}
	done := make(chan result, 1)
	go func() {
		c, id, err := listener.Handshake(context.Background(), &peer.PreambleConn{Conn: server, Local: rp, Remote: got}, false)
		done <- result{c, id, err}
	}()
	c, id, err := dialer.Handshake(context.Background(), &peer.PreambleConn{Conn: client, Local: ip, Remote: rp}, true)
	init = result{c, id, err}
	resp = <-done
	return init, resp
}

func TestHandshakeXX(t *testing.T) {
	a, b := keysPair(t)
	ir, rr := handshake(t, a, b, nil)
	if ir.err != nil || rr.err != nil {
		t.Fatalf("initiator %v, responder %v", ir.err, rr.err)
	}
	ak, _ := a.LocalKey()
	bk, _ := b.LocalKey()
	if ir.id.(PublicKey) != bk || rr.id.(PublicKey) != ak {
		t.Fatal("identities are not the remote's keys")
	}
	if ir.id.Fingerprint() != bk.Fingerprint() || b.LocalFingerprint() != bk.Fingerprint() || a.LocalFingerprint() != ak.Fingerprint() {
		t.Fatal("fingerprints")
	}
	if fp := NewConfig().LocalFingerprint(); fp != "" {
		t.Fatalf("an empty configuration has fingerprint %q", fp)
	}
	exchange(t, ir.conn, rr.conn)
}

// keysPair returns two configurations that authorize each other's key.
func keysPair(t testing.TB) (a, b *Config) {
	ia, ib := mustIdentity(t), mustIdentity(t)
	a, b = NewConfig(), NewConfig()
	a.SetIdentity(ia)
	a.AddAuthorizedKeys(AuthorizedKey{Key: ib.PublicKey()})
	b.SetIdentity(ib)
	b.AddAuthorizedKeys(AuthorizedKey{Key: ia.PublicKey()})
	return a, b
}

// exchange checks that bytes written on each side arrive on the other.
func exchange(t testing.TB, x, y net.Conn) {
	t.Helper()
	for _, p := range [][2]net.Conn{{x, y}, {y, x}} {
		msg := bytes.Repeat([]byte("secure bytes "), 10000) // several records
		go p[0].Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(p[1], got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("exchange: %v", err)
		}
	}
}

func secretConfig(t testing.TB, secret string) *Config {
	c := NewConfig()
	if err := c.SetNetworkSecret([]byte(secret)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHandshakeNetworkSecret(t *testing.T) {
	a, b := secretConfig(t, "the lab's network secret"), secretConfig(t, "the lab's network secret")
	ir, rr := handshake(t, a, b, nil)
	if ir.err != nil || rr.err != nil {
		t.Fatalf("initiator %v, responder %v", ir.err, rr.err)
	}
	exchange(t, ir.conn, rr.conn)
	// Each process makes its own key pair; it stays the same within the process.
	k1, _ := a.LocalKey()
	k2, _ := a.LocalKey()
	kb, _ := b.LocalKey()
	if k1 != k2 || k1 == kb || rr.id.(PublicKey) != k1 {
		t.Fatal("per-process identity")
	}
}

func TestHandshakeWrongSecret(t *testing.T) {
	a, b := secretConfig(t, "the lab's network secret"), secretConfig(t, "another network secret!")
	ir, rr := handshake(t, a, b, nil)
	// The responder finds out on message 3; the initiator has finished and
	// learns it from the responder's notice when it reads.
	if rr.err == nil || !errors.Is(rr.err, ErrAuthFailed) || !strings.Contains(rr.err.Error(), "network's secret") {
		t.Fatalf("responder: %v", rr.err)
	}
	if pe, _ := wire.AsProtocolError(rr.err); pe.Remote || pe.Permanent() {
		t.Fatalf("responder error should be local and retryable: %+v", pe)
	}
	if ir.err != nil {
		t.Fatalf("initiator: %v", ir.err)
	}
	_, err := ir.conn.Read(make([]byte, 10))
	pe, ok := wire.AsProtocolError(err)
	if !ok || pe.Code != wire.CodeAuthFailed || !pe.Remote || !strings.Contains(pe.Reason, "network secret") {
		t.Fatalf("initiator read: %v", err)
	}
}

func TestHandshakeTamperedPreamble(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(p *[8]byte)
	}{
		{"reserved flags", func(p *[8]byte) { p[7] ^= 0x5a }},
		{"max version", func(p *[8]byte) { p[5] = 9 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := keysPair(t)
			tampered := preambleOf(a)
			tc.edit(&tampered)
			ir, rr := handshake(t, a, b, &tampered)
			// The initiator cannot authenticate message 2 and tells the
			// responder, which was waiting for message 3.
			if !errors.Is(ir.err, ErrAuthFailed) || !strings.Contains(ir.err.Error(), "handshake message 2") {
				t.Fatalf("initiator: %v", ir.err)
			}
			if pe, ok := wire.AsProtocolError(rr.err); !ok || pe.Code != wire.CodeAuthFailed || !pe.Remote {
				t.Fatalf("responder: %v", rr.err)
			}
		})
	}
}

func TestHandshakeUnauthorizedKey(t *testing.T) {
	a, _ := keysPair(t)
	_, b := keysPair(t) // b does not list a's key, nor a b's
	ir, rr := handshake(t, a, b, nil)
	for _, r := range []result{ir, rr} {
		if !errors.Is(r.err, ErrUnauthorized) || !strings.Contains(r.err.Error(), "is not in this node's authorized keys") {
			t.Fatalf("%v", r.err)
		}
	}
}

func TestHandshakeRejectFrame(t *testing.T) {
	// Only the responder refuses: the initiator's handshake completes, and
	// what it reads next is the responder's encrypted REJECT.
	a, b := keysPair(t)
	ia, _ := a.LocalKey()
	b2 := NewConfig()
	b2.SetIdentity(b.identity)
	b2.AddAuthorizedKeys(AuthorizedKey{Key: mustIdentity(t).PublicKey()})
	ir, rr := handshake(t, a, b2, nil)
	if !errors.Is(rr.err, ErrUnauthorized) || !strings.Contains(rr.err.Error(), ia.Fingerprint()) {
		t.Fatalf("responder: %v", rr.err)
	}
	if ir.err != nil {
		t.Fatalf("initiator: %v", ir.err)
	}
	fr := wire.NewReader(ir.conn, 0)
	h, p, err := fr.ReadFrame()
	if err != nil || h.Type != wire.TypeReject {
		t.Fatalf("initiator read %v %v", h, err)
	}
	cl, err := wire.ParseClose(p)
	if err != nil || cl.Code != wire.CodeUnauthorized || !strings.Contains(cl.Reason, ia.Fingerprint()) {
		t.Fatalf("REJECT %+v %v", cl, err)
	}
}

func TestHandshakeMalformed(t *testing.T) {
	// A responder that gets garbage instead of message 1 fails with an
	// authentication error and tells the initiator.
	_, b := keysPair(t)
	client, server := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := b.Handshake(context.Background(), server, false)
		done <- err
	}()
	client.Write([]byte{0, 5, 1, 2, 3, 4, 5})
	if err := <-done; !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "handshake message 1") {
		t.Fatalf("responder: %v", err)
	}
	var notice [2]byte
	if _, err := io.ReadFull(client, notice[:]); err != nil || notice != [2]byte{} {
		t.Fatalf("notice %x %v", notice, err)
	}
}

func TestHandshakeBadConfig(t *testing.T) {
	c := NewConfig()
	c.SetIdentity(mustIdentity(t)) // no way to trust peers
	client, _ := tcpPair(t)
	_, _, err := c.Handshake(context.Background(), client, true)
	var p interface{ Permanent() bool }
	if err == nil || !strings.Contains(err.Error(), "needs a way to trust peers") || !errors.As(err, &p) || !p.Permanent() {
		t.Fatalf("%v", err)
	}
}

// TestTransportIsNoise checks that the handshake and the records are
// Noise's: flynn/noise with its own X25519 function completes a handshake
// with this package's (the responder here), its CipherState opens what
// Conn seals, and Conn opens what it seals, with either cipher (their
// nonces differ: little-endian for ChaChaPoly, big-endian for AESGCM).
func TestTransportIsNoise(t *testing.T) {
	for _, ciph := range []Cipher{CipherChaCha20Poly1305, CipherAESGCM} {
		t.Run(ciph.String(), func(t *testing.T) { testTransportIsNoise(t, ciph) })
	}
}

func testTransportIsNoise(t *testing.T, ciph Cipher) {
	ia, ib := mustIdentity(t), mustIdentity(t)
	prologue := []byte("prologue")
	mk := func(init bool, id *Identity) *noise.HandshakeState {
		suite := noise.NewCipherSuite(noise.DH25519, ciph.noiseCipher(), noise.HashSHA256)
		if !init {
			suite = newCipherSuite(id, ciph)
		}
		// The protocol names this package documents are the suite's.
		if got, want := "Noise_XX_"+string(suite.Name()), ProtocolName(false, ciph); got != want {
			t.Fatalf("suite protocol %s, ProtocolName %s", got, want)
		}
		if got, want := "Noise_XXpsk3_"+string(suite.Name()), ProtocolName(true, ciph); got != want {
			t.Fatalf("suite protocol %s, ProtocolName %s", got, want)
		}
		hs, err := noise.NewHandshakeState(noise.Config{CipherSuite: suite, Pattern: noise.HandshakeXX, Initiator: init,
			Prologue: prologue, StaticKeypair: noise.DHKey{Private: id.private[:], Public: id.public[:]}})
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	hi, hr := mk(true, ia), mk(false, ib)
	m1, _, _, err1 := hi.WriteMessage(nil, nil)
	_, _, _, err2 := hr.ReadMessage(nil, m1)
	m2, _, _, err3 := hr.WriteMessage(nil, nil)
	_, _, _, err4 := hi.ReadMessage(nil, m2)
	m3, i1, i2, err5 := hi.WriteMessage(nil, nil)
	_, r1, r2, err := hr.ReadMessage(nil, m3)
	if err := errors.Join(err1, err2, err3, err4, err5, err); err != nil || i1 == nil || r1 == nil {
		t.Fatal("handshake did not complete", err)
	}
	// Conn on the initiator side, flynn/noise on the responder side.
	var wireBuf, inBuf bytes.Buffer
	c, err := newConn(fakeConn{r: &inBuf, w: &wireBuf}, ciph, i1.UnsafeKey(), i2.UnsafeKey(), ib.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"first", "second", strings.Repeat("x", 70000)} {
		c.Write([]byte(msg))
	}
	var got []byte
	stream := wireBuf.Bytes()
	for len(stream) > 0 {
		l := int(stream[0])<<8 | int(stream[1])
		p, err := r1.Decrypt(nil, nil, stream[2:2+l])
		if err != nil {
			t.Fatalf("flynn/noise cannot open record: %v", err)
		}
		got = append(got, p...)
		stream = stream[2+l:]
	}
	if string(got) != "firstsecond"+strings.Repeat("x", 70000) {
		t.Fatal("plaintext differs")
	}
	// The other way: flynn/noise seals, Conn opens.
	for _, msg := range []string{"third", strings.Repeat("y", 1000)} {
		ct, err := r2.Encrypt(nil, nil, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		inBuf.Write(binary.BigEndian.AppendUint16(nil, uint16(len(ct))))
		inBuf.Write(ct)
	}
	if back, err := io.ReadAll(c); err != nil || string(back) != "third"+strings.Repeat("y", 1000) {
		t.Fatalf("Conn read %q, %v", back, err)
	}
	if c.Cipher() != ciph {
		t.Fatalf("Conn.Cipher = %v, want %v", c.Cipher(), ciph)
	}
}

// fakeConn is a net.Conn that reads from r and writes to w.
type fakeConn struct {
	net.Conn
	r io.Reader
	w io.Writer
}

func (f fakeConn) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f fakeConn) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f fakeConn) Close() error                { return nil }

// recorder is a net.Conn that keeps a copy of what is written.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

func (r *recorder) written() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.out.Bytes())
}

// TestHandshakeBytes checks the message sizes docs/security.md gives in
// section 3.3: the length fields and what follows them, in both modes and
// with both ciphers, and the prologues of section 3.2.
func TestHandshakeBytes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		psk       bool
		ciph      Cipher
		init, rsp []int // lengths of the messages each side writes
	}{
		{"XX", false, CipherChaCha20Poly1305, []int{32, 64}, []int{96}},
		{"XXpsk3", true, CipherChaCha20Poly1305, []int{48, 64}, []int{96}},
		{"XX AESGCM", false, CipherAESGCM, []int{32, 64}, []int{96}},
		{"XXpsk3 AESGCM", true, CipherAESGCM, []int{48, 64}, []int{96}},
	} {
		a, b := secretConfig(t, "a secret of sixteen"), secretConfig(t, "a secret of sixteen")
		if !tc.psk {
			a, b = keysPair(t)
		}
		withCipher(t, a, tc.ciph)
		withCipher(t, b, tc.ciph)
		client, server := tcpPair(t)
		rc, rs := &recorder{Conn: client}, &recorder{Conn: server}
		pa, pb := preambleOf(a), preambleOf(b)
		done := make(chan error, 1)
		var rconn net.Conn
		go func() {
			var err error
			rconn, _, err = b.Handshake(context.Background(), &peer.PreambleConn{Conn: rs, Local: pb, Remote: pa}, false)
			done <- err
		}()
		iconn, _, err := a.Handshake(context.Background(), &peer.PreambleConn{Conn: rc, Local: pa, Remote: pb}, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if iconn.(*Conn).Cipher() != tc.ciph || rconn.(*Conn).Cipher() != tc.ciph {
			t.Errorf("%s: ciphers %v and %v", tc.name, iconn.(*Conn).Cipher(), rconn.(*Conn).Cipher())
		}
		for side, got := range map[string][]byte{"initiator": rc.written(), "responder": rs.written()} {
			want := tc.init
			if side == "responder" {
				want = tc.rsp
			}
			var lens []int
			for len(got) >= 2 {
				l := int(binary.BigEndian.Uint16(got))
				lens = append(lens, l)
				got = got[min(2+l, len(got)):]
			}
			if fmt.Sprint(lens) != fmt.Sprint(want) || len(got) != 0 {
				t.Errorf("%s, %s: message lengths %v (and %d stray bytes), want %v", tc.name, side, lens, len(got), want)
			}
		}
	}
	// The prologue is the two preambles, initiator's first, flags
	// included: docs/security.md, section 3.2.
	p1, p2 := preamble(1), preamble(2)
	if p := Prologue(p1[:], p2[:]); fmt.Sprintf("%x", p) != "736c630001010100736c630001010200" {
		t.Errorf("prologue %x", p)
	}
	for c, want := range map[Cipher]string{
		CipherChaCha20Poly1305: "736c630001010100736c630001010100",
		CipherAESGCM:           "736c630001010101736c630001010101",
	} {
		a, b := keysPair(t)
		pa, pb := preambleOf(withCipher(t, a, c)), preambleOf(withCipher(t, b, c))
		if p := Prologue(pa[:], pb[:]); fmt.Sprintf("%x", p) != want {
			t.Errorf("%v: prologue %x, want %s", c, p, want)
		}
	}
}
