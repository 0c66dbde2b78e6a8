// Package check verifies the guarantees of package group on a recorded
// history: what each member sent, delivered and saw of its views, and
// when each message reached each member.
//
// It checks, and counts the checks it made:
//
//   - duplicates: no member delivers a message twice (except Unreliable);
//   - self-discard: a SelfDiscard message is not delivered to its sender;
//   - membership: a message is delivered only to members of one of its
//     groups, and a view ID names the same members everywhere;
//   - FIFO: each sender's FIFO messages, and its Causal, Agreed and Safe
//     messages, are delivered in the order sent;
//   - causal order: vector clocks computed from the history (what each
//     sender had delivered before each send) order the Causal, Agreed and
//     Safe messages; every member delivers them in an order consistent
//     with it;
//   - total order: the Agreed and Safe messages have one order that every
//     member's deliveries follow (the union of the members' orders has
//     no cycle), deliveries marked Unseen aside; and members that pass
//     from one view of a group to the same next view, through the same
//     transitional view or none, delivered its Agreed and Safe messages
//     in the same order, Unseen ones included. (An Unseen delivery ends
//     a configuration, and the deliverer's side of a partition never saw
//     the sequencer's order for it: the other side may have delivered it
//     elsewhere in the order. Its causal order is checked as any other.)
//   - Safe: a Safe message is delivered only after every member of the
//     deliverer's current view (transitional or not) of its groups
//     received it;
//   - virtual synchrony: members that pass from one view of a group to
//     the same next view, through the same transitional view or none,
//     delivered the same set of messages (but Unreliable ones) of that
//     group in the first view (its transitional view included).
//
// The package does not import group: the levels are Spread's values.
package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Service levels, with Spread's (and group's) values.
const (
	Unreliable  = 0x01
	Reliable    = 0x02
	FIFO        = 0x04
	Causal      = 0x08
	Agreed      = 0x10
	Safe        = 0x20
	SelfDiscard = 0x40
)

// Kind is an event's kind.
type Kind string

// Kinds of events.
const (
	// Send: the member called Multicast (recorded before the call).
	Send Kind = "send"
	// Deliver: the application received a message.
	Deliver Kind = "deliver"
	// View: the application received a membership message.
	View Kind = "view"
	// Receive: a message reached the member's group layer (Time set).
	Receive Kind = "receive"
)

// MsgID identifies a message: its sender and the sender's serial.
type MsgID struct {
	Sender string `json:"sender"`
	Serial uint64 `json:"serial"`
}

func (m MsgID) String() string { return fmt.Sprintf("%s#%d", m.Sender, m.Serial) }

// Event is one recorded event of a member.
type Event struct {
	Kind    Kind     `json:"kind"`
	Msg     MsgID    `json:"msg,omitzero"`
	Service int      `json:"svc,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	// Time orders Receive and Deliver events across members (one clock
	// for the whole history); 0 when unknown.
	Time int64 `json:"time,omitempty"`
	// Unseen, on a Deliver event: the message ended a configuration and
	// no member that went on with the deliverer saw its place in the
	// total order (see Check for what is then promised).
	Unseen bool `json:"unseen,omitempty"`

	// View events.
	Group        string   `json:"group,omitempty"`
	ViewID       string   `json:"view,omitempty"`
	Members      []string `json:"members,omitempty"`
	Transitional bool     `json:"trans,omitempty"`
}

// History is what each member did, in its own order.
type History map[string][]Event

// Report is the outcome: how many checks of each guarantee ran, and the
// violations found.
type Report struct {
	Counts     map[string]int
	Violations []string
}

// OK reports whether no violation was found.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Has reports whether a violation of the named guarantee was found.
func (r *Report) Has(guarantee string) bool {
	for _, v := range r.Violations {
		if strings.HasPrefix(v, guarantee+":") {
			return true
		}
	}
	return false
}

// String lists the counts and the violations.
func (r *Report) String() string {
	var b strings.Builder
	keys := make([]string, 0, len(r.Counts))
	for k := range r.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, r.Counts[k])
	}
	for _, v := range r.Violations {
		b.WriteString("\n  ")
		b.WriteString(v)
	}
	return b.String()
}

// Guarantee names, as used in Counts and as prefixes of violations.
const (
	GDuplicates  = "duplicates"
	GSelfDiscard = "self-discard"
	GMembership  = "membership"
	GFIFO        = "fifo"
	GCausal      = "causal"
	GTotal       = "total-order"
	GSafe        = "safe"
	GVirtual     = "virtual-synchrony"
)

const maxViolations = 50

type checker struct {
	h    History
	r    *Report
	sent map[MsgID]*Event
}

func (c *checker) fail(g, format string, args ...any) {
	if len(c.r.Violations) < maxViolations {
		c.r.Violations = append(c.r.Violations, g+": "+fmt.Sprintf(format, args...))
	}
}

func (c *checker) count(g string, n int) { c.r.Counts[g] += n }

func level(svc int) int { return svc &^ SelfDiscard }

func sequenced(svc int) bool { return level(svc) >= Causal }

// Check checks every guarantee on h.
func Check(h History) *Report {
	c := &checker{h: h, r: &Report{Counts: map[string]int{}}, sent: map[MsgID]*Event{}}
	for _, m := range c.members() {
		for i := range h[m] {
			if e := &h[m][i]; e.Kind == Send {
				c.sent[e.Msg] = e
			}
		}
	}
	c.duplicates()
	c.membership()
	c.fifo()
	c.causal()
	c.total()
	c.safe()
	c.virtual()
	return c.r
}

func (c *checker) members() []string {
	out := make([]string, 0, len(c.h))
	for m := range c.h {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func (c *checker) duplicates() {
	for _, p := range c.members() {
		seen := map[MsgID]bool{}
		for _, e := range c.h[p] {
			if e.Kind != Deliver {
				continue
			}
			if e.Msg.Sender == p && e.Service&SelfDiscard != 0 {
				c.fail(GSelfDiscard, "%s delivered its own self-discard message %s", p, e.Msg)
			}
			c.count(GSelfDiscard, 1)
			if level(e.Service) == Unreliable {
				continue
			}
			c.count(GDuplicates, 1)
			if seen[e.Msg] {
				c.fail(GDuplicates, "%s delivered %s twice", p, e.Msg)
			}
			seen[e.Msg] = true
		}
	}
}

// views tracks a member's current views, group by group.
type views map[string]*Event

func (v views) member(groups []string, p string) bool {
	for _, g := range groups {
		if e := v[g]; e != nil && slices.Contains(e.Members, p) {
			return true
		}
	}
	return false
}

func (c *checker) membership() {
	byID := map[string][]string{}
	idOwner := map[string]string{}
	for _, p := range c.members() {
		cur := views{}
		for i := range c.h[p] {
			e := &c.h[p][i]
			switch e.Kind {
			case View:
				cur[e.Group] = e
				if e.Transitional || len(e.Members) == 0 {
					continue
				}
				key := e.Group + " " + e.ViewID
				c.count(GMembership, 1)
				if prev, ok := byID[key]; ok {
					if !slices.Equal(prev, e.Members) {
						c.fail(GMembership, "view %s of %s: %s has %v, %s has %v", e.ViewID, e.Group, idOwner[key], prev, p, e.Members)
					}
				} else {
					byID[key], idOwner[key] = e.Members, p
				}
				if !slices.Contains(e.Members, p) {
					c.fail(GMembership, "%s got view %s of %s without being in it: %v", p, e.ViewID, e.Group, e.Members)
				}
			case Deliver:
				c.count(GMembership, 1)
				if !cur.member(e.Groups, p) {
					c.fail(GMembership, "%s delivered %s to %v without being a member", p, e.Msg, e.Groups)
				}
			}
		}
	}
}

// fifo: per sender, FIFO messages in order, and sequenced messages in
// order.
func (c *checker) fifo() {
	for _, p := range c.members() {
		last := map[[2]string]uint64{}
		for _, e := range c.h[p] {
			if e.Kind != Deliver {
				continue
			}
			var class string
			switch {
			case level(e.Service) == FIFO:
				class = "fifo"
			case sequenced(e.Service):
				class = "seq"
			default:
				continue
			}
			k := [2]string{e.Msg.Sender, class}
			c.count(GFIFO, 1)
			if e.Msg.Serial <= last[k] {
				c.fail(GFIFO, "%s delivered %s after %s#%d (%s)", p, e.Msg, e.Msg.Sender, last[k], class)
			}
			last[k] = max(last[k], e.Msg.Serial)
		}
	}
}

// causal computes a vector clock for each Causal, Agreed and Safe
// message from what its sender had delivered and sent before it, and
// checks every member's delivery order against it.
func (c *checker) causal() {
	type stamp struct {
		idx uint64
		vc  map[string]uint64
	}
	stamps := map[MsgID]*stamp{}
	// A message's clock needs the clocks of what its sender delivered
	// before: compute them in an order where each send comes after the
	// sends it depends on, by passes until nothing changes.
	pos := map[string]int{}
	vcs := map[string]map[string]uint64{}
	for _, p := range c.members() {
		vcs[p] = map[string]uint64{}
	}
	for progress := true; progress; {
		progress = false
		for _, p := range c.members() {
			evs := c.h[p]
			for pos[p] < len(evs) {
				e := evs[pos[p]]
				if e.Kind == Deliver && sequenced(e.Service) && e.Msg.Sender != p {
					st := stamps[e.Msg]
					if st == nil {
						if c.sent[e.Msg] != nil {
							break // its send is not stamped yet
						}
						pos[p]++ // a message whose send was not recorded
						continue
					}
					for k, v := range st.vc {
						vcs[p][k] = max(vcs[p][k], v)
					}
				}
				if e.Kind == Send && sequenced(e.Service) {
					vcs[p][p]++
					vc := make(map[string]uint64, len(vcs[p]))
					for k, v := range vcs[p] {
						vc[k] = v
					}
					stamps[e.Msg] = &stamp{idx: vcs[p][p], vc: vc}
				}
				pos[p]++
				progress = true
			}
		}
	}
	for _, p := range c.members() {
		if pos[p] < len(c.h[p]) {
			c.fail(GCausal, "%s delivered %s before it was sent (a causal cycle)", p, c.h[p][pos[p]].Msg)
		}
	}
	for _, q := range c.members() {
		var dl []*stamp
		var ids []MsgID
		for _, e := range c.h[q] {
			if e.Kind == Deliver && sequenced(e.Service) && stamps[e.Msg] != nil {
				dl = append(dl, stamps[e.Msg])
				ids = append(ids, e.Msg)
			}
		}
		// minLater[s]: the smallest index of a message of s delivered
		// after the current position.
		minLater := map[string]uint64{}
		for i := len(dl) - 1; i >= 0; i-- {
			st := dl[i]
			for s, v := range st.vc {
				if s == ids[i].Sender {
					v-- // the message itself
				}
				c.count(GCausal, 1)
				if ml, ok := minLater[s]; ok && ml <= v {
					c.fail(GCausal, "%s delivered %s before a message of %s (index %d) that precedes it causally", q, ids[i], s, ml)
				}
			}
			if ml, ok := minLater[ids[i].Sender]; !ok || st.idx < ml {
				minLater[ids[i].Sender] = st.idx
			}
		}
	}
}

// total checks that the members' orders of Agreed and Safe messages have
// no cycle.
func (c *checker) total() {
	succ := map[MsgID]map[MsgID]bool{}
	indeg := map[MsgID]int{}
	nodes := map[MsgID]bool{}
	for _, p := range c.members() {
		var prev *MsgID
		for _, e := range c.h[p] {
			if e.Kind != Deliver || (level(e.Service) != Agreed && level(e.Service) != Safe) || e.Unseen {
				continue
			}
			m := e.Msg
			nodes[m] = true
			c.count(GTotal, 1)
			if prev != nil && *prev != m {
				if succ[*prev] == nil {
					succ[*prev] = map[MsgID]bool{}
				}
				if !succ[*prev][m] {
					succ[*prev][m] = true
					indeg[m]++
				}
			}
			mm := m
			prev = &mm
		}
	}
	var queue []MsgID
	for m := range nodes {
		if indeg[m] == 0 {
			queue = append(queue, m)
		}
	}
	seen := 0
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		seen++
		for n := range succ[m] {
			indeg[n]--
			if indeg[n] == 0 {
				queue = append(queue, n)
			}
		}
	}
	if seen < len(nodes) {
		var stuck []string
		for m := range nodes {
			if indeg[m] > 0 {
				stuck = append(stuck, m.String())
			}
		}
		sort.Strings(stuck)
		if len(stuck) > 10 {
			stuck = stuck[:10]
		}
		c.fail(GTotal, "the members' orders of Agreed/Safe messages conflict (a cycle through %v)", stuck)
	}
}

// safe: every member of the deliverer's current views of the message's
// groups received it before.
func (c *checker) safe() {
	recv := map[string]map[MsgID]int64{}
	for _, p := range c.members() {
		recv[p] = map[MsgID]int64{}
		for _, e := range c.h[p] {
			if e.Kind == Receive {
				if _, ok := recv[p][e.Msg]; !ok {
					recv[p][e.Msg] = e.Time
				}
			}
		}
	}
	for _, p := range c.members() {
		cur := views{}
		for i := range c.h[p] {
			e := &c.h[p][i]
			if e.Kind == View {
				cur[e.Group] = e
				continue
			}
			if e.Kind != Deliver || level(e.Service) != Safe {
				continue
			}
			if e.Time == 0 {
				c.fail(GSafe, "%s delivered Safe %s without a delivery time", p, e.Msg)
				continue
			}
			for _, g := range e.Groups {
				v := cur[g]
				if v == nil || !slices.Contains(v.Members, p) {
					continue
				}
				for _, q := range v.Members {
					c.count(GSafe, 1)
					t, ok := recv[q][e.Msg]
					if !ok {
						c.fail(GSafe, "%s delivered Safe %s in view %s of %s, which %s never received", p, e.Msg, v.ViewID, g, q)
					} else if t > e.Time {
						c.fail(GSafe, "%s delivered Safe %s at %d, before %s received it at %d", p, e.Msg, e.Time, q, t)
					}
				}
			}
		}
	}
}

// virtual compares, for each group, the messages delivered in a view by
// the members that moved from it to the same next view.
func (c *checker) virtual() {
	type seg struct {
		member string
		msgs   []MsgID
		order  []MsgID // the Agreed and Safe ones, in delivery order
	}
	segs := map[string][]seg{} // "group view -> next [via transitional members]" → segments
	for _, p := range c.members() {
		cur := map[string]string{}   // group → current regular view
		trans := map[string]string{} // group → members of the transitional view since
		got := map[string][]MsgID{}
		order := map[string][]MsgID{}
		for _, e := range c.h[p] {
			switch e.Kind {
			case View:
				if e.Transitional {
					// Only the members of the same transitional view move
					// on together (extended virtual synchrony).
					trans[e.Group] = " via " + strings.Join(e.Members, ",")
					continue
				}
				if v, ok := cur[e.Group]; ok {
					k := e.Group + " " + v + " -> " + e.ViewID + trans[e.Group]
					ms := got[e.Group]
					slices.SortFunc(ms, func(a, b MsgID) int {
						if a.Sender != b.Sender {
							return strings.Compare(a.Sender, b.Sender)
						}
						return int(a.Serial) - int(b.Serial)
					})
					segs[k] = append(segs[k], seg{member: p, msgs: ms, order: order[e.Group]})
				}
				if len(e.Members) == 0 {
					delete(cur, e.Group)
				} else {
					cur[e.Group] = e.ViewID
				}
				got[e.Group] = nil
				order[e.Group] = nil
				delete(trans, e.Group)
			case Deliver:
				if level(e.Service) == Unreliable {
					continue
				}
				for _, g := range e.Groups {
					if _, ok := cur[g]; ok {
						got[g] = append(got[g], e.Msg)
						if l := level(e.Service); l == Agreed || l == Safe {
							order[g] = append(order[g], e.Msg)
						}
					}
				}
			}
		}
	}
	// A sender does not deliver its own self-discard messages: leave them
	// out when it is one of the two members compared.
	selfDiscard := map[MsgID]bool{}
	for _, p := range c.members() {
		for _, e := range c.h[p] {
			if (e.Kind == Send || e.Kind == Deliver) && e.Service&SelfDiscard != 0 {
				selfDiscard[e.Msg] = true
			}
		}
	}
	without := func(ms []MsgID, p, q string) []MsgID {
		return slices.DeleteFunc(slices.Clone(ms), func(m MsgID) bool {
			return selfDiscard[m] && (m.Sender == p || m.Sender == q)
		})
	}
	keys := make([]string, 0, len(segs))
	for k := range segs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ss := segs[k]
		for _, s := range ss[1:] {
			c.count(GVirtual, 1)
			a, b := without(ss[0].msgs, ss[0].member, s.member), without(s.msgs, ss[0].member, s.member)
			if !slices.Equal(a, b) {
				c.fail(GVirtual, "view change %s: %s delivered %d messages, %s delivered %d (%s)", k,
					ss[0].member, len(a), s.member, len(b), firstDiff(a, b))
			}
			// They went on together: one order, the messages whose order
			// their side did not see included.
			c.count(GTotal, 1)
			if x, y := common(ss[0].order, s.order), common(s.order, ss[0].order); !slices.Equal(x, y) {
				c.fail(GTotal, "view change %s: %s and %s, which went on together, delivered %v and %v", k,
					ss[0].member, s.member, x, y)
			}
		}
	}
}

// common returns the messages of a that are in b, in a's order.
func common(a, b []MsgID) []MsgID {
	in := map[MsgID]bool{}
	for _, m := range b {
		in[m] = true
	}
	var out []MsgID
	for _, m := range a {
		if in[m] {
			out = append(out, m)
		}
	}
	return out
}

func firstDiff(a, b []MsgID) string {
	in := func(s []MsgID, m MsgID) bool { return slices.Contains(s, m) }
	for _, m := range a {
		if !in(b, m) {
			return "only the first has " + m.String()
		}
	}
	for _, m := range b {
		if !in(a, m) {
			return "only the second has " + m.String()
		}
	}
	return "same messages"
}
