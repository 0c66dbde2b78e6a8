package group

import (
	"testing"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/codec"
)

// fuzzCore returns a core in the configuration a/7 with a, whose
// outputs go nowhere.
func fuzzCore() *core {
	env := coreEnv{
		send:        func([]slc.PeerID, any, uint64) {},
		deliverData: func(*dataMsg, bool) {},
		deliverView: func(*Membership) {},
		received:    func(*dataMsg) {},
		processed:   func(*dataMsg) {},
		progress:    func() {},
	}
	c := newCore("b", 2, 0, env)
	for _, p := range []slc.PeerID{"a", "c"} {
		c.sessionUp(p)
	}
	// Installed in the seeds' configuration a/7, in group g with a.
	c.cfg = c.newConfig(cfgID{Coord: "a", N: 7}, []nodeRef{{Name: "a", Inst: 1}, {Name: "b", Inst: 2}},
		[]groupState{{Name: "g", View: ViewID{Coordinator: "a", Config: 7}, Members: []slc.PeerID{"a", "b"}}})
	return c
}

func seedMessages() []any {
	d := dataMsg{Sender: "a", Inst: 1, Serial: 1, Svc: Agreed, Groups: []string{"g"}, Body: []byte{0xa1, 'x'}}
	j := dataMsg{Sender: "a", Inst: 1, Serial: 2, Kind: kindJoin, Svc: Agreed, Groups: []string{"g"}}
	cfg := cfgID{Coord: "a", N: 7}
	members := []nodeRef{{Name: "a", Inst: 1}, {Name: "b", Inst: 2}}
	return []any{
		&helloMsg{Inst: 1, Reach: []peerInfo{{Name: "b", Inst: 2}}, Cfg: cfg, Members: members},
		&directMsg{Cfg: cfg, N: 1, To: []slc.PeerID{"b"}, Data: d},
		&submitMsg{Cfg: cfg, Data: d},
		&orderedMsg{Cfg: cfg, Seq: 1, To: []slc.PeerID{"a", "b"}, Data: j},
		&stableMsg{Cfg: cfg, Seq: 1},
		&markerMsg{Cfg: cfg},
		&proposeMsg{P: cfg, Members: members},
		&stateMsg{P: cfg, Inst: 2, Old: cfg, Held: []orderedMsg{{Cfg: cfg, Seq: 1, Data: d}}},
		&nackMsg{P: cfg},
		&fillMsg{P: cfg, Old: cfg, SeqEnd: 1, Members: members, Groups: []groupState{{Name: "g", Members: []slc.PeerID{"a"}}},
			Extra: []dataMsg{d, d}, ExtraAt: []extraPlace{{After: 0}, {After: 1, Seq: 2}}},
		&filledMsg{P: cfg},
		&installMsg{P: cfg},
		&abortMsg{P: cfg},
	}
}

// FuzzWire decodes arbitrary bytes as each message type of the group
// layer, as slc would, and feeds what decodes and validates to a core,
// from a peer and from its coordinator: nothing may panic, and what
// decodes must encode again.
func FuzzWire(f *testing.F) {
	ser, _ := codec.SerializerByID(codec.Msgpack)
	for i, m := range seedMessages() {
		b, err := ser.Append(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Add(uint8(3), []byte{0xc1})
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		name := wireTypes[int(typ)%len(wireTypes)]
		v, err := codec.Decode(name, ser, b)
		if err != nil {
			return
		}
		msg := toPointer(v)
		if _, err := ser.Append(nil, msg); err != nil {
			t.Fatalf("%s decoded but does not encode: %v", name, err)
		}
		if validate(msg) != nil {
			return
		}
		c := fuzzCore()
		c.onMessage("a", msg)
		c.onMessage("c", msg)
		c.tick()
	})
}

// TestValidate: malformed messages are refused before the core.
func TestValidate(t *testing.T) {
	cfg := cfgID{Coord: "a", N: 1}
	bad := []any{
		&directMsg{Data: dataMsg{Sender: "a", Svc: Agreed | FIFO, Groups: []string{"g"}}},
		&submitMsg{Data: dataMsg{Sender: "a", Svc: Agreed}},
		&orderedMsg{Data: dataMsg{Sender: "a", Kind: kindJoin, Svc: Agreed, Groups: []string{"g", "h"}}},
		&orderedMsg{Data: dataMsg{Sender: "a", Kind: 9, Svc: Agreed, Groups: []string{"g"}}},
		&orderedMsg{Data: dataMsg{Svc: Agreed, Groups: []string{"g"}}},
		&proposeMsg{P: cfg},
		&proposeMsg{P: cfg, Members: []nodeRef{{Name: "b"}, {Name: "a"}}},
		&fillMsg{P: cfg, Members: []nodeRef{{Name: "a"}, {Name: "a", Inst: 2}}},
		&fillMsg{P: cfg, Members: []nodeRef{{Name: "a"}}, Groups: []groupState{{Name: "g", Members: []slc.PeerID{"b", "a"}}}},
		&fillMsg{P: cfg, Members: []nodeRef{{Name: "a"}}, Extra: []dataMsg{{Sender: "a", Svc: Agreed, Groups: []string{"g"}}},
			ExtraAt: []extraPlace{{}, {}}},
		"a string",
	}
	for i, m := range bad {
		if err := validate(m); err == nil {
			t.Errorf("%d. validate(%#v) = nil; want an error", i, m)
		}
	}
	for i, m := range seedMessages() {
		if err := validate(m); err != nil {
			t.Errorf("%d. validate(%T) = %v; want nil", i, m, err)
		}
	}
}
