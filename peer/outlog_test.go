package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/slc-go/slc/internal/wire"
)

// issued records that the node issued IDs up to seq (Send takes them from
// the node's counter, which bounds what a remote may acknowledge).
func issued(l *outLog, seq uint64) {
	for {
		cur := l.ids.Load()
		if cur >= seq || l.ids.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// appendMsg appends a one-frame message and returns its encoding.
func appendMsg(t testing.TB, l *outLog, seq uint64, body []byte) []byte {
	t.Helper()
	issued(l, seq)
	if _, err := l.appendData(0, 0, seq, 1, 0, "t", body); err != nil {
		t.Fatal(err)
	}
	return wire.AppendData(nil, wire.MaxVersion, 0, seq, 1, 0, "t", body)
}

func concat(bufs [][]byte) []byte {
	var b []byte
	for _, x := range bufs {
		b = append(b, x...)
	}
	return b
}

func seqsOf(t testing.TB, b []byte) []uint64 {
	t.Helper()
	fs, rest := parseFrames(t, b)
	if len(rest) != 0 {
		t.Fatalf("%d bytes of a partial frame", len(rest))
	}
	var out []uint64
	for _, f := range fs {
		out = append(out, mustData(t, f).Seq)
	}
	return out
}

func TestOutLogAppendTakeWrote(t *testing.T) {
	l := newOutLog(nil)
	if _, ok := l.take(nil, 1<<20); ok {
		t.Fatal("take on an empty log reported data")
	}
	var want []byte
	for seq := uint64(1); seq <= 3; seq++ {
		want = append(want, appendMsg(t, l, seq, bytes.Repeat([]byte{byte(seq)}, 100))...)
	}
	select {
	case <-l.kick:
	default:
		t.Fatal("append did not kick the writer")
	}
	bufs, ok := l.take(nil, 1<<20)
	if !ok || !bytes.Equal(concat(bufs), want) {
		t.Fatalf("take = %d bytes, %v; want the %d bytes appended", len(concat(bufs)), ok, len(want))
	}
	// Until wrote, the same range is in flight and nothing more is handed out.
	l.wrote()
	if _, ok := l.take(nil, 1<<20); ok {
		t.Fatal("take after wrote handed out the range again")
	}
	if got := l.unacked(); got != int64(len(want)) {
		t.Fatalf("unacked = %d, want %d", got, len(want))
	}
	if l.lastSeq() != 3 || l.ackedSeq() != 0 {
		t.Fatalf("last %d acked %d", l.lastSeq(), l.ackedSeq())
	}

	// abandon keeps the range for the next take.
	more := appendMsg(t, l, 4, []byte("four"))
	bufs, _ = l.take(nil, 1<<20)
	l.abandon()
	again, _ := l.take(nil, 1<<20)
	if !bytes.Equal(concat(bufs), more) || !bytes.Equal(concat(again), more) {
		t.Fatal("abandon lost the range")
	}
	l.wrote()
}

// TestOutLogTakeSplitsAtMax checks that a batch larger than max is handed
// out in several takes that, together, are the stream.
func TestOutLogTakeSplitsAtMax(t *testing.T) {
	l := newOutLog(nil)
	var want []byte
	// Enough for several segments.
	for seq := uint64(1); seq <= 40; seq++ {
		want = append(want, appendMsg(t, l, seq, bytes.Repeat([]byte{byte(seq)}, 20000))...)
	}
	var got []byte
	takes := 0
	for {
		bufs, ok := l.take(nil, 100000)
		if !ok {
			break
		}
		if len(bufs) == 0 {
			t.Fatal("take reported data but handed out no range")
		}
		got = append(got, concat(bufs)...)
		l.wrote()
		takes++
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the takes are not the stream: %d bytes, want %d", len(got), len(want))
	}
	if takes < 2 {
		t.Fatalf("%d takes for %d bytes with max 100000", takes, len(want))
	}
}

// TestOutLogTakeStable checks that bytes handed out by take do not change
// while they are in flight, whatever is appended, acknowledged or
// released meanwhile, also when segments are recycled through the pool by
// other logs.
func TestOutLogTakeStable(t *testing.T) {
	l := newOutLog(nil)
	appendMsg(t, l, 1, bytes.Repeat([]byte{1}, 1000))
	bufs, _ := l.take(nil, 1<<20)
	snapshot := bytes.Clone(concat(bufs))

	// Everything taken is acknowledged before the write completes (the
	// remote had it from an earlier connection).
	if ok, err := l.ack(1); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// More appends, here and in other logs drawing from the pool.
	for seq := uint64(2); seq <= 600; seq++ {
		appendMsg(t, l, seq, bytes.Repeat([]byte{0xEE}, 1000))
	}
	other := newOutLog(nil)
	for seq := uint64(1); seq <= 600; seq++ {
		appendMsg(t, other, seq, bytes.Repeat([]byte{0xDD}, 1000))
	}
	drain(other)
	other.ack(600)
	if !bytes.Equal(concat(bufs), snapshot) {
		t.Fatal("bytes in flight changed before wrote")
	}
	l.wrote()
	// The rest follows in order.
	if got := seqsOf(t, drain(l)); len(got) != 599 || got[0] != 2 || got[598] != 600 {
		t.Fatalf("after the first message the stream has %d messages: %v...", len(got), got[:min(len(got), 5)])
	}
}

func TestOutLogAck(t *testing.T) {
	l := newOutLog(nil)
	var sizes []int
	for _, seq := range []uint64{2, 5, 9} {
		sizes = append(sizes, len(appendMsg(t, l, seq, make([]byte, 50))))
	}
	drain(l)
	total := int64(sizes[0] + sizes[1] + sizes[2])
	if got := l.unacked(); got != total {
		t.Fatalf("unacked %d, want %d", got, total)
	}
	// Cumulative: 6 covers 2 and 5.
	if ok, err := l.ack(6); !ok || err != nil {
		t.Fatalf("ack(6) = %v, %v", ok, err)
	}
	if got := l.unacked(); got != int64(sizes[2]) {
		t.Fatalf("unacked after ack(6) = %d, want %d", got, sizes[2])
	}
	// Old or repeated acks are ignored.
	for _, seq := range []uint64{0, 3, 6} {
		if ok, err := l.ack(seq); ok || err != nil {
			t.Fatalf("ack(%d) = %v, %v; want no change", seq, ok, err)
		}
	}
	// Beyond any ID the node issued: a protocol error, state unchanged.
	ok, err := l.ack(10)
	if ok {
		t.Fatal("ack beyond the node's IDs advanced")
	}
	wantProto(t, err, wire.CodeSequence)
	if l.ackedSeq() != 6 {
		t.Fatalf("acked %d after a bad ack, want 6", l.ackedSeq())
	}
	// The node sent 10 to 12 to other peers. An ack of 12 from a remote
	// that remembers an earlier session covers this whole log.
	issued(l, 12)
	if ok, err := l.ack(12); !ok || err != nil || l.unacked() != 0 || l.ackedSeq() != 9 {
		t.Fatalf("ack(12) = %v, %v: unacked %d, acked %d", ok, err, l.unacked(), l.ackedSeq())
	}
}

func TestOutLogRewind(t *testing.T) {
	l := newOutLog(nil)
	for seq := uint64(1); seq <= 5; seq++ {
		appendMsg(t, l, seq, make([]byte, 30))
	}
	drain(l) // sent on the connection that then dropped
	l.ack(1)

	// The remote delivered up to 3: resend 4 and 5.
	if ab, err := l.rewind(wire.Resume{Delivered: 3}); len(ab) != 0 || err != nil {
		t.Fatalf("rewind(3) = %v, %v", ab, err)
	}
	if got := seqsOf(t, drain(l)); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("after rewind(3) the writer sends %v, want [4 5]", got)
	}
	// The remote delivered less than what is acknowledged (it restarted):
	// resend everything unacknowledged.
	if ab, err := l.rewind(wire.Resume{}); len(ab) != 0 || err != nil {
		t.Fatalf("rewind(0) = %v, %v", ab, err)
	}
	if got := seqsOf(t, drain(l)); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("after rewind(0) the writer sends %v, want [4 5]", got)
	}
	// Everything delivered: nothing to send.
	l.rewind(wire.Resume{Delivered: 5})
	if _, ok := l.take(nil, 1<<20); ok || l.unacked() != 0 {
		t.Fatal("rewind to the last message left data to send")
	}
	// A watermark beyond any ID the node issued is a protocol error.
	_, err := l.rewind(wire.Resume{Delivered: 6})
	wantProto(t, err, wire.CodeSequence)
}

// TestOutLogRewindChunked checks that a rewind restarts a chunked message
// at its first chunk.
func TestOutLogRewindChunked(t *testing.T) {
	l := newOutLog(nil)
	appendMsg(t, l, 1, []byte("one"))
	issued(l, 3)
	l.appendData(0, wire.FlagMore, 2, 1, 0, "", []byte("a"))
	l.appendData(1, wire.FlagMore, 2, 1, 0, "", []byte("b"))
	l.appendData(2, 0, 2, 1, 0, "", []byte("c"))
	appendMsg(t, l, 3, []byte("three"))
	drain(l)
	l.rewind(wire.Resume{Delivered: 1})
	fs, _ := parseFrames(t, drain(l))
	var got []string
	for _, f := range fs {
		d := mustData(t, f)
		got = append(got, fmt.Sprintf("%d:%s:%d", d.Seq, d.Body, f.Flags))
	}
	want := []string{"2:a:1", "2:b:1", "2:c:0", "3:three:0"}
	if !slices.Equal(got, want) {
		t.Fatalf("resent %v, want %v", got, want)
	}
}

func TestOutLogStatusWaitFail(t *testing.T) {
	l := newOutLog(nil)
	for _, seq := range []uint64{3, 7, 12} {
		appendMsg(t, l, seq, []byte("x"))
	}
	check := func(seq uint64, acked, pending, failed bool) {
		t.Helper()
		a, p, f := l.status(seq)
		if a != acked || p != pending || f != failed {
			t.Errorf("status(%d) = acked %v pending %v failed %v; want %v %v %v", seq, a, p, f, acked, pending, failed)
		}
	}
	check(3, false, true, false)
	check(5, false, false, false) // never sent here, not covered

	ch7, err := l.waitAck(7)
	if err != nil || ch7 == nil {
		t.Fatalf("waitAck(7) = %v, %v", ch7, err)
	}
	ch12, _ := l.waitAck(12)
	ch3, _ := l.waitAck(3)
	drain(l)
	l.ack(8)
	check(3, true, false, false)
	check(5, true, false, false) // covered by the cumulative ack
	check(7, true, false, false)
	check(12, false, true, false)
	for name, ch := range map[string]<-chan struct{}{"3": ch3, "7": ch7} {
		select {
		case <-ch:
		default:
			t.Errorf("waiter for %s not woken by ack(8)", name)
		}
	}
	select {
	case <-ch12:
		t.Fatal("waiter for 12 woken by ack(8)")
	default:
	}
	if ch, err := l.waitAck(7); ch != nil || err != nil {
		t.Fatalf("waitAck on an acked message = %v, %v", ch, err)
	}

	// An aborted message never will be acknowledged.
	appendMsg(t, l, 15, []byte("y"))
	l.markAborted(15)
	check(15, false, false, true)
	if _, err := l.waitAck(15); err == nil {
		t.Error("waiting for an aborted message does not fail")
	}

	// The session ends: pending waits wake with the error, the rest fails.
	appendMsg(t, l, 20, []byte("z"))
	end := errors.New("session over")
	lost := l.fail(end)
	if !slices.Equal(lost, []MsgID{12, 15, 20}) {
		t.Fatalf("fail returned %v, want [12 15 20]", lost)
	}
	select {
	case <-ch12:
	default:
		t.Fatal("fail did not wake the waiter")
	}
	if err := l.ackErr(12); err != end {
		t.Fatalf("ackErr(12) = %v, want %v", err, end)
	}
	if err := l.ackErr(7); err != nil {
		t.Fatalf("ackErr(7) = %v for an acked message", err)
	}
	check(12, false, false, true)
	check(20, false, false, true)
	check(7, true, false, false)
	if _, err := l.waitAck(20); err != end {
		t.Fatalf("waitAck after fail = %v", err)
	}
	if _, err := l.appendData(0, 0, 21, 1, 0, "", nil); err != end {
		t.Fatalf("append after fail = %v", err)
	}
	if err := l.waitRoom(context.Background(), 1); err != end {
		t.Fatalf("waitRoom after fail = %v", err)
	}
	if _, ok := l.take(nil, 1<<20); ok {
		t.Fatal("take after fail handed out data")
	}
	if l.fail(errors.New("again")) != nil {
		t.Fatal("second fail reported messages")
	}
}

func TestOutLogWaitRoom(t *testing.T) {
	l := newOutLog(nil)
	for seq := uint64(1); seq <= 4; seq++ {
		appendMsg(t, l, seq, make([]byte, 1000))
	}
	drain(l)
	if err := l.waitRoom(context.Background(), 0); err != nil {
		t.Fatal("limit 0 means no limit:", err)
	}
	if err := l.waitRoom(context.Background(), 1<<20); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.waitRoom(ctx, 2000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitRoom over the limit = %v, want a deadline error", err)
	}
	done := make(chan error, 1)
	go func() { done <- l.waitRoom(context.Background(), 2500) }()
	waitBlocked(t, l)
	l.ack(2) // two frames of 1020 bytes remain: 2040 < 2500
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitBlocked waits until a sender waits for room in l.
func waitBlocked(t testing.TB, l *outLog) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		blocked := l.room != nil
		l.mu.Unlock()
		if blocked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody waits for room")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOutLogReleasesMemory checks that acknowledged segments are given
// back: after everything is written and acknowledged the log keeps at
// most one segment, and the entry index is compacted.
func TestOutLogReleasesMemory(t *testing.T) {
	l := newOutLog(nil)
	for seq := uint64(1); seq <= 3000; seq++ {
		appendMsg(t, l, seq, make([]byte, 1000))
	}
	if len(l.segs) < 10 {
		t.Fatalf("3 MB in %d segments", len(l.segs))
	}
	// Acknowledged but not yet written (in flight): nothing released.
	bufs, _ := l.take(nil, 1<<30)
	l.ack(3000)
	if len(l.segs) < 10 {
		t.Fatalf("segments released while in flight: %d left", len(l.segs))
	}
	_ = bufs
	l.wrote()
	if len(l.segs) > 1 || l.unacked() != 0 {
		t.Fatalf("after acknowledging everything: %d segments, %d bytes unacknowledged", len(l.segs), l.unacked())
	}
	if live := len(l.ents) - l.eh; live != 0 || len(l.ents) > 1024 {
		t.Fatalf("entry index: %d live, %d kept", live, len(l.ents))
	}
	// The remaining segment is reused for what comes next.
	appendMsg(t, l, 3001, []byte("next"))
	if got := seqsOf(t, drain(l)); !slices.Equal(got, []uint64{3001}) {
		t.Fatalf("after reuse the writer sends %v", got)
	}
}

// TestOutLogRewindReleases checks that a RESUME acknowledging what a
// failed write had handed out releases that memory. The remote may hold
// bytes of a write that reported an error (they left before the error), so
// its watermark can be past the writer's position.
func TestOutLogRewindReleases(t *testing.T) {
	l := newOutLog(nil)
	for seq := uint64(1); seq <= 2000; seq++ {
		appendMsg(t, l, seq, make([]byte, 1000))
	}
	l.take(nil, 1<<30)
	l.abandon() // the write failed, after the bytes went out
	if _, err := l.rewind(wire.Resume{Delivered: 2000}); err != nil {
		t.Fatal(err)
	}
	if l.unacked() != 0 {
		t.Fatalf("unacked %d after the remote acknowledged everything", l.unacked())
	}
	if _, ok := l.take(nil, 1<<30); ok {
		t.Fatal("nothing is left to send, yet take handed out data")
	}
	if len(l.segs) > 1 {
		t.Errorf("everything is acknowledged and nothing is in flight, yet the log keeps %d segments (%d KiB) until the next write or ack",
			len(l.segs), len(l.segs)*segSize>>10)
	}
}

// TestOutLogReleasesLargeSegment checks that a message too large for a
// pooled segment does not pin its buffer once acknowledged.
func TestOutLogReleasesLargeSegment(t *testing.T) {
	l := newOutLog(nil)
	appendMsg(t, l, 1, make([]byte, 4<<20)) // one default-size chunk
	drain(l)
	l.ack(1)
	kept := 0
	for _, s := range l.segs {
		kept += cap(s.buf)
	}
	if kept > segSize {
		t.Errorf("an idle log with nothing unacknowledged keeps %d bytes (%d segment(s)); want at most one pooled segment of %d",
			kept, len(l.segs), segSize)
	}
}

// appendChunked appends message seq in n chunks of 1000 bytes, chunk i
// filled with 'a'+i.
func appendChunked(t testing.TB, l *outLog, seq uint64, n int) {
	t.Helper()
	issued(l, seq)
	for i := 0; i < n; i++ {
		flags := wire.FlagMore
		if i == n-1 {
			flags = 0
		}
		if _, err := l.appendData(uint64(i), flags, seq, 1, 0, "", bytes.Repeat([]byte{byte('a' + i)}, 1000)); err != nil {
			t.Fatal(err)
		}
	}
}

// describe lists frames as seq:first-body-byte:flags.
func describe(t testing.TB, b []byte) []string {
	t.Helper()
	fs, rest := parseFrames(t, b)
	if len(rest) != 0 {
		t.Fatalf("%d bytes of a partial frame", len(rest))
	}
	var out []string
	for _, f := range fs {
		d := mustData(t, f)
		c := byte('-')
		if len(d.Body) > 0 {
			c = d.Body[0]
		}
		out = append(out, fmt.Sprintf("%d:%c:%d", d.Seq, c, f.Flags))
	}
	return out
}

// TestOutLogProgress checks chunk-level acknowledgements: PROGRESS
// releases the chunks the remote holds, frees room for the sender, and a
// RESUME naming a partial message restarts it at the next chunk.
func TestOutLogProgress(t *testing.T) {
	l := newOutLog(nil)
	appendMsg(t, l, 1, []byte("one"))
	appendChunked(t, l, 2, 5)
	chunkLen := int64(wire.HeaderLen + wire.DataPrefixLen + 1000)
	drain(l)
	before := l.unacked()

	room := make(chan error, 1)
	go func() { room <- l.waitRoom(context.Background(), before-1) }()
	waitBlocked(t, l)

	// The remote holds message 1 and chunks 0-2 of message 2.
	advanced, err := l.progress(2, 3)
	if err != nil || !advanced {
		t.Fatalf("progress(2, 3) = %v, %v", advanced, err)
	}
	if err := <-room; err != nil {
		t.Fatal(err)
	}
	if l.ackedSeq() != 1 {
		t.Fatalf("acked %d after progress on message 2, want 1", l.ackedSeq())
	}
	if got := l.unacked(); got != 2*chunkLen {
		t.Fatalf("unacked %d after progress, want the last two chunks (%d)", got, 2*chunkLen)
	}
	if a, p, f := l.status(2); a || !p || f {
		t.Fatalf("status(2) = %v %v %v, want pending", a, p, f)
	}
	// Repeated progress changes nothing.
	if advanced, err := l.progress(2, 3); advanced || err != nil {
		t.Fatalf("repeated progress = %v, %v", advanced, err)
	}
	// The connection drops; the remote resumes with 3 chunks held.
	if ab, err := l.rewind(wire.Resume{Delivered: 1, Partial: 2, Chunks: 3}); err != nil || len(ab) != 0 {
		t.Fatal(ab, err)
	}
	if got, want := describe(t, drain(l)), []string{"2:d:1", "2:e:0"}; !slices.Equal(got, want) {
		t.Fatalf("after a partial resume the writer sends %v, want %v", got, want)
	}
	if ok, err := l.ack(2); !ok || err != nil || l.unacked() != 0 {
		t.Fatalf("ack(2) = %v, %v, unacked %d", ok, err, l.unacked())
	}

	// Progress on a message the log no longer holds is ignored; on one the
	// node never issued, it is a protocol error. So is a RESUME naming a
	// partial message never issued.
	if advanced, err := l.progress(2, 1); advanced || err != nil {
		t.Fatalf("progress on an acknowledged message = %v, %v", advanced, err)
	}
	_, err = l.progress(3, 1)
	wantProto(t, err, wire.CodeSequence)
	_, err = l.rewind(wire.Resume{Delivered: 2, Partial: 3, Chunks: 1})
	wantProto(t, err, wire.CodeSequence)
}

// TestOutLogRewindAbandons: a remote that restarted (or forgot the
// session) no longer holds the chunks it reported with PROGRESS, which
// the log released. The message cannot be completed: the log abandons
// it, marks it failed, and sends an abort for it first, then what follows.
func TestOutLogRewindAbandons(t *testing.T) {
	l := newOutLog(nil)
	appendMsg(t, l, 1, []byte("one"))
	appendChunked(t, l, 2, 5)
	appendMsg(t, l, 3, []byte("three"))
	drain(l)
	l.progress(2, 3)
	ab, err := l.rewind(wire.Resume{}) // a new instance of the remote
	if err != nil || !slices.Equal(ab, []MsgID{2}) {
		t.Fatalf("rewind = %v, %v; want message 2 abandoned", ab, err)
	}
	if got, want := describe(t, drain(l)), []string{"2:-:2", "3:t:0"}; !slices.Equal(got, want) {
		t.Fatalf("after the rewind the writer sends %v, want an abort of 2, then 3", got)
	}
	if a, p, f := l.status(2); a || p || !f {
		t.Fatalf("status(2) = %v %v %v, want failed", a, p, f)
	}
	if _, err := l.waitAck(2); err == nil {
		t.Fatal("waiting for the abandoned message does not fail")
	}

	// A remote holding part of a message this log does not have (it was
	// acknowledged as a whole here meanwhile, or belongs to an earlier
	// session) gets an abort for it.
	l2 := newOutLog(nil)
	appendMsg(t, l2, 7, []byte("seven"))
	issued(l2, 9)
	if _, err := l2.rewind(wire.Resume{Delivered: 6, Partial: 8, Chunks: 2}); err != nil {
		t.Fatal(err)
	}
	if got, want := describe(t, drain(l2)), []string{"8:-:2", "7:s:0"}; !slices.Equal(got, want) {
		t.Fatalf("writer sends %v, want %v", got, want)
	}
}

// TestOutLogModel runs random operations against a model of the log: the
// bytes the writer is handed must be the stream from the right position
// (after any abort prefix), batches end on frame boundaries, bytes in
// flight never change, and the accounting and memory must match.
func TestOutLogModel(t *testing.T) {
	for seed := int64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { outLogModel(t, seed, 1500) })
	}
}

// modelFrame is one frame of the model log.
type modelFrame struct {
	seq, chunk uint64
	chunks     uint64 // frames in its message
	start, end int64
}

func outLogModel(t *testing.T, seed int64, ops int) {
	rng := rand.New(rand.NewSource(seed))
	var ids atomic.Uint64 // the node's counter: other sessions take IDs too
	l := newOutLog(&ids)
	other := newOutLog(nil) // churns the segment pool
	var otherSeq uint64

	var (
		stream     []byte // everything appended, at absolute offsets
		frames     []modelFrame
		starts     = map[int64]bool{}
		released   int // frames[:released] are acknowledged or abandoned
		last       uint64
		acked      uint64
		aborted    = map[uint64]bool{}
		prefix     []byte // abort frames the writer must send first
		pos        int64  // writer position
		maxWritten int64
		inflight   [][]byte
		snapshot   []byte
		pfxTaken   bool
	)
	// advance is the acknowledgement rule: every frame of the messages up
	// to a, and the first chunks frames of message partial, in log order.
	advance := func(a, partial, chunks uint64) {
		acked = max(acked, a)
		for released < len(frames) {
			f := frames[released]
			if f.seq > acked && (f.seq != partial || f.chunk >= chunks) {
				break
			}
			released++
		}
	}
	head := func() int64 {
		if released < len(frames) {
			return frames[released].start
		}
		return int64(len(stream))
	}
	live := func(seq uint64) bool {
		for _, f := range frames[released:] {
			if f.seq == seq {
				return true
			}
		}
		return false
	}
	// written returns the highest seq whose frames were all written.
	written := func() uint64 {
		var w uint64
		for _, f := range frames {
			if f.chunk == f.chunks-1 && f.end <= maxWritten {
				w = f.seq
			}
		}
		return w
	}
	// partial picks a written, unacknowledged chunked message and how many
	// of its chunks were written (at least one, not all).
	partial := func() (uint64, uint64, bool) {
		var cands [][2]uint64
		for _, f := range frames[released:] {
			if f.chunks > 1 && f.chunk < f.chunks-1 && f.seq > acked && f.end <= maxWritten {
				cands = append(cands, [2]uint64{f.seq, f.chunk + 1})
			}
		}
		if len(cands) == 0 {
			return 0, 0, false
		}
		c := cands[rng.Intn(len(cands))]
		return c[0], c[1], true
	}
	abort := func(seq uint64) []byte {
		return wire.AppendData(nil, wire.MaxVersion, wire.FlagAbort, seq, 0, 0, "", nil)
	}
	checkReleased := func(op string) {
		if len(l.segs) > 1 && l.segs[0].end() <= min(head(), pos) {
			t.Fatalf("after %s: segment [%d,%d) is acknowledged and written but kept", op, l.segs[0].off, l.segs[0].end())
		}
	}
	types := []string{"", "a", "demo.Reading"}

	for op := 0; op < ops; op++ {
		switch k := rng.Intn(100); {
		case k < 38: // append a message of 1-4 frames
			last = ids.Add(1 + uint64(rng.Intn(3)))
			n := 1
			if rng.Intn(4) == 0 {
				n = 2 + rng.Intn(3)
			}
			typ := types[rng.Intn(len(types))]
			for i := 0; i < n; i++ {
				size := rng.Intn(3000)
				if rng.Intn(40) == 0 {
					size = segSize/2 + rng.Intn(segSize) // sometimes past a segment
				} else if rng.Intn(20) == 0 {
					size = 64<<10 + rng.Intn(64<<10) // a pooled large size
				}
				give := n == 1 && rng.Intn(3) == 0
				var body []byte
				if give {
					// Given to the log: from the pool it returns it
					// to, so a body freed too early is overwritten by
					// a later one.
					body = wire.GetLarge(size)
				} else {
					body = make([]byte, size)
				}
				rng.Read(body)
				flags := uint8(0)
				if i < n-1 {
					flags = wire.FlagMore
				}
				if give {
					l.mu.Lock()
					l.appendGiven(uint64(i), flags, last, 1, 0, typ, body, true)
					l.mu.Unlock()
				} else if _, err := l.appendData(uint64(i), flags, last, 1, 0, typ, body); err != nil {
					t.Fatal(err)
				}
				f := modelFrame{seq: last, chunk: uint64(i), chunks: uint64(n), start: int64(len(stream))}
				stream = wire.AppendData(stream, wire.MaxVersion, flags, last, 1, 0, typ, body)
				f.end = int64(len(stream))
				frames = append(frames, f)
				starts[f.start] = true
			}
			if rng.Intn(4) == 0 {
				ids.Add(1) // an ID for another session
			}
			// The other log appends, is written and acknowledged.
			otherSeq++
			issued(other, otherSeq)
			other.appendData(0, 0, otherSeq, 1, 0, "", bytes.Repeat([]byte{0xAA}, rng.Intn(40000)))
			if rng.Intn(3) == 0 {
				drain(other)
				other.ack(otherSeq)
			}

		case k < 60: // take, if nothing is in flight
			if inflight != nil {
				continue
			}
			max := 1 + rng.Intn(300000)
			bufs, ok := l.take(nil, max)
			if ok != (len(prefix) > 0 || pos < int64(len(stream))) {
				t.Fatalf("op %d: take ok=%v with prefix %d, writer at %d of %d", op, ok, len(prefix), pos, len(stream))
			}
			if !ok {
				continue
			}
			pfxTaken = len(prefix) > 0
			rest := bufs
			if pfxTaken {
				if len(bufs) == 0 || !bytes.Equal(bufs[0], prefix) {
					t.Fatalf("op %d: take does not start with the abort prefix", op)
				}
				rest = bufs[1:]
			}
			got := concat(rest)
			if !bytes.Equal(got, stream[pos:pos+int64(len(got))]) {
				t.Fatalf("op %d: take handed out %d bytes that are not the stream at %d", op, len(got), pos)
			}
			end := pos + int64(len(got))
			if end != int64(len(stream)) && !starts[end] {
				t.Fatalf("op %d: the batch ends at %d, inside a frame", op, end)
			}
			if end != int64(len(stream)) && len(got) < max {
				t.Fatalf("op %d: a batch of %d bytes with max %d and more pending", op, len(got), max)
			}
			if len(got) == 0 && !pfxTaken {
				t.Fatalf("op %d: take handed out nothing", op)
			}
			inflight, snapshot = bufs, concat(bufs)

		case k < 75: // the write completes or fails
			if inflight == nil {
				continue
			}
			if !bytes.Equal(concat(inflight), snapshot) {
				t.Fatalf("op %d: bytes in flight changed", op)
			}
			if rng.Intn(6) == 0 {
				l.abandon()
			} else {
				l.wrote()
				n := int64(len(snapshot))
				if pfxTaken {
					n -= int64(len(prefix))
					prefix = nil
				}
				pos += n
				maxWritten = max(maxWritten, pos)
				checkReleased("wrote")
			}
			inflight, snapshot = nil, nil

		case k < 86: // an acknowledgement of written messages, or a bad one
			seq := uint64(rng.Int63n(int64(written()) + 1))
			bad := rng.Intn(20) == 0
			if bad {
				seq = ids.Load() + 1 + uint64(rng.Intn(5))
			}
			ok, err := l.ack(seq)
			switch {
			case bad:
				if ok || err == nil {
					t.Fatalf("op %d: ack(%d) beyond the node's IDs (%d) = %v, %v", op, seq, ids.Load(), ok, err)
				}
			case seq > acked:
				if !ok || err != nil {
					t.Fatalf("op %d: ack(%d) = %v, %v; want advance", op, seq, ok, err)
				}
				advance(seq, 0, 0)
				if inflight == nil {
					checkReleased("ack")
				}
			default:
				if ok || err != nil {
					t.Fatalf("op %d: stale ack(%d) = %v, %v", op, seq, ok, err)
				}
			}

		case k < 93: // chunk-level progress on a written chunked message
			seq, chunks, ok := partial()
			if !ok || rng.Intn(10) == 0 {
				if _, err := l.progress(ids.Load()+1, 1); err == nil {
					t.Fatalf("op %d: progress beyond the node's IDs accepted", op)
				}
				continue
			}
			before := acked
			advanced, err := l.progress(seq, chunks)
			if err != nil {
				t.Fatalf("op %d: progress(%d, %d): %v", op, seq, chunks, err)
			}
			advance(max(acked, seq-1), seq, chunks)
			if advanced != (acked > before) {
				t.Fatalf("op %d: progress(%d, %d) advanced=%v, acked %d -> %d", op, seq, chunks, advanced, before, acked)
			}
			if !live(seq) {
				t.Fatalf("op %d: progress released the last chunk of %d", op, seq)
			}

		default: // the connection drops; a new one rewinds
			if inflight != nil {
				l.abandon()
				inflight, snapshot = nil, nil
			}
			r := wire.Resume{Delivered: uint64(rng.Int63n(int64(written()) + 1))}
			if seq, chunks, ok := partial(); ok && seq > r.Delivered && rng.Intn(2) == 0 {
				r.Partial, r.Chunks = seq, chunks
			}
			ab, err := l.rewind(r)
			if err != nil {
				t.Fatalf("op %d: rewind(%+v): %v", op, r, err)
			}
			// The rule: abort a partial message the log lacks; release what
			// the remote holds; abandon a message the log can only resume
			// in the middle.
			prefix = nil
			p := r.Partial
			if p != 0 && !live(p) {
				prefix = append(prefix, abort(p)...)
				p = 0
			}
			advance(min(r.Delivered, last), p, r.Chunks)
			var want []MsgID
			if released < len(frames) {
				if e := frames[released]; e.chunk > 0 && !(p == e.seq && r.Chunks >= e.chunk) {
					for released < len(frames) && frames[released].seq == e.seq {
						released++
					}
					aborted[e.seq] = true
					want = append(want, MsgID(e.seq))
					prefix = append(prefix, abort(e.seq)...)
				}
			}
			if !slices.Equal(ab, want) {
				t.Fatalf("op %d: rewind(%+v) abandoned %v, want %v", op, r, ab, want)
			}
			pos = head()
		}

		if got, want := l.unacked(), int64(len(stream))-head(); got != want {
			t.Fatalf("op %d: unacked %d, want %d", op, got, want)
		}
		if l.lastSeq() != last || l.ackedSeq() != acked {
			t.Fatalf("op %d: last/acked %d/%d, want %d/%d", op, l.lastSeq(), l.ackedSeq(), last, acked)
		}
		if len(frames) > 0 {
			f := frames[rng.Intn(len(frames))]
			a, p, fl := l.status(f.seq)
			if fl != aborted[f.seq] || !fl && (a != (f.seq <= acked) || p != live(f.seq)) {
				t.Fatalf("op %d: status(%d) = %v %v %v with acked %d", op, f.seq, a, p, fl, acked)
			}
		}
	}

	// Finish: everything is written and acknowledged; memory goes back.
	if inflight != nil {
		if !bytes.Equal(concat(inflight), snapshot) {
			t.Fatal("bytes in flight changed")
		}
		l.abandon()
	}
	rest := drain(l)
	if !bytes.Equal(rest, append(slices.Clone(prefix), stream[pos:]...)) {
		t.Fatalf("final drain: %d bytes, want the %d from %d", len(rest), len(stream)-int(pos), pos)
	}
	if last > 0 {
		l.ack(last)
	}
	if l.unacked() != 0 || len(l.segs) > 1 || len(l.ents)-l.eh != 0 {
		t.Fatalf("all acknowledged: unacked %d, %d segments, %d entries", l.unacked(), len(l.segs), len(l.ents)-l.eh)
	}
	t.Logf("seed %d: %d frames, %d bytes, last %d, %d abandoned", seed, len(frames), len(stream), last, len(aborted))
}

// TestOutLogGivenBody: a body given to the log is kept, not copied; the
// frames around it stay in order, nothing is appended into it, a rewind
// re-sends it intact, and once it is acknowledged and written the log
// keeps no reference to it.
func TestOutLogGivenBody(t *testing.T) {
	l := newOutLog(nil)
	want := appendMsg(t, l, 1, []byte("before"))
	body := wire.GetLarge(300 << 10)
	for i := range body {
		body[i] = byte(i % 251)
	}
	issued(l, 2)
	l.mu.Lock()
	l.appendGiven(0, 0, 2, 1, 0, "t", body, true)
	l.mu.Unlock()
	want = append(want, wire.AppendData(nil, wire.MaxVersion, 0, 2, 1, 0, "t", body)...)
	want = append(want, appendMsg(t, l, 3, []byte("after"))...)

	given := 0
	for _, s := range l.segs {
		if s.given {
			given++
			if unsafe.SliceData(s.buf) != unsafe.SliceData(body) || len(s.buf) != len(body) {
				t.Fatal("the given body was copied or appended to")
			}
		}
	}
	if given != 1 {
		t.Fatalf("%d given segments, want 1", given)
	}
	if got := drain(l); !bytes.Equal(got, want) {
		t.Fatalf("the writer sends %d bytes, not the %d of the three frames", len(got), len(want))
	}
	// The connection dropped; the remote delivered message 1 only.
	l.ack(1)
	if _, err := l.rewind(wire.Resume{Delivered: 1}); err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(t, drain(l)); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("after the rewind the writer sends %v, want [2 3]", got)
	}
	first := len(wire.AppendData(nil, wire.MaxVersion, 0, 1, 1, 0, "t", []byte("before")))
	wantResent := want[first:]
	if _, err := l.rewind(wire.Resume{Delivered: 1}); err != nil {
		t.Fatal(err)
	}
	if got := drain(l); !bytes.Equal(got, wantResent) {
		t.Fatal("the re-sent given body differs from the one sent")
	}
	l.ack(3)
	for _, s := range l.segs {
		if s.given {
			t.Fatal("an acknowledged, written given body is still referenced")
		}
	}
	// The log goes on with pooled segments.
	appendMsg(t, l, 4, []byte("next"))
	if got := seqsOf(t, drain(l)); !slices.Equal(got, []uint64{4}) {
		t.Fatalf("after the given body the writer sends %v", got)
	}
}
