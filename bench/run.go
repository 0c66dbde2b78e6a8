package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Workloads.
const (
	wOneWay = "oneway"
	wFanout = "fanout"
	wEcho   = "echo"
	wIdle   = "idle"
)

var allWorkloads = []string{wOneWay, wFanout, wEcho, wIdle}

// Metrics.
const (
	mRate    = "msg/s"
	mMBps    = "MB/s"
	mAllocs  = "allocs/msg"
	mP50     = "p50"
	mP99     = "p99"
	mMemPeer = "mem/peer"
	mConnect = "connect"
)

// fanoutReceivers and echoSize are fixed by the workloads' definitions.
const (
	fanoutReceivers = 8
	smallSize       = 64
)

// Obs is one observation: a metric of one system in one cell of one run,
// or the failure of that cell.
type Obs struct {
	Run      int
	System   string
	Typed    bool
	Workload string
	Size     int // message size; the number of peers for idle
	Metric   string
	Value    float64
	Err      string // the cell failed: why
	Note     string // a remark on a valid value (noteCut)
}

// noteCut marks a rate counted when the drain limit cut the cell.
const noteCut = "cut"

// Settings are the limits of one invocation.
type Settings struct {
	Runs      int
	Sizes     []int
	Workloads map[string]bool
	Systems   []*System

	Duration     time.Duration // send phase of a throughput cell
	EchoDuration time.Duration
	MaxBytes     int64 // bytes sent in one throughput cell, at most
	MaxMessages  int   // messages sent in one throughput cell, at most
	Timeout      time.Duration
	Stall        time.Duration // no message for this long: the rest are lost
	Drain        time.Duration // after the last send, wait this long for the receivers at most
	IdlePeers    int
	IdleParallel int
	MemProfile   string // heap profile of the idle listener, when set
}

// cellErr marks an observation as the failure of its cell.
type cellErr struct{ err error }

// tracker checks the order of what each receiver of a cell got, and tells
// when every receiver has the last message.
type tracker struct {
	next   []paddedCounter
	total  atomic.Uint64 // number of messages of the cell; MaxUint64 until known
	left   atomic.Int32  // receivers without the last message
	done   chan struct{}
	failed chan struct{}
	once   sync.Once
	err    error
}

type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

func newTracker(rxs int) *tracker {
	t := &tracker{next: make([]paddedCounter, rxs), done: make(chan struct{}), failed: make(chan struct{})}
	t.total.Store(^uint64(0))
	t.left.Store(int32(rxs))
	return t
}

func (t *tracker) fail(err error) {
	t.once.Do(func() {
		t.err = err
		close(t.failed)
	})
}

// deliver is the Deliver of every receiver of the cell.
func (t *tracker) deliver(rx int, seq uint64, err error) {
	if err != nil {
		t.fail(fmt.Errorf("receiver %d: %w", rx, err))
		return
	}
	n := &t.next[rx]
	want := n.Load()
	if seq != want {
		if seq < want {
			t.fail(fmt.Errorf("receiver %d: message %d again after %d (duplicated or reordered)", rx, seq, want-1))
		} else {
			t.fail(fmt.Errorf("receiver %d: message %d when %d was next (%d lost or reordered)", rx, seq, want, seq-want))
		}
		return
	}
	n.Store(want + 1)
	if want+1 == t.total.Load() && t.left.Add(-1) == 0 {
		close(t.done)
	}
}

// received returns the fewest messages any receiver has.
func (t *tracker) received() uint64 {
	least := ^uint64(0)
	for i := range t.next {
		least = min(least, t.next[i].Load())
	}
	return least
}

// progress returns the messages received so far, over all receivers.
func (t *tracker) progress() uint64 {
	var sum uint64
	for i := range t.next {
		sum += t.next[i].Load()
	}
	return sum
}

// wait waits until every receiver has n messages (done, when n is 0: the
// last message), a receiver fails, or no message arrives for stall: the
// rest were lost.
func (t *tracker) wait(n uint64, stall, timeout time.Duration) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(timeout)
	last, lastAt := t.progress(), time.Now()
	for {
		if n == 0 {
			select {
			case <-t.done:
				return nil
			default:
			}
		} else if t.received() >= n {
			return nil
		}
		select {
		case <-t.failed:
			return t.err
		case <-t.done:
			if n == 0 {
				return nil
			}
		case now := <-tick.C:
			if p := t.progress(); p != last {
				last, lastAt = p, now
			} else if now.Sub(lastAt) > stall {
				return fmt.Errorf("messages lost: none arrived for %v, receivers got %d of %d", stall, t.received(), t.want(n))
			}
			if now.After(deadline) {
				return &drainCut{fmt.Errorf("timed out after %v: receivers got %d of %d", timeout, t.received(), t.want(n))}
			}
		}
	}
}

func (t *tracker) want(n uint64) uint64 {
	if n == 0 {
		return t.total.Load()
	}
	return n
}

// drainCut is a wait that ended while messages were still arriving.
type drainCut struct{ error }

func errTimeout(what string) error { return fmt.Errorf("timed out waiting for %s", what) }

// warmup is how many messages precede the measured ones.
func warmup(size int) int { return max(4, min(1000, (4<<20)/size)) }

// throughput is the result of a one-way or fan-out cell.
type throughput struct {
	msgs    uint64
	elapsed time.Duration
	allocs  uint64
	// cut is set when the receivers were still taking queued messages
	// when the drain limit ended the cell: msgs counts what arrived.
	cut bool
}

// measureThroughput runs one one-way (rxs = 1) or fan-out cell.
func measureThroughput(st *Settings, sys *System, size, rxs int) (throughput, error) {
	p, err := NewPayload(size, sys.Typed)
	if err != nil {
		return throughput{}, err
	}
	t := newTracker(rxs)
	snd, err := sys.OneWay(Cell{P: p, Timeout: st.Timeout}, rxs, t.deliver)
	if err != nil {
		return throughput{}, fmt.Errorf("setup: %w", err)
	}
	type outcome struct {
		r   throughput
		err error
	}
	ch := make(chan outcome, 1)
	go func() {
		r, err := sendCell(st, snd, t, size)
		ch <- outcome{r, err}
	}()
	limit := st.Duration + st.Drain + 3*st.Timeout
	var o outcome
	select {
	case o = <-ch:
	case <-time.After(limit):
		o.err = fmt.Errorf("timed out after %v: receivers got %d messages", limit, t.received())
	}
	closeWithin(snd.Close, 15*time.Second)
	return o.r, o.err
}

// sendCell is the sender's side of a throughput cell.
func sendCell(st *Settings, snd Sender, t *tracker, size int) (throughput, error) {
	ctx, cancel := context.WithTimeout(context.Background(), st.Duration+2*st.Timeout)
	defer cancel()
	warm := uint64(warmup(size))
	for i := uint64(0); i < warm; i++ {
		if err := snd.Send(i); err != nil {
			return throughput{}, fmt.Errorf("send: %w", err)
		}
	}
	if err := snd.Finish(ctx); err != nil {
		return throughput{}, fmt.Errorf("finish: %w", err)
	}
	if err := t.wait(warm, st.Stall, st.Timeout); err != nil {
		return throughput{}, fmt.Errorf("warm-up: %w", err)
	}
	maxN := warm + uint64(max(1, min(int64(st.MaxMessages), st.MaxBytes/int64(size))))
	mask := uint64(63)
	if size >= 4<<10 {
		mask = 0
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	deadline := start.Add(st.Duration)
	seq := warm
	for {
		last := seq+1 >= maxN || (seq&mask == 0 && time.Now().After(deadline))
		if last {
			t.total.Store(seq + 1)
		}
		if err := snd.Send(seq); err != nil {
			return throughput{}, fmt.Errorf("send message %d: %w", seq, err)
		}
		if last {
			break
		}
		select {
		case <-t.failed:
			return throughput{}, t.err
		default:
		}
		seq++
	}
	if err := snd.Finish(ctx); err != nil {
		return throughput{}, fmt.Errorf("finish: %w", err)
	}
	cut := false
	if err := t.wait(0, st.Stall, st.Drain); err != nil {
		var dc *drainCut
		if !errors.As(err, &dc) {
			return throughput{}, err
		}
		// Still arriving in order, but queued far beyond what the
		// receivers take: count what arrived by now.
		cut = true
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	if cut {
		got := t.received() - warm
		return throughput{msgs: got, elapsed: elapsed, allocs: m1.Mallocs - m0.Mallocs, cut: true}, nil
	}
	// A duplicate right after the last message would still be a failure.
	select {
	case <-t.failed:
		return throughput{}, t.err
	default:
	}
	n := seq + 1 - warm
	return throughput{msgs: n, elapsed: elapsed, allocs: m1.Mallocs - m0.Mallocs}, nil
}

// closeWithin runs close, giving up on it after d (a system that hangs on
// close must not stop the harness).
func closeWithin(fn func() error, d time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// latency is the result of an echo cell.
type latency struct {
	p50, p99 time.Duration
	n        int
}

func measureEcho(st *Settings, sys *System, size int) (latency, error) {
	p, err := NewPayload(size, sys.Typed)
	if err != nil {
		return latency{}, err
	}
	req, err := sys.Echo(Cell{P: p, Timeout: st.Timeout})
	if err != nil {
		return latency{}, fmt.Errorf("setup: %w", err)
	}
	type outcome struct {
		l   latency
		err error
	}
	ch := make(chan outcome, 1)
	go func() {
		l, err := echoCell(st, req)
		ch <- outcome{l, err}
	}()
	limit := st.EchoDuration + 2*st.Timeout
	var o outcome
	select {
	case o = <-ch:
	case <-time.After(limit):
		o.err = fmt.Errorf("timed out after %v", limit)
	}
	closeWithin(req.Close, 15*time.Second)
	return o.l, o.err
}

func echoCell(st *Settings, req Requester) (latency, error) {
	const warm = 200
	seq := uint64(0)
	for ; seq < warm; seq++ {
		if err := req.Request(seq); err != nil {
			return latency{}, fmt.Errorf("request %d: %w", seq, err)
		}
	}
	runtime.GC()
	lat := make([]time.Duration, 0, 1<<16)
	start := time.Now()
	for time.Since(start) < st.EchoDuration && len(lat) < 1<<20 {
		t0 := time.Now()
		if err := req.Request(seq); err != nil {
			return latency{}, fmt.Errorf("request %d: %w", seq, err)
		}
		lat = append(lat, time.Since(t0))
		seq++
	}
	if len(lat) < 100 {
		return latency{}, errors.New("fewer than 100 round trips")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return latency{p50: lat[len(lat)/2], p99: lat[len(lat)*99/100], n: len(lat)}, nil
}
