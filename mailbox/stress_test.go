package mailbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slc-go/slc/peer"
)

// ledger checks exactly-once delivery and per-source order across any
// number of consumers.
type ledger struct {
	ids      []peer.ID
	index    map[peer.ID]int
	per      int
	seen     [][]atomic.Int32
	sent     atomic.Int64
	received atomic.Int64
	done     context.CancelFunc // called when every message was received

	mu         sync.Mutex
	violations []string
}

func newLedger(sources, per int, done context.CancelFunc) *ledger {
	l := &ledger{index: map[peer.ID]int{}, per: per, done: done}
	for i := range sources {
		id := peer.ID(fmt.Sprint("src", i))
		l.ids = append(l.ids, id)
		l.index[id] = i
		l.seen = append(l.seen, make([]atomic.Int32, per))
	}
	return l
}

// consumer is one sequential taker of messages: a receiving goroutine or
// a subscription. Per source, it must see strictly increasing IDs.
type consumer struct {
	name string
	l    *ledger
	mu   sync.Mutex // subscriptions deliver different sources concurrently
	last []int
}

func (l *ledger) consumer(name string) *consumer {
	c := &consumer{name: name, l: l, last: make([]int, len(l.ids))}
	for i := range c.last {
		c.last[i] = -1
	}
	return c
}

// Deliver records m, sometimes yielding first to widen race windows
// between concurrent deliveries.
func (c *consumer) Deliver(m peer.Message) {
	if m.ID%7 == 0 {
		runtime.Gosched()
	}
	c.record(m)
}

func (c *consumer) record(m peer.Message) {
	l := c.l
	si, ok := l.index[m.From]
	id := int(m.ID)
	if !ok || id < 0 || id >= l.per || string(m.Raw) != fmt.Sprint(id) {
		l.violate(fmt.Sprintf("%s: corrupt message %s raw %q", c.name, name(m), m.Raw))
		return
	}
	c.mu.Lock()
	if id <= c.last[si] {
		l.violate(fmt.Sprintf("%s: %s after %s/%d", c.name, name(m), m.From, c.last[si]))
	}
	c.last[si] = id
	c.mu.Unlock()
	l.seen[si][id].Add(1)
	if l.received.Add(1) == int64(len(l.ids)*l.per) {
		l.done()
	}
}

func (l *ledger) violate(s string) {
	l.mu.Lock()
	if len(l.violations) < 20 {
		l.violations = append(l.violations, s)
	}
	l.mu.Unlock()
}

// produce pushes every message of source si in random batches, retrying
// after cancellation only while stop is open.
func (l *ledger) produce(ib *Inbox, si int, stop <-chan struct{}, rng *rand.Rand) {
	from := l.ids[si]
	next := 0
	for next < l.per {
		k := min(l.per-next, 1+rng.IntN(24))
		batch := msgs(from, seq(next, next+k-1)...)
		n, err := ib.Push(stop, from, batch)
		l.sent.Add(int64(n))
		next += n
		if err != nil {
			return
		}
		if rng.IntN(8) == 0 {
			runtime.Gosched()
		}
	}
}

// forward calls Take on random sources until ctx ends, with a function
// that sometimes fails and sometimes yields while the source is held.
func (l *ledger) forward(ctx context.Context, ib *Inbox, name string, seed uint64) {
	c := l.consumer(name)
	rng := rand.New(rand.NewPCG(seed, 4))
	failed := errors.New("send failed")
	for ctx.Err() == nil {
		n, err := ib.Take(l.ids[rng.IntN(len(l.ids))], func(m peer.Message) error {
			if rng.IntN(4) == 0 {
				runtime.Gosched()
			}
			if rng.IntN(5) == 0 {
				return failed
			}
			c.record(m)
			return nil
		})
		if n == 0 && err == nil {
			runtime.Gosched()
		}
	}
}

// report fails the test with the counts unless every message was
// delivered exactly once and in order.
func (l *ledger) report(t *testing.T, timedOut bool) {
	t.Helper()
	var dup, lost int
	var examples []string
	for si := range l.seen {
		for id := range l.seen[si] {
			switch c := l.seen[si][id].Load(); {
			case c == 0:
				lost++
				if len(examples) < 5 {
					examples = append(examples, fmt.Sprintf("lost %s/%d", l.ids[si], id))
				}
			case c > 1:
				dup += int(c) - 1
				if len(examples) < 5 {
					examples = append(examples, fmt.Sprintf("%s/%d seen %d times", l.ids[si], id, c))
				}
			}
		}
	}
	total := len(l.ids) * l.per
	l.mu.Lock()
	defer l.mu.Unlock()
	if timedOut || dup != 0 || lost != 0 || len(l.violations) != 0 || l.sent.Load() != int64(total) {
		t.Fatalf("timed out %v: want %d, sent %d, received %d, duplicated %d, lost %d; %v; order violations: %v",
			timedOut, total, l.sent.Load(), l.received.Load(), dup, lost, examples, l.violations)
	}
}

func TestStressExactlyOnceInOrder(t *testing.T) {
	const sources, per = 8, 4000
	ib := New(Config{MaxMessages: 16, MaxBytes: 12 * (MessageOverhead + 4)})
	defer ib.Close()
	timeout, cancelTimeout := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelTimeout()
	ctx, finished := context.WithCancel(timeout)
	defer finished()
	l := newLedger(sources, per, finished)

	var wg sync.WaitGroup
	for si := range sources {
		wg.Go(func() { l.produce(ib, si, timeout.Done(), rand.New(rand.NewPCG(uint64(si), 1))) })
	}
	// Unfiltered receivers.
	for r := range 2 {
		c := l.consumer(fmt.Sprint("receiver", r))
		wg.Go(func() {
			for {
				m, err := ib.Receive(ctx)
				if err != nil {
					return
				}
				c.record(m)
			}
		})
	}
	// Filtered receivers, each call naming a random subset.
	for r := range 2 {
		c := l.consumer(fmt.Sprint("filtered", r))
		rng := rand.New(rand.NewPCG(uint64(r), 2))
		wg.Go(func() {
			var from []peer.ID
			for {
				from = from[:0]
				for _, id := range l.ids {
					if rng.IntN(3) == 0 {
						from = append(from, id)
					}
				}
				if len(from) == 0 {
					from = append(from, l.ids[rng.IntN(sources)])
				}
				m, err := ib.Receive(ctx, from...)
				if err != nil {
					return
				}
				c.record(m)
			}
		})
	}
	// A poller alternating filtered and unfiltered TryReceive.
	{
		c := l.consumer("poller")
		rng := rand.New(rand.NewPCG(3, 3))
		wg.Go(func() {
			for ctx.Err() == nil {
				var m peer.Message
				var ok bool
				if rng.IntN(2) == 0 {
					m, ok = ib.TryReceive()
				} else {
					m, ok = ib.TryReceive(l.ids[rng.IntN(sources)], l.ids[rng.IntN(sources)])
				}
				if ok {
					c.record(m)
				} else {
					runtime.Gosched()
				}
			}
		})
	}
	// Forwarders: Take with a function that sometimes fails.
	for r := range 2 {
		wg.Go(func() { l.forward(ctx, ib, fmt.Sprint("take", r), uint64(r)) })
	}
	// Observers.
	wg.Go(func() {
		for ctx.Err() == nil {
			if n := ib.Len(); n < 0 || n > sources*16 {
				l.violate(fmt.Sprintf("Len = %d exceeds capacity", n))
			}
			if s := ib.Sources(); len(s) > sources {
				l.violate(fmt.Sprintf("Sources = %v", s))
			}
			runtime.Gosched()
		}
	})

	<-ctx.Done()
	timedOut := timeout.Err() != nil
	ib.Close() // release anything still blocked if the test failed
	wg.Wait()
	l.report(t, timedOut)
}

func TestStressSubscriptionsExactlyOnceInOrder(t *testing.T) {
	const sources, per = 6, 3000
	ib := New(Config{MaxMessages: 32})
	defer ib.Close()
	timeout, cancelTimeout := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelTimeout()
	ctx, finished := context.WithCancel(timeout)
	defer finished()
	l := newLedger(sources, per, finished)

	var wg sync.WaitGroup
	for si := range sources {
		wg.Go(func() { l.produce(ib, si, timeout.Done(), rand.New(rand.NewPCG(uint64(si), 5))) })
	}
	for r := range 2 {
		c := l.consumer(fmt.Sprint("receiver", r))
		wg.Go(func() {
			for {
				m, err := ib.Receive(ctx)
				if err != nil {
					return
				}
				c.record(m)
			}
		})
	}
	wg.Go(func() { l.forward(ctx, ib, "take", 7) })
	// One subscription at a time (so each message has one consumer),
	// covering every source or a random subset, cancelled after a while.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(6, 6))
		for i := 0; ctx.Err() == nil; i++ {
			c := l.consumer(fmt.Sprint("subscription", i))
			var from []peer.ID
			if rng.IntN(3) != 0 {
				for _, id := range l.ids {
					if rng.IntN(2) == 0 {
						from = append(from, id)
					}
				}
			}
			cancel := ib.Subscribe(c, from...)
			for range rng.IntN(50) {
				runtime.Gosched()
			}
			cancel()
		}
	})

	<-ctx.Done()
	timedOut := timeout.Err() != nil
	ib.Close()
	wg.Wait()
	l.report(t, timedOut)
}
