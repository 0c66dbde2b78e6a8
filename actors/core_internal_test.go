package actors

import (
	"fmt"
	"slices"
	"testing"

	"github.com/slc-go/slc/peer"
)

// TestTableLookup: a table finds every live peer by name and no other,
// whether it scans its few names or hashes among many, and lists its
// sessions in name order.
func TestTableLookup(t *testing.T) {
	for _, n := range []int{0, 1, maxScan - 1, maxScan, maxScan + 1, 3 * maxScan} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			live := map[peer.ID]*peer.Session{}
			var names []peer.ID
			for i := range n {
				id := peer.ID(fmt.Sprintf("node-%02d", (i*7)%n)) // not in order
				live[id] = peer.NewSession(&peer.Config{}, "")
				names = append(names, id)
			}
			ended := map[peer.ID]*peer.Session{"gone": peer.NewSession(&peer.Config{}, "")}
			c := &Core{}
			c.publishTable(live, ended)
			tab := c.tab.Load()
			for _, id := range names {
				// A name built anew, not the table's own string.
				if got := tab.liveSession(peer.ID(string([]byte(id)))); got != live[id] {
					t.Fatalf("liveSession(%q) = %p, want %p", id, got, live[id])
				}
			}
			for _, id := range []peer.ID{"", "gone", "node-99", "node-0"} {
				if got := tab.liveSession(id); got != nil {
					t.Fatalf("liveSession(%q) = %p, want nil", id, got)
				}
			}
			slices.Sort(names)
			if !slices.Equal(tab.ids, names) || len(tab.list) != n {
				t.Fatalf("ids %v, want %v", tab.ids, names)
			}
			for i, id := range names {
				if tab.list[i] != live[id] {
					t.Fatalf("list[%d] is not %q's session", i, id)
				}
			}
		})
	}
}
