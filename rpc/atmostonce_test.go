package rpc

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc"
)

type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestAtMostOnce sends copies of calls straight through slc, as a retry
// or a re-send after a reconnect would, and checks that each call runs
// at most once and every copy gets the call's result; that results are
// kept until the caller's watermark passes them, however old; and that a
// caller past the bound is refused rather than a result forgotten.
func TestAtMostOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}

	iface := Interface{Name: "test.Count", Description: "Counts its runs.", Methods: []Method{
		{Name: "inc", Description: "Counts a run of tag.",
			In:  []Argument{{Name: "tag", Type: TypeString, Description: "What to count."}},
			Out: []Argument{{Name: "n", Type: TypeInt, Description: "Runs of tag so far."}}},
		{Name: "wait", Description: "Blocks until released.", In: []Argument{{Name: "tag", Type: TypeString, Description: "Counted."}},
			Out: []Argument{{Name: "n", Type: TypeInt, Description: "Runs of tag so far."}}},
	}}
	var mu sync.Mutex
	runs := map[string]int{}
	count := func(tag string) int64 {
		mu.Lock()
		defer mu.Unlock()
		runs[tag]++
		return int64(runs[tag])
	}
	started, release := make(chan struct{}, 1), make(chan struct{})
	impl, err := NewImplementation(iface)
	if err != nil {
		t.Fatal(err)
	}
	impl.Handle("inc", func(ctx context.Context, a Args) (Args, error) { return Args{"n": count(a["tag"].(string))}, nil })
	impl.Handle("wait", func(ctx context.Context, a Args) (Args, error) {
		n := count(a["tag"].(string))
		started <- struct{}{}
		<-release
		return Args{"n": n}, nil
	})

	sc, err := slc.New(slc.WithName("server"))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	server, err := New(sc, WithClock(clock), WithMaxResults(6))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if err := server.Register("/c", impl); err != nil {
		t.Fatal(err)
	}
	addr, err := sc.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The caller is a bare communicator: it sends calls as they are and
	// receives the results in its mailbox.
	cc, err := slc.New(slc.WithName("caller"))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := cc.Connect(ctx, addr.String()); err != nil {
		t.Fatal(err)
	}
	result := func() resultMsg {
		t.Helper()
		for {
			m, err := cc.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := m.Body.(resultMsg); ok {
				return r
			}
		}
	}
	call := func(c callMsg) resultMsg {
		t.Helper()
		if _, err := cc.Send(ctx, &c, "server"); err != nil {
			t.Fatal(err)
		}
		return result()
	}
	n := func(r resultMsg) int64 {
		t.Helper()
		if r.Err != nil {
			t.Fatalf("result %d: %+v", r.ID, *r.Err)
		}
		v, _ := r.Out["n"].(int64)
		return v
	}
	inc := func(id, from uint64, tag string) callMsg {
		return callMsg{ID: id, From: from, Path: "/c", Interface: "test.Count", Method: "inc", Args: Args{"tag": tag}}
	}

	// The same call twice: it runs once, both copies get its result.
	if got := n(call(inc(1, 77, "a"))); got != 1 {
		t.Fatalf("first run of a: n = %d", got)
	}
	if r := call(inc(1, 77, "a")); n(r) != 1 || r.ID != 1 || r.To != 77 || r.From != server.Instance() {
		t.Fatalf("copy of call 1: %+v, want the first result", r)
	}
	// Another call ID runs.
	if got := n(call(inc(2, 77, "a"))); got != 2 {
		t.Fatalf("call 2: n = %d, want 2", got)
	}
	// The same ID from another instance of the caller (it restarted) is
	// another call.
	if got := n(call(inc(1, 78, "a"))); got != 3 {
		t.Fatalf("call 1 of the restarted caller: n = %d, want 3", got)
	}

	// A copy that arrives while the call runs does not run it again; the
	// result goes out once the call ends.
	w := callMsg{ID: 3, From: 78, Path: "/c", Interface: "test.Count", Method: "wait", Args: Args{"tag": "w"}}
	if _, err := cc.Send(ctx, &w, "server"); err != nil {
		t.Fatal(err)
	}
	<-started
	if _, err := cc.Send(ctx, &w, "server"); err != nil {
		t.Fatal(err)
	}
	// A call sent after the copy is answered first: the copy was taken
	// without running.
	if got := n(call(inc(4, 78, "b"))); got != 1 {
		t.Fatalf("call 4: n = %d", got)
	}
	close(release)
	if r := result(); r.ID != 3 || n(r) != 1 {
		t.Fatalf("result %+v, want call 3's", r)
	}
	if r := call(w); r.ID != 3 || n(r) != 1 {
		t.Fatalf("copy of call 3 after it ended: %+v", r)
	}
	mu.Lock()
	if runs["w"] != 1 {
		t.Fatalf("wait ran %d times, want 1", runs["w"])
	}
	mu.Unlock()

	// Calls for another instance of the server, and retries of calls sent
	// before the caller knew the server's instance, are refused: they may
	// have run on an earlier instance.
	stale := inc(5, 78, "c")
	stale.To = server.Instance() + 1
	if r := call(stale); r.Err == nil || r.Err.Kind != KindRestarted {
		t.Fatalf("call for another instance: %+v, want restarted", r)
	}
	blind := inc(6, 78, "c")
	blind.Retry = true
	if r := call(blind); r.Err == nil || r.Err.Kind != KindRestarted {
		t.Fatalf("blind retry: %+v, want restarted", r)
	}
	known := inc(7, 78, "c")
	known.To, known.Retry = server.Instance(), true
	if got := n(call(known)); got != 1 {
		t.Fatalf("retry addressed to this instance: n = %d, want 1 (c never ran before)", got)
	}

	// Caller 78 has 6 entries kept (calls 1, 3, 4, 5, 6, 7), the bound,
	// since its calls carried no watermark: its next call is refused,
	// without running, rather than a result forgotten, however old.
	clock.advance(24 * time.Hour)
	busy := inc(8, 78, "d")
	if r := call(busy); r.Err == nil || r.Err.Kind != KindBusy {
		t.Fatalf("call past the bound: %+v, want busy", r)
	}
	if got := n(call(inc(1, 78, "a"))); got != 3 {
		t.Fatalf("copy of call 1 a day later: n = %d, want 3 (its result, not a new run)", got)
	}
	// A watermark of 7 says the caller has every result below 7: they
	// are dropped, and the refused call runs now.
	busy.Low = 7
	if got := n(call(busy)); got != 1 {
		t.Fatalf("call 8 with watermark 7: n = %d, want 1", got)
	}
	server.mu.Lock()
	kept := slices.Sorted(maps.Keys(server.callers["caller"].calls))
	server.mu.Unlock()
	if !slices.Equal(kept, []uint64{7, 8}) {
		t.Errorf("calls kept = %v, want [7 8]", kept)
	}
	// A copy of call 7, at the watermark, is answered from its result.
	if got := n(call(inc(7, 78, "c"))); got != 1 {
		t.Fatalf("copy of call 7: n = %d, want 1", got)
	}
	// A copy of call 1, below the watermark, is stale: the caller has its
	// result. It does not run, and gets no answer: the next result is
	// call 9's.
	if _, err := cc.Send(ctx, &callMsg{ID: 1, From: 78, Path: "/c", Interface: "test.Count", Method: "inc",
		Args: Args{"tag": "a"}}, "server"); err != nil {
		t.Fatal(err)
	}
	next := inc(9, 78, "e")
	next.Low = 9
	if r := call(next); r.ID != 9 || n(r) != 1 {
		t.Fatalf("after a stale copy of call 1: %+v, want call 9's result", r)
	}
	mu.Lock()
	if runs["a"] != 3 {
		t.Errorf("a ran %d times, want 3", runs["a"])
	}
	mu.Unlock()
	server.mu.Lock()
	kept = slices.Sorted(maps.Keys(server.callers["caller"].calls))
	server.mu.Unlock()
	if !slices.Equal(kept, []uint64{9}) {
		t.Errorf("calls kept = %v, want [9]", kept)
	}
}
