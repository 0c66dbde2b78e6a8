package slc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/secure"
)

// pinSecret is the network secret of the key-pinning tests.
var pinSecret = []byte("the lab's network secret, shared")

// secretOnly returns the options of a node in secret-only mode (a key pair
// made for the node) and the fingerprint of that key.
func secretOnly(t *testing.T) (slc.Option, string) {
	t.Helper()
	sc := secure.NewConfig()
	if err := sc.SetNetworkSecret(pinSecret); err != nil {
		t.Fatal(err)
	}
	k, err := sc.LocalKey()
	if err != nil {
		t.Fatal(err)
	}
	return slc.WithSecurity(sc), k.Fingerprint()
}

// pinReason is the reason a node gives for refusing a connection that
// claims the name of a peer whose session is pinned to another key.
func pinReason(name, pinned, got string) string {
	return fmt.Sprintf("node %q proved key %s; this connection proves key %s", name, pinned, got)
}

// checkPinRefused checks the refusal of a connection claiming name with
// key got, where want pinned: Connect's error (err) on the impostor's
// side, and the HandshakeRejected events of both sides.
func checkPinRefused(ctx context.Context, t *testing.T, err error, refuserEv, impostorEv *events, name slc.PeerID, pinned, got string) {
	t.Helper()
	want := pinReason(string(name), pinned, got)
	pe, ok := wire.AsProtocolError(err)
	if !ok || pe.Code != wire.CodeUnauthorized || !pe.Permanent() || !errors.Is(err, secure.ErrUnauthorized) || !strings.Contains(err.Error(), want) {
		t.Fatalf("impostor's Connect: %v, want a permanent unauthorized rejection %q", err, want)
	}
	ev := refuserEv.wait(ctx, t, "HandshakeRejected (refuser)", rejected(errIs(secure.ErrUnauthorized))).(*actors.HandshakeRejected)
	if ev.ByRemote || ev.Peer != name || !strings.Contains(ev.Err.Error(), want) {
		t.Fatalf("refuser's event: %+v", ev)
	}
	if impostorEv != nil {
		ev = impostorEv.wait(ctx, t, "HandshakeRejected (impostor)", rejected(errIs(secure.ErrUnauthorized))).(*actors.HandshakeRejected)
		if !ev.ByRemote || !strings.Contains(ev.Err.Error(), want) {
			t.Fatalf("impostor's event: %+v", ev)
		}
		if n := impostorEv.count(isType[*actors.PeerConnected]); n != 0 {
			t.Fatalf("the impostor saw %d PeerConnected events", n)
		}
	}
}

// pinExchange checks that a and b still talk: one message each way, n to
// tell them apart.
func pinExchange(ctx context.Context, t *testing.T, a, b *slc.Communicator, n int) {
	t.Helper()
	id, err := b.Send(ctx, Seq{N: n}, a.Name())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitAcknowledged(ctx, id, a.Name()); err != nil {
		t.Fatal(err)
	}
	if m, err := a.Receive(ctx); err != nil || m.From != b.Name() || m.Body.(Seq).N != n {
		t.Fatalf("%s received %+v %v, want %d from %s", a.Name(), m, err, n, b.Name())
	}
	if _, err := a.Send(ctx, Seq{N: -n}, b.Name()); err != nil {
		t.Fatal(err)
	}
	if m, err := b.Receive(ctx); err != nil || m.From != a.Name() || m.Body.(Seq).N != -n {
		t.Fatalf("%s received %+v %v, want %d from %s", b.Name(), m, err, -n, a.Name())
	}
}

// TestSecureNameBoundToKey: with a network secret alone every node that
// has the secret is trusted under any name, but a session stays bound to
// the key its peer proved first. Another holder of the secret that claims
// the name of a connected node (even with its instance ID, which the
// hello shows to any node with the secret), or of one whose connection is
// down, is refused permanently with both keys in the reason; the session
// goes on with the real node, and nothing the impostor sends is delivered.
// A node reconnecting to an address now served by an impostor refuses it
// the same way.
func TestSecureNameBoundToKey(t *testing.T) {
	t.Run("impostor with the instance of a connected node", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		optA, _ := secretOnly(t)
		optB, keyB := secretOnly(t)
		optI, keyI := secretOnly(t)
		a := newComm(t, "pin-a", optA)
		b := newComm(t, "pin-b", optB)
		aEv := watch(t, a)
		addr := listen(t, a)
		if _, err := b.Connect(ctx, addr); err != nil {
			t.Fatal(err)
		}
		pc := aEv.wait(ctx, t, "PeerConnected pin-b", isType[*actors.PeerConnected]).(*actors.PeerConnected)
		if pc.Key != keyB {
			t.Fatalf("pin-b proved key %s, want %s", pc.Key, keyB)
		}
		pinExchange(ctx, t, a, b, 1)

		// The impostor copies everything pin-b's hello shows.
		imp := newComm(t, "pin-b", optI, slc.WithInstance(pc.Instance), slc.WithRetries(0))
		impEv := watch(t, imp)
		_, err := imp.Connect(ctx, addr)
		checkPinRefused(ctx, t, err, aEv, impEv, "pin-b", keyB, keyI)
		if _, err := imp.Send(ctx, Seq{N: 666}); err == nil {
			t.Fatal("the refused impostor could send")
		}

		// pin-b's session was not touched.
		pinExchange(ctx, t, a, b, 2)
		noMessages(t, a)
		if n := aEv.count(isType[*actors.PeerConnected]); n != 1 {
			t.Fatalf("%d PeerConnected events on pin-a, want 1", n)
		}
		aEv.count(func(ev any) bool {
			switch ev.(type) {
			case *actors.PeerDisconnected, *actors.PeerLost, *actors.PeerReconnecting:
				t.Errorf("pin-a: %T %+v", ev, ev)
			}
			return false
		})
	})

	t.Run("impostor while the real node reconnects", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		optA, _ := secretOnly(t)
		optB, keyB := secretOnly(t)
		optI, keyI := secretOnly(t)
		a := newComm(t, "pin-a", optA)
		b := newComm(t, "pin-b", optB, slc.WithRetries(slc.RetryForever))
		aEv := watch(t, a)
		addr := listen(t, a)
		proxy, err := testutil.NewProxy(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		if _, err := b.Connect(ctx, proxy.Addr()); err != nil {
			t.Fatal(err)
		}
		peerUp(ctx, t, aEv, "pin-b")
		pinExchange(ctx, t, a, b, 1)

		// pin-b loses its connection and cannot get back yet: pin-a's
		// session waits for it, with no connection.
		proxy.Refuse(true)
		proxy.Reset()
		aEv.wait(ctx, t, "PeerDisconnected pin-b", func(ev any) bool {
			pd, ok := ev.(*actors.PeerDisconnected)
			return ok && pd.Peer == "pin-b" && pd.Reconnecting
		})
		if _, err := b.Send(ctx, Seq{N: 2}, "pin-a"); err != nil {
			t.Fatal(err) // buffered until pin-b is back
		}

		imp := newComm(t, "pin-b", optI, slc.WithRetries(0))
		impEv := watch(t, imp)
		_, err = imp.Connect(ctx, addr)
		checkPinRefused(ctx, t, err, aEv, impEv, "pin-b", keyB, keyI)

		// The real node comes back and resumes its session.
		proxy.Refuse(false)
		aEv.wait(ctx, t, "PeerConnected pin-b (resumed)", func(ev any) bool {
			pc, ok := ev.(*actors.PeerConnected)
			return ok && pc.Peer == "pin-b" && pc.Resumed && !pc.Restarted && pc.Key == keyB
		})
		if m, err := a.Receive(ctx); err != nil || m.From != "pin-b" || m.Body.(Seq).N != 2 {
			t.Fatalf("pin-a received %+v %v", m, err)
		}
		pinExchange(ctx, t, a, b, 3)
		noMessages(t, a)
		if n := aEv.count(isType[*actors.PeerLost]); n != 0 {
			t.Fatalf("%d PeerLost events on pin-a", n)
		}
	})

	t.Run("reconnect finds an impostor at the address", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		optA, _ := secretOnly(t)
		optB, keyB := secretOnly(t)
		optI, keyI := secretOnly(t)
		a := newComm(t, "pin-a", optA, slc.WithRetries(slc.RetryForever))
		b := newComm(t, "pin-b", optB)
		imp := newComm(t, "pin-b", optI)
		aEv := watch(t, a)
		proxy, err := testutil.NewProxy(listen(t, b))
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		if p, err := a.Connect(ctx, proxy.Addr()); err != nil || p != "pin-b" {
			t.Fatalf("connect: %q %v", p, err)
		}
		pinExchange(ctx, t, b, a, 1)

		// The address now leads to the impostor.
		proxy.SetTarget(listen(t, imp))
		proxy.Reset()
		ev := aEv.wait(ctx, t, "HandshakeRejected", rejected(errIs(secure.ErrUnauthorized))).(*actors.HandshakeRejected)
		if want := pinReason("pin-b", keyB, keyI); ev.ByRemote || !strings.Contains(ev.Err.Error(), want) {
			t.Fatalf("pin-a's event: %+v, want %q", ev, want)
		}
		// The refusal is permanent: the session ends rather than retry.
		lost := aEv.wait(ctx, t, "PeerLost pin-b", isType[*actors.PeerLost]).(*actors.PeerLost)
		if lost.Peer != "pin-b" || !errors.Is(lost.Err, secure.ErrUnauthorized) {
			t.Fatalf("PeerLost: %+v", lost)
		}
		if n := aEv.count(isType[*actors.PeerConnected]); n != 1 {
			t.Fatalf("%d PeerConnected events on pin-a, want 1", n)
		}
		noMessages(t, imp)
	})
}
