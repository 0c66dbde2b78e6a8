package rpc

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
