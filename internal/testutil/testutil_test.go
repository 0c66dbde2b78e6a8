package testutil

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestQuiet(t *testing.T) {
	l := Quiet()
	if l.Enabled(context.Background(), slog.LevelError) {
		t.Fatal("Quiet logger is enabled at error level")
	}
	l.Error("discarded", "k", 1) // must not panic
}

// fakeTB records Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
}

func TestEventually(t *testing.T) {
	t.Run("true at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			calls := 0
			start := time.Now()
			Eventually(t, time.Second, func() bool { calls++; return true }, "never")
			if calls != 1 || time.Since(start) != 0 {
				t.Fatalf("%d calls over %v, want 1 call and no wait", calls, time.Since(start))
			}
		})
	})
	t.Run("polls until true", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			calls := 0
			start := time.Now()
			Eventually(t, time.Second, func() bool { calls++; return calls == 3 }, "never")
			if calls != 3 || time.Since(start) != 2*eventuallyTick {
				t.Fatalf("%d calls over %v, want 3 calls over %v", calls, time.Since(start), 2*eventuallyTick)
			}
		})
	})
	t.Run("fails after the timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeTB{}
			calls := 0
			start := time.Now()
			Eventually(f, time.Second, func() bool { calls++; return false }, "x=%d", 42)
			if !f.failed || !strings.Contains(f.msg, "x=42") || !strings.Contains(f.msg, "1s") {
				t.Fatalf("failed=%v msg=%q, want a failure naming x=42 and 1s", f.failed, f.msg)
			}
			if time.Since(start) != time.Second || calls < 2 {
				t.Fatalf("gave up after %v and %d calls, want 1s and repeated polling", time.Since(start), calls)
			}
		})
	})
}

func TestCheckSequence(t *testing.T) {
	tests := []struct {
		name string
		sent int
		got  []uint64
		want Tally
	}{
		{"exact", 5, []uint64{1, 2, 3, 4, 5},
			Tally{Sent: 5, Received: 5}},
		{"nothing sent", 0, nil,
			Tally{}},
		{"nothing received", 3, nil,
			Tally{Sent: 3, Lost: 3}},
		{"lost middle and tail", 6, []uint64{1, 2, 4, 5},
			Tally{Sent: 6, Received: 4, Lost: 2}},
		{"duplicate in place", 3, []uint64{1, 2, 2, 3},
			Tally{Sent: 3, Received: 4, Duplicated: 1}},
		{"replay after reconnect", 5, []uint64{1, 2, 3, 2, 3, 4, 5},
			Tally{Sent: 5, Received: 7, Duplicated: 2}},
		{"swap", 4, []uint64{1, 3, 2, 4},
			Tally{Sent: 4, Received: 4, Reordered: 1}},
		{"jump ahead then back", 5, []uint64{1, 5, 2, 3, 4},
			Tally{Sent: 5, Received: 5, Reordered: 3}},
		{"reordered and duplicated", 4, []uint64{2, 1, 2, 1, 3, 4},
			Tally{Sent: 4, Received: 6, Reordered: 1, Duplicated: 2}},
		{"out of range", 2, []uint64{0, 1, 2, 3},
			Tally{Sent: 2, Received: 4, Unexpected: 2}},
		{"everything", 6, []uint64{1, 3, 2, 3, 6, 9},
			Tally{Sent: 6, Received: 6, Lost: 2, Duplicated: 1, Reordered: 1, Unexpected: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckSequence(tt.sent, tt.got)
			if got != tt.want {
				t.Fatalf("CheckSequence(%d, %v) = %+v, want %+v", tt.sent, tt.got, got, tt.want)
			}
			wantExact := tt.want.Lost == 0 && tt.want.Duplicated == 0 && tt.want.Reordered == 0 &&
				tt.want.Unexpected == 0 && tt.want.Received == tt.want.Sent
			if got.Exact() != wantExact {
				t.Fatalf("Exact() = %v, want %v", got.Exact(), wantExact)
			}
		})
	}
}

func TestTallyString(t *testing.T) {
	tally := Tally{Sent: 10, Received: 9, Lost: 2, Duplicated: 1, Reordered: 3}
	if got, want := tally.String(), "sent=10 received=9 lost=2 duplicated=1 reordered=3"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	tally.Unexpected = 4
	if got, want := tally.String(), "sent=10 received=9 lost=2 duplicated=1 reordered=3 unexpected=4"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
