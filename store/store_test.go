package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/slc-go/slc/codec"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.LeakOptions()...) }

func open(t *testing.T, dir, name string, o Options) *Store {
	t.Helper()
	st, err := Open(dir, name, o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func rawMsgs(from peer.ID, inst uint64, first, n int) []peer.Message {
	ms := make([]peer.Message, n)
	for i := range ms {
		seq := uint64(first + i)
		ms[i] = peer.Message{From: from, Instance: inst, ID: peer.MsgID(seq), Serializer: codec.Raw, Raw: []byte(fmt.Sprintf("m%05d", seq))}
		ms[i].Body = ms[i].Raw
	}
	return ms
}

func TestIdentityAndIDsSurvive(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, "node-a", Options{})
	inst := st.Instance()
	if st.Name() != "node-a" || inst == 0 || st.FirstID() != 0 {
		t.Fatalf("new store: name %q instance %x first %d", st.Name(), inst, st.FirstID())
	}
	// Issue IDs past the first block: the reservation grows.
	if err := st.ReserveID(idBlock + 5); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open(t, dir, "", Options{})
	defer st.Close()
	if st.Name() != "node-a" || st.Instance() != inst {
		t.Fatalf("reopened: %q %x, want node-a %x", st.Name(), st.Instance(), inst)
	}
	if st.FirstID() < idBlock+5 {
		t.Fatalf("first ID %d would reissue ID %d", st.FirstID(), idBlock+5)
	}
	if _, err := Open(dir, "other", Options{}); err == nil {
		t.Fatal("opened node-a's store while it is open")
	}
}

func TestNameMismatchAndNewStoreNeedsName(t *testing.T) {
	if _, err := Open(t.TempDir(), "", Options{}); err == nil || !strings.Contains(err.Error(), "name") {
		t.Fatalf("new store without a name: %v", err)
	}
	dir := t.TempDir()
	open(t, dir, "a", Options{}).Close()
	_, err := Open(dir, "b", Options{})
	if err == nil || !strings.Contains(err.Error(), `belongs to node "a"`) {
		t.Fatalf("got %v", err)
	}
}

func TestInUse(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, "a", Options{})
	defer st.Close()
	if _, err := Open(dir, "a", Options{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
}

// frame builds an outbound frame entry's bytes for tests: the store does
// not parse them.
func frame(seq uint64) []byte { return []byte(fmt.Sprintf("frame-%06d-payload", seq)) }

func TestOutboundKeptUntilReleased(t *testing.T) {
	for _, sync := range []Sync{SyncBatch, SyncInterval, SyncNever} {
		t.Run(sync.String(), func(t *testing.T) {
			dir := t.TempDir()
			st := open(t, dir, "a", Options{Sync: sync})
			var last uint64
			for seq := uint64(1); seq <= 20; seq++ {
				last = st.Append("b", frame(seq)[:6], frame(seq)[6:], seq, 0)
			}
			st.SetAddr("b", "127.0.0.1:9")
			if err := st.WaitCommit(last); err != nil {
				t.Fatal(err)
			}
			st.Release("b", 12, 0, 0)
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = open(t, dir, "a", Options{Sync: sync})
			defer st.Close()
			r := st.Restored()
			if len(r) != 1 || r[0].ID != "b" || r[0].Addr != "127.0.0.1:9" || r[0].Acked != 12 {
				t.Fatalf("restored %+v", r)
			}
			if len(r[0].Frames) != 8 {
				t.Fatalf("%d frames restored, want 8 (13..20)", len(r[0].Frames))
			}
			for i, f := range r[0].Frames {
				if want := uint64(13 + i); f.Seq != want || !bytes.Equal(f.Bytes, frame(want)) {
					t.Fatalf("frame %d: seq %d %q", i, f.Seq, f.Bytes)
				}
			}
		})
	}
}

func TestForgetDropsPeer(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, "a", Options{})
	n := st.Append("b", []byte("h"), []byte("body"), 1, 0)
	if err := st.WaitCommit(n); err != nil {
		t.Fatal(err)
	}
	st.Forget("b")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open(t, dir, "a", Options{})
	defer st.Close()
	if r := st.Restored(); len(r) != 0 {
		t.Fatalf("restored %+v after Forget", r)
	}
	if b := st.Stats().OutBytes; b != 0 {
		t.Fatalf("%d bytes kept", b)
	}
}

func TestBoundedBlocksUntilReleased(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, "a", Options{MaxBytes: 1000})
	defer st.Close()
	body := bytes.Repeat([]byte("x"), 600)
	st.Append("b", nil, body, 1, 0)
	if !st.HasRoom(600) {
		t.Fatal("full after one message; the limit is checked before a message is added")
	}
	n := st.Append("b", nil, body, 2, 0)
	if err := st.WaitCommit(n); err != nil {
		t.Fatal(err)
	}
	if st.HasRoom(1) {
		t.Fatal("room past MaxBytes")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.WaitRoom(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitRoom on a full store: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- st.WaitRoom(context.Background(), 600) }()
	st.Release("b", 2, 0, 0)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !st.HasRoom(600) {
		t.Fatal("no room after the peer acknowledged everything")
	}
}

// node is a store with a mailbox wired as a Communicator wires them.
type node struct {
	st   *Store
	ib   *mailbox.Inbox
	sink peer.Sink
}

func openNode(t *testing.T, dir string) *node {
	st := open(t, dir, "recv", Options{})
	ib := mailbox.New(mailbox.Config{Taken: st.Taken})
	for _, r := range st.RestoredInbox() {
		if err := ib.PushAll(r.From, r.Msgs); err != nil {
			t.Fatal(err)
		}
	}
	return &node{st: st, ib: ib, sink: st.Sink(ib)}
}

func (n *node) push(t *testing.T, msgs []peer.Message) {
	t.Helper()
	k, err := n.sink.Push(nil, msgs[0].From, msgs)
	if err != nil || k != len(msgs) {
		t.Fatalf("push: %d, %v", k, err)
	}
}

func (n *node) receive(t *testing.T, k int) []uint64 {
	t.Helper()
	var got []uint64
	for range k {
		m, ok := n.ib.TryReceive()
		if !ok {
			t.Fatalf("mailbox empty after %d", len(got))
		}
		got = append(got, uint64(m.ID))
	}
	return got
}

func (n *node) drain() []string {
	var got []string
	for {
		m, ok := n.ib.TryReceive()
		if !ok {
			return got
		}
		got = append(got, fmt.Sprintf("%s:%d:%s", m.From, m.ID, m.Raw))
	}
}

func TestInboxRestoredAfterCrash(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			n := openNode(t, dir)
			n.push(t, rawMsgs("s1", 7, 1, 10))
			n.push(t, rawMsgs("s2", 9, 100, 3))
			n.push(t, rawMsgs("s1", 7, 11, 5))
			n.receive(t, 4) // s1 1..4
			if crash {
				n.st.crash()
			} else if err := n.st.Close(); err != nil {
				t.Fatal(err)
			}
			n.ib.Close()

			n = openNode(t, dir)
			defer n.st.Close()
			defer n.ib.Close()
			if d, _ := n.st.Delivered("s1", 7); d != 15 {
				t.Fatalf("delivered from s1: %d, want 15", d)
			}
			if d, _ := n.st.Delivered("s1", 8); d != 0 {
				t.Fatalf("delivered from another instance of s1: %d", d)
			}
			got := n.drain()
			var want []string
			for _, m := range rawMsgs("s1", 7, 5, 6) {
				want = append(want, fmt.Sprintf("s1:%d:%s", m.ID, m.Raw))
			}
			for _, m := range rawMsgs("s2", 9, 100, 3) {
				want = append(want, fmt.Sprintf("s2:%d:%s", m.ID, m.Raw))
			}
			for _, m := range rawMsgs("s1", 7, 11, 5) {
				want = append(want, fmt.Sprintf("s1:%d:%s", m.ID, m.Raw))
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("restored\n %v\nwant\n %v", got, want)
			}
			// Consumed now: a third run restores nothing.
			if err := n.st.Close(); err != nil {
				t.Fatal(err)
			}
			n2 := openNode(t, dir)
			defer n2.st.Close()
			defer n2.ib.Close()
			if rest := n2.drain(); len(rest) != 0 {
				t.Fatalf("consumed messages restored again: %v", rest)
			}
		})
	}
}

// TestConsumptionLogWraps consumes more messages than one half of the
// log holds, with concurrent receivers (marks out of turn), and crashes.
func TestConsumptionLogWraps(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir)
	const total = logEntries*2 + 500
	ids := 0
	for ids < total {
		k := min(1000, total-ids)
		n.push(t, rawMsgs("s", 1, ids+1, k))
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if _, ok := n.ib.TryReceive(); !ok {
						return
					}
				}
			}()
		}
		wg.Wait()
		ids += k
	}
	n.push(t, rawMsgs("s", 1, total+1, 3))
	n.st.crash()
	n.ib.Close()
	n = openNode(t, dir)
	defer n.st.Close()
	defer n.ib.Close()
	got := n.drain()
	if len(got) != 3 || !strings.HasPrefix(got[0], fmt.Sprintf("s:%d:", total+1)) {
		t.Fatalf("after %d consumed: restored %d messages %.3v", total, len(got), got)
	}
}

func TestPartialMessage(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, "recv", Options{})
	p := peer.Partial{Seq: 5, Ser: 1, Type: "big"}
	for i := 1; i <= 3; i++ {
		p.Chunks = uint64(i)
		if err := st.SaveChunk("s", 3, p, []byte(fmt.Sprintf("chunk%d|", i))); err != nil {
			t.Fatal(err)
		}
	}
	st.crash()
	st = open(t, dir, "recv", Options{})
	dlv, got := st.Delivered("s", 3)
	if dlv != 0 || got == nil || got.Seq != 5 || got.Chunks != 3 || got.Type != "big" || string(got.Data) != "chunk1|chunk2|chunk3|" {
		t.Fatalf("after a crash: delivered %d, partial %+v", dlv, got)
	}
	if _, other := st.Delivered("s", 4); other != nil {
		t.Fatal("partial message reported for another instance of the sender")
	}
	// The rest arrives: the complete message is delivered, and the
	// partial state goes in the same commit.
	ib := mailbox.New(mailbox.Config{Taken: st.Taken})
	if _, err := st.Sink(ib).Push(nil, "s", rawMsgs("s", 3, 5, 1)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	ib.Close()
	st = open(t, dir, "recv", Options{})
	defer st.Close()
	if dlv, got = st.Delivered("s", 3); dlv != 5 || got != nil {
		t.Fatalf("after delivery: %d, %+v", dlv, got)
	}
	if r, err := Inspect(dir); err == nil {
		t.Fatalf("Inspect of an open store succeeded: %+v", r)
	}
}

// TestOutboundBufferReused: once a commit is written, its entry buffer is
// reused for the next frames (a steady stream does not allocate one per
// commit), and what the commit wrote stays intact as the buffer is
// overwritten.
func TestOutboundBufferReused(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, "a", Options{})
	var last uint64
	for seq := uint64(1); seq <= 10; seq++ {
		last = st.Append("b", frame(seq)[:6], frame(seq)[6:], seq, 0)
	}
	if err := st.WaitCommit(last); err != nil {
		t.Fatal(err)
	}
	// Everything appended is committed: the buffers that held it are
	// spare now.
	st.mu.Lock()
	spare := map[*byte]bool{}
	for _, b := range st.spare {
		spare[unsafe.SliceData(b)] = true
	}
	next := st.pendBufLocked(0, 64)
	st.spare = append(st.spare, next) // give it back for the appends below
	st.mu.Unlock()
	if len(spare) == 0 || !spare[unsafe.SliceData(next)] {
		t.Fatalf("the next frames get a new buffer, not one of the %d committed ones", len(spare))
	}
	// The reused buffers are overwritten by the next frames; what was
	// committed from them must be intact.
	for seq := uint64(11); seq <= 20; seq++ {
		last = st.Append("b", frame(seq)[:6], frame(seq)[6:], seq, 0)
	}
	if err := st.WaitCommit(last); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open(t, dir, "a", Options{})
	defer st.Close()
	r := st.Restored()
	if len(r) != 1 || len(r[0].Frames) != 20 {
		t.Fatalf("restored %+v", r)
	}
	for i, f := range r[0].Frames {
		if want := uint64(1 + i); f.Seq != want || !bytes.Equal(f.Bytes, frame(want)) {
			t.Fatalf("frame %d: seq %d %q", i, f.Seq, f.Bytes)
		}
	}
}

// TestConsumptionLogAddAllocates: recording a consumption, done for every
// message the application takes, allocates nothing, and the record reads
// back.
func TestConsumptionLogAddAllocates(t *testing.T) {
	l, err := openLog(filepath.Join(t.TempDir(), logName))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if err := l.start(0, 7); err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	if n := testing.AllocsPerRun(100, func() {
		seq++
		if ok, err := l.add(3, 9, seq); !ok || err != nil {
			t.Fatalf("add: %t, %v", ok, err)
		}
	}); n != 0 {
		t.Fatalf("add: %v allocations, want 0", n)
	}
	var got uint64
	l.replay(0, func(idx uint32, inst, s uint64) {
		if idx != 3 || inst != 9 || s != got+1 {
			t.Fatalf("replayed %d/%d/%d after %d", idx, inst, s, got)
		}
		got = s
	})
	if got != seq {
		t.Fatalf("replayed up to %d, want %d", got, seq)
	}
}

// recordSizes returns the size of every record (recPrefix key) in the
// bucket at path.
func recordSizes(t *testing.T, st *Store, path [][]byte) []int {
	t.Helper()
	var sizes []int
	err := st.db.View(func(tx *bolt.Tx) error {
		b := nested(tx, path)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek([]byte{recPrefix}); k != nil && k[0] == recPrefix; k, v = c.Next() {
			sizes = append(sizes, len(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}

// TestRecordsSplit: what one commit keeps for a peer, in either
// direction, is written as records of at most recordSize bytes (a single
// larger entry has a record of its own), so that the database does not
// rewrite a previous large record with every commit; everything is
// restored whole and in order, and Received counts messages.
func TestRecordsSplit(t *testing.T) {
	t.Run("outbound", func(t *testing.T) {
		dir := t.TempDir()
		st := open(t, dir, "a", Options{})
		big := bytes.Repeat([]byte{'x'}, 3*recordSize)
		body := func(seq uint64) []byte {
			if seq == 50 {
				return big
			}
			return bytes.Repeat([]byte{byte(seq)}, 100+int(seq))
		}
		var last uint64
		for seq := uint64(1); seq <= 80; seq++ {
			last = st.Append("b", frame(seq)[:6], body(seq), seq, 0)
		}
		if err := st.WaitCommit(last); err != nil {
			t.Fatal(err)
		}
		sizes := recordSizes(t, st, outBucketPath("b"))
		if len(sizes) < 5 {
			t.Fatalf("%d records for 80 frames of 100–180 bytes and one of %d", len(sizes), len(big))
		}
		over := 0
		for _, n := range sizes {
			if n > recordSize {
				over++
			}
		}
		if over != 1 {
			t.Fatalf("record sizes %v: %d over %d bytes, want only the large frame's", sizes, over, recordSize)
		}
		st.Release("b", 30, 0, 0)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st = open(t, dir, "a", Options{})
		defer st.Close()
		r := st.Restored()
		if len(r) != 1 || r[0].Acked != 30 || len(r[0].Frames) != 50 {
			t.Fatalf("restored %d peers, %+v", len(r), r)
		}
		for i, f := range r[0].Frames {
			want := append(frame(uint64(31 + i))[:6:6], body(uint64(31+i))...)
			if f.Seq != uint64(31+i) || !bytes.Equal(f.Bytes, want) {
				t.Fatalf("frame %d: seq %d, %d bytes", i, f.Seq, len(f.Bytes))
			}
		}
	})
	t.Run("inbound", func(t *testing.T) {
		dir := t.TempDir()
		n := openNode(t, dir)
		msgs := make([]peer.Message, 100)
		for i := range msgs {
			raw := bytes.Repeat([]byte{byte(i)}, 50+i)
			if i == 60 {
				raw = bytes.Repeat([]byte{'y'}, 3*recordSize)
			}
			msgs[i] = peer.Message{From: "s", Instance: 5, ID: peer.MsgID(i + 1), Serializer: codec.Raw, Raw: raw, Body: raw}
		}
		n.push(t, msgs)
		if got := n.st.Stats().Received; got != 100 {
			t.Fatalf("Received = %d, want 100 messages", got)
		}
		sizes := recordSizes(t, n.st, inBucketPath("s"))
		over := 0
		for _, s := range sizes {
			if s > recordSize {
				over++
			}
		}
		if len(sizes) < 5 || over != 1 {
			t.Fatalf("record sizes %v: want several, only the large message's over %d bytes", sizes, recordSize)
		}
		n.receive(t, 40)
		if err := n.st.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if left := recordSizes(t, n.st, inBucketPath("s")); len(left) >= len(sizes) {
			t.Fatalf("%d records left of %d after 40 of 100 messages were consumed", len(left), len(sizes))
		}
		n.st.crash()
		n.ib.Close()
		n = openNode(t, dir)
		defer n.st.Close()
		defer n.ib.Close()
		var want []string
		for _, m := range msgs[40:] {
			want = append(want, fmt.Sprintf("s:%d:%s", m.ID, m.Raw))
		}
		if got := n.drain(); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("restored %d messages, want %d (41..100 in order)", len(got), len(want))
		}
	})
}
