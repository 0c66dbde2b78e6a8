package mailbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slc-go/slc/peer"
)

func TestFIFOPerSource(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1, 2, 3)
	mustPush(t, ib, "a", 4)
	mustPush(t, ib, "a", 5, 6)
	var got []int
	for range 6 {
		m, err := ib.Receive(t.Context(), "a")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, int(m.ID))
	}
	if !slices.Equal(got, seq(1, 6)) {
		t.Fatalf("got %v, want %v", got, seq(1, 6))
	}
	checkInvariants(t, ib)
}

func TestGlobalArrivalOrder(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1)
	mustPush(t, ib, "b", 1, 2)
	mustPush(t, ib, "a", 2)
	mustPush(t, ib, "c", 1)
	mustPush(t, ib, "b", 3)
	var got []string
	for range 6 {
		m, err := ib.Receive(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, name(m))
	}
	wantNames(t, "unfiltered", got, "a/1", "b/1", "b/2", "a/2", "c/1", "b/3")
	if ib.Len() != 0 {
		t.Fatalf("Len = %d after draining", ib.Len())
	}
	checkInvariants(t, ib)
}

func TestFilteredReceive(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1)
	mustPush(t, ib, "b", 1)
	mustPush(t, ib, "a", 2)
	mustPush(t, ib, "c", 1)
	mustPush(t, ib, "b", 2)

	m, err := ib.Receive(t.Context(), "b")
	if err != nil || name(m) != "b/1" {
		t.Fatalf("Receive(b) = %s, %v; want b/1", name(m), err)
	}
	// Oldest among c and a is a/1, although c was named first.
	m, err = ib.Receive(t.Context(), "c", "a")
	if err != nil || name(m) != "a/1" {
		t.Fatalf("Receive(c, a) = %s, %v; want a/1", name(m), err)
	}
	m, err = ib.Receive(t.Context(), "c", "nobody")
	if err != nil || name(m) != "c/1" {
		t.Fatalf("Receive(c, nobody) = %s, %v; want c/1", name(m), err)
	}
	checkInvariants(t, ib)
	// The rest comes out in arrival order, skipping what was taken.
	wantNames(t, "unfiltered rest", drain(ib), "a/2", "b/2")
	checkInvariants(t, ib)
}

func TestReceiveFilteredWaitsForNamedSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{})
		defer ib.Close()
		got := make(chan string, 1)
		go func() {
			m, err := ib.Receive(context.Background(), "b")
			if err != nil {
				got <- err.Error()
				return
			}
			got <- name(m)
		}()
		synctest.Wait()
		mustPush(t, ib, "a", 1)
		synctest.Wait()
		select {
		case g := <-got:
			t.Fatalf("Receive(b) returned %s before b pushed", g)
		default:
		}
		mustPush(t, ib, "b", 1)
		if g := <-got; g != "b/1" {
			t.Fatalf("Receive(b) = %s, want b/1", g)
		}
		wantNames(t, "left", drain(ib), "a/1")
	})
}

func TestTryReceive(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	if m, ok := ib.TryReceive(); ok {
		t.Fatalf("TryReceive on empty inbox = %s, true", name(m))
	}
	mustPush(t, ib, "a", 1)
	mustPush(t, ib, "b", 1)
	if m, ok := ib.TryReceive("c"); ok {
		t.Fatalf("TryReceive(c) = %s, true", name(m))
	}
	if m, ok := ib.TryReceive("b"); !ok || name(m) != "b/1" {
		t.Fatalf("TryReceive(b) = %s, %v; want b/1", name(m), ok)
	}
	if m, ok := ib.TryReceive(); !ok || name(m) != "a/1" {
		t.Fatalf("TryReceive() = %s, %v; want a/1", name(m), ok)
	}
	if m, ok := ib.TryReceive(); ok {
		t.Fatalf("TryReceive on drained inbox = %s, true", name(m))
	}
	checkInvariants(t, ib)
}

func TestLenAndSources(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	if n, s := ib.Len(), ib.Sources(); n != 0 || len(s) != 0 {
		t.Fatalf("empty inbox: Len %d, Sources %v", n, s)
	}
	mustPush(t, ib, "b", 1, 2)
	mustPush(t, ib, "a", 1)
	mustPush(t, ib, "c", 1, 2, 3)
	for _, tc := range []struct {
		from []peer.ID
		want int
	}{
		{nil, 6}, {[]peer.ID{"a"}, 1}, {[]peer.ID{"b", "c"}, 5},
		{[]peer.ID{"c", "c"}, 3}, {[]peer.ID{"x"}, 0},
	} {
		if got := ib.Len(tc.from...); got != tc.want {
			t.Errorf("Len(%v) = %d, want %d", tc.from, got, tc.want)
		}
	}
	if got, want := ib.Sources(), []peer.ID{"b", "a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Sources = %v, want %v", got, want)
	}
	ib.TryReceive("b")
	ib.TryReceive("b")
	if got, want := ib.Sources(), []peer.ID{"a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Sources after draining b = %v, want %v", got, want)
	}
}

type pushResult struct {
	n   int
	err error
}

func TestPushBlocksWhenFullAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{MaxMessages: 2})
		defer ib.Close()
		res := make(chan pushResult, 1)
		go func() {
			n, err := ib.Push(nil, "a", msgs("a", seq(1, 5)...))
			res <- pushResult{n, err}
		}()
		synctest.Wait() // the pusher is durably blocked
		select {
		case r := <-res:
			t.Fatalf("Push into a full queue returned %d, %v", r.n, r.err)
		default:
		}
		if n := ib.Len("a"); n != 2 {
			t.Fatalf("Len while blocked = %d, want 2", n)
		}
		// Other sources are not affected by a's backpressure.
		mustPush(t, ib, "b", 1)

		var got []string
		for len(got) < 6 {
			m, ok := ib.TryReceive()
			if !ok {
				t.Fatalf("nothing to receive after %v", got)
			}
			got = append(got, name(m))
			synctest.Wait() // let the pusher place what now fits
			checkInvariants(t, ib)
			if l := ib.Len("a"); l > 2 {
				t.Fatalf("queue a holds %d messages, cap 2", l)
			}
		}
		wantNames(t, "received", got, "a/1", "a/2", "b/1", "a/3", "a/4", "a/5")
		if r := <-res; r.n != 5 || r.err != nil {
			t.Fatalf("Push = %d, %v; want 5, nil", r.n, r.err)
		}
	})
}

func TestPushBlocksOnBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Room for two 36-byte messages (36+64 = 100 each), not three.
		ib := New(Config{MaxBytes: 250})
		defer ib.Close()
		body := make([]byte, 36)
		batch := []peer.Message{{ID: 1, Raw: body}, {ID: 2, Raw: body}, {ID: 3, Raw: body}}
		res := make(chan pushResult, 1)
		go func() {
			n, err := ib.Push(nil, "a", batch)
			res <- pushResult{n, err}
		}()
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("Push over the byte cap returned %d, %v", r.n, r.err)
		default:
		}
		if n := ib.Len(); n != 2 {
			t.Fatalf("Len = %d, want 2", n)
		}
		if _, ok := ib.TryReceive(); !ok {
			t.Fatal("nothing queued")
		}
		if r := <-res; r.n != 3 || r.err != nil {
			t.Fatalf("Push = %d, %v; want 3, nil", r.n, r.err)
		}
		checkInvariants(t, ib)
	})
}

func TestPushCanceledReportsPartial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{MaxMessages: 3})
		defer ib.Close()
		done := make(chan struct{})
		res := make(chan pushResult, 1)
		go func() {
			n, err := ib.Push(done, "a", msgs("a", seq(1, 5)...))
			res <- pushResult{n, err}
		}()
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("Push returned early: %d, %v", r.n, r.err)
		default:
		}
		close(done)
		r := <-res
		if r.n != 3 || !errors.Is(r.err, ErrCanceled) {
			t.Fatalf("Push = %d, %v; want 3, ErrCanceled", r.n, r.err)
		}
		// Exactly the reported prefix is queued.
		wantNames(t, "queued", drain(ib), "a/1", "a/2", "a/3")

		// A closed done does not stop messages that fit.
		n, err := ib.Push(done, "a", msgs("a", 6, 7))
		if n != 2 || err != nil {
			t.Fatalf("Push with closed done into empty queue = %d, %v; want 2, nil", n, err)
		}
	})
}

func TestWaitRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{MaxMessages: 2})
		mustPush(t, ib, "a", 1, 2)
		wait := func(done <-chan struct{}) <-chan error {
			ch := make(chan error, 1)
			go func() { ch <- ib.WaitRoom(done, "a") }()
			synctest.Wait()
			return ch
		}
		blocked := func(what string, ch <-chan error) {
			t.Helper()
			select {
			case err := <-ch:
				t.Fatalf("%s: WaitRoom returned %v on a full queue", what, err)
			default:
			}
		}
		// Another source's empty queue has room at once.
		if err := ib.WaitRoom(nil, "b"); err != nil {
			t.Fatalf("WaitRoom on an empty queue: %v", err)
		}

		// Room freed by a receive.
		ch := wait(nil)
		blocked("first", ch)
		if _, err := ib.Receive(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-ch; err != nil {
			t.Fatalf("WaitRoom after a receive: %v", err)
		}

		// done closed while waiting.
		mustPush(t, ib, "a", 3)
		done := make(chan struct{})
		ch = wait(done)
		blocked("second", ch)
		close(done)
		if err := <-ch; !errors.Is(err, ErrCanceled) {
			t.Fatalf("WaitRoom after done closed: %v; want ErrCanceled", err)
		}

		// The inbox closed while waiting, and after.
		ch = wait(make(chan struct{}))
		blocked("third", ch)
		ib.Close()
		if err := <-ch; !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitRoom across Close: %v; want ErrClosed", err)
		}
		if err := ib.WaitRoom(nil, "b"); !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitRoom after Close: %v; want ErrClosed", err)
		}
	})
}

func TestHugeMessageAcceptedIntoEmptyQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{MaxBytes: 1000})
		defer ib.Close()
		huge := peer.Message{ID: 1, Raw: make([]byte, 10_000)}
		if n, err := ib.Push(nil, "a", []peer.Message{huge}); n != 1 || err != nil {
			t.Fatalf("Push(huge) = %d, %v; want 1, nil", n, err)
		}
		// The queue is now over its cap: the next message waits.
		res := make(chan pushResult, 1)
		go func() {
			n, err := ib.Push(nil, "a", []peer.Message{{ID: 2, Raw: []byte("x")}})
			res <- pushResult{n, err}
		}()
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("Push behind huge message returned %d, %v", r.n, r.err)
		default:
		}
		m, err := ib.Receive(context.Background())
		if err != nil || m.ID != 1 || len(m.Raw) != 10_000 {
			t.Fatalf("Receive = id %d (%d bytes), %v; want the huge message", m.ID, len(m.Raw), err)
		}
		if r := <-res; r.n != 1 || r.err != nil {
			t.Fatalf("Push = %d, %v; want 1, nil", r.n, r.err)
		}
		// Two huge messages: the second waits for the first to go.
		go func() {
			n, err := ib.Push(nil, "b", []peer.Message{huge, huge})
			res <- pushResult{n, err}
		}()
		synctest.Wait()
		if n := ib.Len("b"); n != 1 {
			t.Fatalf("Len(b) = %d, want 1", n)
		}
		ib.TryReceive("b")
		if r := <-res; r.n != 2 || r.err != nil {
			t.Fatalf("Push(huge, huge) = %d, %v; want 2, nil", r.n, r.err)
		}
		checkInvariants(t, ib)
	})
}

func TestReceiveHonorsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{})
		defer ib.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		m, err := ib.Receive(ctx, "a")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive = %s, %v; want DeadlineExceeded", name(m), err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("Receive returned after %v, want 3s", d)
		}
	})
}

func TestReceiveReturnsWaitingMessageDespiteEndedContext(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m, err := ib.Receive(ctx); err != nil || name(m) != "a/1" {
		t.Fatalf("Receive = %s, %v; want a/1", name(m), err)
	}
	if _, err := ib.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive on empty inbox with canceled ctx: %v", err)
	}
}

func TestReceiveWakesOnPush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{})
		defer ib.Close()
		const receivers = 3
		got := make(chan string, receivers)
		for range receivers {
			go func() {
				m, err := ib.Receive(context.Background())
				if err != nil {
					got <- err.Error()
					return
				}
				got <- name(m)
			}()
		}
		synctest.Wait()
		mustPush(t, ib, "a", 1, 2, 3)
		var all []string
		for range receivers {
			all = append(all, <-got)
		}
		slices.Sort(all)
		wantNames(t, "received", all, "a/1", "a/2", "a/3")
	})
}

func TestCloseWakesEveryone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{MaxMessages: 1})
		errs := make(chan error, 4)
		go func() {
			_, err := ib.Receive(context.Background())
			errs <- err
		}()
		go func() {
			_, err := ib.Receive(context.Background(), "x", "y")
			errs <- err
		}()
		mustPush(t, ib, "a", 1)
		res := make(chan pushResult, 1)
		go func() {
			n, err := ib.Push(nil, "a", msgs("a", 2, 3))
			res <- pushResult{n, err}
		}()
		synctest.Wait()
		// The first receiver took a/1, so the pusher placed a/2 and waits.
		if err := <-errs; err != nil {
			t.Fatalf("first receiver: %v", err)
		}
		ib.Close()
		ib.Close() // idempotent
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked filtered Receive after Close: %v", err)
		}
		if r := <-res; r.n != 1 || !errors.Is(r.err, ErrClosed) {
			t.Fatalf("blocked Push after Close = %d, %v; want 1, ErrClosed", r.n, r.err)
		}

		if _, err := ib.Receive(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Receive after Close: %v", err)
		}
		if n, err := ib.Push(nil, "a", msgs("a", 9)); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Push after Close = %d, %v", n, err)
		}
		if _, ok := ib.TryReceive(); ok {
			t.Fatal("TryReceive after Close returned a message")
		}
		if n := ib.Len(); n != 0 {
			t.Fatalf("Len after Close = %d", n)
		}
		if n, err := ib.Take("a", func(peer.Message) error { return nil }); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Take after Close = %d, %v", n, err)
		}
		r := &recorder{}
		ib.Subscribe(r)()
		if got := r.names(); len(got) != 0 {
			t.Fatalf("Subscribe after Close delivered %v", got)
		}
	})
}

func TestTakeStopsAtFirstError(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1, 2, 3)
	mustPush(t, ib, "b", 1)
	boom := errors.New("send failed")
	var seen []string
	n, err := ib.Take("a", func(m peer.Message) error {
		seen = append(seen, name(m))
		if m.ID == 2 {
			return boom
		}
		return nil
	})
	if n != 1 || !errors.Is(err, boom) {
		t.Fatalf("Take = %d, %v; want 1, %v", n, err, boom)
	}
	wantNames(t, "seen by fn", seen, "a/1", "a/2")
	checkInvariants(t, ib)
	// a/2 stays at the head, in arrival order with the rest.
	wantNames(t, "left", drain(ib), "a/2", "a/3", "b/1")

	if n, err := ib.Take("nobody", func(peer.Message) error { return boom }); n != 0 || err != nil {
		t.Fatalf("Take of unknown source = %d, %v", n, err)
	}
}

func TestTakeOnlyTakesWhatWasWaiting(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1, 2)
	mustPush(t, ib, "b", 1)
	var seen []string
	n, err := ib.Take("a", func(m peer.Message) error {
		seen = append(seen, name(m))
		// While Take holds a, its messages are hidden from receivers...
		if _, ok := ib.TryReceive("a"); ok {
			t.Error("TryReceive(a) returned a message during Take")
		}
		if m.ID == 1 {
			// ...other sources are served normally (b/1 is the oldest
			// visible message)...
			if got, ok := ib.TryReceive(); !ok || name(got) != "b/1" {
				t.Errorf("TryReceive() during Take = %s, %v; want b/1", name(got), ok)
			}
			// ...and pushing to a still works.
			mustPush(t, ib, "a", 3)
		}
		return nil
	})
	if n != 2 || err != nil {
		t.Fatalf("Take = %d, %v; want 2, nil", n, err)
	}
	wantNames(t, "seen by fn", seen, "a/1", "a/2")
	checkInvariants(t, ib)
	wantNames(t, "left", drain(ib), "a/3")
}

func TestTakeReleasesOnPanic(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1, 2)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic did not propagate")
			}
		}()
		ib.Take("a", func(peer.Message) error { panic("boom") })
	}()
	checkInvariants(t, ib)
	wantNames(t, "after panic", drain(ib), "a/1", "a/2")
}

func TestTakeBlocksReceiversAndSubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{})
		defer ib.Close()
		mustPush(t, ib, "a", 1, 2)
		inFn := make(chan struct{})
		proceed := make(chan struct{})
		takeDone := make(chan pushResult, 1)
		go func() {
			n, err := ib.Take("a", func(m peer.Message) error {
				if m.ID == 1 {
					close(inFn)
					<-proceed
					return nil
				}
				return errors.New("keep it")
			})
			takeDone <- pushResult{n, err}
		}()
		<-inFn
		got := make(chan string, 1)
		go func() {
			m, err := ib.Receive(context.Background(), "a")
			if err != nil {
				got <- err.Error()
				return
			}
			got <- name(m)
		}()
		r := &recorder{}
		subscribed := make(chan func(), 1)
		go func() { subscribed <- ib.Subscribe(r, "b") }() // does not cover a
		cancelB := <-subscribed
		defer cancelB()
		go func() { subscribed <- ib.Subscribe(r, "a") }()
		synctest.Wait()
		select {
		case g := <-got:
			t.Fatalf("Receive(a) returned %s during Take", g)
		case <-subscribed:
			t.Fatal("Subscribe(a) returned during Take")
		default:
		}
		close(proceed)
		if res := <-takeDone; res.n != 1 || res.err == nil {
			t.Fatalf("Take = %d, %v; want 1 and an error", res.n, res.err)
		}
		cancelA := <-subscribed
		defer cancelA()
		synctest.Wait()
		// a/2 went either to the waiting receiver or to the subscription,
		// never to both.
		select {
		case g := <-got:
			if g != "a/2" {
				t.Fatalf("Receive(a) = %s, want a/2", g)
			}
			if d := r.names(); len(d) != 0 {
				t.Fatalf("subscription also got %v", d)
			}
		default:
			wantNames(t, "subscription", r.names(), "a/2")
			mustPush(t, ib, "c", 1) // unrelated; the receiver keeps waiting
			ib.Close()
			if g := <-got; g != ErrClosed.Error() {
				t.Fatalf("Receive(a) after Close = %s", g)
			}
		}
	})
}

func TestSubscribeFlushOrderAndCancel(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1, 2)
	mustPush(t, ib, "b", 1)
	mustPush(t, ib, "a", 3)
	r := &recorder{}
	cancel := ib.Subscribe(r, "a")
	// Flushed synchronously, in order; b is untouched.
	wantNames(t, "flushed", r.names(), "a/1", "a/2", "a/3")
	if n := ib.Len("a"); n != 0 {
		t.Fatalf("Len(a) after Subscribe = %d", n)
	}
	checkInvariants(t, ib)
	mustPush(t, ib, "a", 4, 5)
	mustPush(t, ib, "b", 2)
	wantNames(t, "delivered", r.names(), "a/1", "a/2", "a/3", "a/4", "a/5")
	cancel()
	cancel() // idempotent
	mustPush(t, ib, "a", 6)
	if got := r.names(); len(got) != 5 {
		t.Fatalf("delivered after cancel: %v", got)
	}
	wantNames(t, "queued", drain(ib), "b/1", "b/2", "a/6")
	checkInvariants(t, ib)
}

func TestSubscribeAllFlushesInArrivalOrder(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1)
	mustPush(t, ib, "b", 1)
	mustPush(t, ib, "c", 1)
	mustPush(t, ib, "a", 2)
	mustPush(t, ib, "b", 2)
	ib.TryReceive("c")
	r := &recorder{}
	cancel := ib.Subscribe(r)
	defer cancel()
	wantNames(t, "flushed", r.names(), "a/1", "b/1", "a/2", "b/2")
	mustPush(t, ib, "d", 1)
	wantNames(t, "delivered", r.names(), "a/1", "b/1", "a/2", "b/2", "d/1")
	if n := ib.Len(); n != 0 {
		t.Fatalf("Len = %d", n)
	}
	checkInvariants(t, ib)
}

func TestSubscribeFanOut(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	all, onlyA, alsoA := &recorder{}, &recorder{}, &recorder{}
	cancelAll := ib.Subscribe(all)
	cancelA := ib.Subscribe(onlyA, "a", "a")
	cancelA2 := ib.Subscribe(alsoA, "a")
	mustPush(t, ib, "a", 1)
	mustPush(t, ib, "b", 1)
	mustPush(t, ib, "a", 2)
	wantNames(t, "every source", all.names(), "a/1", "b/1", "a/2")
	wantNames(t, "a", onlyA.names(), "a/1", "a/2")
	wantNames(t, "also a", alsoA.names(), "a/1", "a/2")
	cancelAll()
	mustPush(t, ib, "a", 3)
	mustPush(t, ib, "b", 2)
	wantNames(t, "a after cancelling every-source", onlyA.names(), "a/1", "a/2", "a/3")
	wantNames(t, "b queues again", drain(ib), "b/2")
	cancelA()
	mustPush(t, ib, "a", 4)
	wantNames(t, "remaining subscriber", alsoA.names(), "a/1", "a/2", "a/3", "a/4")
	cancelA2()
	mustPush(t, ib, "a", 5)
	wantNames(t, "a queues again", drain(ib), "a/5")
	if len(all.names()) != 3 || len(onlyA.names()) != 3 {
		t.Fatal("cancelled subscriptions got messages")
	}
	checkInvariants(t, ib)
}

func TestSubscribeReleasesBlockedPusher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{MaxMessages: 2})
		defer ib.Close()
		res := make(chan pushResult, 1)
		go func() {
			n, err := ib.Push(nil, "a", msgs("a", seq(1, 6)...))
			res <- pushResult{n, err}
		}()
		synctest.Wait()
		r := &recorder{}
		cancel := ib.Subscribe(r, "a")
		defer cancel()
		if p := <-res; p.n != 6 || p.err != nil {
			t.Fatalf("Push = %d, %v; want 6, nil", p.n, p.err)
		}
		wantNames(t, "delivered", r.names(), "a/1", "a/2", "a/3", "a/4", "a/5", "a/6")
	})
}

// cancelingSubscriber cancels its own subscription from Deliver.
type cancelingSubscriber struct {
	recorder
	cancel func()
}

func (c *cancelingSubscriber) Deliver(m peer.Message) {
	c.recorder.Deliver(m)
	c.cancel()
}

func TestCancelFromDeliver(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	c := &cancelingSubscriber{}
	c.cancel = func() {}
	c.cancel = ib.Subscribe(c, "a")
	// The batch is routed under the subscription, so all of it is
	// delivered; the next push queues.
	mustPush(t, ib, "a", 1, 2)
	mustPush(t, ib, "a", 3)
	wantNames(t, "delivered", c.names(), "a/1", "a/2")
	wantNames(t, "queued", drain(ib), "a/3")
}

type panickySubscriber struct {
	recorder
	panicOn peer.MsgID
}

func (p *panickySubscriber) Deliver(m peer.Message) {
	if m.ID == p.panicOn {
		panic("deliver failed")
	}
	p.recorder.Deliver(m)
}

func TestDeliverPanicKeepsTheRest(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	p := &panickySubscriber{panicOn: 2}
	cancel := ib.Subscribe(p, "a")
	defer cancel()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic did not propagate to Push")
			}
		}()
		ib.Push(nil, "a", msgs("a", 1, 2, 3))
	}()
	wantNames(t, "before next push", p.names(), "a/1")
	mustPush(t, ib, "a", 4)
	wantNames(t, "after next push", p.names(), "a/1", "a/3", "a/4")
}

func TestFilteredOnlyReceivesKeepOrderRingBounded(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "idle", 1)
	for i := range 10_000 {
		mustPush(t, ib, "a", i)
		if m, ok := ib.TryReceive("a"); !ok || int(m.ID) != i {
			t.Fatalf("TryReceive(a) = %s, %v", name(m), ok)
		}
	}
	checkInvariants(t, ib)
	ib.mu.Lock()
	marks, capacity := ib.order.len(), len(ib.order.buf)
	ib.mu.Unlock()
	if marks > 2*minStale+1 || capacity > keepOrder {
		t.Fatalf("order ring holds %d marks in %d slots after filtered-only use", marks, capacity)
	}
	wantNames(t, "left", drain(ib), "idle/1")
}

func TestDrainedQueueShrinks(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", seq(1, 100_000)...)
	ib.mu.Lock()
	grown := len(ib.sources["a"].q.buf)
	ib.mu.Unlock()
	for i := 1; i <= 100_000; i++ {
		m, ok := ib.TryReceive()
		if !ok || int(m.ID) != i {
			t.Fatalf("TryReceive = %s, %v; want a/%d", name(m), ok, i)
		}
	}
	ib.mu.Lock()
	q, o := len(ib.sources["a"].q.buf), len(ib.order.buf)
	ib.mu.Unlock()
	if grown < 100_000 || q > keepQueue || o > keepOrder {
		t.Fatalf("queue slots %d after burst, %d after drain (keep %d); order slots %d", grown, q, keepQueue, o)
	}
}

func TestIdleSourcesAreForgotten(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	for i := range 10_000 {
		from := peer.ID(fmt.Sprint("src", i))
		mustPush(t, ib, from, i)
		if _, ok := ib.TryReceive(); !ok {
			t.Fatal("nothing received")
		}
	}
	ib.mu.Lock()
	n := len(ib.sources)
	ib.mu.Unlock()
	if n > 2*minSweepAt {
		t.Fatalf("%d source records kept for 10000 departed sources", n)
	}
	checkInvariants(t, ib)
}

func TestTakeWaitsForTakeOfSameSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{})
		defer ib.Close()
		mustPush(t, ib, "a", 1, 2, 3)
		inFn := make(chan struct{})
		proceed := make(chan struct{})
		first := make(chan pushResult, 1)
		go func() {
			n, err := ib.Take("a", func(m peer.Message) error {
				close(inFn)
				<-proceed
				return errors.New("stop after one")
			})
			first <- pushResult{n, err}
		}()
		<-inFn
		// Unfiltered receivers skip the held source.
		mustPush(t, ib, "b", 1)
		if m, ok := ib.TryReceive(); !ok || name(m) != "b/1" {
			t.Fatalf("TryReceive during Take = %s, %v; want b/1", name(m), ok)
		}
		var second []string
		secondDone := make(chan pushResult, 1)
		go func() {
			n, err := ib.Take("a", func(m peer.Message) error {
				second = append(second, name(m))
				return nil
			})
			secondDone <- pushResult{n, err}
		}()
		synctest.Wait()
		select {
		case r := <-secondDone:
			t.Fatalf("second Take returned %d, %v while the first held the source", r.n, r.err)
		default:
		}
		close(proceed)
		if r := <-first; r.n != 0 || r.err == nil {
			t.Fatalf("first Take = %d, %v", r.n, r.err)
		}
		if r := <-secondDone; r.n != 3 || r.err != nil {
			t.Fatalf("second Take = %d, %v; want 3, nil", r.n, r.err)
		}
		wantNames(t, "second Take", second, "a/1", "a/2", "a/3")
		checkInvariants(t, ib)
	})
}

func TestCloseDuringTake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ib := New(Config{})
		mustPush(t, ib, "a", 1, 2)
		inFn := make(chan struct{})
		proceed := make(chan struct{})
		first := make(chan pushResult, 1)
		go func() {
			n, err := ib.Take("a", func(m peer.Message) error {
				close(inFn)
				<-proceed
				return nil
			})
			first <- pushResult{n, err}
		}()
		<-inFn
		waiter := make(chan pushResult, 1)
		go func() {
			n, err := ib.Take("a", func(peer.Message) error { return nil })
			waiter <- pushResult{n, err}
		}()
		r := &recorder{}
		subscribed := make(chan func(), 1)
		go func() { subscribed <- ib.Subscribe(r) }()
		synctest.Wait()
		ib.Close()
		if w := <-waiter; w.n != 0 || !errors.Is(w.err, ErrClosed) {
			t.Fatalf("waiting Take after Close = %d, %v", w.n, w.err)
		}
		(<-subscribed)()
		close(proceed)
		// fn accepted a/1 while the inbox closed: it counts, then Take stops.
		if f := <-first; f.n != 1 || !errors.Is(f.err, ErrClosed) {
			t.Fatalf("Take across Close = %d, %v; want 1, ErrClosed", f.n, f.err)
		}
		if got := r.names(); len(got) != 0 {
			t.Fatalf("subscription after Close got %v", got)
		}
	})
}

func TestReceiveDoesNotAllocate(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	ctx := context.Background()
	one := msgs("a", 1)
	// b's message stays oldest, so filtered takes from a are not at the
	// front of the arrival order and leave stale marks to compact.
	mustPush(t, ib, "b", 1)
	for range 100 { // warm up: rings reach their steady size
		ib.Push(nil, "a", one)
		ib.Receive(ctx, "a")
	}
	for _, tc := range []struct {
		name string
		recv func() (peer.Message, error)
	}{
		{"filtered", func() (peer.Message, error) { return ib.Receive(ctx, "x", "a") }},
		{"try", func() (peer.Message, error) { m, _ := ib.TryReceive("a"); return m, nil }},
		{"unfiltered", func() (peer.Message, error) { return ib.Receive(ctx) }},
	} {
		if tc.name == "unfiltered" {
			wantNames(t, "b", drain(ib, "b"), "b/1")
		}
		allocs := testing.AllocsPerRun(1000, func() {
			ib.Push(nil, "a", one)
			m, err := tc.recv()
			if err != nil || m.From != "a" || m.ID != 1 {
				t.Fatalf("received %s, %v; want a/1", name(m), err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.2f allocations per Push+Receive, want 0", tc.name, allocs)
		}
	}
	checkInvariants(t, ib)
}

// ReceiveInto fills the caller's Message with the message Receive would
// return (filters included), and leaves it as it was on an error.
func TestReceiveInto(t *testing.T) {
	ib := New(Config{})
	defer ib.Close()
	mustPush(t, ib, "a", 1, 2)
	mustPush(t, ib, "b", 7)
	var m peer.Message
	if err := ib.ReceiveInto(context.Background(), &m, "b"); err != nil || name(m) != "b/7" {
		t.Fatalf("filtered: %s, %v; want b/7", name(m), err)
	}
	if err := ib.ReceiveInto(context.Background(), &m); err != nil || name(m) != "a/1" || string(m.Raw) != "1" {
		t.Fatalf("unfiltered: %s %q, %v; want a/1", name(m), m.Raw, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	mustPush(t, ib, "c", 9)
	if err := ib.ReceiveInto(ctx, &m, "d"); err != context.Canceled || name(m) != "a/1" {
		t.Fatalf("canceled: %s, %v; want a/1 untouched and context.Canceled", name(m), err)
	}
	ib.Close()
	if err := ib.ReceiveInto(context.Background(), &m); err != ErrClosed || name(m) != "a/1" {
		t.Fatalf("closed: %s, %v; want a/1 untouched and ErrClosed", name(m), err)
	}
}
