package supervisor

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Defaults used by a [Backoff] for fields left at their zero value.
const (
	DefaultInitial    = 50 * time.Millisecond
	DefaultMax        = 5 * time.Second
	DefaultMultiplier = 2.0
	DefaultJitter     = 0.2
	DefaultRetries    = 20
	DefaultResetAfter = 30 * time.Second
)

// Special values of [Backoff.Retries].
const (
	// Forever makes a Backoff restart a failing child without limit.
	Forever = -1
	// NoRetries makes a Backoff stop a failing child at its first
	// failure instead of restarting it. (Retries: 0 selects
	// DefaultRetries, like every other zero field.)
	NoRetries = -2
)

// Clock schedules the delayed restarts of a [Backoff]. Tests inject a fake
// to decide when restarts happen; the default uses [time.AfterFunc].
//
// AfterFunc calls f at most once, after d, on a goroutine of its choosing;
// it is called on the parent's goroutine and must not block. A Clock used by
// several parents must be safe for concurrent use.
type Clock interface {
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call returned by [Clock.AfterFunc]. Stop prevents the
// call if it has not started yet and reports whether it did so; *time.Timer
// implements it.
type Timer interface {
	Stop() bool
}

type systemClock struct{}

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Backoff is an [actor.SupervisorStrategy] that restarts a failing child
// after an exponentially growing, jittered delay, and stops it once its
// retry budget is spent. Install it with actor.WithSupervisor on the
// parent's Props.
//
// Every field's zero value selects its default (see the Default constants),
// so &Backoff{} and DefaultBackoff() behave the same. Negative durations
// have the documented special meanings below.
//
// Configure a Backoff before its first use and do not change or copy it
// afterwards. After that its methods are safe for concurrent use, and one
// Backoff may supervise the children of many parents; HandleFailure never
// blocks and never sleeps.
type Backoff struct {
	// Initial is the delay before the first restart of a failure streak.
	// Zero means DefaultInitial (50ms). Negative means no delay at all:
	// every restart happens at once.
	Initial time.Duration

	// Max caps every delay, jitter included. Zero means DefaultMax (5s).
	// Negative means no delay at all, like a negative Initial.
	Max time.Duration

	// Multiplier is the growth factor from one attempt's delay to the
	// next. Zero means DefaultMultiplier (2). Values below 1 (or NaN) are
	// treated as 1: a constant delay.
	Multiplier float64

	// Jitter spreads delays: each one is scaled by a factor drawn
	// uniformly from [1-Jitter, 1+Jitter] before it is capped at Max.
	// Zero means DefaultJitter (0.2). Negative means no jitter; values
	// above 1 are treated as 1.
	Jitter float64

	// Retries is the retry budget: how many consecutive restarts a child
	// gets before it is stopped. Attempt n is allowed while n <= Retries.
	// Zero means DefaultRetries (20); Forever (-1) never gives up;
	// NoRetries (-2, or any value below it) stops the child at its first
	// failure.
	Retries int

	// ResetAfter ends a failure streak: a failure that comes more than
	// ResetAfter after the previous one starts counting again at attempt
	// 1. It applies only to reasons that do not report their own attempt
	// number (see HandleFailure), and is measured with the child's
	// actor.RestartStatistics. Keep it well above Max, or the backoff
	// wait alone can end a streak. Zero means DefaultResetAfter (30s);
	// negative means a streak never ends.
	ResetAfter time.Duration

	// Decider maps a failure reason to a directive. Nil means
	// DefaultDecider. It runs on the parent's goroutine, possibly for
	// several parents at once.
	Decider actor.DeciderFunc

	// Clock schedules delayed restarts. Nil means the system clock
	// (time.AfterFunc).
	Clock Clock

	// Rand returns a uniformly distributed number in [0, 1) for the
	// jitter. Nil means math/rand/v2.Float64. It must be safe for
	// concurrent use if the Backoff supervises more than one parent.
	Rand func() float64

	mu      sync.Mutex
	pending map[pidKey]*pendingRestart // scheduled, not yet fired
	firing  map[*pendingRestart]pidKey // fired, restart being sent
}

// DefaultBackoff returns a new Backoff with every field set to its
// documented default: 50ms initial delay doubling up to 5s, ±20% jitter,
// 20 retries, streaks forgotten after 30s, DefaultDecider and the system
// clock.
func DefaultBackoff() *Backoff {
	return &Backoff{
		Initial:    DefaultInitial,
		Max:        DefaultMax,
		Multiplier: DefaultMultiplier,
		Jitter:     DefaultJitter,
		Retries:    DefaultRetries,
		ResetAfter: DefaultResetAfter,
		Decider:    DefaultDecider,
	}
}

var _ actor.SupervisorStrategy = (*Backoff)(nil)

// pidKey identifies a child in the pending-restart table. PID pointers are
// not stable identities (copies travel in messages), so the key holds the
// PID's fields.
type pidKey struct {
	address   string
	id        string
	requestID uint32
}

func keyOf(pid *actor.PID) pidKey {
	if pid == nil {
		return pidKey{}
	}
	return pidKey{address: pid.Address, id: pid.Id, requestID: pid.RequestId}
}

type pendingRestart struct {
	timer Timer         // nil until Clock.AfterFunc has returned
	done  chan struct{} // closed once a firing restart has been sent
	sup   actor.Supervisor
	child *actor.PID
}

func (p *pendingRestart) stop() {
	if p != nil && p.timer != nil {
		p.timer.Stop()
	}
}

// Delay returns the delay before restart attempt number attempt (1-based;
// lower values count as 1): Initial*Multiplier^(attempt-1), scaled by the
// jitter factor and capped at Max. It depends only on attempt, the
// configuration and one call to Rand (none when jitter is disabled), is
// never negative, and saturates at Max for arbitrarily large attempts.
func (b *Backoff) Delay(attempt int) time.Duration {
	initial := durationOr(b.Initial, DefaultInitial)
	maxDelay := durationOr(b.Max, DefaultMax)
	if initial <= 0 || maxDelay <= 0 {
		return 0
	}
	if attempt < 1 {
		attempt = 1
	}

	mult := b.Multiplier
	if mult == 0 {
		mult = DefaultMultiplier
	}
	if !(mult >= 1) { // also catches NaN
		mult = 1
	}

	factor := 1.0
	if j := b.jitter(); j > 0 {
		r := b.random()
		if !(r >= 0) { // NaN or negative
			r = 0
		} else if r > 1 {
			r = 1
		}
		factor = 1 - j + 2*j*r
	}

	// Float arithmetic saturates at +Inf instead of wrapping, and the
	// comparison below maps +Inf (and anything at or above Max) to Max.
	d := float64(initial) * math.Pow(mult, float64(attempt-1)) * factor
	if !(d < float64(maxDelay)) {
		return maxDelay
	}
	if d = math.Round(d); d <= 0 {
		return 0
	}
	return time.Duration(d)
}

func durationOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func (b *Backoff) jitter() float64 {
	j := b.Jitter
	switch {
	case j == 0:
		return DefaultJitter
	case !(j > 0): // negative or NaN
		return 0
	case j > 1:
		return 1
	}
	return j
}

func (b *Backoff) random() float64 {
	if b.Rand != nil {
		return b.Rand()
	}
	return rand.Float64()
}

func (b *Backoff) retries() int {
	switch r := b.Retries; {
	case r == 0:
		return DefaultRetries
	case r == Forever:
		return Forever
	case r < 0:
		return 0
	default:
		return r
	}
}

func (b *Backoff) decide(reason any) actor.Directive {
	if b.Decider != nil {
		return b.Decider(reason)
	}
	return DefaultDecider(reason)
}

func (b *Backoff) clock() Clock {
	if b.Clock != nil {
		return b.Clock
	}
	return systemClock{}
}

// attempter is implemented by failure reasons that know which consecutive
// attempt failed, such as a connection error that counts failed dials
// itself and resets the count after a successful connection.
type attempter interface {
	Attempt() int
}

func reportedAttempt(reason any) (int, bool) {
	if a, ok := reason.(attempter); ok {
		return a.Attempt(), true
	}
	if err, ok := reason.(error); ok {
		var a attempter
		if errors.As(err, &a) {
			return a.Attempt(), true
		}
	}
	return 0, false
}

// attempt returns the 1-based attempt number of this failure, recording it
// in rs when the reason does not report it.
func (b *Backoff) attempt(rs *actor.RestartStatistics, reason any) int {
	if n, ok := reportedAttempt(reason); ok {
		return max(n, 1)
	}
	if rs == nil {
		return 1
	}
	window := b.ResetAfter
	if window == 0 {
		window = DefaultResetAfter
	}
	if window > 0 && rs.NumberOfFailures(window) == 0 {
		rs.Reset() // the previous streak is over
	}
	rs.Fail()
	return rs.FailureCount()
}

// HandleFailure implements [actor.SupervisorStrategy]. Protoactor calls it
// on the parent's goroutine while the failed child's mailbox is suspended.
//
// The Decider picks the directive. Resume resumes the child and Escalate
// escalates to the parent's own supervisor, as in protoactor. Stop stops
// the child. Restart works out the attempt number: the reason's own, if the
// reason or an error in its chain has an Attempt() int method, and
// otherwise the length of the current failure streak in rs (see
// ResetAfter). If the attempt exceeds the retry budget the child is
// stopped and a [*RestartsExhausted] is published; otherwise a
// [*RestartScheduled] is published and the child is restarted after
// Delay(attempt) through the Clock, or at once, on this goroutine, if the
// delay is zero. Directives other than the four known ones stop the child.
//
// An [*actor.SupervisorEvent] carrying the directive actually applied
// (Restart once scheduled, Stop when stopping, Resume) is published too,
// after the Backoff's own event. A new failure of a child supersedes any
// restart still pending for it.
func (b *Backoff) HandleFailure(system *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason any, message any) {
	key := keyOf(child)
	// A restart still pending for this child belongs to an earlier failure
	// (the child failed again while suspended, or is a new actor reusing
	// the name of a stopped one); this failure decides what happens now.
	b.forget(key)

	switch directive := b.decide(reason); directive {
	case actor.ResumeDirective:
		publish(system, &actor.SupervisorEvent{Child: child, Reason: reason, Directive: actor.ResumeDirective})
		sup.ResumeChildren(child)
	case actor.EscalateDirective:
		// The parent's supervisor reports the failure; protoactor does not
		// publish an event here either.
		sup.EscalateFailure(reason, message)
	case actor.RestartDirective:
		b.restart(system, sup, child, key, rs, reason)
	default: // StopDirective and unknown directives
		b.stop(system, sup, child, reason)
	}
}

func (b *Backoff) restart(system *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, key pidKey, rs *actor.RestartStatistics, reason any) {
	attempt := b.attempt(rs, reason)
	if budget := b.retries(); budget != Forever && attempt > budget {
		publish(system, &RestartsExhausted{Child: child, Attempts: attempt, Reason: reason})
		b.stop(system, sup, child, reason)
		return
	}

	delay := b.Delay(attempt)
	publish(system, &RestartScheduled{Child: child, Attempt: attempt, Delay: delay, Reason: reason})
	publish(system, &actor.SupervisorEvent{Child: child, Reason: reason, Directive: actor.RestartDirective})
	if delay <= 0 {
		sup.RestartChildren(child)
		return
	}
	b.schedule(sup, child, key, delay)
}

func (b *Backoff) stop(system *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, reason any) {
	publish(system, &actor.SupervisorEvent{Child: child, Reason: reason, Directive: actor.StopDirective})
	sup.StopChildren(child)
}

func publish(system *actor.ActorSystem, event any) {
	if system != nil && system.EventStream != nil {
		system.EventStream.Publish(event)
	}
}

// schedule arranges sup.RestartChildren(child) after delay. The restart
// runs on the Clock's goroutine; RestartChildren only posts a system message
// to the child, so it does not touch the parent's state.
func (b *Backoff) schedule(sup actor.Supervisor, child *actor.PID, key pidKey, delay time.Duration) {
	p := &pendingRestart{sup: sup, child: child}
	b.mu.Lock()
	if b.pending == nil {
		b.pending = make(map[pidKey]*pendingRestart)
	}
	b.pending[key] = p
	b.mu.Unlock()

	// AfterFunc is called without the lock held, so a Clock that fires
	// promptly cannot deadlock against fire.
	t := b.clock().AfterFunc(delay, func() { b.fire(sup, child, key, p) })
	if t == nil {
		return
	}

	b.mu.Lock()
	if b.pending[key] == p {
		p.timer = t
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	// Cancelled (or fired) before the timer was recorded: make sure a
	// cancelled restart does not run. Stopping a fired timer is harmless.
	t.Stop()
}

// fire performs the pending restart p unless it was cancelled or
// superseded. While the restart message is being sent, p stays in the
// firing set so that Cancel can wait for it.
func (b *Backoff) fire(sup actor.Supervisor, child *actor.PID, key pidKey, p *pendingRestart) {
	b.mu.Lock()
	if b.pending[key] != p {
		b.mu.Unlock()
		return
	}
	delete(b.pending, key)
	p.done = make(chan struct{})
	if b.firing == nil {
		b.firing = make(map[*pendingRestart]pidKey)
	}
	b.firing[p] = key
	b.mu.Unlock()

	defer func() {
		b.mu.Lock()
		delete(b.firing, p)
		b.mu.Unlock()
		close(p.done)
	}()
	sup.RestartChildren(child)
}

// forget removes and stops the pending restart of key, if any, without
// waiting for one that is firing.
func (b *Backoff) forget(key pidKey) {
	b.mu.Lock()
	p := b.pending[key]
	delete(b.pending, key)
	b.mu.Unlock()
	p.stop()
}

// Cancel drops the pending restarts of the given children and waits for
// any of their restarts that is being sent at that moment. When it
// returns, every restart of these children by this Backoff has either
// reached the child's mailbox or never will, so
//
//	backoff.Cancel(pid)
//	ctx.Stop(pid)
//
// cannot queue a Restart behind the Stop. This matters: protoactor
// processes a Restart queued behind a Stop by reviving the stopped child,
// which then runs unreachable. A parent that stops or restarts itself
// should likewise call Cancel(ctx.Children()...) when it receives
// *actor.Stopping or *actor.Restarting, before protoactor stops the
// children. A restart that fires after its child has finished stopping is
// harmless without Cancel: it ends up as an actor.DeadLetterEvent.
//
// Cancel covers the restarts scheduled before it is called. If the child
// failed just before it was told to stop, its failure can still reach the
// parent afterwards and schedule a new restart; that restart revives the
// child only if it arrives before the child has finished stopping.
//
// A child whose restart is cancelled stays suspended until its parent stops
// (or resumes, or restarts) it. Cancelling a child without a pending restart
// does nothing. Cancel must not be called from code that the restart itself
// runs synchronously, which only a synchronous dispatcher can arrange.
func (b *Backoff) Cancel(children ...*actor.PID) {
	if len(children) == 0 {
		return
	}
	keys := make(map[pidKey]struct{}, len(children))
	for _, child := range children {
		keys[keyOf(child)] = struct{}{}
	}

	var stopped, firing []*pendingRestart
	b.mu.Lock()
	for key := range keys {
		if p, ok := b.pending[key]; ok {
			delete(b.pending, key)
			stopped = append(stopped, p)
		}
	}
	for p, key := range b.firing {
		if _, ok := keys[key]; ok {
			firing = append(firing, p)
		}
	}
	b.mu.Unlock()

	settle(stopped, firing)
}

// CancelAll is Cancel for every child of every parent this Backoff
// supervises. Call it when shutting down, so that no timer outlives the
// actor system.
func (b *Backoff) CancelAll() {
	var stopped, firing []*pendingRestart
	b.mu.Lock()
	for _, p := range b.pending {
		stopped = append(stopped, p)
	}
	b.pending = nil
	for p := range b.firing {
		firing = append(firing, p)
	}
	b.mu.Unlock()

	settle(stopped, firing)
}

func settle(stopped, firing []*pendingRestart) {
	for _, p := range stopped {
		p.stop()
	}
	for _, p := range firing {
		<-p.done
	}
}

// RestartNow performs child's pending restart at once instead of when its
// delay ends, and reports whether there was one to perform. An owner calls
// it when the reason to wait is gone: for example a new connection arrived
// for a session whose reconnect was backing off.
func (b *Backoff) RestartNow(child *actor.PID) bool {
	key := keyOf(child)
	b.mu.Lock()
	p := b.pending[key]
	b.mu.Unlock()
	if p == nil {
		return false
	}
	p.stop()
	b.fire(p.sup, p.child, key, p)
	return true
}

// Pending reports how many children have a restart scheduled that has
// neither started nor been cancelled.
func (b *Backoff) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}
