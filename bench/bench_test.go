package main

import (
	"strings"
	"testing"
	"time"
)

func TestPayloadSizes(t *testing.T) {
	for _, size := range []int{64, 100, 1 << 10, 64 << 10, 1 << 20} {
		for _, typed := range []bool{false, true} {
			p, err := NewPayload(size, typed)
			if err != nil {
				t.Fatalf("NewPayload(%d, %v): %v", size, typed, err)
			}
			enc, dec := p.NewEncoder(), p.NewDecoder()
			for _, seq := range []uint64{0, 1, 1 << 20} {
				b := enc.Encode(seq)
				if len(b) != size {
					t.Errorf("size %d typed %v: message %d is %d bytes", size, typed, seq, len(b))
				}
				got, err := dec.Check(b)
				if err != nil || got != seq {
					t.Errorf("size %d typed %v: Check = %d, %v; want %d", size, typed, got, err, seq)
				}
			}
			// A corrupted byte is caught.
			b := append([]byte(nil), enc.Encode(7)...)
			b[len(b)-1] ^= 0xff
			if _, err := dec.Check(b); err == nil {
				t.Errorf("size %d typed %v: a corrupted message passed", size, typed)
			}
		}
	}
	if p, _ := NewPayload(64, true); len(p.data) != 12 {
		t.Errorf("the 64 B Sample has %d bytes of data, want 12", len(p.data))
	}
	if _, err := NewPayload(16, true); err == nil {
		t.Error("a 16-byte Sample was accepted")
	}
}

func TestTrackerOrder(t *testing.T) {
	tr := newTracker(2)
	tr.deliver(0, 0, nil)
	tr.deliver(1, 0, nil)
	tr.total.Store(2)
	tr.deliver(0, 1, nil)
	tr.deliver(1, 1, nil)
	select {
	case <-tr.done:
	default:
		t.Fatal("not done after every receiver got the last message")
	}

	tr = newTracker(1)
	tr.deliver(0, 0, nil)
	tr.deliver(0, 2, nil)
	select {
	case <-tr.failed:
		if !strings.Contains(tr.err.Error(), "1 lost or reordered") {
			t.Errorf("gap: %v", tr.err)
		}
	default:
		t.Fatal("a gap was not reported")
	}

	tr = newTracker(1)
	tr.deliver(0, 0, nil)
	tr.deliver(0, 0, nil)
	if tr.err == nil || !strings.Contains(tr.err.Error(), "duplicated") {
		t.Errorf("duplicate: %v", tr.err)
	}

	tr = newTracker(1)
	tr.deliver(0, 0, nil)
	if err := tr.wait(5, 20*time.Millisecond, time.Second); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("stall: %v", err)
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("64, 1K,64k,1M")
	if err != nil || len(got) != 4 || got[0] != 64 || got[1] != 1024 || got[2] != 65536 || got[3] != 1<<20 {
		t.Errorf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "0", "-1", "128M"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
}

func TestSelectSystems(t *testing.T) {
	ss, err := selectSystems("slc*,tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Name != "tcp" && !strings.HasPrefix(s.Name, "slc") {
			t.Errorf("selected %s", s.Name)
		}
	}
	if len(ss) < 3 || ss[0].Name != "tcp" {
		t.Errorf("selected %v", names(ss))
	}
	if _, err := selectSystems("nothing-like-this"); err == nil {
		t.Error("a pattern matching nothing was accepted")
	}
}

// TestQuickCells runs a tiny cell of every workload for the baseline and
// slc, end to end.
func TestQuickCells(t *testing.T) {
	if testing.Short() {
		t.Skip("opens sockets")
	}
	st := &Settings{Duration: 50 * time.Millisecond, EchoDuration: 50 * time.Millisecond, MaxBytes: 16 << 20,
		MaxMessages: 100000, Timeout: 10 * time.Second, Stall: 3 * time.Second, Drain: 3 * time.Second}
	for _, name := range []string{"tcp", "tcp-chan", "tcp-aesgcm", "slc", "slc-raw"} {
		sys := findSystem(name)
		if r, err := measureThroughput(st, sys, 1<<10, 1); err != nil || r.msgs == 0 {
			t.Errorf("%s one way: %v, %+v", name, err, r)
		}
		if r, err := measureThroughput(st, sys, 64, 3); err != nil || r.msgs == 0 {
			t.Errorf("%s fan-out: %v, %+v", name, err, r)
		}
		if l, err := measureEcho(st, sys, 64); err != nil || l.p50 <= 0 || l.p99 < l.p50 {
			t.Errorf("%s echo: %v, %+v", name, err, l)
		}
	}
}
