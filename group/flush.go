package group

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/slc-go/slc"
)

// Configurations and view changes: who is reachable, who coordinates,
// and the flush that moves the members of one or more configurations to
// the next one with virtual synchrony.

// --- peers ---

// sessionUp: a session with p started (or p restarted): introduce this
// node.
func (c *core) sessionUp(p slc.PeerID) {
	c.sendHello([]slc.PeerID{p})
}

// sessionGone: the session with p ended for good (slc's PeerLost, a
// final disconnect, a restart, or suspicion).
func (c *core) sessionGone(p slc.PeerID, why uint8) {
	ps := c.peers[p]
	if ps == nil || ps.gone {
		return
	}
	ps.gone = true
	if cf := c.cfg; cf.has(p) {
		c.broken = true
		if cf.lost == nil {
			cf.lost = map[slc.PeerID]bool{}
		}
		cf.lost[p] = true
	}
	ref := nodeRef{Name: p, Inst: ps.inst}
	if old, ok := c.goneWhy[ref]; !ok || old == whyLost {
		c.goneWhy[ref] = why
	}
	c.kver++
	c.peerLeft(p)
	c.reachChanged()
	c.evaluate()
}

// peerLeft settles the view change in progress when p, taking part in
// it, went away.
func (c *core) peerLeft(p slc.PeerID) {
	if c.prop != nil && slices.ContainsFunc(c.prop.members, func(r nodeRef) bool { return r.Name == p }) {
		c.prop.failed = true
	}
	if c.acc != nil && c.acc.coord == p && p != c.name {
		c.acc = nil
		c.future = nil
		c.resume()
	}
}

func (c *core) sendHello(to []slc.PeerID) {
	cf := c.cfg
	h := &helloMsg{Inst: c.inst, Addrs: c.addrs, Reach: c.reachable(), Cfg: cf.id, Members: cf.members, Closing: c.closing,
		Broken: c.broken}
	c.send(to, h)
}

// reachable lists the peers this node reaches: it has their hello, their
// session lives, and they are not closing.
func (c *core) reachable() []peerInfo {
	var out []peerInfo
	for _, p := range sortedKeys(c.peers) {
		ps := c.peers[p]
		if ps.gone || ps.hello == nil || ps.hello.Closing {
			continue
		}
		out = append(out, peerInfo{Name: p, Inst: ps.inst, Addrs: ps.hello.Addrs})
	}
	return out
}

func (c *core) reachChanged() {
	r := c.reachable()
	if slices.EqualFunc(r, c.reach, func(a, b peerInfo) bool { return a.Name == b.Name && a.Inst == b.Inst }) {
		return
	}
	c.reach = r
	c.broadcastHello()
}

func (c *core) broadcastHello() {
	var to []slc.PeerID
	for _, p := range sortedKeys(c.peers) {
		if !c.peers[p].gone {
			to = append(to, p)
		}
	}
	c.sendHello(to)
}

func (c *core) onHello(from slc.PeerID, h *helloMsg) {
	ps := c.peers[from]
	if ps == nil {
		ps = &peerState{}
		c.peers[from] = ps
	}
	if ps.inst != 0 && ps.inst != h.Inst {
		// A new instance: the old one is gone for good.
		old := nodeRef{Name: from, Inst: ps.inst}
		if _, ok := c.goneWhy[old]; !ok || c.goneWhy[old] == whyLost {
			c.goneWhy[old] = whyRestart
		}
		c.peerLeft(from)
		ps.hello = nil
	}
	first := ps.hello == nil || ps.gone
	ps.inst, ps.hello, ps.gone = h.Inst, h, false
	if h.Closing {
		c.goneWhy[nodeRef{Name: from, Inst: h.Inst}] = whyClosed
		c.peerLeft(from)
	}
	c.kver++
	if first {
		c.sendHello([]slc.PeerID{from})
	}
	if c.env.hello != nil {
		c.env.hello(from, h)
	}
	c.reachChanged()
	c.evaluate()
}

// reports reports whether q's hello lists p (that instance) as reachable.
func (c *core) reports(q, p nodeRef) bool {
	if q.Name == c.name {
		ps := c.peers[p.Name]
		return ps != nil && ps.inst == p.Inst
	}
	ps := c.peers[q.Name]
	if ps == nil || ps.hello == nil {
		return false
	}
	return slices.ContainsFunc(ps.hello.Reach, func(r peerInfo) bool { return r.Name == p.Name && r.Inst == p.Inst })
}

// candidates is the configuration this node would form: itself, then in
// name order each reachable node that every node taken so far reaches,
// as their hellos tell, and that reaches them. Sorted by name.
func (c *core) candidates() []nodeRef {
	me := nodeRef{Name: c.name, Inst: c.inst}
	d := []nodeRef{me}
	for _, pi := range c.reachable() {
		p := nodeRef{Name: pi.Name, Inst: pi.Inst}
		ok := true
		for _, q := range d {
			if !c.reports(q, p) || !c.reports(p, q) {
				ok = false
				break
			}
		}
		if ok {
			d = append(d, p)
		}
	}
	slices.SortFunc(d, cmpRef)
	return d
}

// evaluate starts a view change when this node is the coordinator of the
// configuration it would form (the smallest name in it) and that differs
// from the installed one.
func (c *core) evaluate() {
	if c.closing {
		return
	}
	if c.acc != nil && c.acc.coord != c.name {
		return
	}
	d := c.candidates()
	if d[0].Name != c.name {
		if c.prop != nil {
			c.abortProp(true)
		}
		return
	}
	if c.prop != nil {
		if !c.prop.failed && subsetRefs(c.prop.members, d) {
			return
		}
		c.abortProp(true)
	}
	if slices.Equal(d, c.cfg.members) && !c.cfgBroken() {
		return
	}
	if c.nacked && c.nackVer == c.kver {
		return // refused; wait until something changes
	}
	c.nacked = false
	c.propose(d)
}

// cfgBroken reports whether this node or a member lost a session with a
// member since the configuration was installed: then it is replaced,
// even by one with the same members.
func (c *core) cfgBroken() bool {
	if c.broken {
		return true
	}
	for _, p := range c.cfg.names {
		ps := c.peers[p]
		if p == c.name || ps == nil || ps.hello == nil {
			continue
		}
		h := ps.hello
		if h.Cfg == c.cfg.id && h.Broken {
			return true
		}
		// A member that installed another configuration since it came
		// into this one (its session with this node lived on).
		if old, ok := c.cfg.oldOf[p]; ok && h.Cfg != c.cfg.id && h.Cfg != old {
			return true
		}
	}
	return false
}

func subsetRefs(a, b []nodeRef) bool {
	for _, r := range a {
		if !slices.Contains(b, r) {
			return false
		}
	}
	return true
}

func (c *core) propose(members []nodeRef) {
	c.nextCfg++
	id := cfgID{Coord: c.name, N: c.nextCfg}
	var gone []goneRef
	for _, m := range c.cfg.members {
		if !slices.Contains(members, m) {
			gone = append(gone, goneRef{Name: m.Name, Inst: m.Inst, Why: c.goneWhy[m]})
		}
	}
	c.prop = &proposal{id: id, members: members, gone: gone, states: map[slc.PeerID]*stateMsg{}, filled: map[slc.PeerID]bool{}}
	msg := &proposeMsg{P: id, Members: members, Gone: gone}
	var to []slc.PeerID
	for _, m := range members {
		if m.Name != c.name {
			to = append(to, m.Name)
		}
	}
	c.send(to, msg)
	c.onPropose(c.name, msg)
}

// abortProp withdraws this node's proposal. With resume, the node goes on
// in its configuration.
func (c *core) abortProp(resume bool) {
	p := c.prop
	c.prop = nil
	var to []slc.PeerID
	for _, m := range p.members {
		if m.Name != c.name {
			to = append(to, m.Name)
		}
	}
	c.send(to, &abortMsg{P: p.id})
	if c.acc != nil && c.acc.p == p.id {
		c.acc = nil
		c.future = nil
		if resume {
			c.resume()
		}
	}
}

// resume goes on in the configuration after a withdrawn proposal.
func (c *core) resume() {
	cf := c.cfg
	c.sendAcks()
	if q := cf.seqr; q != nil && q.stable > q.announced {
		c.announceSeq()
	}
	if q := cf.seqr; q != nil && len(q.hold) > 0 {
		hold := q.hold
		q.hold = nil
		for _, d := range hold {
			c.sequence(d)
		}
	}
	for _, s := range sortedKeys(cf.dirIn) {
		c.deliverDirect(s)
	}
	c.process()
	c.flushWaiting()
}

// better reports whether proposal a wins over b: a smaller coordinator,
// or a later proposal of the same one.
func better(a, b cfgID) bool {
	if a.Coord != b.Coord {
		return a.Coord < b.Coord
	}
	return a.N > b.N
}

// reasonBusy refuses a proposal while another view change is under way:
// the proposer tries again on its next tick.
const reasonBusy = "taking part in another view change"

func (c *core) nack(to slc.PeerID, p cfgID, reason string) {
	if to == c.name {
		c.onNack(c.name, &nackMsg{P: p, Reason: reason})
		return
	}
	c.send([]slc.PeerID{to}, &nackMsg{P: p, Reason: reason})
}

func (c *core) onPropose(from slc.PeerID, m *proposeMsg) {
	if from != m.P.Coord || len(m.Members) == 0 || m.Members[0].Name != from {
		return
	}
	if c.closing {
		c.nack(from, m.P, "closing")
		return
	}
	if !slices.Contains(m.Members, nodeRef{Name: c.name, Inst: c.inst}) {
		c.nack(from, m.P, "not a member")
		return
	}
	if c.acc != nil {
		if c.acc.p == m.P {
			return
		}
		if c.acc.filled || !better(m.P, c.acc.p) {
			c.nack(from, m.P, reasonBusy)
			return
		}
		// Switch to the better proposal.
		if c.acc.coord == c.name {
			c.abortProp(false)
		} else {
			c.nack(c.acc.coord, c.acc.p, "taking part in a better view change")
			c.acc = nil
			c.future = nil
		}
	} else if cur := c.cfg.coord; cur != c.name && cur < from && c.alive(cur) &&
		!slices.ContainsFunc(m.Members, func(r nodeRef) bool { return r.Name == cur }) {
		c.nack(from, m.P, "following "+string(cur))
		return
	}
	c.acc = &accepted{p: m.P, coord: from, recv: c.cfg.recvSeq}
	st := c.stateFor(m.P)
	if from == c.name {
		c.onState(c.name, st)
	} else {
		c.send([]slc.PeerID{from}, st)
	}
}

// alive reports whether p's session lives and p is not closing.
func (c *core) alive(p slc.PeerID) bool {
	ps := c.peers[p]
	return ps != nil && !ps.gone && (ps.hello == nil || !ps.hello.Closing)
}

// stateFor reports this node's part of its configuration. The node is
// frozen from now on: it neither sends nor delivers in it.
func (c *core) stateFor(p cfgID) *stateMsg {
	cf := c.cfg
	st := &stateMsg{P: p, Inst: c.inst, Old: cf.id, RecvSeq: cf.recvSeq, ProcSeq: cf.procSeq, Stable: cf.stable,
		Groups: snapshot(cf.groups)}
	for _, m := range cf.done {
		st.Held = append(st.Held, *m)
	}
	for _, m := range cf.pending {
		st.Held = append(st.Held, *m)
	}
	st.DirectRecv = append(st.DirectRecv, senderCount{Sender: c.name, N: cf.dirOut})
	for _, s := range sortedKeys(cf.dirIn) {
		d := cf.dirIn[s]
		st.DirectRecv = append(st.DirectRecv, senderCount{Sender: s, N: d.recv})
		for _, m := range d.held {
			st.HeldDirect = append(st.HeldDirect, *m)
		}
	}
	for _, r := range cf.dirSent {
		st.HeldDirect = append(st.HeldDirect, *r.msg)
	}
	for _, d := range c.unordered {
		if d.Kind == kindData {
			st.Unordered = append(st.Unordered, *d)
		}
	}
	return st
}

func (c *core) onNack(from slc.PeerID, m *nackMsg) {
	p := c.prop
	if p == nil || m.P != p.id {
		return
	}
	c.abortProp(true)
	c.nacked, c.nackVer = true, c.kver
	c.nackRetry = m.Reason == reasonBusy
	c.evaluate()
}

func (c *core) onAbort(from slc.PeerID, m *abortMsg) {
	if c.acc == nil || c.acc.p != m.P || from != c.acc.coord {
		return
	}
	c.acc = nil
	c.future = nil
	c.resume()
}

func (c *core) onState(from slc.PeerID, m *stateMsg) {
	p := c.prop
	if p == nil || m.P != p.id || p.fills {
		return
	}
	if !slices.Contains(p.members, nodeRef{Name: from, Inst: m.Inst}) {
		return
	}
	p.states[from] = m
	if len(p.states) == len(p.members) {
		c.computeFill()
	}
}

// computeFill is the heart of the flush. For each old configuration that
// the members come from, it takes the union of what its members hold and
// decides where that configuration ends:
//
//   - W, the highest stability watermark any member knows: every ordered
//     message up to W is held by all its addressees;
//   - the cut: the first join or leave above W. No member processed it
//     (that needs stability), so no member delivered anything after it;
//     the order ends before it (joins and leaves after it are submitted
//     again in the new configuration);
//   - the end: the cut, or the highest sequence number any member
//     received;
//   - the group views at the end: those of the member that processed the
//     most, with the joins and leaves up to W applied.
//
// A group's view in the new configuration is the union, over the old
// configurations, of the group's members that come from that
// configuration (a member's own configuration is the authority on the
// groups it is in).
//
// Each member gets the ordered and direct messages addressed to it that
// it lacks, the multicasts to deliver after the transitional views
// (Extra), and the group views of the new configuration.
func (c *core) computeFill() {
	p := c.prop
	p.fills = true
	if c.acc != nil && c.acc.p == p.id {
		c.acc.oldOf = map[slc.PeerID]cfgID{}
		for n, st := range p.states {
			c.acc.oldOf[n] = st.Old
		}
	}
	inNew := map[slc.PeerID]bool{}
	for _, m := range p.members {
		inNew[m.Name] = true
	}
	byOld := map[cfgID][]slc.PeerID{}
	var olds []cfgID
	for _, m := range p.members {
		st := p.states[m.Name]
		if byOld[st.Old] == nil {
			olds = append(olds, st.Old)
		}
		byOld[st.Old] = append(byOld[st.Old], m.Name)
	}
	type part struct {
		view    ViewID
		members []slc.PeerID
		full    bool
	}
	table := map[string][]part{}
	fills := map[slc.PeerID]*fillMsg{}
	for _, old := range olds {
		names := byOld[old]
		useq := map[uint64]*orderedMsg{}
		udir := map[slc.PeerID]map[uint64]*directMsg{}
		dend := map[slc.PeerID]uint64{}
		var w, smax uint64
		var rstar *stateMsg
		for _, n := range names {
			st := p.states[n]
			w = max(w, st.Stable)
			smax = max(smax, st.RecvSeq)
			if rstar == nil || st.ProcSeq > rstar.ProcSeq {
				rstar = st
			}
			for i := range st.Held {
				m := &st.Held[i]
				if useq[m.Seq] == nil {
					useq[m.Seq] = m
				}
			}
			for _, sc := range st.DirectRecv {
				dend[sc.Sender] = max(dend[sc.Sender], sc.N)
			}
			for i := range st.HeldDirect {
				m := &st.HeldDirect[i]
				s := m.Data.Sender
				if udir[s] == nil {
					udir[s] = map[uint64]*directMsg{}
				}
				udir[s][m.N] = m
				dend[s] = max(dend[s], m.N)
			}
		}
		seqs := make([]uint64, 0, len(useq))
		for s := range useq {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		cut := uint64(math.MaxUint64)
		for _, s := range seqs {
			if s > w && useq[s].Data.Kind != kindData {
				cut = s
				break
			}
		}
		end := smax
		if cut != math.MaxUint64 && cut-1 < end {
			end = cut - 1
		}
		gs := map[string]*groupState{}
		for i := range rstar.Groups {
			g := rstar.Groups[i]
			gs[g.Name] = &g
		}
		for _, s := range seqs {
			if s > rstar.ProcSeq && s <= w && s <= end && useq[s].Data.Kind != kindData {
				applyMember(gs, &useq[s].Data, old.view(s))
			}
		}
		for _, name := range sortedGroupNames(gs) {
			g := gs[name]
			// Each member's own configuration says which groups it is
			// in: another configuration's view of it may be stale (it
			// left a group after the two parted).
			var kept []slc.PeerID
			for _, m := range g.Members {
				if inNew[m] && slices.Contains(names, m) {
					kept = append(kept, m)
				}
			}
			if len(kept) > 0 {
				table[name] = append(table[name], part{view: g.View, members: kept, full: len(kept) == len(g.Members)})
			}
		}
		extra, extraAt := tailOf(useq, seqs, end, w, names, p.states, gs)
		with := slices.Clone(names)
		slices.Sort(with)
		var dendList []senderCount
		for _, s := range sortedKeys(dend) {
			dendList = append(dendList, senderCount{Sender: s, N: dend[s]})
		}
		for _, n := range names {
			st := p.states[n]
			f := &fillMsg{P: p.id, Old: old, SeqEnd: end, Stable: w, DirectEnd: dendList, Members: p.members, Gone: p.gone,
				Extra: extra, ExtraAt: extraAt, With: with}
			for _, s := range seqs {
				m := useq[s]
				if s > st.RecvSeq && s <= end && contains(m.To, n) {
					f.Seq = append(f.Seq, *m)
				}
			}
			recv := map[slc.PeerID]uint64{}
			for _, sc := range st.DirectRecv {
				recv[sc.Sender] = sc.N
			}
			for _, s := range sortedKeys(udir) {
				ns := make([]uint64, 0, len(udir[s]))
				for k := range udir[s] {
					ns = append(ns, k)
				}
				slices.Sort(ns)
				for _, k := range ns {
					m := udir[s][k]
					if k > recv[s] && contains(m.To, n) {
						f.Direct = append(f.Direct, *m)
					}
				}
			}
			fills[n] = f
		}
	}
	var groups []groupState
	names := make([]string, 0, len(table))
	for name := range table {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		parts := table[name]
		view := p.id.view(0)
		if len(parts) == 1 && parts[0].full {
			view = parts[0].view
		}
		var members []slc.PeerID
		for _, pt := range parts {
			members = append(members, pt.members...)
		}
		slices.Sort(members)
		groups = append(groups, groupState{Name: name, View: view, Members: slices.Compact(members)})
	}
	for _, m := range p.members {
		f := fills[m.Name]
		f.Groups = groups
		if m.Name == c.name {
			continue
		}
		c.send([]slc.PeerID{m.Name}, f)
	}
	c.onFill(c.name, fills[c.name])
}

// tailOf computes the multicasts that end an old configuration (the
// fill's Extra) and where each goes in its order (ExtraAt): those that
// members hold beyond the end, at their numbers, and those that members
// submitted and whose number no member saw (the sequencer may have
// ordered them for the members on the other side of a partition, or not
// at all).
//
// The rule is extended virtual synchrony's: what a transitional
// configuration delivers respects causal order, like everything else
// (Moser, Amir, Melliar-Smith and Agarwal, "Extended virtual
// synchrony", ICDCS 1994). Totem gets it from its ring order, whose
// numbers a sender knows when it sends; a sender here may not know the
// number of its message, so the flush places it by what it knows. If
// the sequencer numbered q's multicast u at s(u), then
//
//   - s(u) > q's RecvSeq: u is addressed to q as well, relayed in order,
//     and q did not receive it. What q had delivered when it sent u is
//     numbered at most RecvSeq;
//   - s(u) > the numbers of q's earlier messages: the sequencer takes a
//     sender's messages in the order it submitted them;
//   - s(u) > W, and s(u) is no number that a member holds (that number
//     is another message; below W, q would hold u);
//   - s(u) > the ProcSeq of every member that will deliver u: such a
//     member would have received u before what it processed after.
//
// u goes right after the largest of these bounds, and before the next
// number: after everything it may depend on (its sender's past is
// numbered below the first two bounds, or is q's earlier messages), and
// before everything that may depend on it (numbered above s(u)). Two
// multicasts placed at the same point do not depend on each other; they
// go by sender and serial. The last bound also keeps each member's
// order: no member has already delivered something that goes after u.
// A message is not held back because a cause of it is delivered on the
// other side of a partition only (or nowhere): the causal order holds
// among the messages delivered.
//
// The members that go on together deliver the tail in one order. The
// members on the other side of a partition, who may have seen where the
// sequencer put u, may deliver u and a message between the bound and
// s(u), or two multicasts placed at the same point, in the other order
// (docs/groups.md, Limits).
func tailOf(useq map[uint64]*orderedMsg, seqs []uint64, end, w uint64, names []slc.PeerID,
	states map[slc.PeerID]*stateMsg, gs map[string]*groupState) ([]dataMsg, []extraPlace) {
	type msgKey struct {
		s slc.PeerID
		n uint64
	}
	type tail struct {
		d  dataMsg
		at extraPlace
	}
	var out []tail
	seen := map[msgKey]bool{}
	for _, s := range seqs {
		d := &useq[s].Data
		seen[msgKey{d.Sender, d.Serial}] = true
		if s > end && d.Kind == kindData {
			out = append(out, tail{d: *d, at: extraPlace{After: s - 1, Seq: s}})
		}
	}
	// lastHeld: from x, the last number before one that no member holds.
	runEnd := make(map[uint64]uint64, len(seqs))
	for i := len(seqs) - 1; i >= 0; i-- {
		s := seqs[i]
		if e, ok := runEnd[s+1]; ok {
			runEnd[s] = e
		} else {
			runEnd[s] = s
		}
	}
	lastHeld := func(x uint64) uint64 {
		if e, ok := runEnd[x+1]; ok {
			return e
		}
		return x
	}
	// Each sender's messages that members hold: serial and number.
	held := map[slc.PeerID][][2]uint64{}
	for _, s := range seqs {
		d := &useq[s].Data
		held[d.Sender] = append(held[d.Sender], [2]uint64{d.Serial, s})
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	for _, q := range sorted {
		st := states[q]
		unord := slices.Clone(st.Unordered)
		slices.SortFunc(unord, func(a, b dataMsg) int { return cmp.Compare(a.Serial, b.Serial) })
		own := held[q]
		slices.SortFunc(own, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) })
		after := st.RecvSeq
		i := 0
		for _, d := range unord {
			k := msgKey{d.Sender, d.Serial}
			if seen[k] || d.Sender != q {
				continue
			}
			seen[k] = true
			// q's earlier messages that members hold.
			for ; i < len(own) && own[i][0] < d.Serial; i++ {
				after = max(after, own[i][1])
			}
			for _, z := range names {
				if isMember(gs, d.Groups, z) {
					after = max(after, states[z].ProcSeq)
				}
			}
			after = lastHeld(max(after, w))
			out = append(out, tail{d: d, at: extraPlace{After: after}})
		}
	}
	slices.SortFunc(out, func(a, b tail) int {
		return cmp.Or(cmp.Compare(a.at.After, b.at.After),
			cmp.Compare(min(a.at.Seq, 1), min(b.at.Seq, 1)), // at one place: the unseen, then the next number
			strings.Compare(string(a.d.Sender), string(b.d.Sender)), cmp.Compare(a.d.Serial, b.d.Serial))
	})
	extra := make([]dataMsg, len(out))
	at := make([]extraPlace, len(out))
	for i, t := range out {
		extra[i], at[i] = t.d, t.at
	}
	if len(out) == 0 {
		return nil, nil
	}
	return extra, at
}

func sortedGroupNames(m map[string]*groupState) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (c *core) onFill(from slc.PeerID, f *fillMsg) {
	if c.acc == nil || f.P != c.acc.p || from != c.acc.coord || f.Old != c.cfg.id {
		return
	}
	c.acc.fill = f
	c.acc.filled = true
	// The member holds what the fill brings from now on.
	for i := range f.Seq {
		c.env.received(&f.Seq[i].Data)
	}
	for i := range f.Direct {
		c.env.received(&f.Direct[i].Data)
	}
	for i := range f.Extra {
		c.env.received(&f.Extra[i])
	}
	if from == c.name {
		c.onFilled(c.name, &filledMsg{P: f.P})
	} else {
		c.send([]slc.PeerID{from}, &filledMsg{P: f.P})
	}
}

func (c *core) onFilled(from slc.PeerID, m *filledMsg) {
	p := c.prop
	if p == nil || m.P != p.id || !p.fills {
		return
	}
	p.filled[from] = true
	if len(p.filled) < len(p.members) {
		return
	}
	var to []slc.PeerID
	for _, r := range p.members {
		if r.Name != c.name {
			to = append(to, r.Name)
		}
	}
	c.send(to, &installMsg{P: p.id})
	c.prop = nil
	c.onInstall(c.name, &installMsg{P: p.id})
}

func (c *core) onInstall(from slc.PeerID, m *installMsg) {
	if c.acc == nil || m.P != c.acc.p || from != c.acc.coord || c.acc.fill == nil {
		return
	}
	c.install(c.acc.fill)
}

// install ends the old configuration as the fill says and installs the
// new one.
func (c *core) install(f *fillMsg) {
	if debugf != nil {
		var ex []string
		for _, d := range f.Extra {
			ex = append(ex, fmt.Sprintf("%s#%d", d.Sender, d.Serial))
		}
		debugf("%s install %v from %v seqend %d stable %d fill %d, unordered %d, extra %v, procSeq %d", c.name, f.P, f.Old, f.SeqEnd, f.Stable, len(f.Seq), len(c.unordered), ex, c.cfg.procSeq)
	}
	oldGroups, gone := c.finishOld(f)
	cf := c.newConfig(f.P, f.Members, f.Groups)
	cf.oldOf = c.acc.oldOf
	// The regular views of the groups whose membership changed.
	names := map[string]bool{}
	for n := range oldGroups {
		names[n] = true
	}
	for n := range cf.groups {
		names[n] = true
	}
	for _, name := range sortedNames(names) {
		og, ng := oldGroups[name], cf.groups[name]
		if ng == nil || !contains(ng.Members, c.name) {
			continue
		}
		if og != nil && og.View == ng.View {
			continue
		}
		var oldMembers []slc.PeerID
		if og != nil && contains(og.Members, c.name) {
			oldMembers = og.Members
		}
		joined, left := diff(oldMembers, ng.Members)
		c.env.deliverView(&Membership{Group: name, ViewID: ng.View, Members: ng.Members,
			Joined: joined, Left: left, Reason: reasonFor(joined, left, gone)})
	}
	c.cfg = cf
	c.acc = nil
	c.broken = false
	// Joins and leaves that the old configuration did not order go
	// again, in order, then what waited.
	resubmit := append(c.unordered, c.waitSeq...)
	c.unordered, c.waitSeq = nil, nil
	for _, d := range resubmit {
		c.submit(d)
	}
	wd := c.waitDirect
	c.waitDirect = nil
	for _, d := range wd {
		c.direct(d)
	}
	fut := c.future
	c.future = nil
	for _, fm := range fut {
		c.onMessage(fm.from, fm.msg)
	}
	c.kver++
	c.nacked = false
	c.env.progress()
	if c.env.installed != nil {
		c.env.installed(&Configuration{Coordinator: cf.coord, Config: cf.id.N, Members: slices.Clone(cf.names)})
	}
	c.broadcastHello()
	c.evaluate()
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// diff returns the members of b not in a, and of a not in b (both
// sorted).
func diff(a, b []slc.PeerID) (added, removed []slc.PeerID) {
	for _, p := range b {
		if !contains(a, p) {
			added = append(added, p)
		}
	}
	for _, p := range a {
		if !contains(b, p) {
			removed = append(removed, p)
		}
	}
	return added, removed
}

// reasonFor: members that came from another configuration, or members
// lost, make a network change; members whose nodes closed or restarted
// (and nothing else) a disconnect.
func reasonFor(joined, left []slc.PeerID, gone map[slc.PeerID]uint8) Reason {
	if len(joined) > 0 || len(left) == 0 {
		// Members came, or only the configuration changed (this node
		// missed a configuration that the others went through).
		return Network
	}
	for _, p := range left {
		if why, ok := gone[p]; !ok || why == whyLost {
			return Network
		}
	}
	return Disconnect
}

// finishOld processes the old configuration to its end with what the fill
// brought: the ordered messages up to the end, each sender's direct
// messages up to its end, epoch by epoch. Messages that need stability
// and are not known stable come after a transitional view of each group
// whose membership changes: they are safe only with respect to the
// members that go on together. So do the multicasts that end the
// configuration (the fill's Extra), each at its place (tailOf), and what
// comes after the first of them. It returns the group views at the end
// and why the nodes left out went.
func (c *core) finishOld(f *fillMsg) (map[string]*groupState, map[slc.PeerID]uint8) {
	cf := c.cfg
	gone := map[slc.PeerID]uint8{}
	for _, g := range f.Gone {
		gone[g.Name] = g.Why
	}
	msgs := map[uint64]*orderedMsg{}
	for _, m := range cf.pending {
		if m.Seq <= f.SeqEnd && m.Seq <= c.acc.recv {
			msgs[m.Seq] = m
		}
	}
	for i := range f.Seq {
		m := &f.Seq[i]
		if m.Seq > cf.procSeq && m.Seq <= f.SeqEnd && msgs[m.Seq] == nil {
			msgs[m.Seq] = m
		}
	}
	cf.pending = nil
	for i := range f.Direct {
		m := &f.Direct[i]
		d := cf.in(m.Data.Sender)
		if m.N <= d.recv {
			continue
		}
		d.recv = m.N
		d.held = append(d.held, m)
	}
	dend := map[slc.PeerID]uint64{}
	for _, sc := range f.DirectEnd {
		dend[sc.Sender] = sc.N
	}
	// deliverEpoch delivers the direct messages of the current epoch (and
	// any earlier one) up to each sender's end.
	deliverEpoch := func(all bool) {
		for _, s := range sortedKeys(cf.dirIn) {
			d := cf.dirIn[s]
			end, ok := dend[s]
			if !ok {
				end = 0 // no member had any when the flush began
			}
			for _, m := range d.held {
				if m.N <= d.delivered || m.N > end {
					continue
				}
				if m.Epoch > cf.epoch {
					if all {
						continue // sent by a node that saw a join or leave past the end: nobody delivers it
					}
					break
				}
				d.delivered = m.N
				c.deliverData(&m.Data, cf.groups)
			}
		}
	}
	stable := max(cf.stable, f.Stable)
	seqs := make([]uint64, 0, len(msgs))
	for s := range msgs {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	// Once in the transitional part, every view a join or leave makes is
	// followed by its transitional view as well.
	transitioned := false
	sent := map[string]ViewID{}
	transition := func() {
		transitioned = true
		deliverEpoch(true)
		c.transitional(f, gone, sent)
	}
	// When members of the old configuration are missing from the flush,
	// this node may lack direct messages they delivered before a join or
	// leave: such a change then comes after the transitional views.
	absent := slices.ContainsFunc(cf.names, func(p slc.PeerID) bool { return !contains(f.With, p) })
	// The multicasts that end the configuration go at their places in
	// the order (see tailOf), after the transitional views: the first of
	// them begins the transitional part.
	next := 0
	extras := func(below uint64, all bool) {
		for ; next < len(f.Extra); next++ {
			at, unseen := f.SeqEnd, false
			if len(f.ExtraAt) == len(f.Extra) {
				at, unseen = f.ExtraAt[next].After, f.ExtraAt[next].Seq == 0
			}
			if !all && at >= below {
				return
			}
			if !transitioned {
				transition()
			}
			d := &f.Extra[next]
			c.deliverTail(d, cf.groups, unseen)
			c.processedOwn(d)
		}
	}
	for _, s := range seqs {
		extras(s, false)
		m := msgs[s]
		if m.Data.Kind != kindData {
			if absent {
				transition()
			}
			deliverEpoch(false)
			c.applyMembership(m)
			cf.epoch++
			if transitioned {
				c.transitional(f, gone, sent)
			}
		} else {
			if m.Data.Svc.Level() == Safe && s > stable {
				transition()
			}
			c.deliverData(&m.Data, cf.groups)
		}
		cf.procSeq = s
		c.processedOwn(&m.Data)
	}
	transition()
	extras(0, true)
	return cf.groups, gone
}

// transitional delivers a transitional view of each group of this node
// whose membership the new configuration changes: the members that go
// on together with this one.
func (c *core) transitional(f *fillMsg, gone map[slc.PeerID]uint8, sent map[string]ViewID) {
	cf := c.cfg
	next := map[string]*groupState{}
	for i := range f.Groups {
		next[f.Groups[i].Name] = &f.Groups[i]
	}
	for _, name := range sortedGroupNames(cf.groups) {
		g := cf.groups[name]
		if !contains(g.Members, c.name) {
			continue
		}
		ng := next[name]
		if ng != nil && ng.View == g.View {
			continue
		}
		if v, ok := sent[name]; ok && v == g.View {
			continue
		}
		sent[name] = g.View
		// The members that go on together with this one: those of the
		// transitional configuration (coming from this configuration into
		// the new one). Joins and leaves later in the flush may still
		// change the group.
		var stay []slc.PeerID
		for _, m := range g.Members {
			if contains(f.With, m) {
				stay = append(stay, m)
			}
		}
		var joined []slc.PeerID
		if ng != nil {
			joined, _ = diff(g.Members, ng.Members)
		}
		left, _ := diff(stay, g.Members)
		c.env.deliverView(&Membership{Group: name, ViewID: g.View, Members: stay, Reason: reasonFor(joined, left, gone),
			Transitional: true})
	}
}

// close starts leaving: the node tells its peers it is closing, and they
// form a configuration without it.
func (c *core) close() {
	if c.closing {
		return
	}
	c.closing = true
	if c.prop != nil {
		c.abortProp(false)
	}
	c.broadcastHello()
}
