package rpc_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/rpc"
)

// TestDuplicateNameRefusedByPeer: a second node named like a node that a
// peer already has is refused when it connects to that peer.
func TestDuplicateNameRefusedByPeer(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	hub := newNode(t, "hub")
	addr := listen(t, hub)
	x1 := newNode(t, "x")
	connect(t, x1, addr)

	x2 := newNode(t, "x", slc.WithRetries(0))
	_, err := x2.Connect(ctx, addr)
	var dup *rpc.DuplicateNameError
	if !errors.Is(err, rpc.ErrDuplicateName) || !errors.As(err, &dup) {
		t.Fatalf("Connect: %v, want a duplicate name error", err)
	}
	if dup.Name != "x" || dup.Instance != x2.Instance() {
		t.Errorf("error names %s instance %x, want x instance %x", dup.Name, dup.Instance, x2.Instance())
	}
	for _, want := range []string{`node name "x" is taken by another live node`, "choose another name", "name in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The first one is unaffected.
	if _, err := x1.Describe(ctx, "hub"); err != nil || x1.Err() != nil {
		t.Fatalf("x1: %v, %v", err, x1.Err())
	}
}

// TestDuplicateNameRefusedAcrossPeers: two nodes named x, each connected
// to a different node; when those two connect, the x that started later
// is refused: it is told why, and disconnected.
func TestDuplicateNameRefusedAcrossPeers(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	t0 := newFakeClock()
	t1 := newFakeClock()
	t1.Advance(time.Second)

	a := newNode(t, "a")
	b := newNode(t, "b")
	addrA, addrB := listen(t, a), listen(t, b)
	x1 := newNodeWith(t, "x", []rpc.Option{rpc.WithClock(t0)})
	x2 := newNodeWith(t, "x", []rpc.Option{rpc.WithClock(t1)})
	connect(t, x1, addrA)
	connect(t, x2, addrB)
	recA, recB, recX2 := record(t, a), record(t, b), record(t, x2)

	connect(t, a, addrB)

	ev := recX2.wait(ctx, t, "NodeRefused on x2", isType[*rpc.NodeRefused]).(*rpc.NodeRefused)
	if !ev.Self || ev.Node != "x" || ev.Instance != x2.Instance() {
		t.Fatalf("x2 got %+v", ev)
	}
	err := x2.Err()
	var dup *rpc.DuplicateNameError
	if !errors.As(err, &dup) || !errors.Is(err, rpc.ErrDuplicateName) {
		t.Fatalf("x2.Err() = %v", err)
	}
	if dup.By != "b" || dup.HolderInstance != x1.Instance() || !dup.HolderStarted.Equal(x1.Started()) {
		t.Errorf("refusal %+v: want by b, holder x1 (instance %x, started %v)", dup, x1.Instance(), x1.Started())
	}
	t.Logf("x2: %v", err)
	if _, err := x2.Call(ctx, "b", "/", "any.Iface", "m", nil); !errors.Is(err, rpc.ErrRefused) {
		t.Errorf("call on a refused node: %v, want refused", err)
	}

	// b refused x2 and disconnected it.
	recB.wait(ctx, t, "NodeRefused on b", func(ev any) bool {
		r, ok := ev.(*rpc.NodeRefused)
		return ok && !r.Self && r.Node == "x" && r.Instance == x2.Instance()
	})
	recB.wait(ctx, t, "PeerDisconnected x on b", func(ev any) bool {
		d, ok := ev.(*actors.PeerDisconnected)
		return ok && d.Peer == "x" && d.Final
	})
	// a hears that b no longer has x2, and knows x only as x1.
	recA.wait(ctx, t, "NodeDisappeared x2 on a", func(ev any) bool {
		d, ok := ev.(*rpc.NodeDisappeared)
		return ok && d.Node == "x" && d.Instance == x2.Instance()
	})
	var xs []uint64
	for _, ni := range a.Nodes() {
		if ni.Name == "x" {
			xs = append(xs, ni.Instance)
		}
	}
	if !slices.Equal(xs, []uint64{x1.Instance()}) {
		t.Errorf("a knows x as %x, want only x1 (%x)", xs, x1.Instance())
	}
	if x1.Err() != nil {
		t.Errorf("x1 was refused: %v", x1.Err())
	}
}
