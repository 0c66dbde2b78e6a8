package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/slc-go/slc/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testutil.LeakOptions()...) }

// TestTimerFakeClock runs the example's server and client in this
// process, as the program does by default, on a fake clock: the client
// adds a 5-second timer and gets the timeout event exactly when the clock
// reaches 5 seconds.
func TestTimerFakeClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clock := newFakeClock()
	out := newSyncBuffer()
	done := make(chan error, 1)
	go func() { done <- runBoth(ctx, out, clock, 5) }()
	select {
	case d := <-clock.scheduled:
		if d != 5*time.Second {
			t.Fatalf("timer scheduled for %v, want 5s", d)
		}
	case err := <-done:
		t.Fatalf("ended before scheduling a timer: %v\n%s", err, out.String())
	case <-ctx.Done():
		t.Fatal("no timer scheduled")
	}
	// The client lists the timers and tries a typo before it waits.
	for !strings.Contains(out.String(), "unknown method:") {
		select {
		case <-out.changed:
		case err := <-done:
			t.Fatalf("ended early: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("the client did not get to wait:\n%s", out.String())
		}
	}
	clock.Advance(4999 * time.Millisecond)
	if n := clock.firedCount(); n != 0 {
		t.Fatalf("%d timers fired after 4.999s", n)
	}
	select {
	case err := <-done:
		t.Fatalf("ended after 4.999s: %v\n%s", err, out.String())
	default:
	}
	clock.Advance(time.Millisecond)
	if n := clock.firedCount(); n != 1 {
		t.Fatalf("%d timers fired after 5s, want 1", n)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Fatal("did not end after the timeout")
	}
	for _, want := range []string{
		"timer offers com.example.Timer at /timer: Named timers that fire an event when they expire.\n",
		"running timers: [tea]\n",
		"unknown method: true - rpc: timer /timer com.example.Timer.ad: unknown method",
		"timer: tea timed out after 5s\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// syncBuffer is an output that the test reads while the client writes;
// changed is signaled on each write.
type syncBuffer struct {
	changed chan struct{}
	mu      sync.Mutex
	b       bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeClock is a manual timer.Clock: time moves only with Advance, which
// runs the timers that are due. scheduled reports each AfterFunc's delay.
type fakeClock struct {
	scheduled chan time.Duration

	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	fired  int
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{scheduled: make(chan time.Duration, 10), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	ft := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, ft)
	c.mu.Unlock()
	c.scheduled <- d
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !ft.stopped
		ft.stopped = true
		return was
	}
}

// Advance moves the clock forward by d and runs the due timers on the
// calling goroutine.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	rest := c.timers[:0]
	for _, ft := range c.timers {
		switch {
		case ft.stopped:
		case !ft.at.After(c.now):
			ft.stopped = true
			due = append(due, ft)
		default:
			rest = append(rest, ft)
		}
	}
	c.timers = rest
	c.fired += len(due)
	c.mu.Unlock()
	for _, ft := range due {
		ft.f()
	}
}

func (c *fakeClock) firedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fired
}

// TestTimerExample builds the example and runs it, with a half-second
// timer: it must end by itself, exit 0 and report the timeout.
func TestTimerExample(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "timer")
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-seconds", "0.5")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("did not end within a minute\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"timer offers com.example.Timer at /timer: Named timers that fire an event when they expire.\n",
		"running timers: [tea]\n",
		"unknown method: true - rpc: timer /timer com.example.Timer.ad: unknown method",
		"timer: tea timed out after 0.5s\n",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("wrote to stderr:\n%s", stderr.String())
	}
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
