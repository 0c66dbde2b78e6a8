package mailbox

import "testing"

func TestRingFIFOAcrossWrapAndGrowth(t *testing.T) {
	var r ring[int]
	next, want := 0, 0
	for round := range 50 {
		for range round % 13 {
			r.push(next)
			next++
		}
		for range round % 7 {
			if r.len() == 0 {
				break
			}
			if v := r.popFront(); v != want {
				t.Fatalf("popFront = %d, want %d", v, want)
			}
			want++
		}
	}
	for r.len() > 0 {
		if v := r.popFront(); v != want {
			t.Fatalf("popFront = %d, want %d", v, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d of %d", want, next)
	}
}

func TestRingKeepsBufferWhenRegularlyFilled(t *testing.T) {
	r := ring[int]{keep: 8}
	var first *int
	for cycle := range 10 {
		for i := range 256 {
			r.push(i)
		}
		if cycle == 1 {
			first = &r.buf[0]
		}
		if cycle > 1 && &r.buf[0] != first {
			t.Fatalf("cycle %d: buffer reallocated although every cycle fills it", cycle)
		}
		for r.len() > 0 {
			r.popFront()
		}
	}
}

func TestRingReleasesAfterBurst(t *testing.T) {
	r := ring[int]{keep: 8}
	for i := range 4 {
		r.push(i)
		r.popFront()
	}
	// A burst that drains completely is released at once.
	for i := range 10_000 {
		r.push(i)
	}
	for r.len() > 0 {
		r.popFront()
	}
	if len(r.buf) > 8 {
		t.Fatalf("%d slots kept after a drained burst", len(r.buf))
	}
	// A burst that never drains completely is released once a window
	// passes whose peak, and the one before, stayed low.
	for i := range 10_000 {
		r.push(i)
	}
	for r.len() > 5 {
		r.popFront()
	}
	for i := range 40_000 {
		r.push(i)
		r.popFront()
	}
	if len(r.buf) > 16 {
		t.Fatalf("%d slots kept while holding 5 values long after a burst", len(r.buf))
	}
	// Slots are cleared on removal.
	var p ring[*int]
	v := 1
	p.push(&v)
	p.push(&v)
	p.popFront()
	for i, x := range p.buf {
		if x != nil && i != p.head {
			t.Fatalf("slot %d still references a removed value", i)
		}
	}
}

// A ring that empties starts again at its first slot, so a queue kept
// short reuses the same few slots.
func TestRingRestartsAtFrontWhenEmpty(t *testing.T) {
	r := ring[int]{keep: 64}
	for i := range 1000 {
		r.push(i)
		r.push(i)
		if got := r.popFront(); got != i {
			t.Fatalf("popFront = %d, want %d", got, i)
		}
		r.popFront()
		if r.head != 0 {
			t.Fatalf("after %d pairs, an empty ring's head is at slot %d", i+1, r.head)
		}
	}
}
