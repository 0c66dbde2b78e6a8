package compat

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults of a Backoff, the same as slc's supervisor package.
const (
	DefaultInitial    = 50 * time.Millisecond
	DefaultMax        = 5 * time.Second
	DefaultMultiplier = 2.0
	DefaultJitter     = 0.2
	DefaultRetries    = 20
)

// Special values of Backoff.Retries.
const (
	// Forever retries without limit.
	Forever = -1
	// NoRetries gives up at the first failure.
	NoRetries = -2
)

// Backoff is a reconnect policy: exponential delays with jitter and a
// budget of consecutive failed attempts. Every field's zero value means
// its default. A Backoff is a value; it is safe to share once configured.
type Backoff struct {
	Initial    time.Duration // delay before the first attempt (50ms); negative: none
	Max        time.Duration // cap of the delay (5s)
	Multiplier float64       // growth per attempt (2)
	Jitter     float64       // random spread, in [0,1) (0.2); negative: none
	Retries    int           // consecutive failed attempts allowed (20), Forever or NoRetries
	// Rand returns numbers in [0,1); nil uses math/rand/v2. Tests inject
	// a constant 0.5 to make the delays exact.
	Rand func() float64
}

// DefaultBackoff returns the default policy.
func DefaultBackoff() Backoff { return Backoff{} }

// Budget reports how many consecutive failed attempts are allowed:
// -1 for no limit.
func (b Backoff) Budget() int {
	switch {
	case b.Retries == Forever:
		return -1
	case b.Retries == NoRetries:
		return 0
	case b.Retries <= 0:
		return DefaultRetries
	}
	return b.Retries
}

// Delay returns the delay before attempt n (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	initial := b.Initial
	if initial == 0 {
		initial = DefaultInitial
	}
	if initial < 0 {
		return 0
	}
	maxDelay := b.Max
	if maxDelay == 0 {
		maxDelay = DefaultMax
	}
	if maxDelay < 0 {
		return 0
	}
	mult := b.Multiplier
	if mult <= 0 {
		mult = DefaultMultiplier
	}
	jitter := b.Jitter
	if jitter == 0 {
		jitter = DefaultJitter
	}
	if jitter < 0 {
		jitter = 0
	}
	if jitter >= 1 {
		jitter = 0.99
	}
	if n < 1 {
		n = 1
	}
	d := float64(initial) * math.Pow(mult, float64(n-1))
	if d > float64(maxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(maxDelay)
	}
	r := 0.5
	if jitter > 0 {
		if b.Rand != nil {
			r = b.Rand()
		} else {
			r = rand.Float64()
		}
	}
	d *= 1 - jitter + 2*jitter*r
	if d > float64(maxDelay) {
		d = float64(maxDelay)
	}
	return time.Duration(d)
}

// Wait waits for the delay before attempt n, or until ctx or stop ends
// first; it reports whether the whole delay passed. It uses a timer, which
// follows the fake clock inside a testing/synctest bubble.
func (b Backoff) Wait(ctx context.Context, stop <-chan struct{}, n int) bool {
	d := b.Delay(n)
	if d <= 0 {
		select {
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
