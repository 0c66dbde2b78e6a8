package rpc

import "github.com/slc-go/slc"

// RemoteSubscriptions returns how many subscriptions of other nodes n
// holds, for tests.
func RemoteSubscriptions(n *Node) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, cs := range n.callers {
		k += len(cs.subs)
	}
	return k
}

// StrayResults returns how many results n received for calls it did not
// await, for tests.
func StrayResults(n *Node) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.strayResults
}

// KeptCalls returns how many calls (running, or finished with their
// results) n keeps for caller, for tests.
func KeptCalls(n *Node, caller slc.PeerID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cs := n.callers[caller]; cs != nil {
		return len(cs.calls)
	}
	return 0
}

// Watermark returns n's watermark for callee: the lowest ID of its calls
// to callee whose results it awaits (0: none), for tests.
func Watermark(n *Node, callee slc.PeerID) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if q := n.outstanding[callee]; q != nil {
		return q.low()
	}
	return 0
}
