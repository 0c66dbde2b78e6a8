package supervisor

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newSystem returns an actor system with protoactor's logging silenced,
// shut down when the test ends.
func newSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(system.Shutdown)
	return system
}

// fakeClock records scheduled calls; tests fire them explicitly.
type fakeClock struct {
	mu     sync.Mutex
	timers []*fakeTimer
	// scheduled, if not nil, receives every new timer.
	scheduled chan *fakeTimer
}

func newFakeClock() *fakeClock {
	return &fakeClock{scheduled: make(chan *fakeTimer, 128)}
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &fakeTimer{d: d, f: f}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	if c.scheduled != nil {
		c.scheduled <- t
	}
	return t
}

// all returns every timer scheduled so far.
func (c *fakeClock) all() []*fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*fakeTimer(nil), c.timers...)
}

// active returns the timers neither fired nor stopped.
func (c *fakeClock) active() []*fakeTimer {
	var out []*fakeTimer
	for _, t := range c.all() {
		if t.state() == timerActive {
			out = append(out, t)
		}
	}
	return out
}

type timerState int

const (
	timerActive timerState = iota
	timerStopped
	timerFired
)

type fakeTimer struct {
	d  time.Duration
	f  func()
	mu sync.Mutex
	st timerState
}

func (t *fakeTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.st != timerActive {
		return false
	}
	t.st = timerStopped
	return true
}

// Fire runs the scheduled function unless the timer was stopped or fired,
// and reports whether it ran.
func (t *fakeTimer) Fire() bool {
	t.mu.Lock()
	if t.st != timerActive {
		t.mu.Unlock()
		return false
	}
	t.st = timerFired
	t.mu.Unlock()
	t.f()
	return true
}

func (t *fakeTimer) state() timerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// call is one recorded actor.Supervisor call.
type call struct {
	op      string // "restart", "stop", "resume", "escalate"
	pids    []*actor.PID
	reason  any
	message any
}

// fakeSupervisor records the calls a strategy makes.
type fakeSupervisor struct {
	mu    sync.Mutex
	calls []call
	// onRestart, if set, runs inside RestartChildren before it returns.
	onRestart func()
}

func (s *fakeSupervisor) record(c call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

func (s *fakeSupervisor) Children() []*actor.PID { return nil }
func (s *fakeSupervisor) EscalateFailure(reason, message any) {
	s.record(call{op: "escalate", reason: reason, message: message})
}
func (s *fakeSupervisor) RestartChildren(pids ...*actor.PID) {
	if s.onRestart != nil {
		s.onRestart()
	}
	s.record(call{op: "restart", pids: pids})
}
func (s *fakeSupervisor) StopChildren(pids ...*actor.PID) {
	s.record(call{op: "stop", pids: pids})
}
func (s *fakeSupervisor) ResumeChildren(pids ...*actor.PID) {
	s.record(call{op: "resume", pids: pids})
}

func (s *fakeSupervisor) recorded() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

// events subscribes to system's EventStream and collects the supervision
// events published on it.
type events struct {
	mu  sync.Mutex
	all []any
}

func collect(t *testing.T, system *actor.ActorSystem) *events {
	t.Helper()
	e := &events{}
	sub := system.EventStream.Subscribe(func(evt any) {
		switch evt.(type) {
		case *RestartScheduled, *RestartsExhausted, *actor.SupervisorEvent:
			e.mu.Lock()
			e.all = append(e.all, evt)
			e.mu.Unlock()
		}
	})
	t.Cleanup(func() { system.EventStream.Unsubscribe(sub) })
	return e
}

func (e *events) take() []any {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.all
	e.all = nil
	return out
}

// recv returns the next value from ch. The timeout only turns a hang into a
// readable failure; no assertion depends on it.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func half() float64 { return 0.5 }
