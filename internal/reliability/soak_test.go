//go:build soak

package reliability_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/slc-go/slc/internal/testutil"
)

// buildTags is what the command that reproduces a row needs.
const buildTags = "-tags soak "

// TestReliability is the full form: go test -tags soak ./internal/reliability/
func TestReliability(t *testing.T) {
	runAll(t, sizes{
		resetMsgs:      100000,
		stallMsgs:      30000,
		killMsgs:       100000,
		bandwidthBytes: 100 << 20,
		churnFor:       60 * time.Second,
	})
}

// TestSoak runs five minutes of mixed traffic (small messages at a steady
// rate, a large blob now and then) through a proxy that resets or stalls
// the connection every few seconds. Every message must arrive once, in
// order, and the receiver's goroutines and heap must come back to their
// starting level.
func TestSoak(t *testing.T) {
	const length = 5 * time.Minute
	ctx := ctxFor(t, length+5*time.Minute)
	h := newHosts(t, 3)
	rcv, addr := recvOn(ctx, t, h, 0, freePort(t, h), "receiver", "-stats", "1s")
	base := stats(ctx, t, rcv)
	proxy, err := testutil.NewProxyOn(net.JoinHostPort(h.gw, "0"), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	// Two senders on two hosts: one steady stream of small messages, one
	// of 256 KiB blobs.
	small := length.Seconds() * 1000
	big := length.Seconds() * 2
	s1 := h.start(t, 1, "small", "send", "-name", "small", "-to", proxy.Addr(), "-n", strconv.Itoa(int(small)), "-rate", "1000", "-events=false")
	s2 := h.start(t, 2, "big", "send", "-name", "big", "-to", proxy.Addr(), "-n", strconv.Itoa(int(big)), "-rate", "2", "-size", strconv.Itoa(256<<10), "-events=false")
	faults := 0
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	end := time.After(length)
loop:
	for {
		select {
		case <-tick.C:
			if faults%2 == 0 {
				proxy.Reset()
			} else {
				proxy.Stall()
				time.Sleep(time.Second) // a stall twice the heartbeat timeout
				proxy.Unstall()
			}
			faults++
		case <-end:
			break loop
		}
	}
	s1.waitLine(ctx, "done")
	s2.waitLine(ctx, "done")
	var after nodeStats
	for {
		after = stats(ctx, t, rcv)
		if after.peers == 0 {
			break
		}
	}
	got := map[string][]uint64{}
	for _, line := range rcv.output() {
		var from string
		var n uint64
		if _, err := fmt.Sscanf(line, "got %s %d", &from, &n); err == nil {
			got[from] = append(got[from], n)
		}
	}
	for from, want := range map[string]int{"small": int(small), "big": int(big)} {
		tally := testutil.CheckSequence(want, got[from])
		row(t, fmt.Sprintf("soak %v, %s stream", length, from), tally, fmt.Sprintf("%d faults", faults))
		if !tally.Exact() {
			t.Errorf("%s: %s", from, tally)
		}
	}
	t.Logf("receiver goroutines %d -> %d, heap %d KiB -> %d KiB", base.goroutines, after.goroutines, base.heap>>10, after.heap>>10)
	writeReport(t) // the soak's rows after those of TestReliability, when both ran
	if after.goroutines > base.goroutines+5 || after.heap > base.heap+16<<20 {
		t.Fatalf("receiver did not come back to its starting level: goroutines %d -> %d, heap %d -> %d", base.goroutines, after.goroutines, base.heap, after.heap)
	}
	_ = context.Background
}
