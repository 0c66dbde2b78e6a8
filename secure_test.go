package slc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
	"github.com/slc-go/slc/secure"
)

// newIdentity makes a key pair for a test node.
func newIdentity(t *testing.T) *secure.Identity {
	t.Helper()
	id, err := secure.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// rejected matches HandshakeRejected events whose error satisfies is.
func rejected(is func(error) bool) func(any) bool {
	return func(ev any) bool {
		hr, ok := ev.(*actors.HandshakeRejected)
		return ok && hr.Err != nil && is(hr.Err)
	}
}

func errIs(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// secureTap records the bytes a proxy forwards in both directions, through
// its CorruptFunc hook, without changing them.
type secureTap struct {
	mu  sync.Mutex
	buf [2]bytes.Buffer // by direction
}

func (tp *secureTap) hook(dir testutil.Direction, _ int64, b []byte) {
	tp.mu.Lock()
	tp.buf[dir].Write(b)
	tp.mu.Unlock()
}

func (tp *secureTap) bytes(dir testutil.Direction) []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Clone(tp.buf[dir].Bytes())
}

// tappedPair connects d to l through a proxy whose tap records the bytes
// both ways, and waits until l has the session too. It returns d's peer ID
// for l; the proxy closes when the test ends.
func tappedPair(ctx context.Context, t *testing.T, l, d *slc.Communicator) (*secureTap, slc.PeerID) {
	t.Helper()
	proxy, err := testutil.NewProxy(listen(t, l))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	tap := &secureTap{}
	proxy.CorruptFunc(tap.hook)
	lEv := watch(t, l)
	p, err := d.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	peerUp(ctx, t, lEv, d.Name())
	return tap, p
}

// peerUp waits until c's session with name is up on c's side (a listener
// learns of a connection after the dialer's Connect returned).
func peerUp(ctx context.Context, t *testing.T, ev *events, name slc.PeerID) {
	t.Helper()
	ev.wait(ctx, t, "PeerConnected "+string(name), func(e any) bool {
		pc, ok := e.(*actors.PeerConnected)
		return ok && pc.Peer == name
	})
}

// noMessages checks that nothing waits in c's mailbox.
func noMessages(t *testing.T, c *slc.Communicator) {
	t.Helper()
	if m, ok := c.TryReceive(); ok {
		t.Fatalf("%s received a message: %+v", c.Name(), m)
	}
}

// TestSecureExchange: two nodes that authorize each other's keys exchange
// typed messages both ways, and each side is told the other's name.
func TestSecureExchange(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	ia, ib := newIdentity(t), newIdentity(t)
	a := newComm(t, "sec-a", slc.WithIdentity(ia), slc.WithAuthorizedPeer("sec-b", ib.PublicKey()))
	b := newComm(t, "sec-b", slc.WithIdentity(ib), slc.WithAuthorizedKeys(ia.PublicKey()))
	aEv := watch(t, a)
	p, err := b.Connect(ctx, listen(t, a))
	if err != nil || p != "sec-a" {
		t.Fatalf("connect: %q %v", p, err)
	}
	peerUp(ctx, t, aEv, "sec-b")
	for i := 1; i <= 100; i++ {
		if _, err := b.Send(ctx, Seq{N: i, Payload: bytes.Repeat([]byte{byte(i)}, i*50)}, p); err != nil {
			t.Fatal(err)
		}
		id, err := a.Send(ctx, Seq{N: -i}, "sec-b")
		if err != nil {
			t.Fatal(err)
		}
		if i == 100 {
			if err := a.WaitAcknowledged(ctx, id, "sec-b"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 1; i <= 100; i++ {
		m, err := a.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s := m.Body.(Seq); s.N != i || len(s.Payload) != i*50 || m.From != "sec-b" {
			t.Fatalf("a got %+v from %s", s.N, m.From)
		}
		m, err = b.Receive(ctx)
		if err != nil || m.Body.(Seq).N != -i {
			t.Fatalf("b got %+v %v", m.Body, err)
		}
	}
}

// TestSecureUnauthorizedKey: a key that is not authorized is refused at
// the handshake, on whichever side does not trust it, with the reason in
// the HandshakeRejected events of both sides and in Connect's error, and
// no application message goes either way.
func TestSecureUnauthorizedKey(t *testing.T) {
	t.Run("listener refuses", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		ia, ib, other := newIdentity(t), newIdentity(t), newIdentity(t)
		a := newComm(t, "sec-a", slc.WithIdentity(ia), slc.WithAuthorizedKeys(other.PublicKey()))
		b := newComm(t, "sec-b", slc.WithIdentity(ib), slc.WithAuthorizedKeys(ia.PublicKey()))
		aEv, bEv := watch(t, a), watch(t, b)
		checkRefused(ctx, t, a, b, aEv, bEv, ib.PublicKey().Fingerprint()+" is not in this node's authorized keys")
	})
	t.Run("dialer refuses", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		ia, ib := newIdentity(t), newIdentity(t)
		a := newComm(t, "sec-a", slc.WithIdentity(ia), slc.WithAuthorizedKeys(ib.PublicKey()))
		b := newComm(t, "sec-b", slc.WithIdentity(ib), slc.WithAuthorizedKeys(newIdentity(t).PublicKey()))
		aEv, bEv := watch(t, a), watch(t, b)
		checkRefused(ctx, t, b, b, bEv, aEv, ia.PublicKey().Fingerprint()+" is not in this node's authorized keys", a)
	})
	t.Run("key used with another name", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		ia, ib := newIdentity(t), newIdentity(t)
		a := newComm(t, "sec-a", slc.WithIdentity(ia), slc.WithAuthorizedPeer("sec-b", ib.PublicKey()))
		b := newComm(t, "sec-impostor", slc.WithIdentity(ib), slc.WithAuthorizedKeys(ia.PublicKey()))
		aEv, bEv := watch(t, a), watch(t, b)
		checkRefused(ctx, t, a, b, aEv, bEv, `is authorized only as "sec-b", not "sec-impostor"`)
	})
}

// checkRefused has dialer connect to listener (the last argument, or
// refuser when none) and checks that refuser refused it with want.
func checkRefused(ctx context.Context, t *testing.T, refuser, dialer *slc.Communicator, refuserEv, otherEv *events, want string, listener ...*slc.Communicator) {
	t.Helper()
	ln := refuser
	if len(listener) > 0 {
		ln = listener[0]
	}
	_, err := dialer.Connect(ctx, listen(t, ln))
	pe, ok := wire.AsProtocolError(err)
	if !ok || pe.Code != wire.CodeUnauthorized || !errors.Is(err, secure.ErrUnauthorized) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Connect: %v, want unauthorized %q", err, want)
	}
	if pe.Permanent() != true {
		t.Fatal("an unauthorized key must be a permanent failure")
	}
	// The refusing side reports its own decision, the other side the
	// refusal it received; both name the reason.
	ev := refuserEv.wait(ctx, t, "HandshakeRejected (refuser)", rejected(errIs(secure.ErrUnauthorized))).(*actors.HandshakeRejected)
	if ev.ByRemote || !strings.Contains(ev.Err.Error(), want) {
		t.Fatalf("refuser's event: %+v", ev)
	}
	ev = otherEv.wait(ctx, t, "HandshakeRejected (refused)", rejected(errIs(secure.ErrUnauthorized))).(*actors.HandshakeRejected)
	if !ev.ByRemote || !strings.Contains(ev.Err.Error(), want) {
		t.Fatalf("refused side's event: %+v", ev)
	}
	// No session, no message either way. (The refused dialer's session
	// may be listed by Peers for a moment after Connect returned, until
	// its actor has stopped.)
	for _, c := range []*slc.Communicator{ln, dialer} {
		testutil.Eventually(t, 5*time.Second, func() bool { return len(c.Peers()) == 0 }, "%s still lists peers %v", c.Name(), c.Peers())
		if _, err := c.Send(ctx, Seq{N: 1}); !errors.Is(err, slc.ErrNoPeers) {
			t.Fatalf("%s: Send to every peer: %v", c.Name(), err)
		}
		for _, name := range []slc.PeerID{ln.Name(), dialer.Name()} {
			if _, err := c.Send(ctx, Seq{N: 1}, name); err == nil {
				t.Fatalf("%s could send to %s", c.Name(), name)
			}
		}
		noMessages(t, c)
	}
	if n := refuserEv.count(isType[*actors.PeerConnected]) + otherEv.count(isType[*actors.PeerConnected]); n != 0 {
		t.Fatalf("%d PeerConnected events", n)
	}
}

// TestSecureModeMismatch: plain and secure nodes never talk. Whichever side
// dials, both fail at once (within a second of the dial) with "security
// mode mismatch" and say which side is which; so do a Noise XX node and a
// network-secret node, whichever dials.
func TestSecureModeMismatch(t *testing.T) {
	ia := newIdentity(t)
	secureOpts := []slc.Option{slc.WithIdentity(ia), slc.WithAuthorizedKeys(newIdentity(t).PublicKey())}
	pskOpts := []slc.Option{slc.WithNetworkSecret([]byte("a network secret of the lab"))}
	for _, tc := range []struct {
		name               string
		dialer, listener   []slc.Option
		dialerSays, lnSays string
	}{
		{"plain dials secure", nil, secureOpts,
			"local side is plain, remote side is secure (noise-xx)", "local side is secure (noise-xx), remote side is plain"},
		{"secure dials plain", secureOpts, nil,
			"local side is secure (noise-xx), remote side is plain", "local side is plain, remote side is secure (noise-xx)"},
		{"secret dials keys", pskOpts, secureOpts,
			"local side is secure (noise-xx with network secret), remote side is secure (noise-xx)",
			"local side is secure (noise-xx), remote side is secure (noise-xx with network secret)"},
		{"keys dials secret", secureOpts, pskOpts,
			"local side is secure (noise-xx), remote side is secure (noise-xx with network secret)",
			"local side is secure (noise-xx with network secret), remote side is secure (noise-xx)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			ln := newComm(t, "mm-listener", tc.listener...)
			d := newComm(t, "mm-dialer", tc.dialer...)
			lnEv := watch(t, ln)
			start := time.Now()
			_, err := d.Connect(ctx, listen(t, ln))
			took := time.Since(start)
			pe, ok := wire.AsProtocolError(err)
			if !ok || pe.Code != wire.CodeSecurityMismatch || !strings.Contains(err.Error(), tc.dialerSays) {
				t.Fatalf("Connect: %v, want %q", err, tc.dialerSays)
			}
			// At once: no timeout, no retry (the handshake timeout is 2s),
			// on both sides: the listener reports it within a second of
			// the dial too.
			if took > time.Second {
				t.Fatalf("Connect took %v", took)
			}
			lnCtx, cancel := context.WithDeadline(ctx, start.Add(time.Second))
			defer cancel()
			ev := lnEv.wait(lnCtx, t, "HandshakeRejected within 1s of the dial", isType[*actors.HandshakeRejected]).(*actors.HandshakeRejected)
			if pe, ok := wire.AsProtocolError(ev.Err); !ok || pe.Code != wire.CodeSecurityMismatch || !strings.Contains(ev.Err.Error(), tc.lnSays) {
				t.Fatalf("listener: %v, want %q", ev.Err, tc.lnSays)
			}
		})
	}
}

// TestSecureTrafficHidesPlaintext: what crosses the network holds neither
// the message bodies nor the node names nor the type names. The same tap
// on a plain connection does see them, which shows that the tap works.
func TestSecureTrafficHidesPlaintext(t *testing.T) {
	const marker = "PLAINTEXT-MARKER-c0ffee"
	run := func(t *testing.T, opts func(self, peer *secure.Identity) []slc.Option) (up, down []byte) {
		ctx := testCtx(t, 20*time.Second)
		ia, ib := newIdentity(t), newIdentity(t)
		a := newComm(t, "tap-listener-node", opts(ia, ib)...)
		b := newComm(t, "tap-dialer-node", opts(ib, ia)...)
		tap, p := tappedPair(ctx, t, a, b)
		id, err := b.Send(ctx, Seq{N: 1, Payload: []byte(marker)}, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Send(ctx, Seq{N: 2, Payload: []byte(marker + "-reply")}, "tap-dialer-node"); err != nil {
			t.Fatal(err)
		}
		if err := b.WaitAcknowledged(ctx, id, p); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*slc.Communicator{a, b} {
			m, err := c.Receive(ctx)
			if err != nil || !strings.HasPrefix(string(m.Body.(Seq).Payload), marker) {
				t.Fatalf("%s received %+v %v", c.Name(), m, err)
			}
		}
		if err := b.Disconnect(ctx, p); err != nil {
			t.Fatal(err)
		}
		return tap.bytes(testutil.ClientToServer), tap.bytes(testutil.ServerToClient)
	}
	secrets := []string{marker, "tap-listener-node", "tap-dialer-node", "test.Seq", "msgpack"}

	up, down := run(t, func(self, peer *secure.Identity) []slc.Option {
		return []slc.Option{slc.WithIdentity(self), slc.WithAuthorizedKeys(peer.PublicKey())}
	})
	if len(up) < 200 || len(down) < 200 {
		t.Fatalf("tapped %d and %d bytes", len(up), len(down))
	}
	for _, s := range secrets {
		if bytes.Contains(up, []byte(s)) || bytes.Contains(down, []byte(s)) {
			t.Errorf("secure traffic contains %q", s)
		}
	}
	// The control: in plain mode the same tap sees all of it.
	up, down = run(t, func(*secure.Identity, *secure.Identity) []slc.Option { return nil })
	for _, s := range secrets {
		if !bytes.Contains(up, []byte(s)) && !bytes.Contains(down, []byte(s)) {
			t.Errorf("plain traffic does not contain %q: the tap is broken", s)
		}
	}
}

// TestSecureReplayRejected: bytes captured from a real connection and
// replayed into a new one get nowhere. The handshake fails (the listener's
// ephemeral key is new), nothing is delivered, and the replaying
// connection is closed. The captured records alone, after a preamble, are
// not taken for a handshake either (they fail as handshake message 1 or
// 3). Records replayed into an established connection, after its own
// handshake, are TestSecureReplaySplicedRecords.
func TestSecureReplayRejected(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	ia, ib := newIdentity(t), newIdentity(t)
	a := newComm(t, "replay-a", slc.WithIdentity(ia), slc.WithAuthorizedKeys(ib.PublicKey()))
	b := newComm(t, "replay-b", slc.WithIdentity(ib), slc.WithAuthorizedKeys(ia.PublicKey()))
	addr := listen(t, a)
	proxy, err := testutil.NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	tap := &secureTap{}
	proxy.CorruptFunc(tap.hook)
	aEv := watch(t, a)
	p, err := b.Connect(ctx, proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	aEv.wait(ctx, t, "PeerConnected", isType[*actors.PeerConnected])
	for i := 1; i <= 20; i++ {
		if _, err := b.Send(ctx, Seq{N: i}, p); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 20; i++ {
		if m, err := a.Receive(ctx); err != nil || m.Body.(Seq).N != i {
			t.Fatalf("receive %d: %+v %v", i, m, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	captured := tap.bytes(testutil.ClientToServer)

	// The handshake part is the preamble (8 bytes), message 1 (2+32) and
	// message 3 (2+48+16); the records follow.
	const hsLen = 8 + 34 + 66
	records := append(bytes.Clone(captured[:8]), captured[hsLen:]...)
	for i, replay := range [][]byte{captured, records} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(replay)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, c) // until the listener closes it
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("replay %d: the listener did not close the connection", i)
		}
		aEv.waitCount(ctx, t, "HandshakeRejected", i+1, rejected(errIs(secure.ErrAuthFailed)))
	}
	noMessages(t, a)
	if n := aEv.count(isType[*actors.PeerConnected]); n != 1 {
		t.Fatalf("%d PeerConnected events, want 1 (the real connection, none for the replays)", n)
	}
	aEv.count(func(ev any) bool { // count takes the lock that guards all
		if hr, ok := ev.(*actors.HandshakeRejected); ok && !strings.Contains(hr.Err.Error(), "failed authentication") {
			t.Errorf("reason: %v", hr.Err)
		}
		return false
	})
}

// TestSecureNetworkSecret: nodes with the same secret connect (each with a
// key pair of its own process); a node with another secret fails with an
// authentication error on both sides.
func TestSecureNetworkSecret(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	secret := []byte("correct horse battery staple, lab 4")
	a := newComm(t, "psk-a", slc.WithNetworkSecret(secret))
	b := newComm(t, "psk-b", slc.WithNetworkSecret(secret))
	addr := listen(t, a)
	p, err := b.Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, Seq{N: 7}, p); err != nil {
		t.Fatal(err)
	}
	if m, err := a.Receive(ctx); err != nil || m.Body.(Seq).N != 7 {
		t.Fatalf("%+v %v", m, err)
	}

	aEv := watch(t, a)
	c := newComm(t, "psk-c", slc.WithNetworkSecret([]byte("another secret, lab 5 !!")), slc.WithRetries(0))
	cEv := watch(t, c)
	_, err = c.Connect(ctx, addr)
	if !errors.Is(err, secure.ErrAuthFailed) || !strings.Contains(err.Error(), "network secret") {
		t.Fatalf("Connect with another secret: %v", err)
	}
	ev := aEv.wait(ctx, t, "HandshakeRejected", rejected(errIs(secure.ErrAuthFailed))).(*actors.HandshakeRejected)
	if !strings.Contains(ev.Err.Error(), "does not have this network's secret") {
		t.Fatalf("listener: %v", ev.Err)
	}
	cEv.wait(ctx, t, "HandshakeRejected", rejected(errIs(secure.ErrAuthFailed)))
	noMessages(t, a)
	noMessages(t, c)
	if len(c.Peers()) != 0 {
		t.Fatalf("c has peers %+v", c.Peers())
	}
}

// TestSecureTrustOnFirstUse: the first connection pins each side's key in
// its known-peers file (mode 0600); the same key is accepted later, also
// after a restart; another key under a pinned name is rejected loudly.
func TestSecureTrustOnFirstUse(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	dir := t.TempDir()
	knownA, knownB := filepath.Join(dir, "a_known"), filepath.Join(dir, "b_known")
	ia, ib := newIdentity(t), newIdentity(t)
	tofu := func(name, known string, id *secure.Identity) *slc.Communicator {
		c, err := slc.New(append(fast(slc.WithName(name)), slc.WithIdentity(id), slc.WithTrustOnFirstUse(known), slc.WithRetries(0))...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := tofu("tofu-a", knownA, ia)
	defer a.Close()
	addr := listen(t, a)

	b := tofu("tofu-b", knownB, ib)
	if _, err := b.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{knownA: ib.PublicKey().String() + " tofu-b", knownB: ia.PublicKey().String() + " tofu-a"} {
		data, err := os.ReadFile(file)
		if err != nil || !strings.Contains(string(data), want+"\n") {
			t.Fatalf("%s: %q %v", file, data, err)
		}
		fi, _ := os.Stat(file)
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %04o", file, fi.Mode().Perm())
		}
	}

	// The same key again, from a restarted tofu-b.
	b = tofu("tofu-b", knownB, ib)
	if _, err := b.Connect(ctx, addr); err != nil {
		t.Fatalf("same key after a restart: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Another key claiming tofu-b: refused by a, loudly, on both sides,
	// also after a restarts.
	for round := range 2 {
		if round == 1 {
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			a = tofu("tofu-a", knownA, ia)
			defer a.Close()
			addr = listen(t, a)
		}
		aEv := watch(t, a)
		impostor := tofu("tofu-b", filepath.Join(dir, fmt.Sprintf("impostor_known%d", round)), newIdentity(t))
		_, err := impostor.Connect(ctx, addr)
		impostor.Close()
		if !errors.Is(err, secure.ErrUnauthorized) || !strings.Contains(err.Error(), "KEY CHANGED for peer \"tofu-b\"") ||
			!strings.Contains(err.Error(), ib.PublicKey().Fingerprint()) {
			t.Fatalf("round %d: impostor's Connect: %v", round, err)
		}
		ev := aEv.wait(ctx, t, "HandshakeRejected", rejected(errIs(secure.ErrUnauthorized))).(*actors.HandshakeRejected)
		if !strings.Contains(ev.Err.Error(), `KEY CHANGED for peer "tofu-b"`) {
			t.Fatalf("round %d: listener's event %+v", round, ev)
		}
	}
	data, _ := os.ReadFile(knownA)
	if strings.Count(string(data), " tofu-b\n") != 1 || !strings.Contains(string(data), ib.PublicKey().String()) {
		t.Fatalf("the pin changed:\n%s", data)
	}
}

// TestSecureOptionErrors: key files with bad permissions or contents and
// contradictory options make New fail with a clear error.
func TestSecureOptionErrors(t *testing.T) {
	dir := t.TempDir()
	id := newIdentity(t)
	keyPath := filepath.Join(dir, "node.key")
	if err := id.Save(keyPath); err != nil {
		t.Fatal(err)
	}
	openKey := filepath.Join(dir, "open.key")
	if err := newIdentity(t).Save(openKey); err != nil {
		t.Fatal(err)
	}
	os.Chmod(openKey, 0o644)
	badKey := filepath.Join(dir, "bad.key")
	os.WriteFile(badKey, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), 0o600)
	authz := filepath.Join(dir, "authorized_keys")
	os.WriteFile(authz, []byte("# ok\n"+id.PublicKey().String()+" node\nx25519:garbage\n"), 0o600)
	known := filepath.Join(dir, "known")
	cases := []struct {
		name string
		opts []slc.Option
		want string
	}{
		{"key readable by others", []slc.Option{slc.WithIdentityFile(openKey), slc.WithAuthorizedKeys(id.PublicKey())},
			"is accessible by other users (mode 0644): refusing to use it; run chmod 0600"},
		{"not a key file", []slc.Option{slc.WithIdentityFile(badKey)}, "not an slc private key file"},
		{"missing key file", []slc.Option{slc.WithIdentityFile(filepath.Join(dir, "none"))}, "no such file"},
		{"bad authorized keys", []slc.Option{slc.WithIdentityFile(keyPath), slc.WithAuthorizedKeysFile(authz)},
			"authorized keys line 3: secure: invalid public key"},
		{"keys and tofu", []slc.Option{slc.WithIdentity(id), slc.WithAuthorizedKeys(id.PublicKey()), slc.WithTrustOnFirstUse(known)},
			"authorized keys and trust on first use cannot be combined"},
		{"tofu and keys file", []slc.Option{slc.WithTrustOnFirstUse(known), slc.WithIdentity(id), slc.WithAuthorizedKeysFile(authz)},
			"cannot be combined"},
		{"two identities", []slc.Option{slc.WithIdentity(id), slc.WithIdentityFile(keyPath)}, "identity is given twice"},
		{"short secret", []slc.Option{slc.WithNetworkSecret([]byte("lab"))}, "at least 16 bytes"},
		{"with WithSecurity", []slc.Option{slc.WithSecurity(fakeSecurity{}), slc.WithIdentity(id)}, "cannot be combined with WithSecurity"},
	}
	if runtime.GOOS == "windows" {
		cases = cases[1:]
	}
	for _, tc := range cases {
		c, err := slc.New(tc.opts...)
		if err == nil {
			c.Close()
			t.Errorf("%s: New succeeded", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A key file written by Save works.
	c, err := slc.New(slc.WithIdentityFile(keyPath), slc.WithAuthorizedKeys(id.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestSecureIncompleteConfig: secure options that name no way to trust
// peers, or trust without an identity, make New fail with a clear error
// saying what is missing (docs/security.md, section 1).
func TestSecureIncompleteConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []slc.Option
		want string
	}{
		{"identity alone", []slc.Option{slc.WithIdentity(newIdentity(t))}, "needs a way to trust peers"},
		{"keys alone", []slc.Option{slc.WithAuthorizedKeys(newIdentity(t).PublicKey())}, "this node's identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// New refuses the combination at once, saying what is missing.
			c, err := slc.New(append([]slc.Option{slc.WithName("incomplete")}, tc.opts...)...)
			if err == nil {
				c.Close()
				t.Fatalf("New accepted an incomplete secure configuration")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
}

type fakeSecurity struct{}

func (fakeSecurity) Mode() uint8 { return wire.ModeNoiseXX }
func (fakeSecurity) Handshake(_ context.Context, c net.Conn, _ bool) (net.Conn, peer.Identity, error) {
	return c, nil, nil
}
func (fakeSecurity) Authorize(string, peer.Identity) error { return nil }

// PeerConnected carries the fingerprint of the key the peer proved, and a
// listener that refuses a key after the hello names the peer.
func TestSecureEventsNameKeyAndPeer(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	lid, did, stranger := newIdentity(t), newIdentity(t), newIdentity(t)
	// The stranger's key is authorized, but only for another name: that is
	// decided after the hello, so the event can name who tried.
	ln := newComm(t, "key-listener", slc.WithIdentity(lid), slc.WithAuthorizedKeys(did.PublicKey()),
		slc.WithAuthorizedPeer("someone-else", stranger.PublicKey()))
	evL := watch(t, ln)
	d := newComm(t, "key-dialer", slc.WithIdentity(did), slc.WithAuthorizedKeys(lid.PublicKey()))
	evD := watch(t, d)
	addr := listen(t, ln)
	if _, err := d.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	got := evD.wait(ctx, t, "PeerConnected", isType[*actors.PeerConnected]).(*actors.PeerConnected)
	if got.Key != lid.PublicKey().Fingerprint() {
		t.Fatalf("PeerConnected.Key = %q; want the listener's fingerprint %q", got.Key, lid.PublicKey().Fingerprint())
	}
	s := newComm(t, "key-stranger", slc.WithIdentity(stranger), slc.WithAuthorizedKeys(lid.PublicKey()), slc.WithRetries(0))
	if _, err := s.Connect(ctx, addr); err == nil {
		t.Fatal("a key authorized for another name connected")
	}
	rej := evL.wait(ctx, t, "HandshakeRejected", isType[*actors.HandshakeRejected]).(*actors.HandshakeRejected)
	if rej.Peer != "key-stranger" {
		t.Fatalf("HandshakeRejected.Peer = %q; want the name from the hello", rej.Peer)
	}
}
