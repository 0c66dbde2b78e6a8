package slc_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/secure"
)

// TestSecureCipher: nodes with any cipher preferences connect and
// exchange messages both ways, and each preamble on the wire carries its
// sender's preference in byte 7 (docs/protocol.md, section 2.1).
func TestSecureCipher(t *testing.T) {
	auto := byte(0)
	if secure.HardwareAESGCM() {
		auto = wire.PreambleAESGCM
	}
	for _, tc := range []struct {
		name             string
		dialer, listener []slc.Option
		flags            [2]byte // in the dialer's preamble, in the listener's
	}{
		{"default", nil, nil, [2]byte{auto, auto}},
		{"both aesgcm", []slc.Option{slc.WithCipher(secure.CipherAESGCM)}, []slc.Option{slc.WithCipher(secure.CipherAESGCM)}, [2]byte{1, 1}},
		{"aesgcm and chacha", []slc.Option{slc.WithCipher(secure.CipherAESGCM)}, []slc.Option{slc.WithCipher(secure.CipherChaCha20Poly1305)}, [2]byte{1, 0}},
		{"chacha and auto", []slc.Option{slc.WithCipher(secure.CipherChaCha20Poly1305)}, []slc.Option{slc.WithCipher(secure.CipherAuto)}, [2]byte{0, auto}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			il, id := newIdentity(t), newIdentity(t)
			l := newComm(t, "cipher-l", append([]slc.Option{slc.WithIdentity(il), slc.WithAuthorizedKeys(id.PublicKey())}, tc.listener...)...)
			d := newComm(t, "cipher-d", append([]slc.Option{slc.WithIdentity(id), slc.WithAuthorizedKeys(il.PublicKey())}, tc.dialer...)...)
			tap, p := tappedPair(ctx, t, l, d)
			if _, err := d.Send(ctx, Seq{N: 1}, p); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Send(ctx, Seq{N: 2}, "cipher-d"); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*slc.Communicator{l, d} {
				if m, err := c.Receive(ctx); err != nil {
					t.Fatalf("%s: %v", c.Name(), err)
				} else if n := m.Body.(Seq).N; n != 1 && n != 2 {
					t.Fatalf("%s received %+v", c.Name(), m.Body)
				}
			}
			for i, dir := range []testutil.Direction{testutil.ClientToServer, testutil.ServerToClient} {
				b := tap.bytes(dir)
				if len(b) < wire.PreambleLen {
					t.Fatalf("%v: %d bytes", dir, len(b))
				}
				if b[7] != tc.flags[i] {
					t.Errorf("%v: preamble %x, want flags %#x", dir, b[:8], tc.flags[i])
				}
			}
		})
	}
}

// TestSecureCipherDowngradeRefused: an attacker on the path who clears the
// AES-GCM flag in one preamble, so that the nodes would settle for
// ChaCha20-Poly1305, makes the handshake fail authentication on both
// sides instead: the preambles are the Noise prologue. Nothing is
// delivered.
func TestSecureCipherDowngradeRefused(t *testing.T) {
	for _, dir := range []testutil.Direction{testutil.ClientToServer, testutil.ServerToClient} {
		t.Run(dir.String(), func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			il, id := newIdentity(t), newIdentity(t)
			l := newComm(t, "down-l", slc.WithIdentity(il), slc.WithAuthorizedKeys(id.PublicKey()), slc.WithCipher(secure.CipherAESGCM))
			d := newComm(t, "down-d", slc.WithIdentity(id), slc.WithAuthorizedKeys(il.PublicKey()), slc.WithCipher(secure.CipherAESGCM), slc.WithRetries(0))
			proxy, err := testutil.NewProxy(listen(t, l))
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			proxy.CorruptFunc(func(got testutil.Direction, off int64, b []byte) {
				if got == dir && off <= 7 && 7 < off+int64(len(b)) {
					b[7-off] &^= wire.PreambleAESGCM
				}
			})
			lEv, dEv := watch(t, l), watch(t, d)
			_, err = d.Connect(ctx, proxy.Addr())
			if !errors.Is(err, secure.ErrAuthFailed) {
				t.Fatalf("Connect through a downgrading proxy: %v", err)
			}
			for _, ev := range []*events{lEv, dEv} {
				hr := ev.wait(ctx, t, "HandshakeRejected", rejected(errIs(secure.ErrAuthFailed))).(*actors.HandshakeRejected)
				if pe, ok := wire.AsProtocolError(hr.Err); !ok || !pe.Remote && !strings.Contains(pe.Reason, "preambles") {
					t.Errorf("%v", hr.Err)
				}
			}
			noMessages(t, l)
			noMessages(t, d)
		})
	}
}

// TestSecureCipherOptionErrors: WithCipher is a secure option like the
// others.
func TestSecureCipherOptionErrors(t *testing.T) {
	id := newIdentity(t)
	for _, tc := range []struct {
		name string
		opts []slc.Option
		want string
	}{
		{"twice", []slc.Option{slc.WithIdentity(id), slc.WithAuthorizedKeys(id.PublicKey()),
			slc.WithCipher(secure.CipherAESGCM), slc.WithCipher(secure.CipherChaCha20Poly1305)}, "cipher is given twice"},
		{"unknown", []slc.Option{slc.WithIdentity(id), slc.WithAuthorizedKeys(id.PublicKey()), slc.WithCipher(secure.Cipher(9))}, "unknown cipher"},
		{"alone", []slc.Option{slc.WithCipher(secure.CipherAESGCM)}, "needs this node's identity (WithIdentity) or a network secret"},
		{"with WithSecurity", []slc.Option{slc.WithSecurity(fakeSecurity{}), slc.WithCipher(secure.CipherAESGCM)}, "cannot be combined with WithSecurity"},
	} {
		c, err := slc.New(append([]slc.Option{slc.WithName("cipher-opts")}, tc.opts...)...)
		if err == nil {
			c.Close()
			t.Errorf("%s: New succeeded", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
