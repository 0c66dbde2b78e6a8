package check

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/slc-go/slc/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func id(s string, n uint64) MsgID { return MsgID{Sender: s, Serial: n} }

func view(g, vid string, members ...string) Event {
	return Event{Kind: View, Group: g, ViewID: vid, Members: members}
}

func send(s string, n uint64, svc int) Event {
	return Event{Kind: Send, Msg: id(s, n), Service: svc, Groups: []string{"g"}}
}

func recv(s string, n uint64, t int64) Event { return Event{Kind: Receive, Msg: id(s, n), Time: t} }

func trans(g, vid string, members ...string) Event {
	return Event{Kind: View, Group: g, ViewID: vid, Members: members, Transitional: true}
}

func unseen(e Event) Event { e.Unseen = true; return e }

func dlv(s string, n uint64, svc int, t int64) Event {
	return Event{Kind: Deliver, Msg: id(s, n), Service: svc, Groups: []string{"g"}, Time: t}
}

// good is a correct history of two members, a and b, in group g.
func good() History {
	return History{
		"a": {view("g", "v1", "a", "b"), send("a", 1, Agreed), recv("a", 1, 1), dlv("a", 1, Agreed, 2),
			recv("b", 1, 5), dlv("b", 1, Agreed, 6), send("a", 2, Safe), recv("a", 2, 7), dlv("a", 2, Safe, 10),
			view("g", "v2", "a")},
		"b": {view("g", "v1", "a", "b"), recv("a", 1, 3), dlv("a", 1, Agreed, 4), send("b", 1, Agreed),
			recv("b", 1, 4), dlv("b", 1, Agreed, 5), recv("a", 2, 8), dlv("a", 2, Safe, 11)},
	}
}

func TestGoodHistory(t *testing.T) {
	r := Check(good())
	if !r.OK() {
		t.Fatalf("a correct history fails:\n%s", r)
	}
	for _, g := range []string{GDuplicates, GMembership, GFIFO, GCausal, GTotal, GSafe} {
		if r.Counts[g] == 0 {
			t.Errorf("%s was not checked: %s", g, r)
		}
	}
}

// TestBrokenHistories: each history breaks one guarantee; the checker
// must name it.
func TestBrokenHistories(t *testing.T) {
	tests := []struct {
		name string
		want string
		h    History
	}{
		{"duplicate", GDuplicates, History{
			"a": {view("g", "v1", "a"), send("a", 1, Reliable), dlv("a", 1, Reliable, 1), dlv("a", 1, Reliable, 2)},
		}},
		{"self-discard", GSelfDiscard, History{
			"a": {view("g", "v1", "a"), send("a", 1, Agreed|SelfDiscard), dlv("a", 1, Agreed|SelfDiscard, 1)},
		}},
		{"not a member", GMembership, History{
			"a": {view("g", "v1", "b"), dlv("b", 1, Reliable, 1)},
			"b": {view("g", "v1", "b"), send("b", 1, Reliable)},
		}},
		{"one view id, two member lists", GMembership, History{
			"a": {view("g", "v1", "a", "b")},
			"b": {view("g", "v1", "b")},
		}},
		{"fifo", GFIFO, History{
			"a": {view("g", "v1", "a", "b"), dlv("b", 2, FIFO, 1), dlv("b", 1, FIFO, 2)},
			"b": {view("g", "v1", "a", "b"), send("b", 1, FIFO), send("b", 2, FIFO)},
		}},
		{"causal", GCausal, History{
			// b delivers a#1 and then sends b#1; c delivers b#1 first.
			"a": {view("g", "v1", "a", "b", "c"), send("a", 1, Causal), dlv("a", 1, Causal, 1)},
			"b": {view("g", "v1", "a", "b", "c"), dlv("a", 1, Causal, 2), send("b", 1, Causal), dlv("b", 1, Causal, 3)},
			"c": {view("g", "v1", "a", "b", "c"), dlv("b", 1, Causal, 4), dlv("a", 1, Causal, 5)},
		}},
		{"total order", GTotal, History{
			"a": {view("g", "v1", "a", "b"), send("a", 1, Agreed), dlv("a", 1, Agreed, 1), dlv("b", 1, Agreed, 2)},
			"b": {view("g", "v1", "a", "b"), send("b", 1, Agreed), dlv("b", 1, Agreed, 3), dlv("a", 1, Agreed, 4)},
		}},
		{"total order among members that went on together, unseen order", GTotal, History{
			// a and b go on together; neither saw the order of a#1 and
			// b#1, and they deliver them in different orders.
			"a": {view("g", "v1", "a", "b", "c"), send("a", 1, Agreed), trans("g", "v1", "a", "b"),
				unseen(dlv("a", 1, Agreed, 1)), unseen(dlv("b", 1, Agreed, 2)), view("g", "v2", "a", "b")},
			"b": {view("g", "v1", "a", "b", "c"), send("b", 1, Agreed), trans("g", "v1", "a", "b"),
				unseen(dlv("b", 1, Agreed, 3)), unseen(dlv("a", 1, Agreed, 4)), view("g", "v2", "a", "b")},
			"c": {view("g", "v1", "a", "b", "c")},
		}},
		{"causal order of unseen deliveries", GCausal, History{
			"a": {view("g", "v1", "a", "b", "c"), send("a", 1, Causal), dlv("a", 1, Causal, 1)},
			"b": {view("g", "v1", "a", "b", "c"), dlv("a", 1, Causal, 2), send("b", 1, Causal), dlv("b", 1, Causal, 3)},
			"c": {view("g", "v1", "a", "b", "c"), trans("g", "v1", "c"), unseen(dlv("b", 1, Causal, 4)), unseen(dlv("a", 1, Causal, 5))},
		}},
		{"safe before all received", GSafe, History{
			"a": {view("g", "v1", "a", "b"), send("a", 1, Safe), recv("a", 1, 1), dlv("a", 1, Safe, 2)},
			"b": {view("g", "v1", "a", "b"), recv("a", 1, 3), dlv("a", 1, Safe, 4)},
		}},
		{"safe never received", GSafe, History{
			"a": {view("g", "v1", "a", "b"), send("a", 1, Safe), recv("a", 1, 1), dlv("a", 1, Safe, 2)},
			"b": {view("g", "v1", "a", "b")},
		}},
		{"virtual synchrony", GVirtual, History{
			"a": {view("g", "v1", "a", "b", "c"), send("a", 1, Reliable), dlv("a", 1, Reliable, 1), view("g", "v2", "a", "b")},
			"b": {view("g", "v1", "a", "b", "c"), view("g", "v2", "a", "b")},
			"c": {view("g", "v1", "a", "b", "c")},
		}},
		{"virtual synchrony through one transitional view", GVirtual, History{
			"a": {view("g", "v1", "a", "b", "c"), send("a", 1, Reliable), dlv("a", 1, Reliable, 1),
				Event{Kind: View, Group: "g", ViewID: "v1", Members: []string{"a", "b"}, Transitional: true}, view("g", "v2", "a", "b")},
			"b": {view("g", "v1", "a", "b", "c"),
				Event{Kind: View, Group: "g", ViewID: "v1", Members: []string{"a", "b"}, Transitional: true}, view("g", "v2", "a", "b")},
			"c": {view("g", "v1", "a", "b", "c")},
		}},
	}
	for i, tt := range tests {
		r := Check(tt.h)
		if !r.Has(tt.want) {
			t.Errorf("%d. Check(%s) = %v; want a %s violation", i, tt.name, r, tt.want)
		}
	}
	// Members that reach the next view through different transitional
	// views did not move on together: they are not compared.
	h0 := History{
		"a": {view("g", "v1", "a", "b"), send("a", 1, Reliable), dlv("a", 1, Reliable, 1),
			Event{Kind: View, Group: "g", ViewID: "v1", Members: []string{"a"}, Transitional: true}, view("g", "v2", "a", "b")},
		"b": {view("g", "v1", "a", "b"),
			Event{Kind: View, Group: "g", ViewID: "v1", Members: []string{"b"}, Transitional: true}, view("g", "v2", "a", "b")},
	}
	if r := Check(h0); r.Has(GVirtual) {
		t.Errorf("members through different transitional views compared: %s", r)
	}
	// Two sides of a partition: c saw the sequencer order a#1 before
	// b#1; a and b, on the other side, saw neither ordered and deliver
	// them the other way (docs/groups.md, Limits). Not a violation; the
	// same with c's deliveries not marked unseen on a's side is.
	h1 := History{
		"a": {view("g", "v1", "a", "b", "c"), send("a", 1, Agreed), trans("g", "v1", "a", "b"),
			unseen(dlv("b", 1, Agreed, 3)), unseen(dlv("a", 1, Agreed, 4)), view("g", "v2", "a", "b")},
		"b": {view("g", "v1", "a", "b", "c"), send("b", 1, Agreed), trans("g", "v1", "a", "b"),
			unseen(dlv("b", 1, Agreed, 5)), unseen(dlv("a", 1, Agreed, 6)), view("g", "v2", "a", "b")},
		"c": {view("g", "v1", "a", "b", "c"), dlv("a", 1, Agreed, 1), dlv("b", 1, Agreed, 2), trans("g", "v1", "c"),
			view("g", "v3", "c")},
	}
	if r := Check(h1); !r.OK() {
		t.Errorf("an order that one side of a partition did not see fails: %s", r)
	}
	h1["a"][3].Unseen, h1["a"][4].Unseen = false, false
	if r := Check(h1); !r.Has(GTotal) {
		t.Errorf("a total order violation among seen orders passes: %s", r)
	}
	// Changing one thing in a correct history breaks it.
	h := good()
	h["b"][2] = dlv("a", 2, Safe, 4) // b delivers a#2 in place of a#1, and twice
	if r := Check(h); r.OK() {
		t.Fatalf("a corrupted history passes: %s", r)
	}
}
