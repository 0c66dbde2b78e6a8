// Package supervisor provides the supervision strategy that turns a
// failed peer connection into a reconnect: a [Backoff] restarts a failing
// child actor after an exponentially growing, jittered delay, and gives up
// once a retry budget is spent.
//
// Protoactor's own ExponentialBackoff strategy grows its delay linearly and
// never gives up; Backoff replaces it.
//
// # Backoff
//
// A Backoff is an actor.SupervisorStrategy. Install it on the Props of the
// parent whose children it should supervise:
//
//	backoff := supervisor.DefaultBackoff()
//	backoff.Max = 2 * time.Second
//	props := actor.PropsFromProducer(newPeers, actor.WithSupervisor(backoff))
//
// Every field's zero value means its default, so &supervisor.Backoff{} is
// the same strategy as DefaultBackoff(). The delay before attempt n is
// Initial*Multiplier^(n-1) (50ms, 100ms, 200ms, ... by default), scaled by a
// random factor in [1-Jitter, 1+Jitter] and capped at Max (5s). A negative
// Initial or Max disables the delay: children restart at once.
//
// Protoactor calls HandleFailure on the parent's goroutine while the failed
// child's mailbox is suspended. Backoff never blocks or sleeps there: it
// schedules the restart with its Clock, and the child stays suspended
// (processing only system messages) until the timer fires. Backoff.Cancel
// and Backoff.CancelAll drop pending restarts; a parent should Cancel a
// child before stopping it, and Cancel all its children when it receives
// *actor.Stopping, because protoactor revives a stopped child whose Restart
// was queued behind its Stop. One Backoff may supervise many parents;
// configure it before first use and do not change it after.
//
// # Retry budget
//
// Retries is the number of consecutive restarts a child gets. The failure
// whose attempt number exceeds it stops the child, so the parent receives
// *actor.Terminated. Retries: 0 means DefaultRetries (20), Forever (-1)
// never gives up, and NoRetries (-2) stops the child at its first failure.
//
// The attempt number comes from the failure reason when it can tell:
// a reason, or any error in its errors.Unwrap chain, with an
//
//	Attempt() int
//
// method is trusted. A peer connection counts its own consecutive failed
// connection attempts and resets the count once connected, which is more
// precise than anything a supervisor can observe. For other reasons the
// Backoff counts the failure streak in the child's
// actor.RestartStatistics: a failure more than ResetAfter (30s) after the
// previous one starts again at attempt 1.
//
// # Deciders
//
// Before any of this, the Decider turns the reason into a directive.
// [Classify] sorts reasons into Network (transient transport errors such as
// refused connections or io.EOF), Protocol (errors whose Permanent() bool
// method reports true) and Other. [DefaultDecider] restarts Network and
// Other failures and stops Protocol ones; [Decider] builds a decider from a
// table:
//
//	backoff.Decider = supervisor.Decider(map[supervisor.Class]actor.Directive{
//		supervisor.Other: actor.EscalateDirective,
//	})
//
// Resume and Escalate behave as in protoactor's one-for-one strategy.
//
// # Events
//
// A Backoff publishes on the actor system's EventStream:
//
//   - *RestartScheduled when it schedules a restart (with attempt and
//     delay), followed by *actor.SupervisorEvent with RestartDirective;
//   - *RestartsExhausted when the budget is spent, followed by
//     *actor.SupervisorEvent with StopDirective;
//   - *actor.SupervisorEvent with StopDirective or ResumeDirective when the
//     Decider asks for it.
//
// EventStream.Publish is synchronous: subscribers run on the parent's
// goroutine inside HandleFailure, before the child is stopped or its restart
// arranged. Keep them short and never block in them.
//
//	sub := system.EventStream.Subscribe(func(evt any) {
//		if e, ok := evt.(*supervisor.RestartScheduled); ok {
//			log.Printf("reconnecting %v in %v (attempt %d)", e.Child, e.Delay, e.Attempt)
//		}
//	})
//	defer system.EventStream.Unsubscribe(sub)
//
// # Testing with an injected Clock
//
// Clock and Rand make a Backoff deterministic. A fake Clock records the
// restarts and lets the test fire them; a fixed Rand of 0.5 makes every
// jitter factor exactly 1:
//
//	clock := &fakeClock{} // AfterFunc records d and f; the test calls f
//	backoff := &supervisor.Backoff{
//		Clock: clock,
//		Rand:  func() float64 { return 0.5 },
//	}
//
// No restart happens until the test fires a recorded function, so the test
// can assert on the child's state in between without sleeping. Setting
// Initial to a negative value instead restarts children synchronously, and
// code run under testing/synctest can keep the default clock, since
// time.AfterFunc follows the bubble's fake time there.
package supervisor
