package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/examples/timer/timer"
	"github.com/slc-go/slc/rpc"
)

var echoIface = rpc.Interface{
	Name:        "test.Echo",
	Description: "Says back what it is told.",
	Methods: []rpc.Method{{Name: "echo", Description: "Returns its argument.",
		In:  []rpc.Argument{{Name: "v", Description: "Anything."}},
		Out: []rpc.Argument{{Name: "v", Description: "The same."}}}},
}

func newEcho(t *testing.T) *rpc.Implementation {
	t.Helper()
	impl, err := rpc.NewImplementation(echoIface)
	if err != nil {
		t.Fatal(err)
	}
	if err := impl.Handle("echo", func(ctx context.Context, args rpc.Args) (rpc.Args, error) { return args, nil }); err != nil {
		t.Fatal(err)
	}
	return impl
}

// layout lists a description's paths and interfaces as "path iface".
func layout(d *rpc.NodeDescription) []string {
	var out []string
	for _, p := range d.Paths {
		for _, i := range p.Interfaces {
			out = append(out, p.Path+" "+i.Name)
		}
	}
	return out
}

// TestIntrospection describes a node with several paths, and follows
// registrations, unregistrations and nodes appearing and disappearing.
func TestIntrospection(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	clock := newFakeClock()
	lab := newNode(t, "lab")
	recLab := record(t, lab)
	reg := func(path string, impl *rpc.Implementation) {
		t.Helper()
		if err := lab.Register(path, impl); err != nil {
			t.Fatal(err)
		}
	}
	reg("/timers/kitchen", timer.New(clock).Impl)
	reg("/timers/oven", timer.New(clock).Impl)
	reg("/calc", newCalc(t).impl)
	reg("/calc", newEcho(t))
	addr := listen(t, lab)
	recLab.wait(ctx, t, "local ImplementationRegistered", func(ev any) bool {
		r, ok := ev.(*rpc.ImplementationRegistered)
		return ok && r.Node == "lab" && r.Path == "/calc" && r.Interface == "test.Echo"
	})
	if err := lab.Register("/calc", newEcho(t)); err == nil {
		t.Error("a second test.Echo at /calc was accepted")
	}
	if err := lab.Register("no/slash", newEcho(t)); err == nil {
		t.Error("an invalid path was accepted")
	}

	client := newNode(t, "client")
	rec := record(t, client)
	peer := connect(t, client, addr)
	d, err := client.Describe(ctx, peer)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/calc test.Calc", "/calc test.Echo", "/timers/kitchen com.example.Timer", "/timers/oven com.example.Timer"}
	if got := layout(d); !slices.Equal(got, want) {
		t.Fatalf("lab offers %q, want %q", got, want)
	}
	if d.Node != "lab" || d.Instance != lab.Instance() || !d.Started.Equal(lab.Started()) {
		t.Errorf("description of %s instance %x started %v; want lab %x %v", d.Node, d.Instance, d.Started, lab.Instance(), lab.Started())
	}
	// The documentation comes along.
	tm := d.Paths[2].Interfaces[0]
	add, ok := tm.Method("add")
	if !ok || add.Description == "" || len(add.In) != 2 || add.In[1].Name != "seconds" || add.In[1].Type != rpc.TypeFloat ||
		add.In[1].Description != "How long until it fires, in seconds." {
		t.Errorf("com.example.Timer.add described as %+v", add)
	}
	if ev, ok := tm.Event("timeout"); !ok || ev.Description != "A timer expired." || len(ev.Args) != 1 {
		t.Errorf("com.example.Timer.timeout described as %+v", ev)
	}
	if self, err := lab.Describe(ctx, "lab"); err != nil || !slices.Equal(layout(self), want) {
		t.Errorf("lab describes itself as %q, %v", layout(self), err)
	}
	if _, err := client.Describe(ctx, "nobody"); !errors.Is(err, rpc.ErrUnknownNode) {
		t.Errorf("Describe(nobody): %v, want unknown node", err)
	}
	rec.wait(ctx, t, "NodeAppeared lab", func(ev any) bool {
		a, ok := ev.(*rpc.NodeAppeared)
		return ok && a.Node == "lab" && a.Peer && a.Instance == lab.Instance()
	})
	// The implementations lab had when it said hello are announced too.
	if n := rec.count(isType[*rpc.ImplementationRegistered]); n != 4 {
		t.Errorf("%d ImplementationRegistered events at the client, want 4", n)
	}

	// A registration after the hello.
	reg("/timers/garage", timer.New(clock).Impl)
	rec.wait(ctx, t, "ImplementationRegistered /timers/garage", func(ev any) bool {
		r, ok := ev.(*rpc.ImplementationRegistered)
		return ok && r.Node == "lab" && r.Path == "/timers/garage" && r.Interface == "com.example.Timer"
	})
	if _, err := timer.List.Call(ctx, client, peer, "/timers/garage", rpc.Empty{}); err != nil {
		t.Fatal(err)
	}

	// An unregistration.
	if err := lab.Unregister("/timers/oven", "com.example.Timer"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Unregister("/timers/oven", "com.example.Timer"); err == nil {
		t.Error("a second Unregister succeeded")
	}
	rec.wait(ctx, t, "ImplementationUnregistered /timers/oven", func(ev any) bool {
		r, ok := ev.(*rpc.ImplementationUnregistered)
		return ok && r.Node == "lab" && r.Path == "/timers/oven"
	})
	d, err = client.Describe(ctx, peer)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"/calc test.Calc", "/calc test.Echo", "/timers/garage com.example.Timer", "/timers/kitchen com.example.Timer"}
	if got := layout(d); !slices.Equal(got, want) {
		t.Fatalf("after the changes lab offers %q, want %q", got, want)
	}
	if _, err := timer.List.Call(ctx, client, peer, "/timers/oven", rpc.Empty{}); !errors.Is(err, rpc.ErrUnknownPath) {
		t.Errorf("call at an unregistered path: %v, want unknown path", err)
	}

	// A peer of lab appears to the client, and disappears.
	other := newNode(t, "other")
	connect(t, other, addr)
	ev := rec.wait(ctx, t, "NodeAppeared other", func(ev any) bool {
		a, ok := ev.(*rpc.NodeAppeared)
		return ok && a.Node == "other"
	}).(*rpc.NodeAppeared)
	if ev.Peer || !slices.Equal(ev.Via, []slc.PeerID{"lab"}) || ev.Instance != other.Instance() {
		t.Errorf("NodeAppeared %+v: want via lab, not a peer", ev)
	}
	nodes := fmt.Sprint(client.Nodes())
	wantNodes := fmt.Sprint([]rpc.NodeInfo{
		{Name: "lab", Instance: lab.Instance(), Started: lab.Started(), Peer: true, Up: true},
		{Name: "other", Instance: other.Instance(), Started: other.Started(), Via: []slc.PeerID{"lab"}},
	})
	if nodes != wantNodes {
		t.Errorf("client knows\n%s\nwant\n%s", nodes, wantNodes)
	}
	if err := other.Communicator().Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	rec.wait(ctx, t, "NodeDisappeared other", func(ev any) bool {
		g, ok := ev.(*rpc.NodeDisappeared)
		return ok && g.Node == "other" && g.Instance == other.Instance()
	})
	if nodes := client.Nodes(); len(nodes) != 1 || nodes[0].Name != "lab" {
		t.Errorf("client knows %+v, want lab only", nodes)
	}
	// And the peer itself.
	if err := client.Communicator().Disconnect(ctx, peer); err != nil {
		t.Fatal(err)
	}
	rec.wait(ctx, t, "NodeDisappeared lab", func(ev any) bool {
		g, ok := ev.(*rpc.NodeDisappeared)
		return ok && g.Node == "lab"
	})
	if nodes := client.Nodes(); len(nodes) != 0 {
		t.Errorf("client knows %+v after disconnecting", nodes)
	}
}
