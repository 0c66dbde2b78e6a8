package mailbox

// ring is a FIFO ring buffer of values. Its capacity is zero or a power of
// two. It grows by doubling and gives memory back lazily.
//
// Memory release works in windows of as many removals as the ring has
// slots (at least keep). The ring remembers the largest length seen in
// the previous window; "needed" below means the smallest power of two
// that holds that peak and keep slots. When the ring becomes empty, a
// buffer more than twice as large as needed is dropped, which costs
// nothing. At the end of a window, a buffer more than twice as large as
// needed (and as twice the current length) is copied into one of the
// needed size, which is amortized over the window's removals. Judging by
// the previous window, with a margin, keeps a ring that regularly fills
// and drains from reallocating every cycle, while a one-off burst is
// released as soon as it has drained (or, if the ring never empties
// again, within two windows).
//
// A ring is not safe for concurrent use.
type ring[T any] struct {
	buf  []T
	head int
	n    int

	keep     int // capacity worth keeping regardless of use
	peak     int // largest length in the current window
	prevPeak int // largest length in the previous window
	ops      int // removals in the current window
	hint     int // capacity to allocate when growing from nothing
}

// len returns the number of values in the ring.
func (r *ring[T]) len() int { return r.n }

// at returns a pointer to the i-th value from the front (0 <= i < r.n).
func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

// front returns a pointer to the oldest value. The ring must not be empty.
func (r *ring[T]) front() *T { return &r.buf[r.head] }

// reserve makes room for at least extra more values without further
// allocation.
func (r *ring[T]) reserve(extra int) {
	if need := r.n + extra; need > len(r.buf) {
		r.grow(need)
	}
}

// push appends v at the back.
func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		r.grow(r.n + 1)
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
	if r.n > r.peak {
		r.peak = r.n
	}
}

// grow reallocates the buffer to hold at least need values.
func (r *ring[T]) grow(need int) {
	c := max(8, 2*len(r.buf), need)
	if len(r.buf) == 0 {
		c = max(c, r.hint)
	}
	r.resize(ceilPow2(c))
}

// popFront removes and returns the oldest value, clearing its slot so the
// ring keeps no reference to it. The ring must not be empty.
func (r *ring[T]) popFront() T {
	v := r.buf[r.head]
	r.dropFront()
	return v
}

// dropFront removes the oldest value, clearing its slot. The ring must not
// be empty. Callers that only need part of a large value read it through
// front first, which saves copying the whole value.
func (r *ring[T]) dropFront() {
	var zero T
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	r.ops++
	if r.n == 0 {
		// Start again at the front: a queue that its consumer keeps
		// short then reuses the same few slots, which stay in the cache,
		// instead of walking through the whole buffer.
		r.head = 0
	}
	if r.ops >= max(len(r.buf), r.keep) {
		r.endWindow()
	} else if r.n == 0 {
		if want := ceilPow2(max(r.keep, r.prevPeak)); len(r.buf) > 2*want {
			r.buf, r.head, r.hint = nil, 0, want
		}
	}
}

// endWindow releases memory the previous window did not need and starts
// a new window.
func (r *ring[T]) endWindow() {
	want := ceilPow2(max(r.keep, r.prevPeak, 2*r.n))
	if len(r.buf) > 2*want {
		if r.n == 0 {
			r.buf, r.head, r.hint = nil, 0, want
		} else {
			r.resize(want)
		}
	}
	r.prevPeak, r.peak, r.ops = r.peak, r.n, 0
}

// filter removes, in place and keeping their order, the values for which
// keep returns false, and returns how many it removed. It ends the
// window.
func (r *ring[T]) filter(keep func(*T) bool) int {
	var zero T
	mask := len(r.buf) - 1
	w := 0
	for i := 0; i < r.n; i++ {
		p := &r.buf[(r.head+i)&mask]
		if !keep(p) {
			continue
		}
		if w != i {
			r.buf[(r.head+w)&mask] = *p
		}
		w++
	}
	for i := w; i < r.n; i++ {
		r.buf[(r.head+i)&mask] = zero
	}
	removed := r.n - w
	r.n = w
	r.endWindow()
	return removed
}

// release drops the buffer and its contents.
func (r *ring[T]) release() {
	*r = ring[T]{keep: r.keep}
}

// resize moves the contents into a new buffer of capacity c (a power of
// two, at least r.n).
func (r *ring[T]) resize(c int) {
	nb := make([]T, c)
	if r.n > 0 {
		end := r.head + r.n
		if end <= len(r.buf) {
			copy(nb, r.buf[r.head:end])
		} else {
			k := copy(nb, r.buf[r.head:])
			copy(nb[k:], r.buf[:end-len(r.buf)])
		}
	}
	r.buf, r.head = nb, 0
}

// ceilPow2 returns the smallest power of two that is at least n (and at
// least 1).
func ceilPow2(n int) int {
	c := 1
	for c < n {
		c <<= 1
	}
	return c
}
