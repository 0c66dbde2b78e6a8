package slc_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/store"
)

func newStored(t *testing.T, name, dir string, opts ...slc.Option) *slc.Communicator {
	t.Helper()
	base := []slc.Option{slc.WithStore(dir), slc.WithRetries(slc.RetryForever)}
	if name != "" {
		base = append(base, slc.WithName(name))
	}
	c, err := slc.New(append(fast(base...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func receiveSeqs(t *testing.T, c *slc.Communicator, n int) []int {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	var got []int
	for range n {
		m, err := c.Receive(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, m.Body.(Seq).N)
	}
	return got
}

func wantRange(t *testing.T, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d messages %v, want %d..%d", len(got), got, from, to-1)
	}
	for i, n := range got {
		if n != from+i {
			t.Fatalf("message %d is %d, want %d (all: %v)", i, n, from+i, got)
		}
	}
}

// TestStoreResendsAfterSenderRestart: a sender with a store is closed
// while its peer is unreachable; the next run of it, with the same store,
// reconnects and delivers what was never acknowledged, once each.
func TestStoreResendsAfterSenderRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t, 30*time.Second)
	r := newComm(t, "recv", slc.WithLinger(time.Minute))
	p, err := testutil.NewProxy(listen(t, r))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	s1 := newStored(t, "send", dir)
	if _, err := s1.Connect(ctx, p.Addr()); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		id, err := s1.Send(ctx, Seq{N: i}, "recv")
		if err != nil {
			t.Fatal(err)
		}
		if err := s1.WaitAcknowledged(ctx, id, "recv"); err != nil {
			t.Fatal(err)
		}
	}
	wantRange(t, receiveSeqs(t, r, 10), 0, 10)

	p.Refuse(true)
	p.Reset()
	for i := 10; i < 60; i++ {
		if _, err := s1.Send(ctx, Seq{N: i}, "recv"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := store.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Out) != 1 || rep.Out[0].Messages != 50 || rep.Out[0].Addr != p.Addr() {
		t.Fatalf("store after the first run: %+v", rep.Out)
	}

	p.Refuse(false)
	s2 := newStored(t, "", dir) // the name comes from the store
	defer s2.Close()
	if s2.Name() != "send" {
		t.Fatalf("restarted as %q", s2.Name())
	}
	wantRange(t, receiveSeqs(t, r, 50), 10, 60)
	// Nothing twice: the next message follows at once.
	id, err := s2.Send(ctx, Seq{N: 60}, "recv")
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitAcknowledged(ctx, id, "recv"); err != nil {
		t.Fatal(err)
	}
	wantRange(t, receiveSeqs(t, r, 1), 60, 61)
	if n := r.Pending(); n != 0 {
		t.Fatalf("%d more messages: duplicates", n)
	}
}

// TestStoreKeepsMailboxAcrossReceiverRestart: what a receiver with a store
// acknowledged and the application had not taken is handed out by its
// next run, in order, and messages it took are not handed out again.
func TestStoreKeepsMailboxAcrossReceiverRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t, 30*time.Second)
	s := newComm(t, "send", slc.WithRetries(slc.RetryForever))
	r1 := newStored(t, "recv", dir)
	addr := listen(t, r1)
	if _, err := s.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	var last slc.MsgID
	var err error
	for i := range 100 {
		if last, err = s.Send(ctx, Seq{N: i}, "recv"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WaitAcknowledged(ctx, last, "recv"); err != nil {
		t.Fatal(err)
	}
	wantRange(t, receiveSeqs(t, r1, 40), 0, 40)
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}

	r2 := newStored(t, "recv", dir)
	defer r2.Close()
	if n := r2.Pending(); n != 60 {
		t.Fatalf("restarted with %d messages waiting, want 60", n)
	}
	wantRange(t, receiveSeqs(t, r2, 60), 40, 100)
	if _, err := r2.Listen(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Connect(ctx, addr); err != nil {
		t.Fatal(err)
	}
	id, err := s.Send(ctx, Seq{N: 100}, "recv")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitAcknowledged(ctx, id, "recv"); err != nil {
		t.Fatal(err)
	}
	wantRange(t, receiveSeqs(t, r2, 1), 100, 101)
	if n := r2.Pending(); n != 0 {
		t.Fatalf("%d more messages: duplicates", n)
	}
}

func TestStoreOptionsChecked(t *testing.T) {
	if _, err := slc.New(slc.WithStore("")); err == nil {
		t.Fatal("WithStore(\"\") accepted")
	}
	_, err := slc.New(slc.WithStore(t.TempDir()), slc.WithInstance(5))
	if err == nil || !strings.Contains(err.Error(), "WithInstance") {
		t.Fatalf("WithInstance with WithStore: %v", err)
	}
	dir := t.TempDir()
	c := newStored(t, "a", dir)
	if _, err := slc.New(slc.WithStore(dir)); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("second communicator on one store: %v", err)
	}
	c.Close()
	if _, err := slc.New(slc.WithStore(dir), slc.WithName("b")); err == nil || !strings.Contains(err.Error(), `belongs to node "a"`) {
		t.Fatalf("store of a under name b: %v", err)
	}
}
