package group

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"testing"

	"pgregory.net/rapid"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/group/internal/check"
)

// A simulated network for the protocol core: one FIFO channel per
// ordered pair of nodes, and a schedule (which channel moves next, who sends, joins, leaves, crashes,
// partitions, heals) drawn by rapid. Every message goes through msgpack
// as on the wire. After the schedule, the network heals and drains,
// every node leaves its groups, and the checker verifies the history.

type simItem struct {
	gone bool // the session ended: the receiver learns it here
	why  uint8
	msg  []byte
	name string
	tok  uint64
}

type simNode struct {
	name  slc.PeerID
	core  *core
	dead  bool
	group map[string]bool // groups it asked to be in
}

// simT is what the simulation needs of a test: a *rapid.T when rapid
// draws the schedule, a *testing.T for a scripted one.
type simT interface {
	Helper()
	Log(args ...any)
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
}

type sim struct {
	t       simT
	rt      *rapid.T // draws the schedule; nil in a scripted test
	nodes   []*simNode
	byName  map[slc.PeerID]*simNode
	chans   map[[2]slc.PeerID][]simItem
	up      map[[2]slc.PeerID]bool // sessions
	side    map[slc.PeerID]int     // partition side
	clock   int64
	hist    check.History
	serial  map[slc.PeerID]uint64
	sent    int
	ser     codec.Serializer
	trace   bool
	logs    []string
	groups  []string
	crashes int
}

func newSim(t simT, n int) *sim {
	rt, _ := t.(*rapid.T)
	s := &sim{t: t, rt: rt, byName: map[slc.PeerID]*simNode{}, chans: map[[2]slc.PeerID][]simItem{},
		up: map[[2]slc.PeerID]bool{}, side: map[slc.PeerID]int{}, hist: check.History{}, serial: map[slc.PeerID]uint64{},
		groups: []string{"a", "b"}}
	s.ser, _ = codec.SerializerByID(codec.Msgpack)
	for i := 0; i < n; i++ {
		name := slc.PeerID(fmt.Sprintf("n%d", i))
		node := &simNode{name: name, group: map[string]bool{}}
		node.core = newCore(name, uint64(100+i), uint64(i)*1000, s.env(node))
		s.nodes = append(s.nodes, node)
		s.byName[name] = node
	}
	for _, a := range s.nodes {
		for _, b := range s.nodes {
			if a != b {
				s.up[[2]slc.PeerID{a.name, b.name}] = true
			}
		}
	}
	for _, a := range s.nodes {
		for _, b := range s.nodes {
			if a != b {
				a.core.sessionUp(b.name)
			}
		}
	}
	return s
}

func (s *sim) now() int64 { s.clock++; return s.clock }

func (s *sim) record(node slc.PeerID, e check.Event) {
	s.hist[string(node)] = append(s.hist[string(node)], e)
}

func (s *sim) env(n *simNode) coreEnv {
	return coreEnv{
		send: func(to []slc.PeerID, msg any, tok uint64) {
			name, _ := codec.TypeName(msg)
			b, err := s.ser.Append(nil, msg)
			if err != nil {
				panic(err)
			}
			for _, p := range to {
				k := [2]slc.PeerID{n.name, p}
				if !s.up[k] || n.dead {
					continue
				}
				s.chans[k] = append(s.chans[k], simItem{msg: b, name: name, tok: tok})
			}
		},
		deliverData: func(d *dataMsg, unseen bool) {
			s.record(n.name, check.Event{Kind: check.Deliver, Msg: check.MsgID{Sender: string(d.Sender), Serial: d.Serial},
				Service: int(d.Svc), Groups: d.Groups, Time: s.now(), Unseen: unseen})
		},
		deliverView: func(m *Membership) {
			s.record(n.name, check.Event{Kind: check.View, Group: m.Group, ViewID: m.ViewID.String(),
				Members: peerStrings(m.Members), Transitional: m.Transitional})
			if s.trace {
				s.logs = append(s.logs, fmt.Sprintf("%s view %v", n.name, m))
			}
		},
		received: func(d *dataMsg) {
			if d.Kind == kindData {
				s.record(n.name, check.Event{Kind: check.Receive, Msg: check.MsgID{Sender: string(d.Sender), Serial: d.Serial}, Time: s.now()})
			}
		},
		processed: func(*dataMsg) {},
		progress:  func() {},
		installed: func(c *Configuration) {
			if s.trace {
				s.logs = append(s.logs, fmt.Sprintf("%s installed %s/%d %v", n.name, c.Coordinator, c.Config, c.Members))
			}
		},
	}
}

func peerStrings(ps []slc.PeerID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

func (s *sim) decode(it simItem) any {
	v, err := codec.Decode(it.name, s.ser, it.msg)
	if err != nil {
		panic(err)
	}
	return toPointer(v)
}

// busy lists the channels with something to move, in a fixed order.
func (s *sim) busy() [][2]slc.PeerID {
	var out [][2]slc.PeerID
	for k, q := range s.chans {
		if len(q) > 0 {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}

// move delivers the head of channel k.
func (s *sim) move(k [2]slc.PeerID) {
	it := s.chans[k][0]
	s.chans[k] = s.chans[k][1:]
	to := s.byName[k[1]]
	if to.dead {
		return
	}
	if it.gone {
		to.core.sessionGone(k[0], it.why)
		return
	}
	to.core.onMessage(k[0], s.decode(it))
}

func (s *sim) live() []*simNode {
	var out []*simNode
	for _, n := range s.nodes {
		if !n.dead {
			out = append(out, n)
		}
	}
	return out
}

func (s *sim) multicast(n *simNode, svc Service, groups []string) {
	s.serial[n.name]++
	d := &dataMsg{Sender: n.name, Inst: n.core.inst, Serial: s.serial[n.name], Svc: svc, Groups: groups}
	s.record(n.name, check.Event{Kind: check.Send, Msg: check.MsgID{Sender: string(n.name), Serial: d.Serial},
		Service: int(svc), Groups: groups})
	s.sent++
	n.core.multicast(d)
}

func (s *sim) membership(n *simNode, kind uint8, group string) {
	s.serial[n.name]++
	d := &dataMsg{Sender: n.name, Inst: n.core.inst, Serial: s.serial[n.name], Kind: kind, Svc: Agreed, Groups: []string{group}}
	n.core.multicast(d)
}

// cutSession ends the sessions between a and b: each direction loses a
// suffix of what is in flight, then each side learns the end.
func (s *sim) cutSession(a, b slc.PeerID, keepA, keepB int, why uint8) {
	for _, k := range [][2]slc.PeerID{{a, b}, {b, a}} {
		if !s.up[k] {
			continue
		}
		q := s.chans[k]
		keep := keepA
		if k[0] == b {
			keep = keepB
		}
		if keep < len(q) {
			q = q[:keep]
		}
		s.chans[k] = append(slices.Clone(q), simItem{gone: true, why: why})
		s.up[k] = false
	}
}

func (s *sim) heal(a, b slc.PeerID) {
	ka, kb := [2]slc.PeerID{a, b}, [2]slc.PeerID{b, a}
	if s.up[ka] || s.up[kb] || s.byName[a].dead || s.byName[b].dead {
		return
	}
	// A new session: whatever the old one had in flight is gone.
	if len(s.chans[ka]) > 0 || len(s.chans[kb]) > 0 {
		return
	}
	s.up[ka], s.up[kb] = true, true
	s.byName[a].core.sessionUp(b)
	s.byName[b].core.sessionUp(a)
}

// drain moves everything, ticking the nodes, until nothing moves.
func (s *sim) drain(limit int) {
	for i := 0; i < limit; i++ {
		b := s.busy()
		if len(b) == 0 {
			for _, n := range s.live() {
				n.core.tick()
			}
			if len(s.busy()) == 0 {
				return
			}
			continue
		}
		for _, k := range b {
			s.move(k)
		}
		if i%8 == 0 {
			for _, n := range s.live() {
				n.core.tick()
			}
		}
	}
	s.t.Fatalf("the network did not settle in %d rounds", limit)
}

func (s *sim) healAll() {
	for i, a := range s.nodes {
		for _, b := range s.nodes[i+1:] {
			s.heal(a.name, b.name)
		}
	}
}

var simServices = []Service{Unreliable, Reliable, FIFO, Causal, Agreed, Safe, FIFO | SelfDiscard, Agreed | SelfDiscard, Safe | SelfDiscard}

// run plays a schedule drawn by rapid.
func (s *sim) run(steps int, faults bool) {
	t := s.rt
	for step := 0; step < steps; step++ {
		live := s.live()
		op := rapid.IntRange(0, 99).Draw(t, "op")
		switch {
		case op < 55:
			if b := s.busy(); len(b) > 0 {
				s.move(b[rapid.IntRange(0, len(b)-1).Draw(t, "chan")])
			}
		case op < 75:
			n := live[rapid.IntRange(0, len(live)-1).Draw(t, "sender")]
			svc := rapid.SampledFrom(simServices).Draw(t, "svc")
			var groups []string
			switch rapid.IntRange(0, 2).Draw(t, "to") {
			case 0:
				groups = []string{"a"}
			case 1:
				groups = []string{"b"}
			default:
				groups = []string{"a", "b"}
			}
			s.multicast(n, svc, groups)
		case op < 84:
			n := live[rapid.IntRange(0, len(live)-1).Draw(t, "member")]
			g := rapid.SampledFrom(s.groups).Draw(t, "group")
			if n.group[g] {
				if rapid.IntRange(0, 3).Draw(t, "leave") == 0 {
					n.group[g] = false
					s.membership(n, kindLeave, g)
				}
			} else {
				n.group[g] = true
				s.membership(n, kindJoin, g)
			}
		case op < 92:
			live[rapid.IntRange(0, len(live)-1).Draw(t, "ticker")].core.tick()
		case op < 95 && faults && len(live) > 2 && s.crashes < 1:
			n := live[rapid.IntRange(0, len(live)-1).Draw(t, "victim")]
			s.crash(n)
		case op < 98 && faults:
			// Partition the live nodes in two.
			var a, b []slc.PeerID
			for _, n := range live {
				if rapid.Bool().Draw(t, "side") {
					a = append(a, n.name)
				} else {
					b = append(b, n.name)
				}
			}
			for _, x := range a {
				for _, y := range b {
					s.cutSession(x, y, rapid.IntRange(0, 3).Draw(t, "keep"), rapid.IntRange(0, 3).Draw(t, "keep"), whyLost)
				}
			}
		case faults:
			x := live[rapid.IntRange(0, len(live)-1).Draw(t, "heal-a")]
			y := live[rapid.IntRange(0, len(live)-1).Draw(t, "heal-b")]
			if x != y {
				s.heal(x.name, y.name)
			}
		}
	}
}

func (s *sim) crash(n *simNode) {
	s.crashes++
	n.dead = true
	for _, o := range s.nodes {
		if o == n {
			continue
		}
		k := [2]slc.PeerID{n.name, o.name}
		keep := rapid.IntRange(0, len(s.chans[k])).Draw(s.rt, "inflight")
		s.cutSession(n.name, o.name, keep, 0, whyLost)
	}
}

// finish heals, drains, checks that the live nodes agree, makes every
// node leave its groups, drains again, and checks the history.
func (s *sim) finish() *check.Report {
	t := s.t
	s.drain(20000)
	s.healAll()
	s.drain(20000)
	live := s.live()
	cfg := live[0].core.cfg
	for _, n := range live {
		c := n.core
		if c.cfg.id != cfg.id || c.acc != nil || c.prop != nil {
			s.dump()
			t.Fatalf("%s: configuration %v (accepted %v, proposing %v), %s has %v", n.name, c.cfg.id, c.acc != nil, c.prop != nil, live[0].name, cfg.id)
		}
		if len(c.cfg.names) != len(live) {
			s.dump()
			t.Fatalf("%s: configuration %v has %v, %d nodes live", n.name, c.cfg.id, c.cfg.names, len(live))
		}
		if c.outstanding() != 0 {
			s.dump()
			t.Fatalf("%s: %d messages outstanding after the network settled", n.name, c.outstanding())
		}
	}
	for _, n := range live {
		for _, g := range s.groups {
			if n.group[g] {
				n.group[g] = false
				s.membership(n, kindLeave, g)
			}
		}
	}
	s.drain(20000)
	for _, n := range live {
		if len(n.core.cfg.groups) != 0 {
			s.dump()
			t.Fatalf("%s: groups left after every node left: %v", n.name, snapshot(n.core.cfg.groups))
		}
	}
	return check.Check(s.hist)
}

func (s *sim) dump() {
	for _, l := range s.logs {
		s.t.Log(l)
	}
	if os.Getenv("GROUP_SIM_HISTORY") != "" {
		for _, n := range s.nodes {
			for _, e := range s.hist[string(n.name)] {
				s.t.Logf("%s: %s %s svc=%#x groups=%v view=%s %v trans=%v unseen=%v", n.name, e.Kind, e.Msg, e.Service, e.Groups, e.ViewID, e.Members, e.Transitional, e.Unseen)
			}
		}
	}
	for _, n := range s.nodes {
		c := n.core
		s.t.Logf("%s dead=%v cfg=%v members=%v acc=%v prop=%v pending=%d epoch=%d marked=%v markers=%v stable=%d recv=%d proc=%d unordered=%d waitSeq=%d waitDirect=%d",
			n.name, n.dead, c.cfg.id, c.cfg.names, c.acc, c.prop, len(c.cfg.pending), c.cfg.epoch, c.cfg.marked, c.cfg.markers,
			c.cfg.stable, c.cfg.recvSeq, c.cfg.procSeq, len(c.unordered), len(c.waitSeq), len(c.waitDirect))
	}
}

// simTotals sums the checker's counts over every rapid case, for the log.
var simTotals = map[string]int{}

func simProperty(faults bool) func(*rapid.T) {
	return func(t *rapid.T) {
		n := rapid.IntRange(3, 5).Draw(t, "nodes")
		s := newSim(t, n)
		s.trace = true
		if os.Getenv("GROUP_SIM_HISTORY") != "" {
			debugf = func(format string, args ...any) { s.logs = append(s.logs, fmt.Sprintf(format, args...)) }
		}
		s.run(rapid.IntRange(20, 250).Draw(t, "steps"), faults)
		r := s.finish()
		for k, v := range r.Counts {
			simTotals[k] += v
		}
		if !r.OK() {
			s.dump()
			t.Fatalf("%d messages sent; the checker found:\n%s", s.sent, r)
		}
	}
}

// TestSimSchedules explores schedules without faults: messages, joins
// and leaves interleaved in every order rapid finds.
func TestSimSchedules(t *testing.T) {
	clear(simTotals)
	rapid.Check(t, simProperty(false))
	t.Logf("checks over all cases: %v", simTotals)
	if simTotals[check.GTotal] == 0 || simTotals[check.GVirtual] == 0 || simTotals[check.GCausal] == 0 {
		t.Fatalf("the schedules checked nothing: %v", simTotals)
	}
}

// TestSimFaults adds a crash, partitions and heals: configurations split,
// flush and merge.
func TestSimFaults(t *testing.T) {
	clear(simTotals)
	rapid.Check(t, simProperty(true))
	t.Logf("checks over all cases: %v", simTotals)
	if simTotals[check.GSafe] == 0 || simTotals[check.GVirtual] == 0 {
		t.Fatalf("the schedules checked nothing: %v", simTotals)
	}
}
