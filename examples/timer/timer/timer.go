// Package timer is the Timer of supcon's examples: the interface
// com.example.Timer, declared as data, its typed methods and event, and an
// implementation whose timers run on an injected Clock.
//
// The timer example (examples/timer) serves it; the rpc package's tests
// drive the same code with a fake clock.
package timer

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/slc-go/slc/rpc"
)

// Interface declares com.example.Timer.
var Interface = rpc.Interface{
	Name:        "com.example.Timer",
	Description: "Named timers that fire an event when they expire.",
	Methods: []rpc.Method{
		{
			Name:        "add",
			Description: "Start a timer; it fires timeout after the given number of seconds.",
			In: []rpc.Argument{
				{Name: "name", Type: rpc.TypeString, Description: "The timer's name, reported by timeout."},
				{Name: "seconds", Type: rpc.TypeFloat, Description: "How long until it fires, in seconds."},
			},
		},
		{
			Name:        "remove",
			Description: "Stop a timer before it fires.",
			In:          []rpc.Argument{{Name: "name", Type: rpc.TypeString, Description: "The timer's name."}},
			Out:         []rpc.Argument{{Name: "removed", Type: rpc.TypeBool, Description: "Whether such a timer was running."}},
		},
		{
			Name:        "list",
			Description: "List the running timers.",
			Out:         []rpc.Argument{{Name: "names", Type: rpc.TypeList, Description: "The running timers' names, sorted."}},
		},
	},
	Events: []rpc.Event{
		{
			Name:        "timeout",
			Description: "A timer expired.",
			Args:        []rpc.Argument{{Name: "name", Type: rpc.TypeString, Description: "The timer's name."}},
		},
	},
}

// Typed arguments.
type (
	AddIn struct {
		Name    string
		Seconds float64
	}
	RemoveIn struct {
		Name string
	}
	RemoveOut struct {
		Removed bool
	}
	ListOut struct {
		Names []string
	}
	Timeout struct {
		Name string
	}
)

// Typed methods and event.
var (
	Add       = rpc.MustMethod[AddIn, rpc.Empty](Interface, "add")
	Remove    = rpc.MustMethod[RemoveIn, RemoveOut](Interface, "remove")
	List      = rpc.MustMethod[rpc.Empty, ListOut](Interface, "list")
	TimeoutEv = rpc.MustEvent[Timeout](Interface, "timeout")
)

// Clock tells the time, and schedules f after d: stop cancels it,
// reporting whether it did. f runs on a goroutine of the clock's.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// RealClock is the system clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc runs f after d with time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Timer implements com.example.Timer. Register Impl on a node. Its
// methods are safe for concurrent use.
type Timer struct {
	Impl  *rpc.Implementation
	clock Clock

	mu     sync.Mutex
	timers map[string]*entry
}

type entry struct{ stop func() bool }

// New returns a Timer whose timers run on clock (RealClock{} for the
// system's).
func New(clock Clock) *Timer {
	t := &Timer{clock: clock, timers: map[string]*entry{}}
	impl, err := rpc.NewImplementation(Interface)
	if err != nil {
		panic(err)
	}
	t.Impl = impl
	must(Add.Implement(impl, t.add))
	must(Remove.Implement(impl, t.remove))
	must(List.Implement(impl, t.list))
	return t
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func (t *Timer) add(ctx context.Context, in AddIn) (rpc.Empty, error) {
	if in.Seconds < 0 {
		return rpc.Empty{}, rpc.Errorf(rpc.KindBadArguments, "seconds must not be negative, got %v", in.Seconds)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.timers[in.Name]; ok {
		old.stop()
	}
	e := &entry{}
	t.timers[in.Name] = e
	e.stop = t.clock.AfterFunc(time.Duration(in.Seconds*float64(time.Second)), func() {
		t.mu.Lock()
		mine := t.timers[in.Name] == e
		if mine {
			delete(t.timers, in.Name)
		}
		t.mu.Unlock()
		if mine {
			TimeoutEv.Fire(context.Background(), t.Impl, Timeout{Name: in.Name})
		}
	})
	return rpc.Empty{}, nil
}

func (t *Timer) remove(ctx context.Context, in RemoveIn) (RemoveOut, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.timers[in.Name]
	if ok {
		delete(t.timers, in.Name)
		e.stop()
	}
	return RemoveOut{Removed: ok}, nil
}

func (t *Timer) list(ctx context.Context, _ rpc.Empty) (ListOut, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.timers))
	for n := range t.timers {
		names = append(names, n)
	}
	slices.Sort(names)
	return ListOut{Names: names}, nil
}

// Stop stops every running timer; none of them fires.
func (t *Timer) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, e := range t.timers {
		e.stop()
		delete(t.timers, name)
	}
}
