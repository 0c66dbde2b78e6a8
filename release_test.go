package slc_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/slc-go/slc"
)

// largeBody is a 300 KiB payload (more than the 256 KiB read buffer, so it
// is read into a buffer of its own) filled with one byte.
func largeBody(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 300<<10) }

func sendLarge(ctx context.Context, t *testing.T, tx *slc.Communicator, to slc.PeerID, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := tx.SendRaw(ctx, largeBody(i), to); err != nil {
			t.Fatal(err)
		}
	}
}

func receiveLarge(ctx context.Context, t *testing.T, rx *slc.Communicator, from, n int) []slc.Message {
	t.Helper()
	var ms []slc.Message
	for i := from; i < from+n; i++ {
		m, err := rx.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Raw, largeBody(i)) {
			t.Fatalf("message %d arrived altered", i)
		}
		ms = append(ms, m)
	}
	return ms
}

func first(b []byte) *byte { return &b[:1][0] }

// Messages that are not released keep their bytes, whatever arrives after
// them; released buffers carry later messages; releasing a message twice,
// through two copies, gives its buffer back only once.
func TestMessageRelease(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	rx, tx := newComm(t, "rx"), newComm(t, "tx")
	to, err := tx.Connect(ctx, listen(t, rx))
	if err != nil {
		t.Fatal(err)
	}

	// Kept: 20 messages held at once, none overwritten.
	sendLarge(ctx, t, tx, to, 0, 20)
	kept := receiveLarge(ctx, t, rx, 0, 20)
	for i, m := range kept {
		if !bytes.Equal(m.Raw, largeBody(i)) || !bytes.Equal(m.Body.([]byte), largeBody(i)) {
			t.Fatalf("kept message %d was overwritten", i)
		}
	}

	// Released: the following messages reuse the buffers. The pool may
	// drop some (always some under the race detector), not all.
	released := map[*byte]bool{}
	for _, m := range kept {
		released[first(m.Raw)] = true
		m.Release()
	}
	reused := 0
	for round := 0; round < 5; round++ {
		sendLarge(ctx, t, tx, to, 20, 20)
		for _, m := range receiveLarge(ctx, t, rx, 20, 20) {
			if released[first(m.Raw)] {
				reused++
			}
			released[first(m.Raw)] = true
			m.Release()
		}
	}
	if reused == 0 {
		t.Fatal("no released buffer carried a later message")
	}

	// Twice: two copies of one message released; the next messages held
	// together must each have a buffer of their own.
	sendLarge(ctx, t, tx, to, 40, 1)
	m := receiveLarge(ctx, t, rx, 40, 1)[0]
	c := m
	m.Release()
	c.Release()
	m.Release()
	sendLarge(ctx, t, tx, to, 41, 8)
	held := receiveLarge(ctx, t, rx, 41, 8)
	seen := map[*byte]int{}
	for i, h := range held {
		if j, dup := seen[first(h.Raw)]; dup {
			t.Fatalf("messages %d and %d share a buffer", 41+j, 41+i)
		}
		seen[first(h.Raw)] = i
	}
	for i, h := range held {
		if !bytes.Equal(h.Raw, largeBody(41+i)) {
			t.Fatalf("held message %d was overwritten", 41+i)
		}
	}

	// Small messages and zero Messages: Release does nothing.
	if _, err := tx.SendRaw(ctx, []byte("small"), to); err != nil {
		t.Fatal(err)
	}
	s, err := rx.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Release()
	if string(s.Raw) != "small" {
		t.Fatalf("small message reads %q after Release", s.Raw)
	}
	slc.Message{}.Release()
}
