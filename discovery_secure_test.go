package slc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
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
