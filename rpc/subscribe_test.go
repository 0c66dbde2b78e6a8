package rpc_test

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/examples/timer/timer"
	"github.com/slc-go/slc/internal/testutil"
	"github.com/slc-go/slc/rpc"
)

// TestSubscriptionSurvivesReconnect: a subscription keeps delivering
// across forced connection resets, including the events fired while the
// connection was down.
func TestSubscriptionSurvivesReconnect(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	clock := newFakeClock()
	server := newNode(t, "timer")
	tm := timer.New(clock)
	if err := server.Register("/timer", tm.Impl); err != nil {
		t.Fatal(err)
	}
	proxy, err := testutil.NewProxy(listen(t, server))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	client := newNode(t, "client", quickRetry())
	rec := record(t, client)
	peer := connect(t, client, proxy.Addr())

	got := newEvents()
	sub, err := client.On(peer, "/timer", "com.example.Timer", "timeout", got.handler)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	add := func(name string, seconds float64) {
		t.Helper()
		if _, err := timer.Add.Call(ctx, client, peer, "/timer", timer.AddIn{Name: name, Seconds: seconds}); err != nil {
			t.Fatal(err)
		}
	}
	connected := func(n int) {
		t.Helper()
		rec.waitCount(ctx, t, "PeerConnected", n, isType[*actors.PeerConnected])
	}
	connected(1)

	// A reset between the call and the event.
	add("t1", 1)
	proxy.Reset()
	connected(2)
	clock.Advance(time.Second)
	if ev := got.next(ctx, t); ev.Args["name"] != "t1" || ev.Node != "timer" || ev.Event != "timeout" {
		t.Fatalf("event %+v, want timeout t1 from timer", ev)
	}

	// An event fired while the connection is down arrives once it is
	// back.
	add("t2", 1)
	proxy.Refuse(true)
	proxy.Reset()
	rec.waitCount(ctx, t, "PeerDisconnected", 2, isType[*actors.PeerDisconnected])
	clock.Advance(time.Second) // fires t2 while the client cannot reconnect
	proxy.Refuse(false)
	if ev := got.next(ctx, t); ev.Args["name"] != "t2" {
		t.Fatalf("event %+v, want timeout t2", ev)
	}
	if n := rec.count(func(ev any) bool { pc, ok := ev.(*actors.PeerConnected); return ok && pc.Restarted }); n != 0 {
		t.Fatalf("%d restarts reported; the server never restarted", n)
	}
	if n := rpc.RemoteSubscriptions(server); n != 1 {
		t.Errorf("server holds %d subscriptions, want 1", n)
	}
}

// timerNode is a run of the helper program.
type timerNode struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// startTimerNode runs the helper, listening on addr, and waits until it
// listens.
func startTimerNode(ctx context.Context, t *testing.T, addr string) *timerNode {
	t.Helper()
	cmd := exec.Command(timerNodeBin, "-name", "timernode", "-addr", addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tn := &timerNode{cmd: cmd, stdin: stdin}
	t.Cleanup(tn.stop)
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		a, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			tn.stop()
			t.Fatalf("timernode did not start: %q\n%s", l, stderr.String())
		}
		tn.addr = a
	case <-ctx.Done():
		tn.stop()
		t.Fatalf("timernode did not start: %v\n%s", ctx.Err(), stderr.String())
	}
	return tn
}

// kill ends the process at once, as a crash would.
func (tn *timerNode) kill() {
	tn.cmd.Process.Kill()
	tn.cmd.Wait()
}

// stop ends the process cleanly (it exits when its input closes).
func (tn *timerNode) stop() {
	if tn.cmd.ProcessState != nil {
		return
	}
	tn.stdin.Close()
	done := make(chan struct{})
	go func() {
		tn.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		tn.cmd.Process.Kill()
		<-done
	}
}

// TestSubscriptionSurvivesRestart: the remote process is killed and
// started again on the same address; the subscription is sent to its new
// instance, and its events arrive.
func TestSubscriptionSurvivesRestart(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	first := startTimerNode(ctx, t, "127.0.0.1:0")
	client := newNode(t, "client", quickRetry())
	rec := record(t, client)
	peer := connect(t, client, first.addr)
	if peer != "timernode" {
		t.Fatalf("connected to %q", peer)
	}
	d, err := client.Describe(ctx, peer)
	if err != nil {
		t.Fatal(err)
	}
	firstInst := d.Instance

	type fired struct {
		from slc.PeerID
		name string
	}
	got := make(chan fired, 10)
	sub, err := timer.TimeoutEv.On(client, peer, "/timer", func(from slc.PeerID, v timer.Timeout) { got <- fired{from, v.Name} })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	expect := func(name string) {
		t.Helper()
		if _, err := timer.Add.Call(ctx, client, peer, "/timer", timer.AddIn{Name: name, Seconds: 0}); err != nil {
			t.Fatal(err)
		}
		select {
		case f := <-got:
			if f.name != name || f.from != "timernode" {
				t.Fatalf("timeout %q from %s, want %q from timernode", f.name, f.from, name)
			}
		case <-ctx.Done():
			t.Fatalf("no timeout event for %q", name)
		}
	}
	expect("before")

	first.kill()
	second := startTimerNode(ctx, t, first.addr)
	defer second.stop()
	ev := rec.wait(ctx, t, "NodeAppeared of the new instance", func(ev any) bool {
		a, ok := ev.(*rpc.NodeAppeared)
		return ok && a.Node == "timernode" && a.Instance != firstInst
	}).(*rpc.NodeAppeared)
	if !ev.Peer {
		t.Errorf("NodeAppeared %+v: not a peer", ev)
	}
	rec.wait(ctx, t, "PeerConnected (restarted)", func(ev any) bool {
		pc, ok := ev.(*actors.PeerConnected)
		return ok && pc.Peer == "timernode" && pc.Restarted
	})
	rec.wait(ctx, t, "NodeDisappeared of the old instance", func(ev any) bool {
		g, ok := ev.(*rpc.NodeDisappeared)
		return ok && g.Node == "timernode" && g.Instance == firstInst
	})
	expect("after")

	// And unsubscribing ends it: the event still fires, nothing arrives.
	// Another subscription sees the event, so that the next one is made
	// after it was fired (the helper's timers fire on goroutines of their
	// own, possibly after the result of add).
	watcher := make(chan string, 10)
	sub3, err := timer.TimeoutEv.On(client, peer, "/timer", func(from slc.PeerID, v timer.Timeout) { watcher <- v.Name })
	if err != nil {
		t.Fatal(err)
	}
	defer sub3.Unsubscribe()
	if err := sub3.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	sub.Unsubscribe()
	if _, err := timer.Add.Call(ctx, client, peer, "/timer", timer.AddIn{Name: "unheard", Seconds: 0}); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-watcher:
		if name != "unheard" {
			t.Fatalf("the other subscription got %q, want unheard", name)
		}
	case <-ctx.Done():
		t.Fatal("no timeout event for unheard")
	}
	select {
	case f := <-got:
		t.Fatalf("event %+v after Unsubscribe", f)
	default:
	}
	// A subscription made after it gets the next event, and only that.
	sub2, err := timer.TimeoutEv.On(client, peer, "/timer", func(from slc.PeerID, v timer.Timeout) { got <- fired{from, v.Name} })
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Unsubscribe()
	expect("heard")
}

// TestUnsubscribe: after Unsubscribe the remote node drops the
// subscription and its events stop.
func TestUnsubscribe(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	clock := newFakeClock()
	server := newNode(t, "timer")
	t1, t2 := timer.New(clock), timer.New(clock)
	if err := server.Register("/a", t1.Impl); err != nil {
		t.Fatal(err)
	}
	if err := server.Register("/b", t2.Impl); err != nil {
		t.Fatal(err)
	}
	client := newNode(t, "client")
	peer := connect(t, client, listen(t, server))
	gotA, gotB := newEvents(), newEvents()
	subA, err := client.On(peer, "/a", "com.example.Timer", "timeout", gotA.handler)
	if err != nil {
		t.Fatal(err)
	}
	subB, err := client.On(peer, "/b", "com.example.Timer", "timeout", gotB.handler)
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Unsubscribe()
	for _, s := range []*rpc.Subscription{subA, subB} {
		if err := s.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := rpc.RemoteSubscriptions(server); n != 2 {
		t.Fatalf("server holds %d subscriptions, want 2", n)
	}
	subA.Unsubscribe()
	subA.Unsubscribe() // idempotent
	if _, err := timer.Add.Call(ctx, client, peer, "/a", timer.AddIn{Name: "a", Seconds: 1}); err != nil {
		t.Fatal(err)
	}
	if n := rpc.RemoteSubscriptions(server); n != 1 {
		t.Fatalf("after Unsubscribe the server holds %d subscriptions, want 1", n)
	}
	if _, err := timer.Add.Call(ctx, client, peer, "/b", timer.AddIn{Name: "b", Seconds: 2}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3 * time.Second) // a fires, then b
	if ev := gotB.next(ctx, t); ev.Args["name"] != "b" || ev.Path != "/b" {
		t.Fatalf("event %+v, want b at /b", ev)
	}
	// Events from one node are handled in order: a's would have come first.
	select {
	case ev := <-gotA.ch:
		t.Fatalf("event %+v after Unsubscribe", ev)
	default:
	}
	if _, err := client.On(peer, "bad path", "com.example.Timer", "timeout", gotA.handler); err == nil {
		t.Error("On accepted an invalid path")
	}
	if _, err := client.On(peer, "/a", "com.example.Timer", "timeout", nil); err == nil {
		t.Error("On accepted a nil handler")
	}
}

// TestOwnEvents: a node subscribes to its own events by its own name.
func TestOwnEvents(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := newNode(t, "solo")
	clock := newFakeClock()
	tm := timer.New(clock)
	if err := n.Register("/timer", tm.Impl); err != nil {
		t.Fatal(err)
	}
	got := newEvents()
	sub, err := n.On("solo", "/timer", "com.example.Timer", "timeout", got.handler)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tm.Impl.Fire(ctx, "timeout", rpc.Args{"name": "self"}); err != nil {
		t.Fatal(err)
	}
	if ev := got.next(ctx, t); ev.Node != "solo" || ev.Args["name"] != "self" {
		t.Fatalf("event %+v", ev)
	}
	if err := tm.Impl.Fire(ctx, "timeout", rpc.Args{"name": 3}); err == nil {
		t.Error("Fire accepted an argument of the wrong type")
	}
	if err := tm.Impl.Fire(ctx, "nope", nil); err == nil {
		t.Error("Fire accepted an undeclared event")
	}
}
