package compat

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/slc-go/slc/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

func TestBackoffDelay(t *testing.T) {
	half := func() float64 { return 0.5 }
	tests := []struct {
		b    Backoff
		n    int
		want time.Duration
	}{
		{Backoff{Rand: half}, 1, 50 * time.Millisecond},
		{Backoff{Rand: half}, 3, 200 * time.Millisecond},
		{Backoff{Rand: half}, 100, 5 * time.Second},
		{Backoff{Jitter: -1}, 2, 100 * time.Millisecond},
		{Backoff{Rand: func() float64 { return 0 }}, 1, 40 * time.Millisecond},
		{Backoff{Initial: -1}, 5, 0},
		{Backoff{Initial: time.Second, Max: 2 * time.Second, Multiplier: 10, Jitter: -1}, 2, 2 * time.Second},
	}
	for i, tt := range tests {
		if got := tt.b.Delay(tt.n); got != tt.want {
			t.Errorf("%d. Delay(%d) = %v; want %v", i, tt.n, got, tt.want)
		}
	}
}

func TestBackoffBudget(t *testing.T) {
	for i, tt := range []struct{ retries, want int }{{0, DefaultRetries}, {3, 3}, {Forever, -1}, {NoRetries, 0}} {
		if got := (Backoff{Retries: tt.retries}).Budget(); got != tt.want {
			t.Errorf("%d. Budget(%d) = %d; want %d", i, tt.retries, got, tt.want)
		}
	}
}

func TestBackoffWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !(Backoff{Initial: -1}).Wait(ctx, nil, 1) {
		t.Error("Wait with no delay returned false")
	}
	stop := make(chan struct{})
	close(stop)
	if (Backoff{Initial: time.Hour}).Wait(ctx, stop, 1) {
		t.Error("Wait returned true after stop")
	}
	cancel()
	if (Backoff{Initial: -1}).Wait(ctx, nil, 1) {
		t.Error("Wait returned true after cancel")
	}
}
