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
// The last column is the command that reproduces the row.
func row(t *testing.T, name string, tally testutil.Tally, extra string) {
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + p + "$"
	}
	cmd := fmt.Sprintf("`go test -race %s-run '%s' ./internal/reliability/`", buildTags, strings.Join(parts, "/"))
	line := fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %s | %s |", name, tally.Sent, tally.Received, tally.Lost, tally.Duplicated, tally.Reordered, extra, cmd)
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
	row(t, "connection reset every 500 messages", tally, fmt.Sprintf("%d resets, %s", proxy.Stats().Resets, h.where()))
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
	// Both ends must notice the silence (heartbeat timeout: 500 ms) on
	// their own: wait for each side's disconnect, and keep the stall for
	// twice the timeout whatever the order.
	snd.waitLine(ctx, "event disconnected")
	sndDetected := time.Since(stalled)
	rcv.waitLine(ctx, "event disconnected")
	rcvDetected := time.Since(stalled)
	if hold := 2*heartbeatTimeout - time.Since(stalled); hold > 0 {
		time.Sleep(hold) // the stall's length, not a wait for an event
	}
	held := time.Since(stalled)
	proxy.Unstall()
	snd.waitLine(ctx, "done")
	settle(t, sz.stallMsgs, rcv)
	tally := testutil.CheckSequence(sz.stallMsgs, received(rcv))
	row(t, "stall for twice the heartbeat timeout", tally,
		fmt.Sprintf("stalled %v; sender detected it after %v, receiver after %v (timeout %v)",
			held.Round(time.Millisecond), sndDetected.Round(time.Millisecond), rcvDetected.Round(time.Millisecond), heartbeatTimeout))
	if !tally.Exact() {
		t.Fatalf("delivery not exact: %s", tally)
	}
}

// heartbeatTimeout is the nodes' silence timeout: 5 times their 100 ms
// heartbeat (node -heartbeat).
const heartbeatTimeout = 500 * time.Millisecond

// The receiver process is killed with SIGKILL and restarted. Without a
// store its new instance gets again what the old one had not
// acknowledged: at-least-once for those, and duplicates are counted. A
// message is acknowledged once it is in the mailbox, so what the killed
// instance had acknowledged but not yet handed to its application dies
// with it (WithStore keeps the mailbox across a crash).
//
// The bound is exact, not a guess from a stats line printed some time
// before the kill: the sender prints, when it sees the connection drop,
// the highest message number the killed instance acknowledged (acked=A).
// The test starts the new instance only after that line, so no later
// acknowledgement can come from the old one. Then:
//   - every message above A must arrive (the sender keeps it until the
//     new instance acknowledges it);
//   - a message up to A is lost only if the killed application never
//     printed it: it was in the killed mailbox, or taken by Receive and
//     not yet printed (at most one). So lost ≤ A − (numbers up to A the
//     killed instance printed), and that is what the row reports as the
//     killed mailbox.
func testReceiverKilled(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	port := freePort(t, h)
	rcv1, addr := recvOn(ctx, t, h, 0, port, "receiver-1", "-stats", "1ms")
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", addr, "-n", strconv.Itoa(sz.killMsgs), "-rate", "5000")
	waitReceived(ctx, t, sz.killMsgs/3, rcv1)
	rcv1.kill()
	rcv1.wait(ctx)
	line := snd.waitLine(ctx, "event disconnected")
	_, ackedS, ok := strings.Cut(line, " acked=")
	ackedByKilled, err := strconv.Atoi(ackedS)
	if !ok || err != nil {
		t.Fatalf("sender's disconnect line %q has no acked=N", line)
	}
	rcv2, _ := recvOn(ctx, t, h, 0, port, "receiver-2")
	snd.waitLine(ctx, "done")
	settle(t, sz.killMsgs, rcv1, rcv2)
	got1 := received(rcv1)
	tally := testutil.CheckSequence(sz.killMsgs, append(got1, received(rcv2)...))
	// What the killed instance had acknowledged and not printed.
	printed := map[uint64]bool{}
	for _, n := range got1 {
		printed[n] = true
	}
	var lostAbove []int
	inKilled := 0
	for n := 1; n <= ackedByKilled; n++ {
		if !printed[uint64(n)] {
			inKilled++
		}
	}
	all := map[uint64]bool{}
	for _, n := range received(rcv1, rcv2) {
		all[n] = true
	}
	for n := ackedByKilled + 1; n <= sz.killMsgs; n++ {
		if !all[uint64(n)] {
			lostAbove = append(lostAbove, n)
		}
	}
	row(t, "receiver killed (SIGKILL) and restarted, no store", tally,
		fmt.Sprintf("the killed instance had acknowledged 1..%d and printed %d of them: %d in its mailbox (or taken, not printed) at the kill, the bound on lost; its last stats line showed %d waiting; %d duplicated (re-sent unacknowledged messages it had already printed)",
			ackedByKilled, ackedByKilled-inKilled, inKilled, lastPending(rcv1), tally.Duplicated))
	if tally.Unexpected != 0 || len(lostAbove) != 0 || tally.Lost > inKilled {
		t.Fatalf("%s; lost above the killed instance's acknowledgements (%d): %v; bound %d", tally, ackedByKilled, lostAbove, inKilled)
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
	row(t, "listener restarted on the same port", tally, "receiver in the test process (to close and reopen its listener), sender a process; the sender was refused while it was down, then resumed the same session")
	if !tally.Exact() {
		t.Fatalf("delivery not exact: %s", tally)
	}
}

// Latency with jitter and a throttle: the proxy holds every chunk for
// 5 ms plus a random 0-20 ms and lets at most 256 KiB/s through each way.
// TCP is a byte stream, so the proxy cannot reorder segments: it sees
// bytes after the kernel has put them in order. Jitter varies when each
// chunk moves on, never their order; reordering below TCP needs netem.
func testLatency(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 3*time.Minute)
	h := newHosts(t, 2)
	rcv, addr := recvOn(ctx, t, h, 0, freePort(t, h), "receiver")
	proxy, err := testutil.NewProxyOn(net.JoinHostPort(h.gw, "0"), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	const delay, jitter, throttle = 5 * time.Millisecond, 20 * time.Millisecond, 256 << 10
	proxy.Delay(delay)
	proxy.Jitter(jitter)
	proxy.Throttle(throttle)
	start := time.Now()
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", proxy.Addr(), "-n", strconv.Itoa(sz.stallMsgs), "-size", "100", "-rate", "1500")
	snd.waitLine(ctx, "done")
	el := time.Since(start)
	settle(t, sz.stallMsgs, rcv)
	tally := testutil.CheckSequence(sz.stallMsgs, received(rcv))
	st := proxy.Stats()
	row(t, "latency 5 ms + 0-20 ms jitter per chunk, throttled to 256 KiB/s", tally,
		fmt.Sprintf("%d chunks delayed, %d held by the throttle; %.0f KiB/s up in %v; %d connections lost",
			st.Delayed, st.Throttled, float64(st.BytesUp)/1024/el.Seconds(), el.Round(100*time.Millisecond), countLines(snd, "event disconnected receiver final=false")))
	if !tally.Exact() {
		t.Fatalf("delivery not exact: %s", tally)
	}
	if st.Delayed == 0 {
		t.Fatal("the proxy delayed nothing")
	}
}

// countLines counts the lines a process printed that start with prefix.
func countLines(p *proc, prefix string) int {
	n := 0
	for _, line := range p.output() {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

// Bandwidth cut to 8 Mbit/s (tc tbf on the sender's link) while a large
// volume flows.
func testBandwidth(t *testing.T, sz sizes) {
	ctx := ctxFor(t, 10*time.Minute)
	h := newHosts(t, 2)
	shaped := h.netns() && h.shape(t, 1, "8mbit")
	rcv, addr := recvOn(ctx, t, h, 0, freePort(t, h), "receiver")
	const msg = 64 << 10
	n := sz.bandwidthBytes / msg
	start := time.Now()
	snd := h.start(t, 1, "sender", "send", "-name", "sender", "-to", addr, "-n", strconv.Itoa(n), "-size", strconv.Itoa(msg))
	snd.waitLine(ctx, "done")
	el := time.Since(start)
	settle(t, n, rcv)
	tally := testutil.CheckSequence(n, received(rcv))
	rate := float64(sz.bandwidthBytes) * 8 / el.Seconds() / 1e6
	name := fmt.Sprintf("bandwidth cut to 8 Mbit/s (tc tbf), %d MiB", sz.bandwidthBytes>>20)
	switch {
	// Without shaping the row says what it measured, not 8 Mbit/s.
	case !h.netns():
		name = fmt.Sprintf("unshaped (loopback, no namespaces for tc), %d MiB", sz.bandwidthBytes>>20)
	case !shaped:
		name = fmt.Sprintf("unshaped (tc tbf failed), %d MiB", sz.bandwidthBytes>>20)
	}
	row(t, name, tally, fmt.Sprintf("%.2f Mbit/s of payload in %v", rate, el.Round(10*time.Millisecond)))
	if !tally.Exact() {
		t.Fatalf("delivery not exact: %s", tally)
	}
	// The shaping must have held: payload alone cannot beat the link
	// (8 Mbit/s, 10%% for the token bucket's burst and rounding).
	if shaped && rate > 8.8 {
		t.Fatalf("%.2f Mbit/s through a link shaped to 8 Mbit/s", rate)
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
	var cycles, connected, sentN, ackedN int
	if _, err := fmt.Sscanf(line, "churned cycles=%d connected=%d sent=%d acked=%d", &cycles, &connected, &sentN, &ackedN); err != nil {
		t.Fatalf("churn summary %q: %v", line, err)
	}
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
	c := churnTally(ch, rcv)
	if c.acked != ackedN {
		t.Fatalf("the churner printed %d acked lines and counted %d", c.acked, ackedN)
	}
	row(t, fmt.Sprintf("100 peers churning for %v", sz.churnFor), c.Tally,
		fmt.Sprintf("sent = messages acknowledged; %d cycles (%d connected, %d sent, %d acknowledged); %d received without an acknowledgement (sent as the churn ended); receiver goroutines %d -> %d, heap %d KiB -> %d KiB",
			cycles, connected, sentN, ackedN, c.unacked, base.goroutines, after.goroutines, base.heap>>10, after.heap>>10))
	if cycles == 0 || ackedN == 0 || c.Lost != 0 || c.Duplicated != 0 || c.Unexpected != 0 {
		t.Fatalf("acknowledged messages: %s", c.Tally)
	}
	if after.goroutines > base.goroutines+10 {
		t.Fatalf("receiver goroutines %d after churn, %d before", after.goroutines, base.goroutines)
	}
	if after.heap > base.heap+32<<20 {
		t.Fatalf("receiver heap %d after churn, %d before", after.heap, base.heap)
	}
}

// churnResult tallies the churn: Sent counts acknowledged messages,
// Received every message the receiver printed, Lost the acknowledged ones
// it never printed, Duplicated receptions of a number already received,
// Reordered first receptions of a number lower than one received before
// from the same churning peer.
type churnResult struct {
	testutil.Tally
	acked, unacked int
}

func churnTally(ch, rcv *proc) churnResult {
	var r churnResult
	acked := map[[2]int]bool{} // peer, cycle
	for _, line := range ch.output() {
		var p, k int
		if n, _ := fmt.Sscanf(line, "acked %d %d", &p, &k); n == 2 {
			acked[[2]int{p, k}] = true
		}
	}
	r.acked = len(acked)
	r.Sent = len(acked)
	seen := map[[2]int]bool{}
	highest := map[int]int{}
	for _, line := range rcv.output() {
		var from string
		var n int
		if c, _ := fmt.Sscanf(line, "got %s %d", &from, &n); c != 2 {
			continue
		}
		r.Received++
		p, k := n/1000000, n%1000000
		if from != fmt.Sprintf("churner-%d", p) {
			r.Unexpected++
			continue
		}
		key := [2]int{p, k}
		if seen[key] {
			r.Duplicated++
			continue
		}
		seen[key] = true
		if h, ok := highest[p]; ok && k < h {
			r.Reordered++
		}
		highest[p] = max(highest[p], k)
		if !acked[key] {
			r.unacked++
		}
	}
	for key := range acked {
		if !seen[key] {
			r.Lost++
		}
	}
	return r
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
	t.Run("latency", func(t *testing.T) { testLatency(t, sz) })
	t.Run("bandwidth", func(t *testing.T) { testBandwidth(t, sz) })
	t.Run("churn", func(t *testing.T) { testChurn(t, sz) })
	writeReport(t)
}

// writeReport prints the rows so far as a table and, with
// SLC_RELIABILITY_REPORT set, writes the table there.
func writeReport(t *testing.T) {
	report.Lock()
	defer report.Unlock()
	table := "| scenario | sent | received | lost | duplicated | reordered | notes | reproduce |\n|---|---|---|---|---|---|---|---|\n" + strings.Join(report.rows, "\n") + "\n"
	t.Log("\n" + table)
	if path := os.Getenv("SLC_RELIABILITY_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}
