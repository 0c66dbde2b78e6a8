package spread

import (
	"context"
	"reflect"
	"testing"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/group"
)

// groupAPI is what a program that switches between slc's groups and a
// Spread daemon programs against: both sides satisfy it.
type groupAPI interface {
	Join(ctx context.Context, group string) error
	Leave(ctx context.Context, group string) error
	Multicast(ctx context.Context, svc group.Service, group string, msgType int16, v any) (uint64, error)
	MulticastGroups(ctx context.Context, svc group.Service, groups []string, msgType int16, v any) (uint64, error)
	Receive(ctx context.Context) (group.Delivery, error)
	TryReceive() (group.Delivery, bool)
	Poll() int
	Members(group string) []slc.PeerID
	Close() error
}

var (
	_ groupAPI = (*group.Member)(nil)
	_ groupAPI = (*GroupClient)(nil)
)

// Spread's values and group's are the same.
func TestSameValuesAsGroup(t *testing.T) {
	for _, p := range [][2]uint16{
		{uint16(Unreliable), uint16(group.Unreliable)}, {uint16(Reliable), uint16(group.Reliable)},
		{uint16(FIFO), uint16(group.FIFO)}, {uint16(Causal), uint16(group.Causal)},
		{uint16(Agreed), uint16(group.Agreed)}, {uint16(Safe), uint16(group.Safe)},
		{uint16(SelfDiscard), uint16(group.SelfDiscard)},
		{uint16(Join), uint16(group.Join)}, {uint16(Leave), uint16(group.Leave)},
		{uint16(Disconnect), uint16(group.Disconnect)}, {uint16(Network), uint16(group.Network)},
	} {
		if p[0] != p[1] {
			t.Errorf("spread %#x != group %#x", p[0], p[1])
		}
	}
}

// TestGroupClient runs the scripted daemon through the group view.
func TestGroupClient(t *testing.T) {
	ctx := testCtx(t)
	d := newDaemon(t)
	var g groupAPI = connect(t, d).Group()
	if err := g.Join(ctx, "chat"); err != nil {
		t.Fatal(err)
	}
	d.expect(goldenOut[4].want)
	d.send(goldenIn[4].in, goldenIn[0].in, goldenIn[3].in)

	got, err := g.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := &group.Membership{Group: "chat", ViewID: group.ViewID{Coordinator: "1", Config: 2, Seq: 3},
		Members: []slc.PeerID{me, "#bob#d1"}, Joined: []slc.PeerID{"#bob#d1"}, Reason: group.Join}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("membership = %#v; want %#v", got, want)
	}
	if m := g.Members("chat"); !reflect.DeepEqual(m, want.Members) {
		t.Errorf("Members = %v", m)
	}
	got, err = g.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := got.(*group.Message); m.Sender != "#bob#d1" || m.Service != group.Agreed || m.MsgType != 7 || string(m.Body.([]byte)) != "hi" {
		t.Errorf("message = %#v", m)
	}
	got, err = g.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := got.(*group.Message); m.Err != ErrRejected {
		t.Errorf("rejected message = %#v", m)
	}
	if serial, err := g.Multicast(ctx, group.Agreed|group.SelfDiscard, "chat", 7, "hi"); err != nil || serial != 1 {
		t.Fatalf("Multicast = %d, %v", serial, err)
	}
	d.expect(goldenOut[7].want)
}
