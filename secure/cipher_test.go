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
	"testing"

	"github.com/flynn/noise"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
)

var ciphers = []Cipher{CipherAuto, CipherChaCha20Poly1305, CipherAESGCM}

func TestCipherNames(t *testing.T) {
	for _, c := range ciphers {
		got, err := ParseCipher(strings.ToUpper(c.String()))
		if err != nil || got != c {
			t.Errorf("ParseCipher(%q) = %v, %v", strings.ToUpper(c.String()), got, err)
		}
	}
	if _, err := ParseCipher("rc4"); err == nil || !strings.Contains(err.Error(), "want auto, chacha20poly1305 or aesgcm") {
		t.Errorf("ParseCipher(rc4): %v", err)
	}
	c := NewConfig()
	if err := c.SetCipher(Cipher(7)); err == nil {
		t.Error("SetCipher accepted an unknown cipher")
	}
	if err := c.SetCipher(CipherAESGCM); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCipher(CipherAESGCM); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("SetCipher twice: %v", err)
	}
}

// withCipher sets conf's cipher preference and returns conf.
func withCipher(t testing.TB, conf *Config, c Cipher) *Config {
	t.Helper()
	if err := conf.SetCipher(c); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestPreambleFlagsOfConfig: the flags byte says whether the node prefers
// AES-256-GCM; CipherAuto follows the CPU.
func TestPreambleFlagsOfConfig(t *testing.T) {
	auto := uint8(0)
	if HardwareAESGCM() {
		auto = wire.PreambleAESGCM
	}
	for c, want := range map[Cipher]uint8{CipherAuto: auto, CipherChaCha20Poly1305: 0, CipherAESGCM: wire.PreambleAESGCM} {
		if got := withCipher(t, NewConfig(), c).PreambleFlags(); got != want {
			t.Errorf("%v: flags %#x, want %#x", c, got, want)
		}
	}
	if got := NewConfig().PreambleFlags(); got != auto {
		t.Errorf("default: flags %#x, want %#x", got, auto)
	}
	t.Logf("this CPU has AES-GCM instructions: %v", HardwareAESGCM())
}

// TestNegotiateCipher: the rule on the two preambles is symmetric, reads
// only bit 0x01 of byte 7, and falls back to ChaCha20-Poly1305.
func TestNegotiateCipher(t *testing.T) {
	pre := func(flags uint8) []byte {
		return wire.AppendPreamble(nil, wire.Preamble{Min: 1, Max: 1, Mode: wire.ModeNoiseXX, Flags: flags})
	}
	for _, tc := range []struct {
		a, b []byte
		want Cipher
	}{
		{pre(0), pre(0), CipherChaCha20Poly1305},
		{pre(1), pre(0), CipherChaCha20Poly1305},
		{pre(1), pre(1), CipherAESGCM},
		{pre(0xff), pre(0x01), CipherAESGCM},
		{pre(0xfe), pre(0xff), CipherChaCha20Poly1305}, // reserved bits mean nothing
		{pre(1), []byte("slc\x00\x00\x00\x01\x01"), CipherChaCha20Poly1305},
		{pre(1), pre(1)[:7], CipherChaCha20Poly1305},
	} {
		for _, pair := range [][2][]byte{{tc.a, tc.b}, {tc.b, tc.a}} {
			if got := negotiateCipher(pair[0], pair[1]); got != tc.want {
				t.Errorf("negotiateCipher(%x, %x) = %v, want %v", pair[0], pair[1], got, tc.want)
			}
		}
	}
}

// TestHandshakeCipher: every combination of preferences, with keys and
// with a network secret. Both sides end with the same cipher, AES-256-GCM
// exactly when both prefer it, and data crosses both ways.
func TestHandshakeCipher(t *testing.T) {
	for _, mode := range []string{"XX", "XXpsk3"} {
		for _, ca := range ciphers {
			for _, cb := range ciphers {
				t.Run(fmt.Sprintf("%s/%v-%v", mode, ca, cb), func(t *testing.T) {
					var a, b *Config
					if mode == "XX" {
						a, b = keysPair(t)
					} else {
						a, b = secretConfig(t, "the lab's network secret"), secretConfig(t, "the lab's network secret")
					}
					withCipher(t, a, ca)
					withCipher(t, b, cb)
					ir, rr := handshake(t, a, b, nil)
					if ir.err != nil || rr.err != nil {
						t.Fatalf("initiator %v, responder %v", ir.err, rr.err)
					}
					want := CipherChaCha20Poly1305
					if ca.prefersAES() && cb.prefersAES() {
						want = CipherAESGCM
					}
					if gi, gr := ir.conn.(*Conn).Cipher(), rr.conn.(*Conn).Cipher(); gi != want || gr != want {
						t.Fatalf("ciphers: initiator %v, responder %v; want %v", gi, gr, want)
					}
					exchange(t, ir.conn, rr.conn)
				})
			}
		}
	}
}

// handshakeTampered is handshake with an attacker on the path: toResp and
// toInit edit the preambles the responder and the initiator receive.
func handshakeTampered(t testing.TB, dialer, listener *Config, toResp, toInit func(*[8]byte)) (init, resp result) {
	t.Helper()
	client, server := tcpPair(t)
	ip, rp := preambleOf(dialer), preambleOf(listener)
	gotI, gotR := rp, ip
	if toResp != nil {
		toResp(&gotR)
	}
	if toInit != nil {
		toInit(&gotI)
	}
	done := make(chan result, 1)
	go func() {
		c, id, err := listener.Handshake(context.Background(), &peer.PreambleConn{Conn: server, Local: rp, Remote: gotR}, false)
		done <- result{c, id, err}
	}()
	c, id, err := dialer.Handshake(context.Background(), &peer.PreambleConn{Conn: client, Local: ip, Remote: gotI}, true)
	return result{c, id, err}, <-done
}

// TestHandshakeCipherFlagTampered: an attacker who clears the AES-GCM flag
// of one preamble (a downgrade) or sets it (to force AES-GCM on a node
// that does not want it) does not change the cipher: the handshake fails
// authentication on both sides, because the preambles are the prologue.
// With keys the initiator detects it on message 2; with a network secret
// the responder already does on message 1, whose tag covers the prologue.
func TestHandshakeCipherFlagTampered(t *testing.T) {
	clear := func(p *[8]byte) { p[7] &^= wire.PreambleAESGCM }
	set := func(p *[8]byte) { p[7] |= wire.PreambleAESGCM }
	for _, mode := range []string{"XX", "XXpsk3"} {
		for _, tc := range []struct {
			name           string
			pref           Cipher
			toResp, toInit func(*[8]byte)
		}{
			{"downgrade initiator's", CipherAESGCM, clear, nil},
			{"downgrade responder's", CipherAESGCM, nil, clear},
			{"downgrade both", CipherAESGCM, clear, clear},
			{"upgrade initiator's", CipherChaCha20Poly1305, set, nil},
			{"upgrade both", CipherChaCha20Poly1305, set, set},
		} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				var a, b *Config
				if mode == "XX" {
					a, b = keysPair(t)
				} else {
					a, b = secretConfig(t, "the lab's network secret"), secretConfig(t, "the lab's network secret")
				}
				withCipher(t, a, tc.pref)
				withCipher(t, b, tc.pref)
				ir, rr := handshakeTampered(t, a, b, tc.toResp, tc.toInit)
				detector, notified, msg := ir.err, rr.err, "handshake message 2"
				if mode == "XXpsk3" {
					detector, notified, msg = rr.err, ir.err, "handshake message 1"
				}
				pe, ok := wire.AsProtocolError(detector)
				if !ok || pe.Code != wire.CodeAuthFailed || pe.Remote || !strings.Contains(pe.Reason, msg+" from the remote failed authentication") ||
					!strings.Contains(pe.Reason, "preambles") {
					t.Fatalf("detecting side: %v; want %s failing authentication", detector, msg)
				}
				if pe, ok := wire.AsProtocolError(notified); !ok || pe.Code != wire.CodeAuthFailed || !pe.Remote || !errors.Is(notified, ErrAuthFailed) {
					t.Fatalf("other side: %v; want the remote's abort notice", notified)
				}
			})
		}
	}
}

// legacyHandshake is the handshake of an slc node from before cipher
// negotiation, written with flynn/noise alone: ChaChaPoly whatever the
// preambles say, byte 7 bound through the prologue but never read.
func legacyHandshake(conn net.Conn, id *Identity, psk *[32]byte, initiator bool, prologue []byte) (send, recv *noise.CipherState, err error) {
	cfg := noise.Config{
		CipherSuite:   noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256),
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      prologue,
		StaticKeypair: noise.DHKey{Private: id.private[:], Public: id.public[:]},
	}
	if psk != nil {
		cfg.PresharedKey, cfg.PresharedKeyPlacement = psk[:], 3
	}
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, nil, err
	}
	h := &handshaker{nc: conn, hs: hs}
	if initiator {
		if err = h.write(); err == nil {
			if err = h.read(2); err == nil {
				send, recv, err = h.writeLast()
			}
		}
		return send, recv, err
	}
	if err = h.read(1); err == nil {
		if err = h.write(); err == nil {
			recv, send, err = h.readLast()
		}
	}
	return send, recv, err
}

// TestHandshakeLegacyPeer: a node that prefers AES-256-GCM, dialing or
// accepting a node from before cipher negotiation (which sends 0 in byte 7
// and always uses ChaChaPoly), uses ChaCha20-Poly1305, and data crosses
// both ways, with keys and with a network secret.
func TestHandshakeLegacyPeer(t *testing.T) {
	for _, mode := range []string{"XX", "XXpsk3"} {
		for _, newDials := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/new node dials %v", mode, newDials), func(t *testing.T) {
				legacyPre := preamble(wire.ModeNoiseXX)
				var cfg *Config
				var legacyID *Identity
				var psk *[32]byte
				if mode == "XX" {
					var other *Config
					cfg, other = keysPair(t)
					legacyID = other.identity
				} else {
					cfg = secretConfig(t, "the lab's network secret")
					psk = secretConfig(t, "the lab's network secret").psk
					legacyID = mustIdentity(t)
					legacyPre = preamble(wire.ModeNoisePSK)
				}
				withCipher(t, cfg, CipherAESGCM)
				newPre := preambleOf(cfg)
				if newPre[7] != wire.PreambleAESGCM {
					t.Fatalf("the new node's preamble %x does not prefer AES-GCM", newPre)
				}
				client, server := tcpPair(t)
				newEnd, legacyEnd := client, server
				prologue := Prologue(newPre[:], legacyPre[:])
				if !newDials {
					newEnd, legacyEnd = server, client
					prologue = Prologue(legacyPre[:], newPre[:])
				}
				type legacyResult struct {
					send, recv *noise.CipherState
					err        error
				}
				done := make(chan legacyResult, 1)
				go func() {
					s, r, err := legacyHandshake(legacyEnd, legacyID, psk, !newDials, prologue)
					done <- legacyResult{s, r, err}
				}()
				c, _, err := cfg.Handshake(context.Background(), &peer.PreambleConn{Conn: newEnd, Local: newPre, Remote: legacyPre}, newDials)
				lr := <-done
				if err != nil || lr.err != nil {
					t.Fatalf("new node %v, legacy node %v", err, lr.err)
				}
				if got := c.(*Conn).Cipher(); got != CipherChaCha20Poly1305 {
					t.Fatalf("the new node uses %v with a legacy node", got)
				}
				// New to legacy.
				msg := bytes.Repeat([]byte("to the legacy node "), 5000)
				go c.Write(msg)
				var got []byte
				for len(got) < len(msg) {
					var hdr [2]byte
					if _, err := io.ReadFull(legacyEnd, hdr[:]); err != nil {
						t.Fatal(err)
					}
					ct := make([]byte, binary.BigEndian.Uint16(hdr[:]))
					if _, err := io.ReadFull(legacyEnd, ct); err != nil {
						t.Fatal(err)
					}
					p, err := lr.recv.Decrypt(nil, nil, ct)
					if err != nil {
						t.Fatalf("the legacy node cannot open a record: %v", err)
					}
					got = append(got, p...)
				}
				if !bytes.Equal(got, msg) {
					t.Fatal("the legacy node read other bytes")
				}
				// Legacy to new.
				ct, err := lr.send.Encrypt(binary.BigEndian.AppendUint16(nil, 5+16), nil, []byte("hello"))
				if err != nil {
					t.Fatal(err)
				}
				legacyEnd.Write(ct)
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
					t.Fatalf("the new node read %q, %v", buf, err)
				}
			})
		}
	}
}
