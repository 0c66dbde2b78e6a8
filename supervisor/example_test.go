package supervisor_test

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/supervisor"
)

// A parent supervises a connection actor whose dial keeps failing. The
// Backoff restarts it twice, then gives up and stops it.
func Example() {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	defer system.Shutdown()

	// Subscribers run synchronously on the parent's goroutine.
	sub := system.EventStream.Subscribe(func(evt any) {
		switch e := evt.(type) {
		case *supervisor.RestartScheduled:
			fmt.Printf("attempt %d failed (%v): restarting in %v\n", e.Attempt, e.Reason, e.Delay)
		case *supervisor.RestartsExhausted:
			fmt.Printf("attempt %d failed (%v): giving up\n", e.Attempts, e.Reason)
		}
	})
	defer system.EventStream.Unsubscribe(sub)

	backoff := &supervisor.Backoff{
		Initial: -1, // no delay, so the example runs at once; see ExampleBackoff_Delay
		Retries: 2,
	}

	dials := 0
	conn := actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Started); ok {
			dials++
			panic(fmt.Errorf("dial peer: %w", io.ErrUnexpectedEOF))
		}
	})

	stopped := make(chan struct{})
	parent := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started:
			ctx.Spawn(conn)
		case *actor.Terminated:
			close(stopped)
		}
	}, actor.WithSupervisor(backoff)))

	<-stopped
	fmt.Println("connection stopped after", dials, "dials")
	_ = system.Root.StopFuture(parent).Wait()

	// Output:
	// attempt 1 failed (dial peer: unexpected EOF): restarting in 0s
	// attempt 2 failed (dial peer: unexpected EOF): restarting in 0s
	// attempt 3 failed (dial peer: unexpected EOF): giving up
	// connection stopped after 3 dials
}

func ExampleBackoff_Delay() {
	backoff := supervisor.DefaultBackoff()
	backoff.Jitter = -1 // negative: no jitter
	var delays []time.Duration
	for attempt := 1; attempt <= 8; attempt++ {
		delays = append(delays, backoff.Delay(attempt))
	}
	fmt.Println(delays)

	backoff.Jitter = 0.2
	backoff.Rand = func() float64 { return 0 } // the lowest jitter factor, 0.8
	fmt.Println(backoff.Delay(1), backoff.Delay(3), backoff.Delay(1000))
	// Output:
	// [50ms 100ms 200ms 400ms 800ms 1.6s 3.2s 5s]
	// 40ms 160ms 5s
}

func ExampleClassify() {
	for _, reason := range []any{
		fmt.Errorf("read frame: %w", io.EOF),
		errBadMagic,
		"index out of range",
	} {
		class := supervisor.Classify(reason)
		fmt.Printf("%-20v %-8v %v\n", reason, class, supervisor.DefaultDecider(reason) == actor.StopDirective)
	}
	// Output:
	// read frame: EOF      Network  false
	// bad magic number     Protocol true
	// index out of range   Other    false
}

// protocolError is permanent: reconnecting to a peer that speaks another
// protocol cannot help.
type protocolError string

func (e protocolError) Error() string   { return string(e) }
func (e protocolError) Permanent() bool { return true }

var errBadMagic = protocolError("bad magic number")

func ExampleDecider() {
	backoff := supervisor.DefaultBackoff()
	// Bugs go up to the parent's own supervisor instead of reconnecting.
	backoff.Decider = supervisor.Decider(map[supervisor.Class]actor.Directive{
		supervisor.Other: actor.EscalateDirective,
	})
	fmt.Println(backoff.Decider("nil map write") == actor.EscalateDirective)
	fmt.Println(backoff.Decider(io.ErrUnexpectedEOF) == actor.RestartDirective)
	// Output:
	// true
	// true
}
