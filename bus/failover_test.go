package bus_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slc-go/slc/internal/testutil"
)

// busnode is a running testdata/busnode process.
type busnode struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	exited chan struct{}

	mu        sync.Mutex
	joined    bool
	listening bool
	server    string
	got       int
	sent      int
	result    string
	// published: what the node had published when it got its current
	// server (the "server NAME published=N" report).
	published int
	stats     map[string]int // the last "stats" report
	lines     []string
	sig       chan struct{}
}

func startBusnode(t *testing.T, name string, args ...string) *busnode {
	t.Helper()
	n := &busnode{t: t, name: name, sig: make(chan struct{}, 1), exited: make(chan struct{})}
	n.cmd = exec.Command(busnodeBin, append([]string{"-name", name}, args...)...)
	n.cmd.Stderr = &n.stderr
	var err error
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go n.read(stdout)
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			t.Logf("%s output:\n%s\n%s stderr:\n%s", name, strings.Join(n.outLines(), "\n"), name, n.stderr.String())
		}
	})
	return n
}

// read parses the node's reports until it exits.
func (n *busnode) read(r io.Reader) {
	defer close(n.exited)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		n.mu.Lock()
		n.lines = append(n.lines, line)
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "joined":
			n.joined = true
			n.server = strings.TrimPrefix(f[1], "server=")
		case line == "listening":
			n.listening = true
		case len(f) == 3 && f[0] == "server" && strings.HasPrefix(f[2], "published="):
			n.server = f[1]
			n.published, _ = strconv.Atoi(strings.TrimPrefix(f[2], "published="))
		case len(f) > 1 && f[0] == "stats":
			n.stats = map[string]int{}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n.stats[k], _ = strconv.Atoi(v)
			}
		case len(f) == 2 && f[0] == "got":
			n.got, _ = strconv.Atoi(f[1])
		case len(f) == 2 && f[0] == "sent":
			n.sent, _ = strconv.Atoi(f[1])
		case len(f) > 1 && f[0] == "result":
			n.result = strings.TrimPrefix(line, "result ")
		}
		n.mu.Unlock()
		select {
		case n.sig <- struct{}{}:
		default:
		}
	}
	n.cmd.Wait()
}

func (n *busnode) outLines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lines...)
}

// waitFor waits until cond holds for the node's reports.
func (n *busnode) waitFor(ctx context.Context, what string, cond func(*busnode) bool) {
	n.t.Helper()
	for {
		n.mu.Lock()
		ok := cond(n)
		n.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-n.sig:
		case <-n.exited:
			n.t.Fatalf("%s exited while waiting for %s", n.name, what)
		case <-ctx.Done():
			n.t.Fatalf("%s: no %s: %v", n.name, what, ctx.Err())
		}
	}
}

func (n *busnode) send(cmd string) {
	n.t.Helper()
	if _, err := fmt.Fprintln(n.stdin, cmd); err != nil {
		n.t.Fatalf("%s: %s: %v", n.name, cmd, err)
	}
}

// quit ends the node and checks that it exits cleanly.
func (n *busnode) quit() {
	n.t.Helper()
	n.send("quit")
	<-n.exited
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		n.t.Errorf("%s exited with %d", n.name, code)
	}
}

// TestServerKilled runs three participants in their own processes, kills
// the serving one with SIGKILL while an informer publishes, and counts
// what a listener got: every event once and in order with reliable QoS;
// with unreliable QoS some may be lost, never duplicated, no more than
// the events published in the changeover's window, and none to a full
// queue. The survivors
// must elect the longest-lived of them as the new server, whichever of
// the informer and the listener it is.
func TestServerKilled(t *testing.T) {
	for _, unreliable := range []bool{false, true} {
		for _, successor := range []string{"listener", "informer"} {
			qos := "reliable"
			if unreliable {
				qos = "unreliable"
			}
			t.Run(qos+"/successor="+successor, func(t *testing.T) {
				testServerKilled(t, unreliable, successor)
			})
		}
	}
}

func testServerKilled(t *testing.T, unreliable bool, successor string) {
	const before, after = 300, 300 // events received before the kill, and after the changeover
	ctx := testCtx(t, 3*time.Minute)
	addr := freeAddr(t)
	joined := func(n *busnode) bool { return n.joined }

	srv := startBusnode(t, "srv", "-addr", addr, "-listen", "/")
	srv.waitFor(ctx, "join", joined)
	if srv.server != "srv" {
		t.Fatalf("the first node does not serve: server %q", srv.server)
	}
	pubArgs := []string{"-addr", addr, "-publish", "/robot/sensors/lidar/"}
	if unreliable {
		pubArgs = append(pubArgs, "-unreliable")
	}
	start := map[string]func() *busnode{
		"listener": func() *busnode { return startBusnode(t, "lst", "-addr", addr, "-listen", "/robot/sensors/") },
		"informer": func() *busnode { return startBusnode(t, "inf", pubArgs...) },
	}
	// The node that joins second has the lower rank: it is the successor.
	order := []string{"listener", "informer"}
	if successor == "informer" {
		order = []string{"informer", "listener"}
	}
	nodes := map[string]*busnode{}
	for _, role := range order {
		n := start[role]()
		n.waitFor(ctx, "join", joined)
		nodes[role] = n
	}
	lst, inf := nodes["listener"], nodes["informer"]
	lst.waitFor(ctx, "listener", func(n *busnode) bool { return n.listening })

	inf.send("start")
	lst.waitFor(ctx, fmt.Sprintf("%d events", before), func(n *busnode) bool { return n.got >= before })
	// The old server has dropped nothing over a queue limit so far (what
	// it drops between this report and the kill would show as loss).
	srv.send("stats")
	srv.waitFor(ctx, "stats", func(n *busnode) bool { return n.stats != nil })
	if d := srv.stats["dropped"]; d != 0 {
		t.Errorf("the server dropped %d events over a queue limit before the kill", d)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	lst.mu.Lock()
	atKill := lst.got
	lst.mu.Unlock()

	want := nodes[successor].name
	for _, n := range []*busnode{lst, inf} {
		n.waitFor(ctx, "new server "+want, func(n *busnode) bool { return n.server == want })
	}
	lst.waitFor(ctx, "events after the changeover", func(n *busnode) bool { return n.got >= atKill+after })
	inf.send("stop")
	inf.waitFor(ctx, "end of publishing", func(n *busnode) bool { return n.sent > 0 })
	lst.waitFor(ctx, "result", func(n *busnode) bool { return n.result != "" })

	for _, n := range []*busnode{lst, inf} {
		n.send("stats")
		n.waitFor(ctx, "stats", func(n *busnode) bool { return n.stats != nil })
	}
	var tally testutil.Tally
	if _, err := fmt.Sscanf(lst.result, "sent=%d received=%d lost=%d duplicated=%d reordered=%d",
		&tally.Sent, &tally.Received, &tally.Lost, &tally.Duplicated, &tally.Reordered); err != nil {
		t.Fatalf("result %q: %v", lst.result, err)
	}
	qos := "reliable"
	if unreliable {
		qos = "unreliable"
	}
	t.Logf("%s QoS, new server %s (the %s): %s (server killed after %d received)", qos, want, successor, tally, atKill)
	if tally.Sent != inf.sent {
		t.Errorf("listener counted %d sent, informer reports %d", tally.Sent, inf.sent)
	}
	if tally.Duplicated != 0 || tally.Reordered != 0 || strings.Contains(lst.result, "unexpected") {
		t.Errorf("duplicated or reordered events: %s", lst.result)
	}
	if !unreliable && !tally.Exact() {
		t.Errorf("reliable QoS lost events in the changeover: %s", tally)
	}
	if tally.Received+tally.Lost != tally.Sent {
		t.Errorf("received %d + lost %d != sent %d", tally.Received, tally.Lost, tally.Sent)
	}
	// Nothing was lost to a full queue: not in the informer's outgoing
	// queue, the new server's queues (the listener or the informer serves)
	// or the listener's queue.
	for _, n := range []*busnode{lst, inf} {
		if d := n.stats["dropped"]; d != 0 {
			t.Errorf("%s dropped %d events over a queue limit: %v", n.name, d, n.stats)
		}
	}
	// Processes on one host stamp times that never decrease along the
	// pipeline (no step of the system clock while they run).
	if b := lst.stats["backwards"]; b != 0 {
		t.Errorf("%d events had a time before the one of the step before it", b)
	}
	// The changeover loses at most the events in its window: those
	// published after the last one the listener had reported before the
	// kill (atKill) and before the informer had the new server. Events
	// published without a server wait in the informer's queue and go to
	// the new server, which keeps them for the listener until it joins.
	inf.mu.Lock()
	atTakeover := inf.published
	inf.mu.Unlock()
	window := atTakeover - atKill
	t.Logf("changeover window: %d events published between the listener's %d received and the new server (%d published then); %d lost",
		window, atKill, atTakeover, tally.Lost)
	if tally.Lost > window {
		t.Errorf("lost %d events, more than the %d of the changeover's window", tally.Lost, window)
	}
	inf.quit()
	lst.quit()
}
