package rpc_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/examples/timer/timer"
	"github.com/slc-go/slc/rpc"
)

// TestDescribeVia: Describe of a node known only through a peer (listed
// by Nodes with Via) asks that peer, which answers from what the node
// announced to it. It runs with both structured serializers.
func TestDescribeVia(t *testing.T) {
	for _, ser := range []string{"msgpack", "json"} {
		t.Run(ser, func(t *testing.T) { testDescribeVia(t, slc.WithSerializer(ser)) })
	}
}

func testDescribeVia(t *testing.T, opts ...slc.Option) {
	ctx := testCtx(t, 30*time.Second)
	lab := newNode(t, "lab", opts...)
	addr := listen(t, lab)
	recLab := record(t, lab)
	client := newNode(t, "client", opts...)
	rec := record(t, client)
	connect(t, client, addr)

	other := newNode(t, "other", opts...)
	if err := other.Register("/timer", timer.New(newFakeClock()).Impl); err != nil {
		t.Fatal(err)
	}
	connect(t, other, addr)
	rec.wait(ctx, t, "NodeAppeared other", func(ev any) bool {
		a, ok := ev.(*rpc.NodeAppeared)
		return ok && a.Node == "other" && slices.Equal(a.Via, []slc.PeerID{"lab"})
	})
	d, err := client.Describe(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := layout(d), []string{"/timer com.example.Timer"}; !slices.Equal(got, want) {
		t.Fatalf("other offers %q, want %q", got, want)
	}
	if d.Node != "other" || d.Instance != other.Instance() || !d.Started.Equal(other.Started()) {
		t.Errorf("description of %s %x %v, want other %x %v", d.Node, d.Instance, d.Started, other.Instance(), other.Started())
	}
	if add, ok := d.Paths[0].Interfaces[0].Method("add"); !ok || add.In[1].Description != "How long until it fires, in seconds." {
		t.Errorf("com.example.Timer.add described as %+v", add)
	}

	// A registration on other reaches lab, and the next description.
	if err := other.Register("/echo", newEcho(t)); err != nil {
		t.Fatal(err)
	}
	recLab.wait(ctx, t, "ImplementationRegistered of other at lab", func(ev any) bool {
		r, ok := ev.(*rpc.ImplementationRegistered)
		return ok && r.Node == "other" && r.Path == "/echo"
	})
	d, err = client.Describe(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := layout(d), []string{"/echo test.Echo", "/timer com.example.Timer"}; !slices.Equal(got, want) {
		t.Fatalf("other offers %q, want %q", got, want)
	}

	// Once other is gone, it is unknown.
	if err := other.Communicator().Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	rec.wait(ctx, t, "NodeDisappeared other", func(ev any) bool {
		g, ok := ev.(*rpc.NodeDisappeared)
		return ok && g.Node == "other"
	})
	if _, err := client.Describe(ctx, "other"); !errors.Is(err, rpc.ErrUnknownNode) {
		t.Errorf("Describe(other) after it left: %v, want unknown node", err)
	}
}
