package slc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

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

	// A zero Message: Release does nothing.
	slc.Message{}.Release()
}

// smallBody is message i of TestSmallMessageRelease: 100 bytes, starting
// with i.
func smallBody(i int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, 100)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// Small messages share read buffers. A buffer whose messages are all
// released carries later messages; one holding a message not released is
// never written again, however often the others are released, through
// copies too, and late.
func TestSmallMessageRelease(t *testing.T) {
	const n = 30000
	// keep > 0: message i is kept (never released) when i%keep == 100, one
	// in every other run of 64 messages, so that the runs around it are
	// released completely and then again.
	for _, keep := range []int{0, 128} {
		ctx := testCtx(t, 30*time.Second)
		// A mailbox of 1000 messages, fewer than one read buffer holds,
		// keeps the reader from reading every buffer before the first is
		// released (with the default it can, and nothing is reused).
		rx, tx := newComm(t, "rx", slc.WithInboxCap(64<<20, 1000)), newComm(t, "tx")
		to, err := tx.Connect(ctx, listen(t, rx))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for i := range n {
				if _, err := tx.SendRaw(ctx, smallBody(i), to); err != nil {
					return
				}
			}
		}()
		// Every message stays referenced, so the memory of its read
		// buffer cannot come back from the garbage collector: a message
		// read into a page that earlier messages, not just the few before
		// it in the same buffer, lie in came through Release.
		all := make([]slc.Message, 0, n)
		pages := map[uintptr]int{} // page -> last message in it
		reused := 0
		for i := range n {
			m, err := rx.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Raw, smallBody(i)) {
				t.Fatalf("keep=%d: message %d arrived altered", keep, i)
			}
			page := uintptr(unsafe.Pointer(first(m.Raw))) / 4096
			if last, ok := pages[page]; ok && i-last > 100 {
				reused++
			}
			pages[page] = i
			all = append(all, m)
			if keep > 0 && i%keep == 100 {
				continue
			}
			m.Release()
			if i%3 == 0 {
				// A copy released again, right away and later.
				c := m
				c.Release()
			}
			if j := i - 300; j >= 0 && j%3 == 0 && (keep == 0 || j%keep != 100) {
				all[j].Release()
			}
		}
		for i := 100; keep > 0 && i < n; i += keep {
			if !bytes.Equal(all[i].Raw, smallBody(i)) {
				t.Fatalf("keep=%d: message %d, not released, was overwritten", keep, i)
			}
		}
		if keep == 0 && reused == 0 {
			t.Fatalf("no released read buffer carried a later message over %d messages", n)
		}
		rx.Close()
		tx.Close()
	}
}
