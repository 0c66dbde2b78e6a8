package group

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/group/internal/check"
	"github.com/slc-go/slc/internal/testutil"
)

// gnodeBin is the member program of the process tests, built once.
var gnodeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slc-group")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gnodeBin = filepath.Join(dir, "gnode")
	build := exec.Command("go", "build", "-o", gnodeBin, "./internal/gnode")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build gnode:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, append(testutil.LeakOptions(), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}

// A cluster of goroutine members, one communicator each, every pair
// connected through its own fault proxy. Hooks record each member's
// history, in the core's order, for the checker.

type tnode struct {
	name   slc.PeerID
	c      *slc.Communicator
	m      *Member
	addr   string
	dead   atomic.Bool
	got    []Delivery // what Receive returned
	gotMu  sync.Mutex
	recvWG sync.WaitGroup
}

type cluster struct {
	t       *testing.T
	nodes   []*tnode
	proxies map[[2]int]*testutil.Proxy // [i,j], i<j: j dialed i through it
	clock   atomic.Int64
	mu      sync.Mutex
	hist    check.History
}

func commOpts(name string) []slc.Option {
	return []slc.Option{slc.WithName(name), slc.WithLogger(testutil.Quiet()),
		slc.WithRetries(3), slc.WithTimeout(300 * time.Millisecond),
		slc.WithHeartbeat(100*time.Millisecond, 1500*time.Millisecond), slc.WithLinger(1500 * time.Millisecond)}
}

func (cl *cluster) record(p slc.PeerID, e check.Event) {
	cl.mu.Lock()
	cl.hist[string(p)] = append(cl.hist[string(p)], e)
	cl.mu.Unlock()
}

func (cl *cluster) hooksFor(name slc.PeerID) *hooks {
	return &hooks{
		sent: func(d *dataMsg) {
			cl.record(name, check.Event{Kind: check.Send, Msg: check.MsgID{Sender: string(d.Sender), Serial: d.Serial},
				Service: int(d.Svc), Groups: d.Groups})
		},
		received: func(d *dataMsg) {
			cl.record(name, check.Event{Kind: check.Receive, Msg: check.MsgID{Sender: string(d.Sender), Serial: d.Serial},
				Time: cl.clock.Add(1)})
		},
		delivered: func(dv Delivery, unseen bool) {
			switch v := dv.(type) {
			case *Message:
				cl.record(name, check.Event{Kind: check.Deliver, Msg: check.MsgID{Sender: string(v.Sender), Serial: v.Serial},
					Service: int(v.Service), Groups: v.Groups, Time: cl.clock.Add(1), Unseen: unseen})
			case *Membership:
				cl.record(name, check.Event{Kind: check.View, Group: v.Group, ViewID: v.ViewID.String(),
					Members: peerStrings(v.Members), Transitional: v.Transitional})
			}
		},
	}
}

// newCluster starts n members, connected pairwise through proxies, and
// waits until they form one configuration.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	cl := &cluster{t: t, proxies: map[[2]int]*testutil.Proxy{}, hist: check.History{}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		name := slc.PeerID(fmt.Sprintf("m%d", i))
		c, err := slc.New(commOpts(string(name))...)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := c.Listen(ctx, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		nd := &tnode{name: name, c: c, addr: addr.String()}
		nd.m, err = New(c, func(cfg *Config) error { cfg.hooks = cl.hooksFor(name); return nil },
			WithTick(10*time.Millisecond), WithCloseTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		nd.recvWG.Add(1)
		go func() {
			defer nd.recvWG.Done()
			for {
				d, err := nd.m.Receive(context.Background())
				if err != nil {
					return
				}
				nd.gotMu.Lock()
				nd.got = append(nd.got, d)
				nd.gotMu.Unlock()
			}
		}()
		cl.nodes = append(cl.nodes, nd)
	}
	t.Cleanup(cl.close)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			p, err := testutil.NewProxy(cl.nodes[i].addr)
			if err != nil {
				t.Fatal(err)
			}
			cl.proxies[[2]int{i, j}] = p
			if _, err := cl.nodes[j].c.Connect(ctx, p.Addr()); err != nil {
				t.Fatalf("%s connect to %s: %v", cl.nodes[j].name, cl.nodes[i].name, err)
			}
		}
	}
	cl.waitConfig(n)
	return cl
}

func (cl *cluster) live() []*tnode {
	var out []*tnode
	for _, nd := range cl.nodes {
		if !nd.dead.Load() {
			out = append(out, nd)
		}
	}
	return out
}

// waitConfig waits until the live members share one configuration of n.
func (cl *cluster) waitConfig(n int) {
	cl.t.Helper()
	testutil.Eventually(cl.t, 30*time.Second, func() bool {
		live := cl.live()
		first := live[0].m.Configuration()
		if len(first.Members) != n {
			return false
		}
		for _, nd := range live[1:] {
			c := nd.m.Configuration()
			if c.Coordinator != first.Coordinator || c.Config != first.Config {
				return false
			}
		}
		return true
	}, "the members did not form a configuration of %d: %v", n, cl.configs())
}

func (cl *cluster) configs() []string {
	var out []string
	for _, nd := range cl.live() {
		c := nd.m.Configuration()
		out = append(out, fmt.Sprintf("%s:%s/%d%v", nd.name, c.Coordinator, c.Config, c.Members))
	}
	return out
}

// waitMembers waits until every live member in want sees want as g's
// members.
func (cl *cluster) waitMembers(g string, want []slc.PeerID) {
	cl.t.Helper()
	testutil.Eventually(cl.t, 30*time.Second, func() bool {
		for _, nd := range cl.live() {
			if slices.Contains(want, nd.name) && !slices.Equal(nd.m.Members(g), want) {
				return false
			}
		}
		return true
	}, "members of %s are not %v", g, want)
}

// waitQuiet waits until every live member has everything it sent
// ordered and stable, and the members agree on the configuration.
func (cl *cluster) waitQuiet() {
	cl.t.Helper()
	testutil.Eventually(cl.t, 60*time.Second, func() bool {
		for _, nd := range cl.live() {
			nd.m.mu.Lock()
			q := nd.m.core.quiescent() && nd.m.core.acc == nil && nd.m.core.prop == nil && len(nd.m.out) == 0
			nd.m.mu.Unlock()
			if !q {
				return false
			}
		}
		return true
	}, "the members did not settle: %v", cl.configs())
}

// kill cuts a member off as a crash would: its proxies refuse and reset
// every connection, so the others lose it without a goodbye.
func (cl *cluster) kill(i int) {
	for k, p := range cl.proxies {
		if k[0] == i || k[1] == i {
			p.Refuse(true)
			p.Reset()
		}
	}
	cl.nodes[i].dead.Store(true)
}

func (cl *cluster) close() {
	for _, nd := range cl.nodes {
		nd.m.Close()
		nd.c.Close()
		nd.recvWG.Wait()
	}
	for _, p := range cl.proxies {
		p.Close()
	}
}

// checkHistory runs the checker and compares what Receive returned with
// the recorded deliveries.
func (cl *cluster) checkHistory() *check.Report {
	cl.t.Helper()
	cl.mu.Lock()
	h := check.History{}
	for k, v := range cl.hist {
		h[k] = slices.Clone(v)
	}
	cl.mu.Unlock()
	r := check.Check(h)
	if !r.OK() {
		cl.t.Fatalf("the checker found:\n%s", r)
	}
	cl.t.Logf("checks: %s", r)
	return r
}

var mixServices = []Service{Reliable, FIFO, Causal, Agreed, Safe, Agreed | SelfDiscard, Unreliable, Safe | SelfDiscard}

// send makes each live member multicast k messages of mixed services to
// groups, concurrently, and waits until they are sent.
func (cl *cluster) send(k int, groups ...[]string) {
	cl.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(cl.nodes))
	for idx, nd := range cl.live() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i := 0; i < k; i++ {
				svc := mixServices[(i+idx)%len(mixServices)]
				g := groups[(i+idx)%len(groups)]
				if _, err := nd.m.MulticastGroups(ctx, svc, g, int16(i), fmt.Sprintf("%s-%d", nd.name, i)); err != nil {
					errs <- fmt.Errorf("%s: %w", nd.name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		cl.t.Fatal(err)
	}
}

func (cl *cluster) names() []slc.PeerID {
	var out []slc.PeerID
	for _, nd := range cl.live() {
		out = append(out, nd.name)
	}
	return out
}

func (cl *cluster) joinAll(ctx context.Context, g string) {
	cl.t.Helper()
	for _, nd := range cl.live() {
		if err := nd.m.Join(ctx, g); err != nil {
			cl.t.Fatal(err)
		}
	}
	cl.waitMembers(g, cl.names())
}

// TestMembersBasic: three members join, multicast at every level, and
// every guarantee holds.
func TestMembersBasic(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := context.Background()
	cl.joinAll(ctx, "g")
	cl.send(40, []string{"g"})
	cl.waitQuiet()
	r := cl.checkHistory()
	if r.Counts[check.GTotal] == 0 || r.Counts[check.GSafe] == 0 {
		t.Fatalf("nothing was checked: %s", r)
	}
	// Receive returned what was delivered, in the same order.
	testutil.Eventually(t, 10*time.Second, func() bool {
		for _, nd := range cl.nodes {
			nd.gotMu.Lock()
			n := len(nd.got)
			nd.gotMu.Unlock()
			cl.mu.Lock()
			want := 0
			for _, e := range cl.hist[string(nd.name)] {
				if e.Kind == check.Deliver || e.Kind == check.View {
					want++
				}
			}
			cl.mu.Unlock()
			if n != want || nd.m.Poll() != 0 {
				return false
			}
		}
		return true
	}, "Receive did not return every delivery")
	for _, nd := range cl.nodes {
		nd.gotMu.Lock()
		for _, d := range nd.got {
			if msg, ok := d.(*Message); ok {
				if s, ok := msg.Body.(string); !ok || s != fmt.Sprintf("%s-%d", msg.Sender, msg.MsgType) {
					t.Errorf("%s got body %#v (type %d) from %s", nd.name, msg.Body, msg.MsgType, msg.Sender)
				}
			}
		}
		nd.gotMu.Unlock()
	}
}

// TestMembersFaults: five members in two overlapping groups, with
// connection resets and a stall while they multicast, then a member is
// killed (cut off without a goodbye) and the rest go on.
func TestMembersFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	cl := newCluster(t, 5)
	ctx := context.Background()
	cl.joinAll(ctx, "g")
	for _, nd := range cl.nodes[:3] {
		if err := nd.m.Join(ctx, "h"); err != nil {
			t.Fatal(err)
		}
	}
	cl.waitMembers("h", []slc.PeerID{"m0", "m1", "m2"})

	done := make(chan struct{})
	var faults sync.WaitGroup
	faults.Add(1)
	go func() {
		defer faults.Done()
		i := 0
		for {
			select {
			case <-done:
				return
			case <-time.After(30 * time.Millisecond):
			}
			keys := []([2]int){{0, 1}, {1, 3}, {2, 4}, {0, 3}, {3, 4}}
			p := cl.proxies[keys[i%len(keys)]]
			if i%4 == 3 {
				p.Stall()
				select {
				case <-done:
				case <-time.After(150 * time.Millisecond):
				}
				p.Unstall()
			} else {
				p.Reset()
			}
			i++
		}
	}()
	cl.send(60, []string{"g"}, []string{"g", "h"}, []string{"h"})
	close(done)
	faults.Wait()
	cl.waitQuiet()

	// A member dies mid-stream.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl.send(30, []string{"g"}, []string{"g", "h"})
	}()
	cl.kill(4)
	wg.Wait()
	cl.waitConfig(4)
	cl.waitMembers("g", []slc.PeerID{"m0", "m1", "m2", "m3"})
	cl.send(20, []string{"g"}, []string{"h"})
	cl.waitQuiet()

	// The survivors saw m4 leave, and why.
	for _, nd := range cl.live() {
		var left *Membership
		testutil.Eventually(t, 10*time.Second, func() bool {
			nd.gotMu.Lock()
			defer nd.gotMu.Unlock()
			for _, d := range nd.got {
				if v, ok := d.(*Membership); ok && v.Group == "g" && !v.Transitional && slices.Contains(v.Left, "m4") {
					left = v
					return true
				}
			}
			return false
		}, "%s did not see m4 leave g", nd.name)
		if left.Reason != Network {
			t.Errorf("%s: m4 left with reason %v, want network", nd.name, left.Reason)
		}
		t.Logf("%s: %v", nd.name, left)
	}
	r := cl.checkHistory()
	if r.Counts[check.GVirtual] == 0 {
		t.Fatalf("no view change was checked: %s", r)
	}
}

// TestMembersLeaveAndClose: a Leave and a Close are told with their
// reasons.
func TestMembersLeaveAndClose(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := context.Background()
	cl.joinAll(ctx, "g")
	if err := cl.nodes[2].m.Leave(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	cl.waitMembers("g", []slc.PeerID{"m0", "m1"})
	cl.nodes[1].m.Close()
	cl.nodes[1].dead.Store(true)
	cl.waitConfig(2)
	cl.waitMembers("g", []slc.PeerID{"m0"})
	testutil.Eventually(t, 10*time.Second, func() bool {
		var reasons []Reason
		cl.nodes[0].gotMu.Lock()
		for _, d := range cl.nodes[0].got {
			if v, ok := d.(*Membership); ok && !v.Transitional && len(v.Left) > 0 {
				reasons = append(reasons, v.Reason)
			}
		}
		cl.nodes[0].gotMu.Unlock()
		return slices.Equal(reasons, []Reason{Leave, Disconnect})
	}, "m0 did not see a leave then a disconnect")
	if _, err := cl.nodes[1].m.Multicast(ctx, Agreed, "g", 0, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Multicast after Close: %v, want ErrClosed", err)
	}
	cl.checkHistory()
}
