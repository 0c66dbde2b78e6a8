// Command timer is supcon's Timer example on slc's rpc layer: a node
// offers the interface com.example.Timer at /timer, and a client adds a
// timer, sees it listed, and gets the timeout event when it expires.
//
// By default both run in this process and the program ends by itself:
//
//	go run ./examples/timer
//
// They can also run apart, and the slc command can talk to the server:
//
//	go run ./examples/timer -serve 127.0.0.1:7000     # runs until Ctrl-C
//	go run ./examples/timer -connect 127.0.0.1:7000
//	slc describe -c 127.0.0.1:7000 timer
//	slc watch -c 127.0.0.1:7000 timer /timer com.example.Timer timeout
//	slc call -c 127.0.0.1:7000 timer /timer com.example.Timer add name=tea seconds=3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"sync"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/rpc"
)

// timerIface declares the interface as data: every method, event and
// argument is described, and the argument types are checked on each call.
var timerIface = rpc.Interface{
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
	Events: []rpc.Event{{
		Name:        "timeout",
		Description: "A timer expired.",
		Args:        []rpc.Argument{{Name: "name", Type: rpc.TypeString, Description: "The timer's name."}},
	}},
}

// The typed layer: a struct per argument list, checked against the
// declaration once, here.
type (
	AddIn struct {
		Name    string
		Seconds float64
	}
	RemoveIn  struct{ Name string }
	RemoveOut struct{ Removed bool }
	ListOut   struct{ Names []string }
	Timeout   struct{ Name string }
)

var (
	add     = rpc.MustMethod[AddIn, rpc.Empty](timerIface, "add")
	remove  = rpc.MustMethod[RemoveIn, RemoveOut](timerIface, "remove")
	list    = rpc.MustMethod[rpc.Empty, ListOut](timerIface, "list")
	timeout = rpc.MustEvent[Timeout](timerIface, "timeout")
)

// Timer implements com.example.Timer.
type Timer struct {
	impl *rpc.Implementation

	mu     sync.Mutex
	timers map[string]*time.Timer
}

func newTimer() (*Timer, error) {
	impl, err := rpc.NewImplementation(timerIface)
	if err != nil {
		return nil, err
	}
	t := &Timer{impl: impl, timers: map[string]*time.Timer{}}
	return t, errors.Join(
		add.Implement(impl, t.add),
		remove.Implement(impl, t.remove),
		list.Implement(impl, t.list),
	)
}

func (t *Timer) add(ctx context.Context, in AddIn) (rpc.Empty, error) {
	if in.Seconds < 0 {
		return rpc.Empty{}, rpc.Errorf(rpc.KindBadArguments, "seconds must not be negative, got %v", in.Seconds)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.timers[in.Name]; old != nil {
		old.Stop()
	}
	var tm *time.Timer
	tm = time.AfterFunc(time.Duration(in.Seconds*float64(time.Second)), func() {
		t.mu.Lock()
		mine := t.timers[in.Name] == tm
		if mine {
			delete(t.timers, in.Name)
		}
		t.mu.Unlock()
		if mine {
			timeout.Fire(context.Background(), t.impl, Timeout{Name: in.Name})
		}
	})
	t.timers[in.Name] = tm
	return rpc.Empty{}, nil
}

func (t *Timer) remove(ctx context.Context, in RemoveIn) (RemoveOut, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tm := t.timers[in.Name]
	if tm != nil {
		tm.Stop()
		delete(t.timers, in.Name)
	}
	return RemoveOut{Removed: tm != nil}, nil
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

// stop stops every timer.
func (t *Timer) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tm := range t.timers {
		tm.Stop()
	}
}

func main() {
	serve := flag.String("serve", "", "only serve the Timer, listening on this address, until Ctrl-C")
	connect := flag.String("connect", "", "only run the client, against the server at this address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch {
	case *serve != "":
		err = runServer(ctx, *serve, func(addr string) { fmt.Println("timer: serving on", addr) })
	case *connect != "":
		err = runClient(ctx, *connect)
	default:
		err = runBoth(ctx)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// runBoth runs the server and the client in this process.
func runBoth(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sctx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runServer(sctx, "127.0.0.1:0", func(addr string) { ready <- addr }) }()
	var err error
	select {
	case addr := <-ready:
		err = runClient(ctx, addr)
	case err = <-done:
		return err
	}
	stopServer()
	return errors.Join(err, <-done)
}

// runServer offers the Timer on a node named "timer" until ctx ends.
func runServer(ctx context.Context, addr string, listening func(string)) error {
	c, err := slc.New(slc.WithName("timer"))
	if err != nil {
		return err
	}
	defer c.Close()
	node, err := rpc.New(c)
	if err != nil {
		return err
	}
	defer node.Close()
	t, err := newTimer()
	if err != nil {
		return err
	}
	defer t.stop()
	if err := node.Register("/timer", t.impl); err != nil {
		return err
	}
	a, err := c.Listen(ctx, addr)
	if err != nil {
		return err
	}
	listening(a.String())
	<-ctx.Done()
	return nil
}

// runClient adds a timer on the server and waits for its timeout.
func runClient(ctx context.Context, addr string) error {
	c, err := slc.New(slc.WithName("timer-client"))
	if err != nil {
		return err
	}
	defer c.Close()
	node, err := rpc.New(c)
	if err != nil {
		return err
	}
	defer node.Close()
	peer, err := node.Connect(ctx, addr)
	if err != nil {
		return err
	}

	// What does the node offer?
	d, err := node.Describe(ctx, peer)
	if err != nil {
		return err
	}
	for _, p := range d.Paths {
		for _, i := range p.Interfaces {
			fmt.Printf("%s offers %s at %s: %s\n", peer, i.Name, p.Path, i.Description)
		}
	}

	// Subscribe to timeout, and wait until the node holds the subscription.
	fired := make(chan string, 1)
	sub, err := timeout.On(node, peer, "/timer", func(from slc.PeerID, ev Timeout) { fired <- ev.Name })
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := sub.Wait(ctx); err != nil {
		return err
	}

	// Add a timer and see it listed.
	const seconds = 0.5
	start := time.Now()
	if _, err := add.Call(ctx, node, peer, "/timer", AddIn{Name: "tea", Seconds: seconds}); err != nil {
		return err
	}
	running, err := list.Call(ctx, node, peer, "/timer", rpc.Empty{})
	if err != nil {
		return err
	}
	fmt.Println("running timers:", running.Names)

	// A typo is a typed remote error.
	_, err = node.Call(ctx, peer, "/timer", "com.example.Timer", "ad", rpc.Args{"name": "x"})
	fmt.Println("unknown method:", errors.Is(err, rpc.ErrUnknownMethod), "-", err)

	select {
	case name := <-fired:
		fmt.Printf("timer: %s timed out after %vs\n", name, seconds)
		if time.Since(start) < time.Duration(seconds*float64(time.Second)) {
			return errors.New("the timer fired early")
		}
	case <-ctx.Done():
		return fmt.Errorf("no timeout event: %w", ctx.Err())
	}
	return nil
}
