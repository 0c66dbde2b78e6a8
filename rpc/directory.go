package rpc

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
)

// Events, published on the communicator's actor system EventStream
// (c.ActorSystem().EventStream), like slc's own. Handlers run on the
// publishing goroutine: keep them short and never block in them.
type (
	// NodeAppeared: the node learned of a node: a peer said hello
	// (Peer), or a peer reported it among its own peers (Via).
	NodeAppeared struct {
		Node     slc.PeerID
		Instance uint64
		Started  time.Time
		Peer     bool
		Via      []slc.PeerID
	}
	// NodeDisappeared: a node the node knew of is gone: its session
	// ended, it restarted (a NodeAppeared for the new instance follows or
	// precedes), or the peers that reported it no longer do.
	NodeDisappeared struct {
		Node     slc.PeerID
		Instance uint64
	}
	// ImplementationRegistered: Node (this node or a peer) registered an
	// implementation of Interface at Path.
	ImplementationRegistered struct {
		Node      slc.PeerID
		Path      string
		Interface string
	}
	// ImplementationUnregistered: Node unregistered it.
	ImplementationUnregistered struct {
		Node      slc.PeerID
		Path      string
		Interface string
	}
	// EventsDropped: the node's event handlers fell WithEventQueue
	// events behind, and it dropped an event of Node (Interface.Event
	// at Path) instead of queueing it. It is published when drops start
	// (the first drop after an event was queued), not for each one;
	// Total counts every event the node dropped so far, and
	// Subscription.Dropped the drops of each subscription.
	EventsDropped struct {
		Node      slc.PeerID
		Path      string
		Interface string
		Event     string
		Total     uint64
	}
	// NodeRefused: a node was refused because another live node has its
	// name. Self is true on the refused node itself; otherwise this node
	// refused a peer of it and disconnected it.
	NodeRefused struct {
		Node     slc.PeerID
		Instance uint64
		Self     bool
		Err      *DuplicateNameError
	}
)

// NodeInfo describes a known node.
type NodeInfo struct {
	Name     slc.PeerID `json:"name"`
	Instance uint64     `json:"instance"`
	Started  time.Time  `json:"started"`
	// Peer is true for a node connected to this one (it said hello); Up
	// tells whether its connection is up now (false while reconnecting).
	Peer bool `json:"peer"`
	Up   bool `json:"up"`
	// Via lists the connected peers that report the node as their peer.
	Via []slc.PeerID `json:"via,omitempty"`
}

// NodeDescription is what a node offers: its paths and, at each, the
// interfaces implemented, with their documentation.
type NodeDescription struct {
	Node     slc.PeerID        `json:"node"`
	Instance uint64            `json:"instance"`
	Started  time.Time         `json:"started"`
	Paths    []PathDescription `json:"paths"`
}

// peerState is what a node knows of a peer that said hello.
type peerState struct {
	inst    uint64
	started time.Time
	up      bool
	paths   []PathDescription
	peers   []nodeRef
	// ping is the nonce of a hello sent to check that the peer is alive;
	// alive is set when its answer came back.
	ping  uint64
	alive bool
}

type nodeKey struct {
	name slc.PeerID
	inst uint64
}

type relayKey struct {
	node nodeKey
	via  slc.PeerID
}

// Nodes lists the nodes this node knows: its rpc peers, and their peers.
// It does not list itself.
func (n *Node) Nodes() []NodeInfo {
	n.mu.Lock()
	view := n.viewLocked()
	n.mu.Unlock()
	out := make([]NodeInfo, 0, len(view))
	for _, ni := range view {
		out = append(out, ni)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int {
		return cmp.Or(strings.Compare(string(a.Name), string(b.Name)), cmp.Compare(a.Instance, b.Instance))
	})
	return out
}

// Describe returns what node offers. For this node's own name it answers
// at once; for a peer, from what the peer announced (its hello, then each
// registration), waiting until the peer has said hello or ctx ends. For a
// node known through peers (NodeInfo.Via), it asks those peers in turn,
// each answering from what the node announced to it. It fails with
// KindUnknownNode for a node that is neither a peer nor known through
// one, and with KindNodeLost when the session with the peer asked ends
// before it answers.
func (n *Node) Describe(ctx context.Context, node slc.PeerID) (*NodeDescription, error) {
	for {
		n.mu.Lock()
		if node == n.name {
			d := &NodeDescription{Node: n.name, Instance: n.inst, Started: n.started, Paths: n.describePathsLocked()}
			n.mu.Unlock()
			return d, nil
		}
		if ps := n.peers[node]; ps != nil {
			d := &NodeDescription{Node: node, Instance: ps.inst, Started: ps.started, Paths: clonePaths(ps.paths)}
			n.mu.Unlock()
			return d, nil
		}
		changed := n.dirChanged
		closed := n.closed
		vias := n.viasLocked(node)
		n.mu.Unlock()
		if closed {
			return nil, &Error{Kind: KindClosed, Node: node, Message: "the local node is closed"}
		}
		if !slices.Contains(n.c.Peers(), node) {
			if len(vias) > 0 {
				return n.describeVia(ctx, node, vias)
			}
			return nil, &Error{Kind: KindUnknownNode, Node: node, Message: "not a peer of " + string(n.name) + ", nor known through one"}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			e := ctxError(ctx.Err())
			e.Node, e.Message = node, "the peer has not introduced itself as an rpc node"
			return nil, e
		}
	}
}

// viasLocked lists the peers that are up and report node as their peer.
func (n *Node) viasLocked(node slc.PeerID) []slc.PeerID {
	var vias []slc.PeerID
	for via, ps := range n.peers {
		if ps.up && slices.ContainsFunc(ps.peers, func(r nodeRef) bool { return r.Name == node }) {
			vias = append(vias, via)
		}
	}
	slices.Sort(vias)
	return vias
}

// pendingDescribe is a Describe request sent to a peer.
type pendingDescribe struct {
	via slc.PeerID
	ch  chan describeOutcome // buffered: never blocks
}

type describeOutcome struct {
	d   *NodeDescription
	err error
}

// describeVia asks the peers vias, in turn, for the description of node,
// one of their peers. It returns the first description, or the last
// error.
func (n *Node) describeVia(ctx context.Context, node slc.PeerID, vias []slc.PeerID) (*NodeDescription, error) {
	var err error
	for _, via := range vias {
		var d *NodeDescription
		if d, err = n.describeOne(ctx, node, via); err == nil {
			return d, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	var e *Error
	if errors.As(err, &e) && e.Node == "" {
		e.Node = node
	}
	return nil, err
}

func (n *Node) describeOne(ctx context.Context, node, via slc.PeerID) (*NodeDescription, error) {
	id := n.nextDesc.Add(1)
	pd := &pendingDescribe{via: via, ch: make(chan describeOutcome, 1)}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, &Error{Kind: KindClosed, Message: "the local node is closed"}
	}
	n.describing[id] = pd
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.describing, id)
		n.mu.Unlock()
	}()
	if _, err := n.c.Send(ctx, &describeMsg{ID: id, From: n.inst, Node: node}, via); err != nil {
		e := sendError(err)
		e.Message = "asking " + string(via) + ": " + e.Message
		return nil, e
	}
	select {
	case o := <-pd.ch:
		return o.d, o.err
	case <-ctx.Done():
		e := ctxError(ctx.Err())
		e.Message = "no answer from " + string(via) + ", through which the node is known"
		return nil, e
	}
}

// failDescribesLocked fails the Describe requests sent to via (to every
// peer when via is "").
func (n *Node) failDescribesLocked(via slc.PeerID, err *Error) {
	for id, pd := range n.describing {
		if via == "" || pd.via == via {
			delete(n.describing, id)
			pd.ch <- describeOutcome{err: err}
		}
	}
}

// onDescribe answers a peer's request for the description of one of this
// node's peers. It runs on the connection's goroutine.
func (n *Node) onDescribe(from slc.PeerID, m *describeMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ans := &descriptionMsg{ID: m.ID, To: m.From, Node: m.Node}
	switch ps := n.peers[m.Node]; {
	case m.Node == n.name:
		ans.Instance, ans.Started, ans.Paths = n.inst, n.started.UnixNano(), n.describePathsLocked()
	case ps != nil:
		ans.Instance, ans.Started, ans.Paths = ps.inst, ps.started.UnixNano(), clonePaths(ps.paths)
	default:
		ans.Err = &wireError{Kind: KindUnknownNode, Message: "not a peer of " + string(n.name) + " any more"}
	}
	n.goLocked(func() { n.send(from, ans) })
}

// onDescription takes a peer's answer to a Describe request.
func (n *Node) onDescription(from slc.PeerID, m *descriptionMsg) {
	if m.To != n.inst {
		return
	}
	n.mu.Lock()
	pd := n.describing[m.ID]
	if pd == nil || pd.via != from {
		n.mu.Unlock()
		return
	}
	delete(n.describing, m.ID)
	n.mu.Unlock()
	if m.Err != nil {
		e := remoteError(m.Err)
		e.Node, e.Message = m.Node, "asking "+string(from)+": "+e.Message
		pd.ch <- describeOutcome{err: e}
		return
	}
	paths := m.Paths
	if paths == nil {
		paths = []PathDescription{}
	}
	pd.ch <- describeOutcome{d: &NodeDescription{Node: m.Node, Instance: m.Instance, Started: time.Unix(0, m.Started), Paths: paths}}
}

func clonePaths(ps []PathDescription) []PathDescription {
	out := make([]PathDescription, len(ps))
	for i, p := range ps {
		out[i] = PathDescription{Path: p.Path, Interfaces: make([]Interface, len(p.Interfaces))}
		for j, in := range p.Interfaces {
			out[i].Interfaces[j] = in.clone()
		}
	}
	return out
}

// signalLocked wakes the Describe calls waiting for a change.
func (n *Node) signalLocked() {
	close(n.dirChanged)
	n.dirChanged = make(chan struct{})
}

// peerRefsLocked lists the peers that are up and said hello.
func (n *Node) peerRefsLocked() []nodeRef {
	refs := make([]nodeRef, 0, len(n.peers))
	for name, ps := range n.peers {
		if ps.up {
			refs = append(refs, nodeRef{Name: name, Instance: ps.inst, Started: ps.started.UnixNano()})
		}
	}
	slices.SortFunc(refs, func(a, b nodeRef) int { return strings.Compare(string(a.Name), string(b.Name)) })
	return refs
}

// viewLocked computes the known nodes.
func (n *Node) viewLocked() map[nodeKey]NodeInfo {
	view := map[nodeKey]NodeInfo{}
	for name, ps := range n.peers {
		view[nodeKey{name, ps.inst}] = NodeInfo{Name: name, Instance: ps.inst, Started: ps.started, Peer: true, Up: ps.up}
	}
	for via, ps := range n.peers {
		if !ps.up {
			continue
		}
		for _, r := range ps.peers {
			if r.Name == n.name {
				continue // this node, or an old report of a previous instance
			}
			k := nodeKey{r.Name, r.Instance}
			ni, ok := view[k]
			if !ok {
				ni = NodeInfo{Name: r.Name, Instance: r.Instance, Started: time.Unix(0, r.Started)}
			}
			ni.Via = append(ni.Via, via)
			slices.Sort(ni.Via)
			view[k] = ni
		}
	}
	return view
}

// --- control goroutine: sessions, hellos, gossip ---

// sendHello introduces this node to p. ask asks for p's hello in
// return, with ping echoed in it; pong echoes p's ping.
func (n *Node) sendHello(p slc.PeerID, ask bool, ping, pong uint64) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	h := &helloMsg{Instance: n.inst, Started: n.started.UnixNano(), Ask: ask, Ping: ping, Pong: pong,
		Paths: n.describePathsLocked(), Peers: without(n.peerRefsLocked(), p)}
	n.mu.Unlock()
	n.send(p, h)
}

// without returns refs without the entries named p.
func without(refs []nodeRef, p slc.PeerID) []nodeRef {
	return slices.DeleteFunc(slices.Clone(refs), func(r nodeRef) bool { return r.Name == p })
}

// gossip sends every peer that is up the list of this node's other
// peers.
func (n *Node) gossip(refs []nodeRef) {
	n.mu.Lock()
	var to []slc.PeerID
	for name, ps := range n.peers {
		if ps.up {
			to = append(to, name)
		}
	}
	n.mu.Unlock()
	slices.Sort(to)
	for _, p := range to {
		n.send(p, &peersMsg{Instance: n.inst, Peers: without(refs, p)})
	}
}

// broadcast sends msg to every peer that is up and said hello.
func (n *Node) broadcast(msg any) {
	n.mu.Lock()
	var to []slc.PeerID
	for name, ps := range n.peers {
		if ps.up {
			to = append(to, name)
		}
	}
	n.mu.Unlock()
	slices.Sort(to)
	for _, p := range to {
		n.send(p, msg)
	}
}

func (n *Node) onPeerConnected(e *actors.PeerConnected) {
	n.mu.Lock()
	changed := false
	var inst uint64 // the new instance, if its hello came first
	if ps := n.peers[e.Peer]; ps != nil {
		switch {
		case e.Restarted && !ps.up:
			// What the previous instance said no longer holds (its
			// connection went down before this one came up); the new
			// one says hello.
			delete(n.peers, e.Peer)
			changed = true
		case e.Restarted:
			inst = ps.inst
		case !ps.up:
			ps.up, changed = true, true
		}
	}
	var failed, resend []*pendingCall
	if e.Restarted {
		failed, resend = n.restartedLocked(e.Peer, inst)
	}
	n.mu.Unlock()
	n.settleRestarted(e.Peer, failed, resend)
	if !e.Resumed || e.Restarted {
		n.sendHello(e.Peer, true, 0, 0)
	}
	if changed {
		n.directoryChanged()
	}
}

func (n *Node) onPeerDown(p slc.PeerID) {
	n.mu.Lock()
	changed := false
	if ps := n.peers[p]; ps != nil && ps.up {
		ps.up, changed = false, true
		ps.ping, ps.alive = 0, false
	}
	n.mu.Unlock()
	if changed {
		n.directoryChanged()
	}
}

// sessionEnded runs on the publisher of PeerLost ("lost") or a final
// PeerDisconnected ("disconnected": a goodbye), before a new session with
// p can start: calls waiting for p fail, and p's calls here are canceled
// and its subscriptions dropped (it subscribes again if it comes back).
func (n *Node) sessionEnded(p slc.PeerID, how string) {
	goodbye := how == "disconnected"
	n.mu.Lock()
	var failed []*pendingCall
	for id, pc := range n.pending {
		if pc.node == p {
			delete(n.pending, id)
			failed = append(failed, pc)
		}
	}
	n.settleAllLocked(p)
	n.failDescribesLocked(p, &Error{Kind: KindNodeLost, Message: "the session with " + string(p) + ", asked for the description, ended"})
	if cs := n.callers[p]; cs != nil {
		cs.cancelRunning()
		if goodbye {
			// A goodbye ends the session on both sides: p re-sends
			// nothing of it, so its results are not needed any more.
			delete(n.callers, p)
		} else {
			// Lost without a goodbye: p may still hold the session, come
			// back and re-send calls this side had not acknowledged. Its
			// results stay until its next call's watermark, or its next
			// instance, drops them.
			cs.subs, cs.count = map[uint64]subKey{}, map[subKey]int{}
		}
	}
	n.mu.Unlock()
	for _, pc := range failed {
		pc.finish(nil, &Error{Kind: KindNodeLost,
			Message: "the session with the node ended (" + how + ") before the result arrived; the call may have run"})
	}
}

// onPeerGone forgets a peer whose session ended.
func (n *Node) onPeerGone(p slc.PeerID) {
	n.mu.Lock()
	_, ok := n.peers[p]
	delete(n.peers, p)
	if ok {
		n.signalLocked()
	}
	n.mu.Unlock()
	if ok {
		n.directoryChanged()
	}
}

func (n *Node) onHello(from slc.PeerID, h *helloMsg) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	ref := nodeRef{Name: from, Instance: h.Instance, Started: h.Started}
	if holder, refused := n.refusedSet[nodeKey{from, h.Instance}]; refused {
		delete(n.peers, from)
		n.mu.Unlock()
		n.refusePeer(ref, holder)
		return
	}
	prev := n.peers[from]
	ps := &peerState{inst: h.Instance, started: time.Unix(0, h.Started), up: true, paths: h.Paths, peers: h.Peers}
	if prev != nil && prev.inst == h.Instance {
		ps.ping, ps.alive = prev.ping, prev.alive || h.Pong != 0 && h.Pong == prev.ping
	}
	n.peers[from] = ps
	var oldPaths []PathDescription
	var failed, resend []*pendingCall
	if prev != nil {
		oldPaths = prev.paths
		if prev.inst != h.Instance {
			failed, resend = n.restartedLocked(from, h.Instance)
		}
	}
	subs := n.subscriptionsToLocked(from)
	n.signalLocked()
	n.mu.Unlock()

	if h.Ask {
		n.sendHello(from, false, 0, h.Ping)
	}
	n.settleRestarted(from, failed, resend)
	for _, s := range subs {
		if s.active.Load() {
			n.send(from, s.message())
		}
	}
	n.publishPathChanges(from, oldPaths, h.Paths)
	n.directoryChanged()
}

// restartedLocked sorts the calls waiting for p, which restarted (its new
// instance is inst, or not known yet: 0). Calls sent to an earlier
// instance may have run there: they fail. Calls sent before any hello
// from p go again, marked as retries, so that the new instance runs only
// those it has not seen and never one an earlier instance may have run.
func (n *Node) restartedLocked(p slc.PeerID, inst uint64) (failed, resend []*pendingCall) {
	for id, pc := range n.pending {
		switch {
		case pc.node != p:
		case pc.msg.To == 0:
			resend = append(resend, pc)
		case pc.msg.To != inst:
			delete(n.pending, id)
			n.settledLocked(p, id)
			failed = append(failed, pc)
		}
	}
	// Calls this node gave up on went to an earlier instance, or may
	// reach the new one before any later call: they no longer hold the
	// watermark back.
	for id, to := range n.abandoned {
		if to == p {
			delete(n.abandoned, id)
			n.settledLocked(p, id)
		}
	}
	return failed, resend
}

func (n *Node) settleRestarted(p slc.PeerID, failed, resend []*pendingCall) {
	for _, pc := range failed {
		pc.finish(nil, &Error{Kind: KindRestarted,
			Message: "the node restarted before answering; the call may have run on its previous instance"})
	}
	for _, pc := range resend {
		cp := *pc.msg
		cp.Retry = true
		n.send(p, &cp)
	}
}

// publishPathChanges publishes the registrations and unregistrations
// between two descriptions of a peer.
func (n *Node) publishPathChanges(node slc.PeerID, old, cur []PathDescription) {
	set := func(ps []PathDescription) map[[2]string]bool {
		m := map[[2]string]bool{}
		for _, p := range ps {
			for _, i := range p.Interfaces {
				m[[2]string{p.Path, i.Name}] = true
			}
		}
		return m
	}
	o, c := set(old), set(cur)
	var gone, added [][2]string
	for k := range o {
		if !c[k] {
			gone = append(gone, k)
		}
	}
	for k := range c {
		if !o[k] {
			added = append(added, k)
		}
	}
	less := func(a, b [2]string) int { return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1])) }
	slices.SortFunc(gone, less)
	slices.SortFunc(added, less)
	for _, k := range gone {
		n.publish(&ImplementationUnregistered{Node: node, Path: k[0], Interface: k[1]})
	}
	for _, k := range added {
		n.publish(&ImplementationRegistered{Node: node, Path: k[0], Interface: k[1]})
	}
}

func (n *Node) onPeers(from slc.PeerID, m *peersMsg) {
	n.mu.Lock()
	ps := n.peers[from]
	if ps == nil || ps.inst != m.Instance {
		n.mu.Unlock()
		return
	}
	ps.peers = m.Peers
	n.mu.Unlock()
	n.directoryChanged()
}

func (n *Node) onRegistered(from slc.PeerID, m *registeredMsg) {
	n.mu.Lock()
	ps := n.peers[from]
	if ps == nil || ps.inst != m.Instance {
		n.mu.Unlock()
		return
	}
	old := ps.paths
	ps.paths = withInterface(clonePaths(old), m.Path, m.Interface)
	cur := ps.paths
	resub := n.resubscribeLocked(from, m.Path, m.Interface.Name)
	n.signalLocked()
	n.mu.Unlock()
	for _, msg := range resub {
		n.send(from, msg)
	}
	n.publishPathChanges(from, old, cur)
}

func (n *Node) onUnregistered(from slc.PeerID, m *unregisteredMsg) {
	n.mu.Lock()
	ps := n.peers[from]
	if ps == nil || ps.inst != m.Instance {
		n.mu.Unlock()
		return
	}
	old := ps.paths
	ps.paths = withoutInterface(clonePaths(old), m.Path, m.Interface)
	cur := ps.paths
	n.signalLocked()
	n.mu.Unlock()
	n.publishPathChanges(from, old, cur)
}

// withInterface adds (or replaces) iface at path.
func withInterface(ps []PathDescription, path string, iface Interface) []PathDescription {
	i, found := slices.BinarySearchFunc(ps, path, func(p PathDescription, t string) int { return strings.Compare(p.Path, t) })
	if !found {
		ps = slices.Insert(ps, i, PathDescription{Path: path})
	}
	p := &ps[i]
	j, found := slices.BinarySearchFunc(p.Interfaces, iface.Name, func(x Interface, t string) int { return strings.Compare(x.Name, t) })
	if found {
		p.Interfaces[j] = iface
	} else {
		p.Interfaces = slices.Insert(p.Interfaces, j, iface)
	}
	return ps
}

// withoutInterface removes iface at path.
func withoutInterface(ps []PathDescription, path, iface string) []PathDescription {
	for i := range ps {
		if ps[i].Path != path {
			continue
		}
		ps[i].Interfaces = slices.DeleteFunc(ps[i].Interfaces, func(x Interface) bool { return x.Name == iface })
		if len(ps[i].Interfaces) == 0 {
			ps = slices.Delete(ps, i, i+1)
		}
		break
	}
	return ps
}

// directoryChanged refuses duplicate names, publishes the nodes that
// appeared and disappeared, and tells the peers when this node's own
// peers changed.
func (n *Node) directoryChanged() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	actions := n.conflictsLocked()
	view := n.viewLocked()
	var appeared []NodeInfo
	var gone []nodeKey
	for k, ni := range view {
		if _, ok := n.known[k]; !ok {
			appeared = append(appeared, ni)
		}
	}
	for k := range n.known {
		if _, ok := view[k]; !ok {
			gone = append(gone, k)
		}
	}
	n.known = view
	refs := n.peerRefsLocked()
	n.mu.Unlock()

	for _, a := range actions {
		a()
	}
	slices.SortFunc(gone, func(a, b nodeKey) int { return strings.Compare(string(a.name), string(b.name)) })
	for _, k := range gone {
		n.publish(&NodeDisappeared{Node: k.name, Instance: k.inst})
	}
	slices.SortFunc(appeared, func(a, b NodeInfo) int { return strings.Compare(string(a.Name), string(b.Name)) })
	for _, ni := range appeared {
		n.publish(&NodeAppeared{Node: ni.Name, Instance: ni.Instance, Started: ni.Started, Peer: ni.Peer, Via: ni.Via})
	}
	if !slices.Equal(refs, n.lastGossip) {
		n.lastGossip = refs
		n.gossip(refs)
	}
}

// claim is one instance of a name, as this node sees it: a peer, or
// reported by peers (via).
type claim struct {
	ref  nodeRef
	peer bool
	via  []slc.PeerID
}

// conflictsLocked finds names held by two live instances. The instance
// started first keeps the name (ties: the smaller instance ID); each other
// one is refused: by this node if it is a peer, else by the peers that
// report it, to which the refusal is passed on.
//
// A node decides only when the holder is a peer that proved alive after
// the conflict appeared (it answered a ping): a report may be stale, and a
// node that restarts must not be refused in favour of its dead previous
// instance. Reports of this node's own name are ignored: a peer cannot
// have another node of that name as its own peer, so they are stale. It
// returns the sends and events to do once n.mu is released.
func (n *Node) conflictsLocked() []func() {
	claims := map[slc.PeerID]map[uint64]*claim{}
	add := func(r nodeRef) *claim {
		m := claims[r.Name]
		if m == nil {
			m = map[uint64]*claim{}
			claims[r.Name] = m
		}
		c := m[r.Instance]
		if c == nil {
			c = &claim{ref: r}
			m[r.Instance] = c
		}
		return c
	}
	for name, ps := range n.peers {
		if ps.up {
			add(nodeRef{Name: name, Instance: ps.inst, Started: ps.started.UnixNano()}).peer = true
		}
	}
	for via, ps := range n.peers {
		if !ps.up {
			continue
		}
		for _, r := range ps.peers {
			if key := (nodeKey{r.Name, r.Instance}); r.Name == n.name || n.refusedSet[key] != (nodeRef{}) {
				continue
			}
			c := add(r)
			c.via = append(c.via, via)
		}
	}
	var actions []func()
	for _, m := range claims {
		if len(m) < 2 {
			continue
		}
		var winner *claim
		for _, c := range m {
			if winner == nil || c.ref.Started < winner.ref.Started ||
				c.ref.Started == winner.ref.Started && c.ref.Instance < winner.ref.Instance {
				winner = c
			}
		}
		holder := winner.ref
		ps := n.peers[holder.Name]
		if !winner.peer || ps == nil {
			continue // not this node's to decide
		}
		if !ps.alive {
			if ps.ping == 0 {
				ps.ping = randomInstance()
				ping, name := ps.ping, holder.Name
				actions = append(actions, func() { n.sendHello(name, true, ping, 0) })
			}
			continue // decided when the answer comes
		}
		for _, c := range m {
			if c == winner {
				continue
			}
			key := nodeKey{c.ref.Name, c.ref.Instance}
			if c.peer {
				n.refusedSet[key] = holder
				delete(n.peers, c.ref.Name)
				ref := c.ref
				actions = append(actions, func() { n.refusePeer(ref, holder) })
				continue
			}
			for _, via := range c.via {
				rk := relayKey{key, via}
				if n.relayed[rk] {
					continue
				}
				n.relayed[rk] = true
				msg := &refusedMsg{Node: c.ref, Holder: holder, By: n.name}
				actions = append(actions, func() { n.send(via, msg) })
			}
		}
	}
	return actions
}

// refuseSelf marks this node refused by peer by: calls waiting for
// results fail, and NodeRefused is published. It reports whether the node
// was not refused before.
func (n *Node) refuseSelf(holder nodeRef, by slc.PeerID) bool {
	n.mu.Lock()
	if n.refused != nil || n.closed {
		n.mu.Unlock()
		return false
	}
	err := &DuplicateNameError{Name: n.name, Instance: n.inst, Started: n.started,
		HolderInstance: holder.Instance, HolderStarted: time.Unix(0, holder.Started), By: by}
	n.refused = err
	failed := n.pending
	n.pending = map[uint64]*pendingCall{}
	n.settleAllLocked("")
	n.mu.Unlock()
	for _, pc := range failed {
		pc.finish(nil, &Error{Kind: KindRefused, Err: err})
	}
	n.publish(&NodeRefused{Node: n.name, Instance: n.inst, Self: true, Err: err})
	return true
}

// refusePeer tells a peer it is refused, and disconnects it.
func (n *Node) refusePeer(ref, holder nodeRef) {
	n.send(ref.Name, &refusedMsg{Node: ref, Holder: holder, By: n.name})
	n.publish(&NodeRefused{Node: ref.Name, Instance: ref.Instance, Err: &DuplicateNameError{
		Name: ref.Name, Instance: ref.Instance, Started: time.Unix(0, ref.Started),
		HolderInstance: holder.Instance, HolderStarted: time.Unix(0, holder.Started), By: n.name}})
	n.mu.Lock()
	n.goLocked(func() {
		ctx, cancel := context.WithTimeout(n.ctx, refuseFlush)
		defer cancel()
		n.c.Disconnect(ctx, ref.Name)
	})
	n.mu.Unlock()
}

// refuseFlush bounds the wait for a refused peer to acknowledge the
// refusal before it is disconnected.
const refuseFlush = 5 * time.Second

func (n *Node) onRefused(from slc.PeerID, m *refusedMsg) {
	if m.Node.Name == n.name && m.Node.Instance == n.inst {
		if n.refuseSelf(m.Holder, m.By) {
			n.directoryChanged()
		}
		return
	}
	// A refusal of a peer of this node, passed on by from.
	key := nodeKey{m.Node.Name, m.Node.Instance}
	n.mu.Lock()
	ps := n.peers[m.Node.Name]
	if ps == nil || ps.inst != m.Node.Instance || n.refusedSet[key] != (nodeRef{}) {
		n.mu.Unlock()
		return
	}
	n.refusedSet[key] = m.Holder
	delete(n.peers, m.Node.Name)
	n.mu.Unlock()
	n.refusePeer(m.Node, m.Holder)
	n.directoryChanged()
}
