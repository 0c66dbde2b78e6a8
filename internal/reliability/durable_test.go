package reliability_test

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc/internal/testutil"
)

// The durable scenarios repeat the kills with slc.WithStore: what a killed
// sender had sent, and what a killed receiver had acknowledged, must
// survive. Each store lives in the test's temporary directory, which every
// host (namespace) shares.

// lastSent returns the highest "sent N" a sender printed.
func lastSent(p *proc) int {
	n := 0
	for _, line := range p.output() {
		if v, ok := strings.CutPrefix(line, "sent "); ok {
			if k, err := strconv.Atoi(v); err == nil {
				n = max(n, k)
			}
		}
	}
	return n
}

func maxOf(got []uint64) int {
	m := 0
	for _, v := range got {
		m = max(m, int(v))
	}
	return m
}

// The receiver keeps a store; it is killed from outside while it takes
// messages, and restarted with the same store. The sender is a plain node
// that stays up. A message can be lost only in one place: the receiving
// application took it (Receive returned) and the process died before it
// printed it; that is the application's crash, at most one message.
func testDurableReceiverKilled(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	port := freePort(t, h)
	dir := filepath.Join(t.TempDir(), "receiver")
	rcv1, addr := recvOn(ctx, t, h, 0, port, "receiver-1", "-store", dir)
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", addr, "-n", strconv.Itoa(sz.killMsgs), "-rate", "5000")
	waitReceived(ctx, t, sz.killMsgs/3, rcv1)
	rcv1.kill()
	rcv1.wait(ctx)
	rcv2, _ := recvOn(ctx, t, h, 0, port, "receiver-2", "-store", dir)
	snd.waitLine(ctx, "done")
	settle(t, sz.killMsgs, rcv1, rcv2)
	tally := testutil.CheckSequence(sz.killMsgs, received(rcv1, rcv2))
	row(t, "durable receiver (store, sync batch) killed (SIGKILL) and restarted", tally,
		"lost may be 1: the message the killed application had taken from Receive but not yet printed")
	if tally.Unexpected != 0 || tally.Duplicated != 0 || tally.Reordered != 0 || tally.Lost > 1 {
		t.Fatalf("durable receiver: %s", tally)
	}
}

// The same, but the receiver kills itself right after printing a message,
// so no message is between Receive and the printout: nothing may be lost.
func testDurableReceiverSelfKill(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	port := freePort(t, h)
	dir := filepath.Join(t.TempDir(), "receiver")
	die := sz.killMsgs / 3
	rcv1, addr := recvOn(ctx, t, h, 0, port, "receiver-1", "-store", dir, "-die-after", strconv.Itoa(die))
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", addr, "-n", strconv.Itoa(sz.killMsgs), "-rate", "5000")
	rcv1.wait(ctx)
	rcv2, _ := recvOn(ctx, t, h, 0, port, "receiver-2", "-store", dir)
	snd.waitLine(ctx, "done")
	settle(t, sz.killMsgs, rcv1, rcv2)
	tally := testutil.CheckSequence(sz.killMsgs, received(rcv1, rcv2))
	row(t, "durable receiver kills itself (SIGKILL) after message "+strconv.Itoa(die)+", restarted", tally,
		"exactly once: every message the application took was marked consumed before Receive returned")
	if tally.Unexpected != 0 || tally.Duplicated != 0 || tally.Reordered != 0 || tally.Lost != 0 {
		t.Fatalf("durable receiver, self-kill: %s", tally)
	}
}

// The sender keeps a store and is killed while it sends; its next run
// (send -resume) sends nothing new, and must deliver every message whose
// Send had returned, once.
func testDurableSenderKilled(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	dir := filepath.Join(t.TempDir(), "sender")
	rcv, addr := recvOn(ctx, t, h, 0, freePort(t, h), "receiver")
	proxy, err := testutil.NewProxyOn(net.JoinHostPort(h.gw, "0"), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	snd1 := h.start(t, 1, "sender-1", "send", "-name", "sender", "-store", dir, "-to", proxy.Addr(), "-n", strconv.Itoa(sz.killMsgs), "-rate", "5000")
	waitReceived(ctx, t, sz.killMsgs/3, rcv)
	// Cut the sender off, so that what it sends next stays
	// unacknowledged in its store; kill it once it has sent a third more.
	proxy.Refuse(true)
	proxy.Reset()
	snd1.waitLine(ctx, fmt.Sprintf("sent %d", 2*sz.killMsgs/3))
	snd1.kill()
	snd1.wait(ctx)
	sent := lastSent(snd1)
	before := len(received(rcv))
	proxy.Refuse(false)
	snd2 := h.start(t, 1, "sender-2", "send", "-name", "sender", "-store", dir, "-resume")
	snd2.waitLine(ctx, "drained")
	got := received(rcv)
	// A Send that returned just before the kill may not have printed.
	sent = max(sent, maxOf(got))
	settle(t, sent, rcv)
	tally := testutil.CheckSequence(sent, received(rcv))
	row(t, "durable sender (store, sync batch) killed (SIGKILL) and restarted", tally,
		fmt.Sprintf("the restarted sender re-sent only what was not acknowledged; %d had arrived before the kill", before))
	if tally.Unexpected != 0 || tally.Duplicated != 0 || tally.Reordered != 0 || tally.Lost != 0 {
		t.Fatalf("durable sender: %s", tally)
	}
}

// Both sides keep stores and are killed at once; both restart.
func testDurableBothKilled(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	port := freePort(t, h)
	rdir := filepath.Join(t.TempDir(), "receiver")
	sdir := filepath.Join(t.TempDir(), "sender")
	rcv1, addr := recvOn(ctx, t, h, 0, port, "receiver-1", "-store", rdir)
	proxy, err := testutil.NewProxyOn(net.JoinHostPort(h.gw, "0"), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	snd1 := h.start(t, 1, "sender-1", "send", "-name", "sender", "-store", sdir, "-to", proxy.Addr(), "-n", strconv.Itoa(sz.killMsgs), "-rate", "5000")
	waitReceived(ctx, t, sz.killMsgs/3, rcv1)
	proxy.Refuse(true)
	proxy.Reset()
	snd1.waitLine(ctx, fmt.Sprintf("sent %d", 2*sz.killMsgs/3))
	snd1.kill()
	rcv1.kill()
	snd1.wait(ctx)
	rcv1.wait(ctx)
	sent := lastSent(snd1)
	proxy.Refuse(false)
	rcv2, _ := recvOn(ctx, t, h, 0, port, "receiver-2", "-store", rdir)
	snd2 := h.start(t, 1, "sender-2", "send", "-name", "sender", "-store", sdir, "-resume")
	snd2.waitLine(ctx, "drained")
	sent = max(sent, maxOf(received(rcv1, rcv2)))
	settle(t, sent, rcv1, rcv2)
	tally := testutil.CheckSequence(sent, received(rcv1, rcv2))
	row(t, "durable sender and receiver both killed (SIGKILL) and restarted", tally,
		"lost may be 1: the message the killed receiving application had taken but not printed")
	if tally.Unexpected != 0 || tally.Duplicated != 0 || tally.Reordered != 0 || tally.Lost > 1 {
		t.Fatalf("both killed: %s", tally)
	}
}
