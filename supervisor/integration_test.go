package supervisor

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// flakyConn is a child whose Started handler fails while starts <= failures,
// like a connection actor whose dial fails.
type flakyConn struct {
	starts   *atomic.Int32
	failures int32
}

func (c *flakyConn) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		if n := c.starts.Add(1); n <= c.failures {
			panic(fmt.Errorf("dial attempt %d: %w", n, errRefused))
		}
	}
}

// stopChild asks the parent to stop its child.
type stopChild struct{ cancel bool }

// peers is a parent supervising one flakyConn with a Backoff.
type peers struct {
	backoff    *Backoff
	childProps *actor.Props
	child      *actor.PID
	terminated chan<- *actor.Terminated
}

func (p *peers) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		child, err := ctx.SpawnNamed(p.childProps, "conn")
		if err != nil {
			panic(err)
		}
		p.child = child
	case *stopChild:
		if m.cancel {
			p.backoff.Cancel(p.child)
		}
		ctx.Stop(p.child)
	case *actor.Stopping:
		// No restart may be queued behind the Stop protoactor is about
		// to send to the children.
		p.backoff.Cancel(ctx.Children()...)
	case *actor.Terminated:
		p.terminated <- m
	}
}

type fixture struct {
	system     *actor.ActorSystem
	events     *events // subscribed before the parent is spawned
	parent     *actor.PID
	starts     *atomic.Int32
	terminated chan *actor.Terminated
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	system := newSystem(t)
	return &fixture{
		system:     system,
		events:     collect(t, system),
		starts:     new(atomic.Int32),
		terminated: make(chan *actor.Terminated, 1),
	}
}

// spawn starts the parent, which spawns a child failing its first
// failures starts.
func (f *fixture) spawn(t *testing.T, b *Backoff, failures int32) {
	t.Helper()
	childProps := actor.PropsFromProducer(func() actor.Actor {
		return &flakyConn{starts: f.starts, failures: failures}
	})
	parentProps := actor.PropsFromProducer(func() actor.Actor {
		return &peers{backoff: b, childProps: childProps, terminated: f.terminated}
	}, actor.WithSupervisor(b))
	var err error
	f.parent, err = f.system.Root.SpawnNamed(parentProps, "peers")
	if err != nil {
		t.Fatal(err)
	}
}

func spawnPeers(t *testing.T, b *Backoff, failures int32) *fixture {
	t.Helper()
	f := newFixture(t)
	f.spawn(t, b, failures)
	return f
}

// stop stops the parent and waits for it.
func (f *fixture) stop(t *testing.T) {
	t.Helper()
	if err := f.system.Root.StopFuture(f.parent).Wait(); err != nil {
		t.Fatalf("stopping parent: %v", err)
	}
}

func TestIntegrationBudgetExhausted(t *testing.T) {
	clock := newFakeClock()
	b := &Backoff{Clock: clock, Rand: half, Retries: 3}
	f := spawnPeers(t, b, 1000)

	for attempt := 1; attempt <= 3; attempt++ {
		timer := recv(t, clock.scheduled, "restart timer")
		// The child failed and is suspended: no restart without the timer.
		if n := f.starts.Load(); n != int32(attempt) {
			t.Fatalf("attempt %d: child started %d times before its timer fired", attempt, n)
		}
		if want := b.Delay(attempt); timer.d != want {
			t.Errorf("attempt %d: delay %v, want %v", attempt, timer.d, want)
		}
		timer.Fire()
	}

	term := recv(t, f.terminated, "child termination")
	if term.Who.Id != "peers/conn" {
		t.Errorf("terminated %v, want peers/conn", term.Who)
	}
	if n := f.starts.Load(); n != 4 {
		t.Errorf("child started %d times, want 4 (1 start + 3 restarts)", n)
	}
	if n := len(clock.all()); n != 3 {
		t.Errorf("%d timers scheduled, want 3", n)
	}

	var scheduled []int
	var exhausted []*RestartsExhausted
	for _, e := range f.events.take() {
		switch e := e.(type) {
		case *RestartScheduled:
			scheduled = append(scheduled, e.Attempt)
		case *RestartsExhausted:
			exhausted = append(exhausted, e)
		}
	}
	if fmt.Sprint(scheduled) != "[1 2 3]" {
		t.Errorf("RestartScheduled attempts = %v, want [1 2 3]", scheduled)
	}
	if len(exhausted) != 1 || exhausted[0].Attempts != 4 || exhausted[0].Child.Id != "peers/conn" {
		t.Errorf("RestartsExhausted = %+v, want one for peers/conn after 4 attempts", exhausted)
	}
	f.stop(t)
}

// In a synctest bubble, synctest.Wait proves the child stays down until its
// timer fires rather than merely observing that it has not come back yet.
func TestIntegrationRestartsOnlyWhenTimersFire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &fakeClock{}
		b := &Backoff{Clock: clock, Rand: half, Retries: 5}
		f := spawnPeers(t, b, 2) // recovers on the third start

		for attempt := 1; attempt <= 2; attempt++ {
			synctest.Wait()
			if n := f.starts.Load(); n != int32(attempt) {
				t.Fatalf("before timer %d: child started %d times", attempt, n)
			}
			active := clock.active()
			if len(active) != 1 {
				t.Fatalf("before timer %d: %d active timers, want 1", attempt, len(active))
			}
			active[0].Fire()
		}
		synctest.Wait()
		if n := f.starts.Load(); n != 3 {
			t.Fatalf("child started %d times, want 3", n)
		}
		if n := len(clock.all()); n != 2 {
			t.Fatalf("%d timers scheduled, want 2 (the child recovered)", n)
		}
		select {
		case m := <-f.terminated:
			t.Fatalf("child terminated after recovering: %v", m)
		default:
		}
		f.stop(t)
	})
}

func TestIntegrationDefaultClockDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Jitter disabled; the default clock runs on the bubble's fake time.
		b := &Backoff{Jitter: -1, Retries: 4}
		f := newFixture(t)
		start := time.Now()
		var restarts []time.Duration
		sub := f.system.EventStream.Subscribe(func(evt any) {
			if _, ok := evt.(*RestartScheduled); ok {
				restarts = append(restarts, time.Since(start))
			}
		})
		defer f.system.EventStream.Unsubscribe(sub)
		f.spawn(t, b, 1000)

		<-f.terminated
		// Failures happen at 0, 50ms, 150ms, 350ms and 750ms (exhausted).
		want := []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond, 350 * time.Millisecond}
		if fmt.Sprint(restarts) != fmt.Sprint(want) {
			t.Errorf("restarts scheduled at %v, want %v", restarts, want)
		}
		if got := time.Since(start); got != 750*time.Millisecond {
			t.Errorf("child stopped after %v, want 750ms", got)
		}
		if n := f.starts.Load(); n != 5 {
			t.Errorf("child started %d times, want 5", n)
		}
		f.stop(t)
	})
}

func TestIntegrationStopChildWithPendingRestart(t *testing.T) {
	for _, cancel := range []bool{true, false} {
		t.Run(fmt.Sprintf("cancel=%v", cancel), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clock := &fakeClock{}
				b := &Backoff{Clock: clock}
				f := spawnPeers(t, b, 1000)
				dead := 0
				sub := f.system.EventStream.Subscribe(func(evt any) {
					if d, ok := evt.(*actor.DeadLetterEvent); ok {
						if _, ok := d.Message.(*actor.Restart); ok {
							dead++
						}
					}
				})
				defer f.system.EventStream.Unsubscribe(sub)

				synctest.Wait()
				timer := clock.all()[0]
				f.system.Root.Send(f.parent, &stopChild{cancel: cancel})
				<-f.terminated
				if cancel && timer.state() != timerStopped {
					t.Error("Cancel did not stop the pending timer")
				}
				// A late restart of the stopped child is only a dead letter.
				if fired := timer.Fire(); fired == cancel {
					t.Fatalf("timer fired = %v with cancel = %v", fired, cancel)
				}
				synctest.Wait()
				if want := map[bool]int{true: 0, false: 1}[cancel]; dead != want {
					t.Errorf("%d dead-lettered restarts, want %d", dead, want)
				}
				if n := f.starts.Load(); n != 1 {
					t.Errorf("child started %d times, want 1", n)
				}
				if n := b.Pending(); n != 0 {
					t.Errorf("Pending() = %d, want 0", n)
				}
				f.stop(t)
				// A dead letter starts protoactor's log throttle, a goroutine
				// that exits after DeadLetterThrottleInterval. In the bubble
				// this only advances the fake clock.
				time.Sleep(f.system.Config.DeadLetterThrottleInterval)
			})
		})
	}
}

func TestIntegrationParentStopsWithPendingRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &fakeClock{}
		b := &Backoff{Clock: clock}
		f := spawnPeers(t, b, 1000)
		synctest.Wait()
		if n := b.Pending(); n != 1 {
			t.Fatalf("Pending() = %d, want 1", n)
		}
		f.stop(t) // the parent's Stopping handler cancels the restart
		if n := b.Pending(); n != 0 {
			t.Errorf("Pending() = %d after the parent stopped, want 0", n)
		}
		if st := clock.all()[0].state(); st != timerStopped {
			t.Errorf("timer state = %v, want stopped", st)
		}
	})
}
