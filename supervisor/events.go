package supervisor

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// RestartScheduled is published on the actor system's EventStream when a
// [Backoff] has decided to restart a failed child after Delay. It is
// published before the restart is arranged; a restart that is later
// cancelled is not reported again.
//
// EventStream.Publish is synchronous: subscribers run on the parent's
// goroutine, inside the supervision of the failure, and must not block.
type RestartScheduled struct {
	Child   *actor.PID
	Attempt int           // 1-based attempt number of the failure
	Delay   time.Duration // wait before the restart; 0 means at once
	Reason  any           // the failure reason (usually the panic value)
}

// RestartsExhausted is published on the actor system's EventStream when a
// [Backoff] stops a failed child because its retry budget is spent, just
// before the child is told to stop; its parent then receives
// *actor.Terminated. Like RestartScheduled, it is delivered synchronously
// on the parent's goroutine.
type RestartsExhausted struct {
	Child    *actor.PID
	Attempts int // attempt number of the failure that exceeded the budget
	Reason   any // the failure reason of that last failure
}
