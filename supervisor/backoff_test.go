package supervisor

import (
	"fmt"
	"io"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

var errRefused = fmt.Errorf("dial peer: %w", syscall.ECONNREFUSED)

// attemptErr reports its own attempt number, as a peer connection does.
type attemptErr struct{ n int }

func (e attemptErr) Error() string { return fmt.Sprintf("connect attempt %d failed", e.n) }
func (e attemptErr) Attempt() int  { return e.n }

// permanentErr is a Protocol-class error.
type permanentErr struct{ permanent bool }

func (e permanentErr) Error() string   { return "bad handshake" }
func (e permanentErr) Permanent() bool { return e.permanent }

// harness drives HandleFailure directly with a fake supervisor and clock,
// the way protoactor would: one child, its RestartStatistics, a real
// EventStream.
type harness struct {
	t      *testing.T
	system *actor.ActorSystem
	events *events
	sup    *fakeSupervisor
	clock  *fakeClock
	child  *actor.PID
	rs     *actor.RestartStatistics
	b      *Backoff
}

func newHarness(t *testing.T, b *Backoff) *harness {
	t.Helper()
	system := newSystem(t)
	clock := &fakeClock{}
	if b.Clock == nil {
		b.Clock = clock
	}
	if b.Rand == nil {
		b.Rand = half
	}
	return &harness{
		t:      t,
		system: system,
		events: collect(t, system),
		sup:    &fakeSupervisor{},
		clock:  clock,
		child:  system.NewLocalPID("parent/conn"),
		rs:     actor.NewRestartStatistics(),
		b:      b,
	}
}

func (h *harness) fail(reason any) {
	h.b.HandleFailure(h.system, h.sup, h.child, h.rs, reason, "the message")
}

// fireOnly fires the single active timer and checks its delay.
func (h *harness) fireOnly(wantDelay time.Duration) {
	h.t.Helper()
	active := h.clock.active()
	if len(active) != 1 {
		h.t.Fatalf("%d active timers, want 1", len(active))
	}
	if active[0].d != wantDelay {
		h.t.Errorf("timer delay = %v, want %v", active[0].d, wantDelay)
	}
	if !active[0].Fire() {
		h.t.Fatal("timer did not fire")
	}
}

func (h *harness) wantCalls(want ...call) {
	h.t.Helper()
	got := h.sup.recorded()
	h.sup.mu.Lock()
	h.sup.calls = nil
	h.sup.mu.Unlock()
	if len(got) != len(want) {
		h.t.Fatalf("supervisor calls = %s, want %s", describe(got), describe(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			h.t.Fatalf("supervisor calls = %s, want %s", describe(got), describe(want))
		}
	}
}

func describe(calls []call) string {
	s := "["
	for i, c := range calls {
		if i > 0 {
			s += " "
		}
		s += c.op
		for _, p := range c.pids {
			s += " " + p.Id
		}
	}
	return s + "]"
}

func (h *harness) wantEvents(want ...any) {
	h.t.Helper()
	got := h.events.take()
	if !reflect.DeepEqual(got, want) {
		h.t.Fatalf("events:\n got  %s\n want %s", eventList(got), eventList(want))
	}
}

func eventList(evts []any) string {
	s := ""
	for _, e := range evts {
		switch e := e.(type) {
		case *RestartScheduled:
			s += fmt.Sprintf("RestartScheduled{%v #%d %v %v} ", e.Child.Id, e.Attempt, e.Delay, e.Reason)
		case *RestartsExhausted:
			s += fmt.Sprintf("RestartsExhausted{%v #%d %v} ", e.Child.Id, e.Attempts, e.Reason)
		case *actor.SupervisorEvent:
			s += fmt.Sprintf("SupervisorEvent{%v %v %v} ", e.Child.Id, e.Directive, e.Reason)
		default:
			s += fmt.Sprintf("%T ", e)
		}
	}
	return s
}

func (h *harness) scheduled(attempt int, delay time.Duration, reason any) []any {
	return []any{
		&RestartScheduled{Child: h.child, Attempt: attempt, Delay: delay, Reason: reason},
		&actor.SupervisorEvent{Child: h.child, Reason: reason, Directive: actor.RestartDirective},
	}
}

func (h *harness) restartCall() call { return call{op: "restart", pids: []*actor.PID{h.child}} }
func (h *harness) stopCall() call    { return call{op: "stop", pids: []*actor.PID{h.child}} }

func TestRestartScheduledWithBackoff(t *testing.T) {
	h := newHarness(t, &Backoff{})
	delays := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	for i, d := range delays {
		h.fail(errRefused)
		h.wantEvents(h.scheduled(i+1, d, errRefused)...)
		h.wantCalls() // nothing until the timer fires
		if n := h.b.Pending(); n != 1 {
			t.Fatalf("Pending() = %d, want 1", n)
		}
		h.fireOnly(d)
		h.wantCalls(h.restartCall())
		if n := h.b.Pending(); n != 0 {
			t.Fatalf("Pending() after firing = %d, want 0", n)
		}
		h.wantEvents() // firing publishes nothing
	}
	if n := h.rs.FailureCount(); n != 3 {
		t.Errorf("RestartStatistics.FailureCount() = %d, want 3", n)
	}
}

func TestBudgetExhaustedStopsChild(t *testing.T) {
	h := newHarness(t, &Backoff{Retries: 2})
	for attempt := 1; attempt <= 2; attempt++ {
		h.fail(errRefused)
		h.wantEvents(h.scheduled(attempt, h.b.Delay(attempt), errRefused)...)
		h.fireOnly(h.b.Delay(attempt))
		h.wantCalls(h.restartCall())
	}
	h.fail(errRefused)
	h.wantCalls(h.stopCall())
	h.wantEvents(
		&RestartsExhausted{Child: h.child, Attempts: 3, Reason: errRefused},
		&actor.SupervisorEvent{Child: h.child, Reason: errRefused, Directive: actor.StopDirective},
	)
	if n := len(h.clock.all()); n != 2 {
		t.Errorf("%d timers scheduled, want 2", n)
	}
}

func TestRetriesForeverNeverStops(t *testing.T) {
	h := newHarness(t, &Backoff{Retries: Forever})
	for attempt := 1; attempt <= 500; attempt++ {
		h.fail(errRefused)
		want := min(DefaultInitial<<min(attempt-1, 20), DefaultMax)
		h.fireOnly(want)
		h.wantCalls(h.restartCall())
	}
	for _, e := range h.events.take() {
		if _, ok := e.(*RestartsExhausted); ok {
			t.Fatal("RestartsExhausted published with Retries: Forever")
		}
	}
}

func TestNoRetriesStopsAtOnce(t *testing.T) {
	for _, retries := range []int{NoRetries, -3, -1000} {
		t.Run(fmt.Sprint(retries), func(t *testing.T) {
			h := newHarness(t, &Backoff{Retries: retries})
			h.fail(errRefused)
			h.wantCalls(h.stopCall())
			h.wantEvents(
				&RestartsExhausted{Child: h.child, Attempts: 1, Reason: errRefused},
				&actor.SupervisorEvent{Child: h.child, Reason: errRefused, Directive: actor.StopDirective},
			)
			if n := len(h.clock.all()); n != 0 {
				t.Errorf("%d timers scheduled, want 0", n)
			}
		})
	}
}

func TestZeroRetriesMeansDefault(t *testing.T) {
	h := newHarness(t, &Backoff{Retries: 0, Initial: -1}) // restart at once
	for range DefaultRetries {
		h.fail(errRefused)
		h.wantCalls(h.restartCall())
	}
	h.fail(errRefused)
	h.wantCalls(h.stopCall())
}

func TestZeroDelayRestartsSynchronously(t *testing.T) {
	h := newHarness(t, &Backoff{Initial: -1})
	h.fail(errRefused)
	h.wantCalls(h.restartCall())
	h.wantEvents(h.scheduled(1, 0, errRefused)...)
	if n := len(h.clock.all()); n != 0 {
		t.Errorf("%d timers scheduled for a zero delay, want 0", n)
	}
}

func TestProtocolErrorStops(t *testing.T) {
	h := newHarness(t, &Backoff{Retries: Forever})
	reason := fmt.Errorf("read frame: %w", permanentErr{permanent: true})
	h.fail(reason)
	h.wantCalls(h.stopCall())
	h.wantEvents(&actor.SupervisorEvent{Child: h.child, Reason: reason, Directive: actor.StopDirective})
	if n := h.rs.FailureCount(); n != 0 {
		t.Errorf("RestartStatistics touched by a Stop: FailureCount() = %d", n)
	}
}

func TestReasonAttemptWinsOverStatistics(t *testing.T) {
	h := newHarness(t, &Backoff{Retries: 10})
	// Plenty of recorded failures that must be ignored.
	for range 8 {
		h.rs.Fail()
	}
	reason := fmt.Errorf("peer 10.0.0.7: %w", attemptErr{n: 3})
	h.fail(reason)
	h.wantEvents(h.scheduled(3, 200*time.Millisecond, reason)...)
	h.fireOnly(200 * time.Millisecond)
	h.wantCalls(h.restartCall())
	if n := h.rs.FailureCount(); n != 8 {
		t.Errorf("RestartStatistics.FailureCount() = %d, want 8 (untouched)", n)
	}

	// A successful connection resets the peer's own count.
	h.fail(attemptErr{n: 1})
	h.wantEvents(h.scheduled(1, 50*time.Millisecond, attemptErr{n: 1})...)
	h.fireOnly(50 * time.Millisecond)
	h.wantCalls(h.restartCall())

	// Attempts below 1 count as 1.
	h.fail(attemptErr{n: 0})
	h.wantEvents(h.scheduled(1, 50*time.Millisecond, attemptErr{n: 0})...)
	h.fireOnly(50 * time.Millisecond)
	h.wantCalls(h.restartCall())

	// The reported attempt is held against the budget too.
	h.fail(attemptErr{n: 11})
	h.wantCalls(h.stopCall())
	h.wantEvents(
		&RestartsExhausted{Child: h.child, Attempts: 11, Reason: attemptErr{n: 11}},
		&actor.SupervisorEvent{Child: h.child, Reason: attemptErr{n: 11}, Directive: actor.StopDirective},
	)
}

// attemptValue is a non-error panic value that reports its attempt.
type attemptValue int

func (a attemptValue) Attempt() int { return int(a) }

func TestReasonAttemptFromNonError(t *testing.T) {
	h := newHarness(t, &Backoff{})
	h.fail(attemptValue(4))
	h.wantEvents(h.scheduled(4, 400*time.Millisecond, attemptValue(4))...)
}

func TestResumeAndEscalate(t *testing.T) {
	directive := actor.ResumeDirective
	h := newHarness(t, &Backoff{Decider: func(any) actor.Directive { return directive }})
	h.fail("oops")
	h.wantCalls(call{op: "resume", pids: []*actor.PID{h.child}})
	h.wantEvents(&actor.SupervisorEvent{Child: h.child, Reason: "oops", Directive: actor.ResumeDirective})

	directive = actor.EscalateDirective
	h.fail("oops")
	h.wantCalls(call{op: "escalate", reason: "oops", message: "the message"})
	h.wantEvents()

	directive = actor.Directive(99)
	h.fail("oops")
	h.wantCalls(h.stopCall())
	h.wantEvents(&actor.SupervisorEvent{Child: h.child, Reason: "oops", Directive: actor.StopDirective})
}

func TestCancelPreventsRestart(t *testing.T) {
	h := newHarness(t, &Backoff{})
	h.fail(errRefused)
	timers := h.clock.all()
	h.b.Cancel(h.child)
	if st := timers[0].state(); st != timerStopped {
		t.Errorf("timer state after Cancel = %v, want stopped", st)
	}
	// Even a clock that ignores Stop must not restart a cancelled child.
	timers[0].f()
	h.wantCalls()
	if n := h.b.Pending(); n != 0 {
		t.Errorf("Pending() = %d, want 0", n)
	}
	h.b.Cancel(h.child) // no pending restart: nothing happens
	h.b.Cancel()
}

func TestCancelOnlyNamedChildren(t *testing.T) {
	h := newHarness(t, &Backoff{})
	other := h.system.NewLocalPID("parent/other")
	h.fail(errRefused)
	h.b.HandleFailure(h.system, h.sup, other, actor.NewRestartStatistics(), errRefused, nil)
	// A copy of the PID identifies the same child.
	h.b.Cancel(actor.NewPID(h.child.Address, h.child.Id))
	active := h.clock.active()
	if len(active) != 1 || !active[0].Fire() {
		t.Fatalf("want exactly the other child's timer active, got %d", len(active))
	}
	h.wantCalls(call{op: "restart", pids: []*actor.PID{other}})
}

func TestCancelAll(t *testing.T) {
	h := newHarness(t, &Backoff{})
	sup2 := &fakeSupervisor{}
	h.fail(errRefused)
	h.b.HandleFailure(h.system, sup2, h.system.NewLocalPID("other/conn"), actor.NewRestartStatistics(), errRefused, nil)
	if n := h.b.Pending(); n != 2 {
		t.Fatalf("Pending() = %d, want 2", n)
	}
	h.b.CancelAll()
	for _, tm := range h.clock.all() {
		if tm.state() != timerStopped {
			t.Error("timer not stopped by CancelAll")
		}
		tm.f()
	}
	h.wantCalls()
	if n := len(sup2.recorded()); n != 0 {
		t.Errorf("second supervisor got %d calls, want 0", n)
	}
	if n := h.b.Pending(); n != 0 {
		t.Errorf("Pending() = %d, want 0", n)
	}
}

func TestNewFailureSupersedesPendingRestart(t *testing.T) {
	h := newHarness(t, &Backoff{})
	h.fail(errRefused)
	h.fail(errRefused) // failed again while suspended
	timers := h.clock.all()
	if len(timers) != 2 {
		t.Fatalf("%d timers, want 2", len(timers))
	}
	if timers[0].state() != timerStopped {
		t.Error("superseded timer not stopped")
	}
	timers[0].f() // a late callback of the superseded timer does nothing
	h.wantCalls()
	h.fireOnly(100 * time.Millisecond)
	h.wantCalls(h.restartCall())
}

func TestStreakResetsAfterQuietPeriod(t *testing.T) {
	// RestartStatistics reads time.Now; the synctest bubble makes it fake.
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Backoff{Initial: -1, ResetAfter: 30 * time.Second})
		attempts := func() []int {
			var out []int
			for _, e := range h.events.take() {
				if s, ok := e.(*RestartScheduled); ok {
					out = append(out, s.Attempt)
				}
			}
			return out
		}
		h.fail(errRefused)
		time.Sleep(29 * time.Second)
		h.fail(errRefused)
		time.Sleep(29 * time.Second) // the streak is measured from the latest failure
		h.fail(errRefused)
		time.Sleep(30 * time.Second)
		h.fail(errRefused)
		if got, want := attempts(), []int{1, 2, 3, 1}; !reflect.DeepEqual(got, want) {
			t.Errorf("attempts = %v, want %v", got, want)
		}

		h.b = &Backoff{Initial: -1, ResetAfter: -1} // never forget
		h.rs = actor.NewRestartStatistics()
		h.fail(errRefused)
		time.Sleep(24 * time.Hour)
		h.fail(errRefused)
		if got, want := attempts(), []int{1, 2}; !reflect.DeepEqual(got, want) {
			t.Errorf("attempts with ResetAfter < 0 = %v, want %v", got, want)
		}
	})
}

func TestCancelWaitsForRestartInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Backoff{})
		release := make(chan struct{})
		h.sup.onRestart = func() { <-release }
		h.fail(errRefused)
		timer := h.clock.all()[0]

		go timer.Fire()
		synctest.Wait() // the restart is being sent, blocked in RestartChildren

		cancelled := make(chan struct{})
		go func() {
			h.b.Cancel(h.child)
			close(cancelled)
		}()
		synctest.Wait()
		select {
		case <-cancelled:
			t.Fatal("Cancel returned while a restart was being sent")
		default:
		}

		close(release)
		<-cancelled
		h.wantCalls(h.restartCall())
	})
}

func TestCancelAllWaitsForRestartInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, &Backoff{})
		release := make(chan struct{})
		h.sup.onRestart = func() { <-release }
		h.fail(errRefused)
		go h.clock.all()[0].Fire()
		synctest.Wait()

		cancelled := make(chan struct{})
		go func() {
			h.b.CancelAll()
			close(cancelled)
		}()
		synctest.Wait()
		select {
		case <-cancelled:
			t.Fatal("CancelAll returned while a restart was being sent")
		default:
		}
		close(release)
		<-cancelled
	})
}

func TestDefaultClockSchedulesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		system := newSystem(t)
		sup := &fakeSupervisor{}
		b := &Backoff{Jitter: -1} // system clock: time.AfterFunc, fake time in the bubble
		child := system.NewLocalPID("p/c")
		start := time.Now()
		restarted := make(chan time.Duration, 1)
		sup.onRestart = func() { restarted <- time.Since(start) }
		b.HandleFailure(system, sup, child, actor.NewRestartStatistics(), errRefused, nil)
		if got := <-restarted; got != DefaultInitial {
			t.Errorf("restarted after %v, want %v", got, DefaultInitial)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	system := newSystem(t)
	clock := newFakeClock()
	b := &Backoff{Clock: clock, Retries: Forever}
	const parents, failures = 8, 50
	sups := make([]*fakeSupervisor, parents)
	var wg sync.WaitGroup
	for p := range parents {
		sups[p] = &fakeSupervisor{}
		wg.Go(func() {
			child := system.NewLocalPID(fmt.Sprintf("parent%d/conn", p))
			rs := actor.NewRestartStatistics()
			for range failures {
				b.HandleFailure(system, sups[p], child, rs, errRefused, nil)
				if p%2 == 0 {
					b.Cancel(child)
				}
			}
		})
	}
	// Fire timers concurrently with the failures and cancellations.
	wg.Go(func() {
		for range parents * failures {
			(<-clock.scheduled).Fire()
		}
	})
	wg.Go(func() {
		for range 20 {
			b.CancelAll()
			_ = b.Pending()
		}
	})
	wg.Wait()
	b.CancelAll()
	if n := b.Pending(); n != 0 {
		t.Errorf("Pending() = %d after CancelAll", n)
	}
	for p, sup := range sups {
		for _, c := range sup.recorded() {
			if c.op != "restart" {
				t.Errorf("parent %d: unexpected %s", p, c.op)
			}
		}
	}
}

func TestHandleFailureWithoutStatistics(t *testing.T) {
	h := newHarness(t, &Backoff{})
	h.rs = nil
	h.fail(errRefused)
	h.fail(errRefused)
	evts := h.events.take()
	if s, ok := evts[2].(*RestartScheduled); !ok || s.Attempt != 1 {
		t.Errorf("without RestartStatistics every failure should be attempt 1, got %s", eventList(evts))
	}
}

func TestRestartNow(t *testing.T) {
	clock := newFakeClock()
	b := &Backoff{Initial: time.Second, Jitter: -1, Clock: clock}
	sup := &fakeSupervisor{}
	child := actor.NewPID("local", "child")
	restarts := func() int {
		n := 0
		for _, c := range sup.recorded() {
			if c.op == "restart" {
				n++
			}
		}
		return n
	}
	if b.RestartNow(child) {
		t.Fatal("RestartNow with nothing pending reported a restart")
	}
	b.HandleFailure(nil, sup, child, actor.NewRestartStatistics(), io.EOF, nil)
	if got := restarts(); got != 0 {
		t.Fatalf("restarted before the delay: %d", got)
	}
	if !b.RestartNow(child) {
		t.Fatal("RestartNow found no pending restart")
	}
	if got := restarts(); got != 1 {
		t.Fatalf("RestartNow restarted %d times, want 1", got)
	}
	for _, tm := range clock.all() {
		tm.Fire()
	}
	if got := restarts(); got != 1 {
		t.Fatalf("the timer restarted the child again: %d restarts", got)
	}
	if b.Pending() != 0 {
		t.Fatalf("%d restarts still pending", b.Pending())
	}
}
