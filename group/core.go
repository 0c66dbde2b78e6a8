package group

import (
	"cmp"
	"slices"
	"strings"

	"github.com/slc-go/slc"
)

// The protocol core: a deterministic state machine, one per node. Its
// inputs are the methods below (messages, session changes, slc
// acknowledgements, calls of the API, ticks); its outputs go through
// coreEnv. It starts no goroutine and reads no clock, so that the tests
// run it on a simulated network with schedules chosen by rapid; the
// Member wraps it with a lock and wires it to a Communicator.
//
// docs/groups.md describes the protocol; the comments here say where
// each rule of it lives.

// debugf, when set (by tests), traces the order and installs.
var debugf func(format string, args ...any)

// coreEnv is what the core does to the world.
type coreEnv struct {
	// send sends msg to the nodes to, on their FIFO sessions, in call
	// order. tok numbers the send. msg is not modified later.
	send func(to []slc.PeerID, msg any, tok uint64)
	// deliverData and deliverView hand a delivery to the application, in
	// call order. unseen: the message ends a configuration and its place
	// in the total order was not seen (see tailOf); for tests.
	deliverData func(d *dataMsg, unseen bool)
	deliverView func(m *Membership)
	// received: a message reached this node (for tests and traces).
	received func(d *dataMsg)
	// processed: one of this node's own sequenced messages took its place
	// in the order (or was dropped, as a join or leave without effect).
	processed func(d *dataMsg)
	// progress: the node's own unacknowledged traffic shrank.
	progress func()
	// installed: a configuration was installed.
	installed func(c *Configuration)
	// hello: a peer introduced itself (the addresses it reports).
	hello func(from slc.PeerID, h *helloMsg)
}

type peerState struct {
	inst  uint64
	hello *helloMsg
	gone  bool
}

// config is an installed configuration and what this node knows of its
// total order and its direct messages.
type config struct {
	id      cfgID
	members []nodeRef    // sorted by name; the coordinator is first
	names   []slc.PeerID // the same names
	coord   slc.PeerID   // the sequencer
	groups  map[string]*groupState

	// The total order, as received from the sequencer (FIFO).
	recvSeq uint64        // every ordered message to this node up to here has arrived
	procSeq uint64        // processed up to here
	stable  uint64        // the sequencer's stability watermark, as known here
	pending []*orderedMsg // received, not processed
	done    []*orderedMsg // processed, not known stable

	// Epochs: joins and leaves end an epoch; direct messages carry the
	// epoch they were sent in and are delivered in it.
	epoch                   uint64
	marked                  bool                  // this node's marker for epoch is sent
	markers                 map[slc.PeerID]uint64 // markers[p] = epochs p has closed
	dirIn                   map[slc.PeerID]*dirIn // direct messages received, per sender
	dirOut                  uint64                // this node's Reliable/FIFO count
	dirSent                 []*sentDirect         // sent, not yet stable
	dirStable, dirAnnounced uint64                // own watermark, and the last announced

	// Acknowledgements (ackMsg): what each member acknowledged to this
	// node (as sequencer, as sender), and what this node acknowledged.
	seqAck     map[slc.PeerID]uint64
	dirAck     map[slc.PeerID]uint64
	seqAckSent uint64
	ackDue     bool

	seqr *sequencer // when this node is the coordinator

	// oldOf: at the coordinator, the configuration each member came
	// from. A member whose hello reports another one moved on.
	oldOf map[slc.PeerID]cfgID

	// lost: the members whose session with this node ended since the
	// configuration was installed. Messages may have been lost with it,
	// and neither side can tell which (a node receives only the ordered
	// messages addressed to it, so a gap does not show): this node sends
	// them nothing more of this configuration and takes nothing more of
	// it from them, even over a new session. The configuration is
	// replaced (Broken), and the flush settles what each holds.
	lost map[slc.PeerID]bool
}

type dirIn struct {
	recv, delivered, stable, ackSent uint64
	held                             []*directMsg // N ascending: undelivered, or not known stable
}

type sentDirect struct {
	n, tok uint64
	to     []slc.PeerID
	msg    *directMsg
}

// sequencer assigns the total order of a configuration (Kaashoek's PB
// method: the sequencer relays every message with its sequence number).
type sequencer struct {
	next      uint64
	groups    map[string]*groupState // as of next
	recs      []*seqRec              // relayed, not yet stable
	stable    uint64
	announced uint64
	hold      []*dataMsg // submitted while a view change was in progress
}

type seqRec struct {
	seq, tok uint64
	to       []slc.PeerID
	urgent   bool
}

// proposal is a view change this node coordinates.
type proposal struct {
	id      cfgID
	members []nodeRef
	gone    []goneRef
	states  map[slc.PeerID]*stateMsg
	filled  map[slc.PeerID]bool
	fills   bool // fills sent
	failed  bool // a member went away or refused
}

// accepted is the proposal this node takes part in: it stopped sending
// and delivering in its configuration until the proposal is installed
// or withdrawn.
type accepted struct {
	p      cfgID
	coord  slc.PeerID
	fill   *fillMsg
	filled bool
	oldOf  map[slc.PeerID]cfgID // the coordinator's own acceptance: where the members come from
	// recv: the order received when the state was taken; what arrives
	// later is the flush's to decide.
	recv uint64
}

type futureMsg struct {
	from slc.PeerID
	msg  any
}

type core struct {
	env     coreEnv
	name    slc.PeerID
	inst    uint64
	addrs   []string
	nextCfg uint64
	tok     uint64

	peers     map[slc.PeerID]*peerState
	goneWhy   map[nodeRef]uint8
	reach     []peerInfo // as last announced
	kver      uint64     // bumped when what this node knows of its peers changes
	nackVer   uint64     // kver when a proposal of this node was refused
	nacked    bool
	nackRetry bool // the refusal was reasonBusy: try again on the next tick

	cfg    *config
	acc    *accepted
	prop   *proposal
	future []futureMsg

	unordered  []*dataMsg // own sequenced messages submitted and not processed
	waitSeq    []*dataMsg // own sequenced messages not submitted yet
	waitDirect []*dataMsg // own direct messages waiting for an open epoch
	closing    bool
	broken     bool // a session with a member of the configuration was lost
}

func newCore(name slc.PeerID, inst, cfgBase uint64, env coreEnv) *core {
	c := &core{env: env, name: name, inst: inst, nextCfg: cfgBase,
		peers: map[slc.PeerID]*peerState{}, goneWhy: map[nodeRef]uint8{}}
	c.nextCfg++
	c.cfg = c.newConfig(cfgID{Coord: name, N: c.nextCfg}, []nodeRef{{Name: name, Inst: inst}}, nil)
	return c
}

func (c *core) newConfig(id cfgID, members []nodeRef, groups []groupState) *config {
	cf := &config{id: id, members: members, coord: id.Coord, groups: map[string]*groupState{},
		markers: map[slc.PeerID]uint64{}, dirIn: map[slc.PeerID]*dirIn{},
		seqAck: map[slc.PeerID]uint64{}, dirAck: map[slc.PeerID]uint64{}}
	for _, m := range members {
		cf.names = append(cf.names, m.Name)
	}
	for i := range groups {
		g := groups[i]
		cf.groups[g.Name] = &g
	}
	if id.Coord == c.name {
		cf.seqr = &sequencer{groups: maps(cf.groups)}
	}
	return cf
}

func maps(m map[string]*groupState) map[string]*groupState {
	out := make(map[string]*groupState, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (cf *config) has(p slc.PeerID) bool {
	_, ok := slices.BinarySearch(cf.names, p)
	return ok
}

func (cf *config) others(me slc.PeerID) []slc.PeerID {
	out := make([]slc.PeerID, 0, len(cf.names))
	for _, n := range cf.names {
		if n != me {
			out = append(out, n)
		}
	}
	return out
}

func (cf *config) in(p slc.PeerID) *dirIn {
	d := cf.dirIn[p]
	if d == nil {
		d = &dirIn{}
		cf.dirIn[p] = d
	}
	return d
}

func (c *core) send(to []slc.PeerID, msg any) uint64 {
	if len(to) == 0 {
		return 0
	}
	c.tok++
	c.env.send(to, msg, c.tok)
	return c.tok
}

// sendIn sends a message of the current configuration: not to the
// members it lost (config.lost).
func (c *core) sendIn(to []slc.PeerID, msg any) uint64 {
	if lost := c.cfg.lost; len(lost) > 0 && slices.ContainsFunc(to, func(p slc.PeerID) bool { return lost[p] }) {
		to = slices.DeleteFunc(slices.Clone(to), func(p slc.PeerID) bool { return lost[p] })
	}
	return c.send(to, msg)
}

// --- the application's calls ---

// multicast sends d (a multicast, a join or a leave) by its path.
func (c *core) multicast(d *dataMsg) {
	if d.Kind != kindData || d.Svc.sequenced() {
		c.submit(d)
	} else {
		c.direct(d)
	}
}

// submit hands a sequenced message to the sequencer, or keeps it until
// the view change in progress ends.
func (c *core) submit(d *dataMsg) {
	cf := c.cfg
	// Not to a sequencer whose session was lost: the message goes in the
	// next configuration.
	if c.acc != nil || len(c.waitSeq) > 0 || cf.lost[cf.coord] {
		c.waitSeq = append(c.waitSeq, d)
		return
	}
	c.unordered = append(c.unordered, d)
	if cf.coord == c.name {
		c.sequence(d)
	} else {
		c.send([]slc.PeerID{cf.coord}, &submitMsg{Cfg: cf.id, Data: *d})
	}
}

// direct sends d to the members of its groups, or keeps it until the
// epoch or the view change in progress ends.
func (c *core) direct(d *dataMsg) {
	cf := c.cfg
	if c.acc != nil || cf.marked || len(c.waitDirect) > 0 {
		c.waitDirect = append(c.waitDirect, d)
		return
	}
	to := addressees(cf.groups, d.Groups, "")
	to = slices.DeleteFunc(to, func(p slc.PeerID) bool { return p == c.name })
	var n uint64
	if d.Svc.Level() != Unreliable && len(to) > 0 {
		cf.dirOut++
		n = cf.dirOut
	}
	if len(to) > 0 {
		m := &directMsg{Cfg: cf.id, Epoch: cf.epoch, N: n, To: to, Stable: cf.dirStable, Data: *d}
		tok := c.sendIn(to, m)
		cf.dirAnnounced = cf.dirStable
		if n > 0 {
			cf.dirSent = append(cf.dirSent, &sentDirect{n: n, tok: tok, to: to, msg: m})
		}
	}
	if isMember(cf.groups, d.Groups, c.name) {
		c.env.received(d)
		c.deliverData(d, cf.groups)
	}
}

// flushWaiting submits and sends what waited for the view change or the
// epoch to end.
func (c *core) flushWaiting() {
	if c.acc != nil {
		return
	}
	if ws := c.waitSeq; len(ws) > 0 {
		c.waitSeq = nil
		for _, d := range ws {
			c.submit(d)
		}
	}
	if wd := c.waitDirect; len(wd) > 0 && !c.cfg.marked {
		c.waitDirect = nil
		for i, d := range wd {
			if c.cfg.marked {
				c.waitDirect = append(c.waitDirect, wd[i:]...)
				break
			}
			c.direct(d)
		}
	}
}

// outstanding counts the node's own messages not yet ordered or stable.
func (c *core) outstanding() int {
	return len(c.unordered) + len(c.waitSeq) + len(c.waitDirect) + len(c.cfg.dirSent)
}

// quiescent reports whether everything this node sent is ordered and
// stable, and (as sequencer) everything it relayed is stable.
func (c *core) quiescent() bool {
	cf := c.cfg
	return c.outstanding() == 0 && (cf.seqr == nil || len(cf.seqr.recs) == 0)
}

// --- deliveries ---

func (c *core) deliverData(d *dataMsg, groups map[string]*groupState) {
	c.deliverTail(d, groups, false)
}

// deliverTail delivers d; unseen: d ends a configuration and no member
// that goes on with this one saw its place in the total order.
func (c *core) deliverTail(d *dataMsg, groups map[string]*groupState, unseen bool) {
	if d.Sender == c.name && d.Svc&SelfDiscard != 0 {
		return
	}
	if !isMember(groups, d.Groups, c.name) {
		return
	}
	c.env.deliverData(d, unseen)
}

// --- the sequencer ---

func (c *core) sequence(d *dataMsg) {
	cf := c.cfg
	q := cf.seqr
	if c.acc != nil {
		q.hold = append(q.hold, d)
		return
	}
	q.next++
	s := q.next
	var to []slc.PeerID
	if d.Kind != kindData {
		to = cf.names
		q.groups = maps(q.groups)
		applyMember(q.groups, d, cf.id.view(s))
	} else {
		to = addressees(q.groups, d.Groups, d.Sender)
	}
	m := &orderedMsg{Cfg: cf.id, Seq: s, To: to, Stable: q.stable, Data: *d}
	targets := make([]slc.PeerID, 0, len(to))
	self := false
	for _, p := range to {
		if p == c.name {
			self = true
		} else {
			targets = append(targets, p)
		}
	}
	tok := c.sendIn(targets, m)
	q.recs = append(q.recs, &seqRec{seq: s, tok: tok, to: targets, urgent: d.urgent()})
	if self {
		c.onOrdered(c.name, m)
	}
	c.seqStable()
}

// seqStable advances the sequencer's stability watermark over the
// relayed messages that every addressee acknowledged (ackMsg). Stability
// that a Safe message, a join or a leave waits for is announced at once;
// the rest on the next tick or relay.
func (c *core) seqStable() {
	cf := c.cfg
	q := cf.seqr
	urgent := false
	for len(q.recs) > 0 {
		r := q.recs[0]
		ok := true
		for _, p := range r.to {
			if cf.seqAck[p] < r.seq {
				ok = false
				break
			}
		}
		if !ok {
			break
		}
		q.stable = r.seq
		urgent = urgent || r.urgent
		q.recs = q.recs[1:]
	}
	// A node taking part in a view change reported its stability in its
	// state: announcing more now would let members outside the change
	// process past the end the flush computes.
	if urgent && q.stable > q.announced && c.acc == nil {
		c.announceSeq()
	}
	if q.stable > cf.stable {
		cf.stable = q.stable
		c.trimDone()
		c.process()
	}
}

func (c *core) announceSeq() {
	cf := c.cfg
	q := cf.seqr
	q.announced = q.stable
	c.sendIn(cf.others(c.name), &stableMsg{Cfg: cf.id, Seq: q.stable})
}

func (c *core) onSubmit(from slc.PeerID, m *submitMsg) {
	cf := c.cfg
	if m.Cfg != cf.id {
		c.maybeFuture(from, m.Cfg, m)
		return
	}
	if cf.coord != c.name || m.Data.Sender != from || !cf.has(from) || cf.lost[from] {
		return
	}
	d := m.Data
	c.sequence(&d)
}

// --- receiving the total order ---

func (c *core) onOrdered(from slc.PeerID, m *orderedMsg) {
	cf := c.cfg
	if m.Cfg != cf.id {
		c.maybeFuture(from, m.Cfg, m)
		return
	}
	if from != cf.coord || cf.lost[from] {
		return
	}
	if m.Stable > cf.stable {
		cf.stable = m.Stable
	}
	if m.Seq <= cf.recvSeq {
		return
	}
	cf.recvSeq = m.Seq
	if from != c.name {
		cf.ackDue = true
		if m.Data.urgent() {
			c.sendAcks()
		}
	}
	if debugf != nil {
		debugf("%s ordered %v seq %d %s#%d kind %d", c.name, cf.id, m.Seq, m.Data.Sender, m.Data.Serial, m.Data.Kind)
	}
	cf.pending = append(cf.pending, m)
	c.env.received(&m.Data)
	c.process()
	c.trimDone()
}

// process processes the total order in sequence: Agreed and Causal
// messages at once, Safe ones once stable, joins and leaves once stable
// and once every node closed the epoch they end (its marker arrived,
// after all its direct messages of the epoch on the same FIFO session).
func (c *core) process() {
	cf := c.cfg
	if c.acc != nil {
		return
	}
	for len(cf.pending) > 0 {
		h := cf.pending[0]
		if h.Data.Kind != kindData {
			if !cf.marked {
				cf.marked = true
				c.sendIn(cf.others(c.name), &markerMsg{Cfg: cf.id, Epoch: cf.epoch})
			}
			if cf.stable < h.Seq || !c.epochClosed() {
				return
			}
			// Every direct message of the epoch is delivered before the
			// change that ends it (some may have waited out a view
			// change that was withdrawn).
			for _, s := range sortedKeys(cf.dirIn) {
				c.deliverDirect(s)
			}
			c.applyMembership(h)
		} else {
			if h.Data.Svc.Level() == Safe && cf.stable < h.Seq {
				return
			}
			c.deliverData(&h.Data, cf.groups)
		}
		cf.pending = cf.pending[1:]
		cf.procSeq = h.Seq
		if h.Seq > cf.stable {
			cf.done = append(cf.done, h)
		}
		c.processedOwn(&h.Data)
		if h.Data.Kind != kindData {
			c.nextEpoch()
		}
	}
}

func (c *core) epochClosed() bool {
	cf := c.cfg
	for _, p := range cf.names {
		if p != c.name && cf.markers[p] <= cf.epoch {
			return false
		}
	}
	return true
}

// nextEpoch opens the next epoch: direct messages that waited for it are
// delivered, and this node's own waiting ones sent.
func (c *core) nextEpoch() {
	cf := c.cfg
	cf.epoch++
	cf.marked = false
	for _, s := range sortedKeys(cf.dirIn) {
		c.deliverDirect(s)
	}
	c.flushWaiting()
}

func (c *core) processedOwn(d *dataMsg) {
	if d.Sender != c.name {
		return
	}
	if len(c.unordered) > 0 && c.unordered[0].Serial == d.Serial {
		c.unordered = c.unordered[1:]
	} else if i := slices.IndexFunc(c.unordered, func(u *dataMsg) bool { return u.Serial == d.Serial }); i >= 0 {
		c.unordered = slices.Delete(slices.Clone(c.unordered), i, i+1)
	}
	c.env.processed(d)
	c.env.progress()
}

func (c *core) trimDone() {
	cf := c.cfg
	i := 0
	for i < len(cf.done) && cf.done[i].Seq <= cf.stable {
		i++
	}
	if i > 0 {
		cf.done = cf.done[i:]
	}
}

// applyMembership applies a join or a leave at its place in the order,
// and tells the members.
func (c *core) applyMembership(h *orderedMsg) {
	cf := c.cfg
	cf.groups = maps(cf.groups)
	prev, next := applyMember(cf.groups, &h.Data, cf.id.view(h.Seq))
	if prev == next {
		return
	}
	who := h.Data.Sender
	switch h.Data.Kind {
	case kindJoin:
		if contains(next.Members, c.name) {
			c.env.deliverView(&Membership{Group: next.Name, ViewID: next.View, Members: next.Members,
				Joined: []slc.PeerID{who}, Reason: Join})
		}
	case kindLeave:
		switch {
		case who == c.name:
			c.env.deliverView(&Membership{Group: prev.Name, ViewID: cf.id.view(h.Seq), Left: []slc.PeerID{who}, Reason: Leave})
		case next != nil && contains(next.Members, c.name):
			c.env.deliverView(&Membership{Group: next.Name, ViewID: next.View, Members: next.Members,
				Left: []slc.PeerID{who}, Reason: Leave})
		}
	}
}

// applyMember applies a join or leave to groups, replacing the group's
// state (states are shared, never modified). It returns the states before
// and after (nil for none); equal when nothing changed.
func applyMember(groups map[string]*groupState, d *dataMsg, view ViewID) (prev, next *groupState) {
	if len(d.Groups) != 1 {
		return nil, nil
	}
	name := d.Groups[0]
	prev = groups[name]
	who := d.Sender
	switch d.Kind {
	case kindJoin:
		if prev != nil && contains(prev.Members, who) {
			return prev, prev
		}
		var members []slc.PeerID
		if prev != nil {
			members = slices.Clone(prev.Members)
		}
		members = append(members, who)
		slices.Sort(members)
		next = &groupState{Name: name, View: view, Members: members}
		groups[name] = next
	case kindLeave:
		if prev == nil || !contains(prev.Members, who) {
			return prev, prev
		}
		members := slices.DeleteFunc(slices.Clone(prev.Members), func(p slc.PeerID) bool { return p == who })
		if len(members) == 0 {
			delete(groups, name)
			return prev, nil
		}
		next = &groupState{Name: name, View: view, Members: members}
		groups[name] = next
	default:
		return prev, prev
	}
	return prev, next
}

func (c *core) onStable(from slc.PeerID, m *stableMsg) {
	cf := c.cfg
	if m.Cfg != cf.id {
		c.maybeFuture(from, m.Cfg, m)
		return
	}
	if cf.lost[from] {
		return
	}
	if m.Seq > 0 && from == cf.coord && m.Seq > cf.stable {
		cf.stable = m.Seq
		c.process()
		c.trimDone()
	}
	if m.Direct > 0 && cf.has(from) {
		d := cf.in(from)
		if m.Direct > d.stable {
			d.stable = m.Direct
			c.trimDirect(d)
		}
	}
}

func (c *core) onMarker(from slc.PeerID, m *markerMsg) {
	cf := c.cfg
	if m.Cfg != cf.id {
		c.maybeFuture(from, m.Cfg, m)
		return
	}
	if cf.has(from) && !cf.lost[from] && m.Epoch+1 > cf.markers[from] {
		cf.markers[from] = m.Epoch + 1
		c.process()
	}
}

// --- direct messages ---

func (c *core) onDirect(from slc.PeerID, m *directMsg) {
	cf := c.cfg
	if m.Cfg != cf.id {
		c.maybeFuture(from, m.Cfg, m)
		return
	}
	if m.Data.Sender != from || !cf.has(from) || cf.lost[from] {
		return
	}
	if m.N == 0 { // Unreliable: now or never
		if c.acc == nil && m.Epoch == cf.epoch {
			c.env.received(&m.Data)
			c.deliverData(&m.Data, cf.groups)
		}
		return
	}
	d := cf.in(from)
	if debugf != nil {
		debugf("%s direct %v from %s#%d N %d epoch %d (mine %d, recv %d)", c.name, cf.id, from, m.Data.Serial, m.N, m.Epoch, cf.epoch, d.recv)
	}
	if m.N <= d.recv {
		return
	}
	d.recv = m.N
	cf.ackDue = true
	if m.Stable > d.stable {
		d.stable = m.Stable
	}
	d.held = append(d.held, m)
	c.env.received(&m.Data)
	c.deliverDirect(from)
}

// deliverDirect delivers a sender's direct messages of the current epoch,
// in the order sent.
func (c *core) deliverDirect(s slc.PeerID) {
	cf := c.cfg
	d := cf.dirIn[s]
	if d == nil || c.acc != nil {
		return
	}
	// held is in N order: skip what is delivered.
	start, _ := slices.BinarySearchFunc(d.held, d.delivered+1, func(m *directMsg, n uint64) int { return cmp.Compare(m.N, n) })
	for _, m := range d.held[start:] {
		if m.N <= d.delivered {
			continue
		}
		if m.Epoch > cf.epoch {
			break
		}
		d.delivered = m.N
		c.deliverData(&m.Data, cf.groups)
	}
	c.trimDirect(d)
}

func (c *core) trimDirect(d *dirIn) {
	lim := min(d.delivered, d.stable)
	i := 0
	for i < len(d.held) && d.held[i].N <= lim {
		i++
	}
	if i > 0 {
		d.held = d.held[i:]
	}
}

// dirStableCheck advances this node's watermark over its direct messages
// that every addressee acknowledged.
func (c *core) dirStableCheck() {
	cf := c.cfg
	n := 0
	for n < len(cf.dirSent) {
		r := cf.dirSent[n]
		ok := true
		for _, p := range r.to {
			if cf.dirAck[p] < r.n {
				ok = false
				break
			}
		}
		if !ok {
			break
		}
		cf.dirStable = r.n
		n++
	}
	if n > 0 {
		cf.dirSent = cf.dirSent[n:]
		c.env.progress()
	}
}

// onAck takes a member's acknowledgement.
func (c *core) onAck(from slc.PeerID, m *ackMsg) {
	cf := c.cfg
	if m.Cfg != cf.id {
		c.maybeFuture(from, m.Cfg, m)
		return
	}
	if !cf.has(from) || cf.lost[from] {
		return
	}
	if m.Seq > cf.seqAck[from] {
		cf.seqAck[from] = m.Seq
		if cf.seqr != nil {
			c.seqStable()
		}
	}
	if m.N > cf.dirAck[from] {
		cf.dirAck[from] = m.N
		c.dirStableCheck()
	}
}

// sendAcks acknowledges what arrived since the last acknowledgement: the
// order to the sequencer, direct messages to their senders. Not while
// the node takes part in a view change.
func (c *core) sendAcks() {
	cf := c.cfg
	if c.acc != nil || !cf.ackDue {
		return
	}
	cf.ackDue = false
	acks := map[slc.PeerID]*ackMsg{}
	get := func(p slc.PeerID) *ackMsg {
		a := acks[p]
		if a == nil {
			a = &ackMsg{Cfg: cf.id}
			acks[p] = a
		}
		return a
	}
	if cf.coord != c.name && cf.recvSeq > cf.seqAckSent {
		cf.seqAckSent = cf.recvSeq
		get(cf.coord).Seq = cf.recvSeq
	}
	for _, s := range sortedKeys(cf.dirIn) {
		d := cf.dirIn[s]
		if s != c.name && d.recv > d.ackSent {
			d.ackSent = d.recv
			get(s).N = d.recv
		}
	}
	for _, p := range sortedKeys(acks) {
		c.sendIn([]slc.PeerID{p}, acks[p])
	}
}

// tick sends the acknowledgements due, announces stability that nothing
// carried yet, and tries again a view change that was refused.
func (c *core) tick() {
	c.sendAcks()
	if c.nacked && c.nackRetry {
		c.nacked, c.nackRetry = false, false
		c.evaluate()
	}
	cf := c.cfg
	if q := cf.seqr; q != nil && q.stable > q.announced && c.acc == nil {
		c.announceSeq()
	}
	if cf.dirStable > cf.dirAnnounced {
		cf.dirAnnounced = cf.dirStable
		c.sendIn(cf.others(c.name), &stableMsg{Cfg: cf.id, Direct: cf.dirStable})
	}
}

// maybeFuture keeps a message of the configuration this node is about to
// install; messages of other configurations are dropped.
func (c *core) maybeFuture(from slc.PeerID, id cfgID, msg any) {
	if c.acc != nil && c.acc.p == id {
		c.future = append(c.future, futureMsg{from: from, msg: msg})
	}
}

// onMessage dispatches a message of the group layer.
func (c *core) onMessage(from slc.PeerID, msg any) {
	switch m := msg.(type) {
	case *helloMsg:
		c.onHello(from, m)
	case *directMsg:
		c.onDirect(from, m)
	case *submitMsg:
		c.onSubmit(from, m)
	case *orderedMsg:
		c.onOrdered(from, m)
	case *stableMsg:
		c.onStable(from, m)
	case *markerMsg:
		c.onMarker(from, m)
	case *proposeMsg:
		c.onPropose(from, m)
	case *stateMsg:
		c.onState(from, m)
	case *nackMsg:
		c.onNack(from, m)
	case *fillMsg:
		c.onFill(from, m)
	case *filledMsg:
		c.onFilled(from, m)
	case *installMsg:
		c.onInstall(from, m)
	case *abortMsg:
		c.onAbort(from, m)
	case *ackMsg:
		c.onAck(from, m)
	}
}

// --- helpers ---

func contains[T comparable](s []T, v T) bool { return slices.Contains(s, v) }

func isMember(groups map[string]*groupState, names []string, p slc.PeerID) bool {
	for _, n := range names {
		if g := groups[n]; g != nil {
			if _, ok := slices.BinarySearch(g.Members, p); ok {
				return true
			}
		}
	}
	return false
}

// addressees returns the members of the named groups, and also, when not
// "", the sender, sorted.
func addressees(groups map[string]*groupState, names []string, sender slc.PeerID) []slc.PeerID {
	var out []slc.PeerID
	if len(names) == 1 && sender == "" {
		if g := groups[names[0]]; g != nil {
			return slices.Clone(g.Members)
		}
		return nil
	}
	for _, n := range names {
		if g := groups[n]; g != nil {
			out = append(out, g.Members...)
		}
	}
	if sender != "" {
		out = append(out, sender)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedKeys[V any](m map[slc.PeerID]V) []slc.PeerID {
	out := make([]slc.PeerID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func cmpRef(a, b nodeRef) int {
	return cmp.Or(strings.Compare(string(a.Name), string(b.Name)), cmp.Compare(a.Inst, b.Inst))
}

func snapshot(groups map[string]*groupState) []groupState {
	out := make([]groupState, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b groupState) int { return strings.Compare(a.Name, b.Name) })
	return out
}
