package reliability_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/internal/testutil"
)

// Sizes of the quick form (CI) and the full form (-tags soak).
type sizes struct {
	resetMsgs, stallMsgs, killMsgs int
	bandwidthBytes                 int
	churnFor                       time.Duration
}

// Every scenario prints a row: what was done, and the counts of sent,
// received, lost, duplicated and reordered messages.
func row(t *testing.T, name string, tally testutil.Tally, extra string) {
	line := fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %s |", name, tally.Sent, tally.Received, tally.Lost, tally.Duplicated, tally.Reordered, extra)
	t.Log(line)
	addRow("%s", line)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// recvOn starts a receiver on host i at port and returns it once it listens.
func recvOn(ctx context.Context, t *testing.T, h *hosts, i, port int, label string, extra ...string) (*proc, string) {
	t.Helper()
	addr := net.JoinHostPort(h.addrs[i], strconv.Itoa(port))
	p := h.start(t, i, label, append([]string{"recv", "-name", "receiver", "-listen", addr}, extra...)...)
	ready := p.waitLine(ctx, "ready ")
	return p, strings.TrimPrefix(ready, "ready ")
}

// settle waits, for at most a few seconds, until the receivers have
// printed n message lines, so the tally counts what arrived; a shortfall
// shows as lost.
func settle(t *testing.T, n int, ps ...*proc) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(received(ps...)) < n && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// waitReceived waits until the receivers have printed n message lines.
func waitReceived(ctx context.Context, t *testing.T, n int, ps ...*proc) {
	t.Helper()
	for len(received(ps...)) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d messages received: %v", len(received(ps...)), n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// A connection reset every N messages: the sender's connection passes a
// fault proxy on the test host, which resets it every 500 messages.
func testResetEveryN(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	rcv, addr := recvOn(ctx, t, h, 0, freePort(t, h), "receiver")
	proxy, err := testutil.NewProxyOn(net.JoinHostPort(h.gw, "0"), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", proxy.Addr(), "-n", strconv.Itoa(sz.resetMsgs), "-size", "100", "-rate", "5000")
	resets := 0
	for n := 500; n < sz.resetMsgs; n += 500 {
		waitReceived(ctx, t, n, rcv)
		proxy.Reset()
		resets++
	}
	snd.waitLine(ctx, "done")
	settle(t, sz.resetMsgs, rcv)
	tally := testutil.CheckSequence(sz.resetMsgs, received(rcv))
	row(t, "connection reset every 500 messages", tally, fmt.Sprintf("%d resets, netns=%v", proxy.Stats().Resets, h.netns()))
	if !tally.Exact() {
		t.Fatalf("delivery not exact: %s", tally)
	}
}

// A stall longer than the heartbeat timeout: the proxy stops forwarding,
// both ends declare the connection dead, reconnect, and resume.
func testStall(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	rcv, addr := recvOn(ctx, t, h, 0, freePort(t, h), "receiver")
	proxy, err := testutil.NewProxyOn(net.JoinHostPort(h.gw, "0"), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", proxy.Addr(), "-n", strconv.Itoa(sz.stallMsgs), "-rate", "2000")
	waitReceived(ctx, t, sz.stallMsgs/3, rcv)
	proxy.Stall()
	stalled := time.Now()
	snd.waitLine(ctx, "event disconnected") // heartbeat timeout: 500 ms
	detected := time.Since(stalled)
	proxy.Unstall()
	snd.waitLine(ctx, "done")
	settle(t, sz.stallMsgs, rcv)
	tally := testutil.CheckSequence(sz.stallMsgs, received(rcv))
	row(t, "stall longer than the heartbeat timeout", tally, fmt.Sprintf("stall detected after %v (timeout 500ms)", detected.Round(time.Millisecond)))
	if !tally.Exact() {
		t.Fatalf("delivery not exact: %s", tally)
	}
}

// The receiver process is killed with SIGKILL and restarted. Without a
// store its new instance gets again what the old one had not
// acknowledged: at-least-once for those, and duplicates are counted. A
// message is acknowledged once it is in the mailbox, so what the killed
// instance had acknowledged but not yet handed to its application dies
// with it (WithStore keeps the mailbox across a crash). The test reads
// those from the old instance's last report and checks that every other
// message arrived.
func testReceiverKilled(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	port := freePort(t, h)
	rcv1, addr := recvOn(ctx, t, h, 0, port, "receiver-1", "-stats", "1ms")
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", addr, "-n", strconv.Itoa(sz.killMsgs), "-rate", "5000")
	waitReceived(ctx, t, sz.killMsgs/3, rcv1)
	rcv1.kill()
	rcv1.wait(ctx)
	rcv2, _ := recvOn(ctx, t, h, 0, port, "receiver-2")
	snd.waitLine(ctx, "done")
	settle(t, sz.killMsgs, rcv1, rcv2)
	tally := testutil.CheckSequence(sz.killMsgs, received(rcv1, rcv2))
	pending := lastPending(rcv1)
	row(t, "receiver killed (SIGKILL) and restarted", tally,
		fmt.Sprintf("at-least-once without a store for what was not acknowledged; lost = acknowledged into the killed process's mailbox but not yet taken by its application (it last reported %d waiting)", pending))
	if tally.Unexpected != 0 || tally.Lost > pending+5000/500 {
		t.Fatalf("more lost than the killed mailbox held: %s (mailbox reported %d)", tally, pending)
	}
}

// lastPending returns the mailbox length in the process's last stats line.
func lastPending(p *proc) int {
	n := 0
	for _, line := range p.output() {
		var s nodeStats
		var pending int
		if _, err := fmt.Sscanf(line, "stats goroutines=%d heap=%d peers=%d pending=%d", &s.goroutines, &s.heap, &s.peers, &pending); err == nil {
			n = pending
		}
	}
	return n
}

// The sender process is killed with SIGKILL and restarted; the new
// instance sends the whole range again (without a store it cannot know
// what its predecessor delivered). Nothing may be lost; duplicates are
// the messages the first instance had delivered.
func testSenderKilled(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	rcv, addr := recvOn(ctx, t, h, 0, freePort(t, h), "receiver")
	snd1 := h.start(t, 1, "sender-1", "send", "-name", "sender", "-to", addr, "-n", strconv.Itoa(sz.killMsgs), "-rate", "5000")
	waitReceived(ctx, t, sz.killMsgs/3, rcv)
	snd1.kill()
	snd1.wait(ctx)
	before := len(received(rcv))
	snd2 := h.start(t, 1, "sender-2", "send", "-name", "sender", "-to", addr, "-n", strconv.Itoa(sz.killMsgs))
	snd2.waitLine(ctx, "done")
	waitReceived(ctx, t, before+sz.killMsgs, rcv)
	tally := testutil.CheckSequence(sz.killMsgs, received(rcv))
	row(t, "sender killed (SIGKILL) and restarted", tally, fmt.Sprintf("the restarted sender resent all %d; %d had arrived before the kill", sz.killMsgs, before))
	if tally.Lost != 0 || tally.Unexpected != 0 {
		t.Fatalf("messages lost: %s", tally)
	}
}

// The listener is closed and opened again on the same port while the
// connection is reset: the sender retries until it is back, then resumes
// the same session.
func testListenerRestarted(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	// The receiver runs in the test process so the test can close and
	// reopen its listener.
	r, err := slc.New(slc.WithName("receiver"), slc.WithHeartbeat(100*time.Millisecond, 500*time.Millisecond), slc.WithLinger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ln, err := r.Listen(ctx, net.JoinHostPort(h.gw, "0"))
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := testutil.NewProxyOn(net.JoinHostPort(h.gw, "0"), ln.String())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", proxy.Addr(), "-n", strconv.Itoa(sz.stallMsgs), "-rate", "3000")
	var got []uint64
	recv := func(n int) {
		for len(got) < n {
			m, err := r.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, uint64(m.Body.(Seq).N))
		}
	}
	recv(sz.stallMsgs / 3)
	if err := r.Unlisten(ctx, ln); err != nil {
		t.Fatal(err)
	}
	proxy.Reset()
	snd.waitLine(ctx, "event reconnecting") // refused while the listener is down
	if _, err := r.Listen(ctx, ln.String()); err != nil {
		t.Fatalf("listen again on %s: %v", ln, err)
	}
	recv(sz.stallMsgs)
	snd.waitLine(ctx, "done")
	tally := testutil.CheckSequence(sz.stallMsgs, got)
	row(t, "listener restarted on the same port", tally, "sender refused while down, then resumed")
	if !tally.Exact() {
		t.Fatalf("delivery not exact: %s", tally)
	}
}

// Bandwidth cut to 8 Mbit/s (tc tbf on the sender's link) while a large
// volume flows.
func testBandwidth(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 10*time.Minute)
	h := newHosts(t, 2)
	if !h.netns() || !h.shape(t, 1, "8mbit") {
		t.Log("bandwidth scenario needs network namespaces and tc: running unshaped on loopback")
	}
	rcv, addr := recvOn(ctx, t, h, 0, freePort(t, h), "receiver")
	const msg = 64 << 10
	n := sz.bandwidthBytes / msg
	start := time.Now()
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", addr, "-n", strconv.Itoa(n), "-size", strconv.Itoa(msg))
	snd.waitLine(ctx, "done")
	el := time.Since(start)
	settle(t, n, rcv)
	tally := testutil.CheckSequence(n, received(rcv))
	row(t, fmt.Sprintf("bandwidth cut to 8 Mbit/s, %d MiB", sz.bandwidthBytes>>20), tally,
		fmt.Sprintf("%.2f Mbit/s achieved in %v", float64(sz.bandwidthBytes)*8/el.Seconds()/1e6, el.Round(time.Second)))
	if !tally.Exact() {
		t.Fatalf("delivery not exact: %s", tally)
	}
}

// 100 peers connect, send, wait for the acknowledgement and disconnect, in
// a loop; the receiver's goroutines and heap come back to their level.
func testChurn(t *testing.T, sz sizes) {
	ctx := ctxFor(t, sz.churnFor+3*time.Minute)
	h := newHosts(t, 2)
	// A peer that closes in the middle of a handshake leaves no goodbye:
	// the receiver waits for it for the linger time, here 2 s.
	rcv, addr := recvOn(ctx, t, h, 0, freePort(t, h), "receiver", "-stats", "500ms", "-linger", "2s")
	base := stats(ctx, t, rcv)
	ch := h.start(t, 1, "churn", "churn", "-name", "churner", "-to", addr, "-peers", "100", "-for", sz.churnFor.String())
	line := ch.waitLine(ctx, "churned")
	if err := ch.wait(ctx); err != nil {
		t.Fatalf("churn: %v", err)
	}
	var cycles, acked int
	fmt.Sscanf(line, "churned cycles=%d acked=%d", &cycles, &acked)
	// The sessions of disconnected peers end (those without a goodbye
	// after the linger time); wait until no peer is left and compare.
	var after nodeStats
	deadline := time.Now().Add(30 * time.Second)
	for {
		after = stats(ctx, t, rcv)
		if after.peers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d peers still listed 30 s after the churn ended", after.peers)
		}
	}
	got := len(received(rcv))
	tally := testutil.Tally{Sent: acked, Received: got}
	row(t, fmt.Sprintf("100 peers churning for %v", sz.churnFor), tally,
		fmt.Sprintf("%d connect/send/disconnect cycles; receiver goroutines %d -> %d, heap %d KiB -> %d KiB", cycles, base.goroutines, after.goroutines, base.heap>>10, after.heap>>10))
	if cycles == 0 || got < acked {
		t.Fatalf("%d cycles, %d acknowledged, %d received", cycles, acked, got)
	}
	if after.goroutines > base.goroutines+10 {
		t.Fatalf("receiver goroutines %d after churn, %d before", after.goroutines, base.goroutines)
	}
	if after.heap > base.heap+32<<20 {
		t.Fatalf("receiver heap %d after churn, %d before", after.heap, base.heap)
	}
}

type nodeStats struct {
	goroutines, heap, peers int
}

func stats(ctx context.Context, t *testing.T, p *proc) nodeStats {
	t.Helper()
	line := p.waitLine(ctx, "stats ")
	var s nodeStats
	fmt.Sscanf(line, "stats goroutines=%d heap=%d peers=%d", &s.goroutines, &s.heap, &s.peers)
	return s
}

// Seq mirrors the node program's message.
type Seq struct {
	N       int
	Payload []byte
}

func init() { slc.Register[Seq]("reliability.Seq") }

// runAll runs every scenario with the given sizes and prints the table;
// with SLC_RELIABILITY_REPORT set it also writes the table there.
func runAll(t *testing.T, sz sizes) {
	t.Run("reset", func(t *testing.T) { testResetEveryN(t, sz) })
	t.Run("stall", func(t *testing.T) { testStall(t, sz) })
	t.Run("receiver-killed", func(t *testing.T) { testReceiverKilled(t, sz) })
	t.Run("sender-killed", func(t *testing.T) { testSenderKilled(t, sz) })
	t.Run("durable-receiver-killed", func(t *testing.T) { testDurableReceiverKilled(t, sz) })
	t.Run("durable-receiver-self-kill", func(t *testing.T) { testDurableReceiverSelfKill(t, sz) })
	t.Run("durable-sender-killed", func(t *testing.T) { testDurableSenderKilled(t, sz) })
	t.Run("durable-both-killed", func(t *testing.T) { testDurableBothKilled(t, sz) })
	t.Run("listener-restarted", func(t *testing.T) { testListenerRestarted(t, sz) })
	t.Run("bandwidth", func(t *testing.T) { testBandwidth(t, sz) })
	t.Run("churn", func(t *testing.T) { testChurn(t, sz) })
	report.Lock()
	defer report.Unlock()
	table := "| scenario | sent | received | lost | duplicated | reordered | notes |\n|---|---|---|---|---|---|---|\n" + strings.Join(report.rows, "\n") + "\n"
	t.Log("\n" + table)
	if path := os.Getenv("SLC_RELIABILITY_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}
