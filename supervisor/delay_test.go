package supervisor

import (
	"math"
	"testing"
	"time"
)

func constRand(v float64) func() float64 { return func() float64 { return v } }

func TestDelayTable(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name    string
		backoff *Backoff
		want    []time.Duration // want[i] is Delay(i+1)
	}{
		{
			name:    "defaults, neutral jitter",
			backoff: &Backoff{Rand: constRand(0.5)},
			want:    []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms},
		},
		{
			name:    "lowest jitter factor",
			backoff: &Backoff{Rand: constRand(0)},
			want:    []time.Duration{40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, 1280 * ms, 2560 * ms, 5000 * ms},
		},
		{
			name:    "highest jitter factor",
			backoff: &Backoff{Rand: constRand(1)},
			want:    []time.Duration{60 * ms, 120 * ms, 240 * ms, 480 * ms, 960 * ms, 1920 * ms, 3840 * ms, 5000 * ms},
		},
		{
			name:    "jitter disabled",
			backoff: &Backoff{Jitter: -1, Rand: func() float64 { panic("Rand called with jitter disabled") }},
			want:    []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms},
		},
		{
			name:    "custom initial, multiplier and max",
			backoff: &Backoff{Initial: 10 * ms, Multiplier: 3, Max: time.Second, Jitter: -1},
			want:    []time.Duration{10 * ms, 30 * ms, 90 * ms, 270 * ms, 810 * ms, time.Second},
		},
		{
			name:    "multiplier 1 is constant",
			backoff: &Backoff{Initial: 10 * ms, Multiplier: 1, Jitter: -1},
			want:    []time.Duration{10 * ms, 10 * ms, 10 * ms},
		},
		{
			name:    "multiplier below 1 is treated as 1",
			backoff: &Backoff{Initial: 10 * ms, Multiplier: 0.5, Jitter: -1},
			want:    []time.Duration{10 * ms, 10 * ms, 10 * ms},
		},
		{
			name:    "NaN multiplier is treated as 1",
			backoff: &Backoff{Initial: 10 * ms, Multiplier: math.NaN(), Jitter: -1},
			want:    []time.Duration{10 * ms, 10 * ms},
		},
		{
			name:    "max below initial caps the first delay",
			backoff: &Backoff{Initial: time.Second, Max: 300 * ms, Jitter: -1},
			want:    []time.Duration{300 * ms, 300 * ms},
		},
		{
			name:    "negative initial means no delay",
			backoff: &Backoff{Initial: -1, Rand: constRand(1)},
			want:    []time.Duration{0, 0, 0},
		},
		{
			name:    "negative max means no delay",
			backoff: &Backoff{Max: -1},
			want:    []time.Duration{0, 0},
		},
		{
			name:    "full jitter at the low end reaches zero",
			backoff: &Backoff{Jitter: 1, Rand: constRand(0)},
			want:    []time.Duration{0, 0},
		},
		{
			name:    "jitter above 1 is clamped to 1",
			backoff: &Backoff{Jitter: 7, Rand: constRand(1)},
			want:    []time.Duration{100 * ms, 200 * ms},
		},
		{
			name:    "Rand out of range is clamped",
			backoff: &Backoff{Rand: constRand(-3)},
			want:    []time.Duration{40 * ms, 80 * ms},
		},
		{
			name:    "Rand above 1 is clamped",
			backoff: &Backoff{Rand: constRand(42)},
			want:    []time.Duration{60 * ms, 120 * ms},
		},
		{
			name:    "Rand NaN is treated as 0",
			backoff: &Backoff{Rand: constRand(math.NaN())},
			want:    []time.Duration{40 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.backoff.Delay(i + 1); got != want {
					t.Errorf("Delay(%d) = %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

func TestDelayDefaultsMatchDefaultBackoff(t *testing.T) {
	zero := &Backoff{Rand: constRand(0.25)}
	def := DefaultBackoff()
	def.Rand = constRand(0.25)
	for attempt := -2; attempt <= 40; attempt++ {
		if a, b := zero.Delay(attempt), def.Delay(attempt); a != b {
			t.Fatalf("Delay(%d): zero value %v, DefaultBackoff %v", attempt, a, b)
		}
	}
}

func TestDelayAttemptBelowOne(t *testing.T) {
	b := &Backoff{Rand: constRand(0.5)}
	for _, attempt := range []int{0, -1, math.MinInt} {
		if got := b.Delay(attempt); got != DefaultInitial {
			t.Errorf("Delay(%d) = %v, want %v", attempt, got, DefaultInitial)
		}
	}
}

func TestDelayHugeAttemptsSaturate(t *testing.T) {
	cases := []*Backoff{
		{Rand: constRand(0.5)},
		{Rand: constRand(1), Jitter: 1},
		{Multiplier: 1e300, Rand: constRand(1)},
		{Initial: math.MaxInt64, Max: math.MaxInt64, Multiplier: 10, Rand: constRand(1)},
	}
	for i, b := range cases {
		maxDelay := durationOr(b.Max, DefaultMax)
		for _, attempt := range []int{64, 1000, 1 << 20, math.MaxInt} {
			if got := b.Delay(attempt); got != maxDelay {
				t.Errorf("case %d: Delay(%d) = %v, want %v", i, attempt, got, maxDelay)
			}
		}
	}
}

func TestDelayJitterBounds(t *testing.T) {
	for _, jitter := range []float64{0.1, 0.2, 0.5, 1} {
		b := &Backoff{Jitter: jitter, Max: time.Hour} // default Rand
		for attempt := 1; attempt <= 12; attempt++ {
			base := float64(DefaultInitial) * math.Pow(DefaultMultiplier, float64(attempt-1))
			lo := time.Duration(math.Floor(base * (1 - jitter)))
			hi := time.Duration(math.Ceil(base * (1 + jitter)))
			for range 200 {
				d := b.Delay(attempt)
				if d < lo || d > hi || d < 0 {
					t.Fatalf("jitter %v: Delay(%d) = %v, want within [%v, %v]", jitter, attempt, d, lo, hi)
				}
			}
		}
	}
}

func TestDelayNeverExceedsMaxWithJitter(t *testing.T) {
	b := &Backoff{Jitter: 1, Rand: constRand(1)} // factor 2
	for attempt := 1; attempt <= 100; attempt++ {
		if d := b.Delay(attempt); d > DefaultMax || d < 0 {
			t.Fatalf("Delay(%d) = %v, outside [0, %v]", attempt, d, DefaultMax)
		}
	}
}
