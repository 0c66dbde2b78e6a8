package mailbox

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/slc-go/slc/peer"
)

// msgs returns messages from source from with the given IDs; each Raw
// holds the ID in decimal.
func msgs(from peer.ID, ids ...int) []peer.Message {
	out := make([]peer.Message, len(ids))
	for i, id := range ids {
		out[i] = peer.Message{From: from, ID: peer.MsgID(id), Raw: []byte(fmt.Sprint(id))}
	}
	return out
}

// seq returns the IDs lo..hi.
func seq(lo, hi int) []int {
	var ids []int
	for i := lo; i <= hi; i++ {
		ids = append(ids, i)
	}
	return ids
}

// name renders a message as "from/id".
func name(m peer.Message) string { return fmt.Sprintf("%s/%d", m.From, m.ID) }

// mustPush pushes without blocking expectations: every message must be
// placed.
func mustPush(t *testing.T, ib *Inbox, from peer.ID, ids ...int) {
	t.Helper()
	n, err := ib.Push(nil, from, msgs(from, ids...))
	if err != nil || n != len(ids) {
		t.Fatalf("Push(%s, %v) = %d, %v; want %d, nil", from, ids, n, err, len(ids))
	}
}

// drain takes every message TryReceive returns for the filter.
func drain(ib *Inbox, from ...peer.ID) []string {
	var got []string
	for {
		m, ok := ib.TryReceive(from...)
		if !ok {
			return got
		}
		got = append(got, name(m))
	}
}

func wantNames(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// checkInvariants verifies the internal bookkeeping: every queued message
// has exactly one live arrival mark, the stale count is exact, and the
// per-source and global counters match the queues.
func checkInvariants(t *testing.T, ib *Inbox) {
	t.Helper()
	ib.mu.Lock()
	defer ib.mu.Unlock()
	alive := map[*source]int{}
	stale := 0
	var lastSeq uint64
	for i := 0; i < ib.order.len(); i++ {
		mk := ib.order.at(i)
		if mk.seq <= lastSeq {
			t.Errorf("order marks not increasing at %d: %d after %d", i, mk.seq, lastSeq)
		}
		lastSeq = mk.seq
		s := mk.src
		if s.q.len() > 0 && mk.seq >= s.q.front().seq {
			alive[s]++
		} else {
			stale++
		}
	}
	if stale != ib.stale {
		t.Errorf("stale count %d, actual stale marks %d", ib.stale, stale)
	}
	total := 0
	for id, s := range ib.sources {
		if s.id != id {
			t.Errorf("source %q filed under %q", s.id, id)
		}
		n := s.q.len()
		total += n
		if alive[s] != n {
			t.Errorf("source %q: %d queued, %d live marks", id, n, alive[s])
		}
		delete(alive, s)
		bytes := 0
		var prev uint64
		for i := 0; i < n; i++ {
			e := s.q.at(i)
			bytes += len(e.m.Raw) + MessageOverhead
			if e.seq <= prev {
				t.Errorf("source %q: stamps not increasing", id)
			}
			prev = e.seq
		}
		if bytes != s.bytes {
			t.Errorf("source %q: bytes %d, actual %d", id, s.bytes, bytes)
		}
	}
	if len(alive) != 0 {
		t.Errorf("%d live marks point at unknown sources", len(alive))
	}
	if total != ib.total {
		t.Errorf("total %d, actual %d", ib.total, total)
	}
}

// recorder is a Subscriber that records what it is given.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) Deliver(m peer.Message) {
	r.mu.Lock()
	r.got = append(r.got, name(m))
	r.mu.Unlock()
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}
