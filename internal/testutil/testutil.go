package testutil

import (
	"fmt"
	"go.uber.org/goleak"
	"log/slog"
	"testing"
	"time"
)

// Quiet returns a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// eventuallyTick is how often Eventually polls.
const eventuallyTick = 5 * time.Millisecond

// Eventually polls cond, first at once and then every few milliseconds, until
// it returns true; if timeout passes first it fails the test with t.Fatalf
// and the given message. It is for waiting on things outside the test's
// control, such as real sockets, never a substitute for synchronization. It
// must be called from the test's goroutine.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if cond() {
		return
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(eventuallyTick)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return
			}
		case <-deadline.C:
			if cond() {
				return
			}
			t.Fatalf("condition not met within %v: %s", timeout, fmt.Sprintf(format, args...))
			return
		}
	}
}

// Tally is the outcome of checking received sequence numbers against what
// was sent; see CheckSequence.
type Tally struct {
	Sent       int // messages sent, numbered 1..Sent
	Received   int // sequence numbers received, duplicates included
	Lost       int // numbers in 1..Sent never received
	Duplicated int // receptions of a number already received
	Reordered  int // first receptions of a number lower than one received before
	Unexpected int // receptions of a number outside 1..Sent
}

// Exact reports whether every message arrived exactly once and in order.
func (t Tally) Exact() bool {
	return t.Received == t.Sent && t.Lost == 0 && t.Duplicated == 0 && t.Reordered == 0 && t.Unexpected == 0
}

// String formats the tally as
// "sent=%d received=%d lost=%d duplicated=%d reordered=%d", followed by
// " unexpected=%d" only when that count is not zero.
func (t Tally) String() string {
	s := fmt.Sprintf("sent=%d received=%d lost=%d duplicated=%d reordered=%d",
		t.Sent, t.Received, t.Lost, t.Duplicated, t.Reordered)
	if t.Unexpected != 0 {
		s += fmt.Sprintf(" unexpected=%d", t.Unexpected)
	}
	return s
}

// CheckSequence tallies got, the sequence numbers received in arrival
// order, against sent messages numbered 1..sent and expected in that order.
// A number received again counts as duplicated (and not as reordered); a
// number received for the first time after a higher one counts as
// reordered; numbers never received count as lost; numbers outside
// 1..sent count as unexpected.
func CheckSequence(sent int, got []uint64) Tally {
	sent = max(sent, 0)
	t := Tally{Sent: sent, Received: len(got)}
	seen := make([]bool, sent+1)
	var highest uint64
	for _, v := range got {
		if v == 0 || v > uint64(sent) {
			t.Unexpected++
			continue
		}
		if seen[v] {
			t.Duplicated++
			continue
		}
		seen[v] = true
		if v < highest {
			t.Reordered++
		}
		highest = max(highest, v)
	}
	for v := 1; v <= sent; v++ {
		if !seen[v] {
			t.Lost++
		}
	}
	return t
}

// LeakOptions are the goleak options every package's TestMain uses.
//
// They ignore one goroutine that is not slc's: protoactor-go starts a
// log-throttling goroutine when it logs a dead letter, and that goroutine
// ends by itself a second later. A system message (Stop, Restart) that
// races an actor's own stop becomes such a dead letter inside protoactor,
// beyond what slc can prevent; every other goroutine is still checked.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	}
}
