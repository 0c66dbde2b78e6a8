package bus

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// records returns n records of size bytes each (length prefix included),
// back to back in one batch, as the server's route finds them.
func records(n, size int) (batch []byte, recs []pendingRecord) {
	batch = make([]byte, n*size)
	for i := range n {
		rec := batch[i*size : (i+1)*size]
		binary.BigEndian.PutUint32(rec, uint32(size-4))
		rec[4] = byte(i)
	}
	for i := range n {
		recs = append(recs, pendingRecord{rec: batch[i*size : (i+1)*size], reliable: true})
	}
	return batch, recs
}

func testDest(limit int) *dest {
	p := &Participant{cfg: config{queueLimit: limit}}
	return &dest{s: &server{p: p}, wake: make(chan struct{}, 1)}
}

func TestContiguous(t *testing.T) {
	batch, recs := records(4, 10)
	if run, ok := contiguous(recs); !ok || !bytes.Equal(run, batch) || cap(run) != len(run) {
		t.Errorf("contiguous(all) = %d bytes, %v; want the whole batch", len(run), ok)
	}
	if _, ok := contiguous([]pendingRecord{recs[0], recs[2]}); ok {
		t.Error("records with a gap were taken as contiguous")
	}
	if _, ok := contiguous([]pendingRecord{recs[1], recs[0]}); ok {
		t.Error("records out of order were taken as contiguous")
	}
	other := bytes.Clone(recs[1].rec)
	if _, ok := contiguous([]pendingRecord{recs[0], {rec: other}}); ok {
		t.Error("records of two arrays were taken as contiguous")
	}
}

// TestDestQueue checks the member queue: a received run of records is
// kept without a copy when the queue is empty, later records are copied
// into chunks of at most maxBatchBytes, and sends take one chunk at a
// time, in order.
func TestDestQueue(t *testing.T) {
	d := testDest(1 << 20)
	batch, recs := records(3, 100)
	d.enqueue(recs, true, nil)
	if len(d.chunks) != 1 || !d.chunks[0].borrowed || &d.chunks[0].buf[0] != &batch[0] {
		t.Fatalf("a run into an empty queue: %d chunks, not borrowed", len(d.chunks))
	}
	// A small run into a queue that is not empty is copied; so is a run
	// of the uplink's log (borrow false), and records that do not lie
	// back to back. A large run is kept as it is.
	const size = 64 << 10
	n := 2*maxBatchBytes/size + 3
	_, big := records(n, size)
	var gaps []pendingRecord
	for i := 0; i < len(big); i += 2 {
		gaps = append(gaps, big[i])
	}
	d.enqueue(gaps, true, nil)
	_, own := records(2, 100)
	d.enqueue(own, false, nil)
	_, small := records(2, 100)
	d.enqueue(small, true, nil)
	large, run := records(2, minBorrow/2)
	d.enqueue(run, true, nil)
	last := d.chunks[len(d.chunks)-1]
	if !last.borrowed || &last.buf[0] != &large[0] {
		t.Errorf("a run of %d bytes into a busy queue was copied", len(large))
	}
	total := len(recs) + len(gaps) + len(own) + len(small) + len(run)
	if d.events != total {
		t.Errorf("events = %d, want %d", d.events, total)
	}
	var got [][]byte
	for _, c := range d.chunks {
		if len(c.buf) > maxBatchBytes {
			t.Errorf("a chunk of %d bytes, over %d", len(c.buf), maxBatchBytes)
		}
		for b := c.buf; len(b) > 0; {
			l := 4 + int(binary.BigEndian.Uint32(b))
			got = append(got, b[:l])
			b = b[l:]
		}
	}
	var want []pendingRecord
	for _, rs := range [][]pendingRecord{recs, gaps, own, small, run} {
		want = append(want, rs...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records queued, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i].rec) {
			t.Fatalf("record %d differs", i)
		}
	}
	for i, c := range d.chunks[1 : len(d.chunks)-1] {
		if c.borrowed {
			t.Errorf("chunk %d borrowed", i+1)
		}
	}
	// The uplink's records are never borrowed.
	e := testDest(100)
	e.enqueue(own, false, nil)
	if len(e.chunks) != 1 || e.chunks[0].borrowed {
		t.Errorf("the uplink's records were borrowed")
	}
}
