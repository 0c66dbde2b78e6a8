package slc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
	"github.com/slc-go/slc/secure"
)

// discKeySecurity is a stand-in for secure mode, enough to test what
// discovery does with keys: each side sends its "key" in the clear and
// the other takes it as proven. claim is the fingerprint it advertises
// (LocalFingerprint), which a lying node sets to another key's.
type discKeySecurity struct{ key, claim string }

type discKeyID string

func (k discKeyID) Fingerprint() string { return string(k) }

func (s *discKeySecurity) Mode() uint8 { return wire.ModeNoiseXX }

func (s *discKeySecurity) Handshake(_ context.Context, c net.Conn, _ bool) (net.Conn, peer.Identity, error) {
	if _, err := c.Write(append([]byte{byte(len(s.key))}, s.key...)); err != nil {
		return nil, nil, err
	}
	var n [1]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, nil, err
	}
	key := make([]byte, n[0])
	if _, err := io.ReadFull(c, key); err != nil {
		return nil, nil, err
	}
	return c, discKeyID(key), nil
}

func (s *discKeySecurity) Authorize(string, peer.Identity) error { return nil }

func (s *discKeySecurity) LocalFingerprint() string { return s.claim }

// TestDiscoverySecureFingerprint: in secure mode a node advertises its
// key's fingerprint; Connect("mdns:NAME") checks that the key the
// handshake proves is that one, and a node whose key does not match is
// refused at once, as a permanent rejection, without retries.
func TestDiscoverySecureFingerprint(t *testing.T) {
	honest := newComm(t, "disc-sec-honest", onLo(slc.WithSecurity(&discKeySecurity{key: "KEY-HONEST", claim: "KEY-HONEST"}))...)
	liar := newComm(t, "disc-sec-liar", onLo(slc.WithSecurity(&discKeySecurity{key: "KEY-LIAR", claim: "KEY-HONEST"}))...)
	c := newComm(t, "disc-sec-c", onLo(slc.WithSecurity(&discKeySecurity{key: "KEY-C"}))...)
	listen(t, honest)
	listen(t, liar)
	if err := honest.Advertise("disc-sec-honest"); err != nil {
		t.Fatal(err)
	}
	if err := liar.Advertise("disc-sec-liar"); err != nil {
		t.Fatal(err)
	}
	svcs, err := c.Discover(testCtx(t, time.Second), "disc-sec-honest")
	if err != nil || len(svcs) != 1 || svcs[0].Fingerprint != "KEY-HONEST" {
		t.Fatalf("discovered %+v, %v", svcs, err)
	}
	id, err := c.Connect(testCtx(t, 5*time.Second), "mdns:disc-sec-honest")
	if err != nil || id != honest.Name() {
		t.Fatalf("connect to the honest node: %q, %v", id, err)
	}
	exchange(t, c, honest, id)

	start := time.Now()
	_, err = c.Connect(testCtx(t, 20*time.Second), "mdns:disc-sec-liar")
	var pe *slc.ProtocolError
	if !errors.As(err, &pe) || pe.Code != wire.CodeUnauthorized || !pe.Permanent() {
		t.Fatalf("connect to the node whose key is not the advertised one: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the mismatch took %v: it must be refused at once, not retried", took)
	}
	t.Logf("refused: %v", err)
	if slices.Contains(c.Peers(), liar.Name()) {
		t.Fatalf("the liar is a peer: %v", c.Peers())
	}
	// A plain node advertises no fingerprint.
	plain := newComm(t, "disc-sec-plain", onLo()...)
	listen(t, plain)
	if err := plain.Advertise(""); err != nil {
		t.Fatal(err)
	}
	svcs, err = c.Discover(testCtx(t, time.Second), string(plain.Name()))
	if err != nil || len(svcs) != 1 || svcs[0].Fingerprint != "" {
		t.Fatalf("plain node: %+v, %v", svcs, err)
	}
}

// lyingSecure is real secure mode (the embedded *secure.Config runs the
// Noise handshake and the trust checks) that advertises claim over mDNS
// instead of its own key's fingerprint.
type lyingSecure struct {
	*secure.Config
	claim string
}

func (l lyingSecure) LocalFingerprint() string { return l.claim }

// TestDiscoverySecureRealKeys: the same with the real secure mode, keys
// and authorized keys, on lo. A node advertises the fingerprint of its
// identity; Connect("mdns:NAME") succeeds when the Noise handshake proves
// that key, and refuses a node whose proven key is not the advertised one
// at once, permanently, with both fingerprints in the reason.
func TestDiscoverySecureRealKeys(t *testing.T) {
	ih, il, ic := newIdentity(t), newIdentity(t), newIdentity(t)
	honest := newComm(t, "disc-real-honest", onLo(slc.WithIdentity(ih), slc.WithAuthorizedKeys(ic.PublicKey()))...)
	lsc := secure.NewConfig()
	if err := lsc.SetIdentity(il); err != nil {
		t.Fatal(err)
	}
	if err := lsc.AddAuthorizedKeys(secure.AuthorizedKey{Key: ic.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	liar := newComm(t, "disc-real-liar", onLo(slc.WithSecurity(lyingSecure{Config: lsc, claim: ih.PublicKey().Fingerprint()}))...)
	// c trusts both keys: the liar passes the handshake, and only the
	// check against what it advertised refuses it.
	c := newComm(t, "disc-real-c", onLo(slc.WithIdentity(ic), slc.WithAuthorizedKeys(ih.PublicKey(), il.PublicKey()))...)
	cEv, liarEv := watch(t, c), watch(t, liar)
	listen(t, honest)
	listen(t, liar)
	if err := honest.Advertise(""); err != nil {
		t.Fatal(err)
	}
	if err := liar.Advertise(""); err != nil {
		t.Fatal(err)
	}

	svcs, err := c.Discover(testCtx(t, time.Second), "disc-real-honest")
	if err != nil || len(svcs) != 1 {
		t.Fatalf("discovered %+v, %v", svcs, err)
	}
	if got, want := svcs[0].Fingerprint, ih.PublicKey().Fingerprint(); got != want {
		t.Fatalf("advertised fingerprint %q, want the identity's %q", got, want)
	}
	id, err := c.Connect(testCtx(t, 5*time.Second), "mdns:disc-real-honest")
	if err != nil || id != honest.Name() {
		t.Fatalf("connect to the honest node: %q, %v", id, err)
	}
	pc := cEv.wait(testCtx(t, 5*time.Second), t, "PeerConnected", isType[*actors.PeerConnected]).(*actors.PeerConnected)
	if pc.Key != ih.PublicKey().Fingerprint() {
		t.Fatalf("the honest node proved key %s, want %s", pc.Key, ih.PublicKey().Fingerprint())
	}
	exchange(t, c, honest, id)

	svcs, err = c.Discover(testCtx(t, time.Second), "disc-real-liar")
	if err != nil || len(svcs) != 1 || svcs[0].Fingerprint != ih.PublicKey().Fingerprint() {
		t.Fatalf("discovered the liar as %+v, %v", svcs, err)
	}
	start := time.Now()
	_, err = c.Connect(testCtx(t, 20*time.Second), "mdns:disc-real-liar")
	took := time.Since(start)
	want := "proved key " + il.PublicKey().Fingerprint() + ", not the key " + ih.PublicKey().Fingerprint() + " advertised over mDNS"
	var pe *slc.ProtocolError
	if !errors.As(err, &pe) || pe.Code != wire.CodeUnauthorized || !pe.Permanent() || !errors.Is(err, secure.ErrUnauthorized) ||
		!strings.Contains(err.Error(), want) {
		t.Fatalf("connect to the node whose key is not the advertised one: %v, want unauthorized %q", err, want)
	}
	if took > 5*time.Second {
		t.Fatalf("the mismatch took %v: it must be refused at once, not retried", took)
	}
	ctx := testCtx(t, 5*time.Second)
	ev := cEv.wait(ctx, t, "HandshakeRejected", rejected(errIs(secure.ErrUnauthorized))).(*actors.HandshakeRejected)
	if ev.ByRemote || !strings.Contains(ev.Err.Error(), want) {
		t.Fatalf("c's event: %+v", ev)
	}
	ev = liarEv.wait(ctx, t, "HandshakeRejected (liar)", rejected(errIs(secure.ErrUnauthorized))).(*actors.HandshakeRejected)
	if !ev.ByRemote || !strings.Contains(ev.Err.Error(), want) {
		t.Fatalf("liar's event: %+v", ev)
	}
	if slices.Contains(c.Peers(), liar.Name()) {
		t.Fatalf("the liar is a peer: %v", c.Peers())
	}
	noMessages(t, liar)
}
