package group

import (
	"slices"
	"testing"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/group/internal/check"
)

// Scripted schedules on the simulated network: the minimal histories of
// bugs that the randomized runs found, kept as regression tests.

// moveAll delivers everything in flight from a to b.
func (s *sim) moveAll(a, b *simNode) {
	k := [2]slc.PeerID{a.name, b.name}
	for len(s.chans[k]) > 0 {
		s.move(k)
	}
}

func (s *sim) join(n *simNode, g string) {
	n.group[g] = true
	s.membership(n, kindJoin, g)
}

// delivered lists what n delivered, in its order.
func (s *sim) delivered(n *simNode) []check.MsgID {
	var out []check.MsgID
	for _, e := range s.hist[string(n.name)] {
		if e.Kind == check.Deliver {
			out = append(out, e.Msg)
		}
	}
	return out
}

func (s *sim) finishOK(t *testing.T) {
	t.Helper()
	r := s.finish()
	if !r.OK() {
		s.dump()
		t.Fatalf("the checker found:\n%s", r)
	}
}

// TestTailCausalOrder: the multicasts that end a configuration are
// delivered in causal order. n1 sends u to a, then o to a and b (o
// follows u causally: same sender). The sequencer n0 orders both; only
// n2 (in b, not in a) receives o before a partition cuts n0 off, and n1
// receives neither. On the side of n1 and n2, o is known ordered and u
// is not: n1 must deliver u before o. (It delivered o first when the
// messages whose place no member saw went after all the others.)
func TestTailCausalOrder(t *testing.T) {
	s := newSim(t, 3)
	s.trace = true
	n0, n1, n2 := s.nodes[0], s.nodes[1], s.nodes[2]
	s.drain(1000)
	s.join(n0, "a")
	s.join(n1, "a")
	s.join(n2, "b")
	s.drain(1000)
	if cf := n0.core.cfg; len(cf.names) != 3 {
		t.Fatalf("configuration %v: %v", cf.id, cf.names)
	}
	s.multicast(n1, Agreed, []string{"a"})
	u := check.MsgID{Sender: "n1", Serial: s.serial[n1.name]}
	s.multicast(n1, Agreed, []string{"a", "b"})
	o := check.MsgID{Sender: "n1", Serial: s.serial[n1.name]}
	s.moveAll(n1, n0) // the sequencer orders u and o
	s.moveAll(n0, n2) // n2 receives o
	s.cutSession(n0.name, n1.name, 0, 0, whyLost)
	s.cutSession(n0.name, n2.name, 0, 0, whyLost)
	s.finishOK(t)
	for _, n := range []*simNode{n0, n1} {
		got := s.delivered(n)
		if i, j := slices.Index(got, u), slices.Index(got, o); i < 0 || j < 0 || i > j {
			t.Errorf("%s delivered %v; want %v, then %v", n.name, got, u, o)
		}
	}
	if got := s.delivered(n2); slices.Contains(got, u) || !slices.Contains(got, o) {
		t.Errorf("n2 delivered %v; want %v and not %v", got, o, u)
	}
}

// TestDirectAfterState: a direct message that reaches a member after it
// reported its state to a view change is not delivered: the flush did
// not count it, so the other members do not deliver it. n2, not in b,
// sends a Reliable message to b (n0, n1) and is cut off; n0 proposes a
// configuration without it, and n1 answers before n2's message arrives.
func TestDirectAfterState(t *testing.T) {
	s := newSim(t, 3)
	s.trace = true
	n0, n1, n2 := s.nodes[0], s.nodes[1], s.nodes[2]
	s.drain(1000)
	s.join(n0, "b")
	s.join(n1, "b")
	s.drain(1000)
	s.multicast(n2, Reliable, []string{"b"})
	m := check.MsgID{Sender: "n2", Serial: s.serial[n2.name]}
	s.cutSession(n2.name, n0.name, 0, 0, whyLost)
	s.cutSession(n2.name, n1.name, 1, 0, whyLost)
	s.moveAll(n2, n0) // n0 learns that n2 is gone and proposes n0, n1
	s.moveAll(n0, n1) // n1 takes part: it reports its state
	if n1.core.acc == nil {
		t.Fatalf("n1 is not taking part in a view change")
	}
	s.moveAll(n2, n1) // n2's message, then the end of the session
	s.finishOK(t)
	for _, n := range []*simNode{n0, n1} {
		if got := s.delivered(n); slices.Contains(got, m) {
			t.Errorf("%s delivered %v: %v", n.name, m, got)
		}
	}
}
