package discovery_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/discovery"
)

// Every test stays on lo or inside network namespaces of its own.
var loOnly = []string{"lo"}

// proc is a running helper process (testdata/mdnsnode).
type proc struct {
	t      *testing.T
	label  string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    chan map[string]any
	stderr syncBuffer
	done   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc runs the helper with args, behind prefix (such as "ip netns
// exec NS").
func startProc(t *testing.T, prefix []string, args ...string) *proc {
	t.Helper()
	argv := append(slices.Clone(prefix), nodeBin)
	argv = append(argv, args...)
	p := &proc{t: t, label: strings.Join(args, " "), cmd: exec.Command(argv[0], argv[1:]...),
		out: make(chan map[string]any, 16), done: make(chan struct{})}
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"ok": false, "line": sc.Text()}
			}
			p.out <- m
		}
		close(p.out)
		p.cmd.Wait()
	}()
	t.Cleanup(p.kill)
	return p
}

// next returns the helper's next report.
func (p *proc) next(timeout time.Duration) map[string]any {
	p.t.Helper()
	select {
	case m, ok := <-p.out:
		if !ok {
			p.t.Fatalf("%s: exited without a report; stderr:\n%s", p.label, p.stderr.String())
		}
		return m
	case <-time.After(timeout):
		p.t.Fatalf("%s: no report within %v; stderr:\n%s", p.label, timeout, p.stderr.String())
		return nil
	}
}

// stop closes the helper's stdin, which makes an advertiser say goodbye
// and exit, and waits for it.
func (p *proc) stop() {
	p.t.Helper()
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s did not exit; stderr:\n%s", p.label, p.stderr.String())
	}
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	for range p.out {
	}
	<-p.done
}

// advertiser starts a helper that advertises name and waits until it is
// announced.
func advertiser(t *testing.T, prefix []string, name string, args ...string) (*proc, map[string]any) {
	t.Helper()
	p := startProc(t, prefix, append([]string{"advertise", "-name", name}, args...)...)
	ready := p.next(30 * time.Second)
	if ready["ready"] != true {
		t.Fatalf("advertiser %s: %v; stderr:\n%s", name, ready, p.stderr.String())
	}
	return p, ready
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestCrossProcess: two nodes advertise from their own processes; this
// process discovers both, connects to each by name and exchanges a
// message; a third process does the same; a node that stops advertising
// is lost (goodbye) and a new browse no longer finds it.
func TestCrossProcess(t *testing.T) {
	suffix := fmt.Sprint(os.Getpid())
	nameA, nameB := "xp-a-"+suffix, "xp-b-"+suffix
	procA, readyA := advertiser(t, nil, nameA, "-iface", "lo")
	_, readyB := advertiser(t, nil, nameB, "-iface", "lo")

	c, err := slc.New(slc.WithName("xp-test-"+suffix), slc.WithInterfaces(loOnly...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svcs, err := c.Discover(ctxFor(t, time.Second), "")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]slc.Service{}
	for _, s := range svcs {
		byName[s.Name] = s
	}
	for name, ready := range map[string]map[string]any{nameA: readyA, nameB: readyB} {
		s, ok := byName[name]
		if !ok {
			t.Fatalf("%s not discovered; found %+v", name, svcs)
		}
		if string(s.PeerID) != ready["node"] || !slices.Contains(s.Addrs, ready["addr"].(string)) {
			t.Fatalf("%s: discovered %+v, the helper says %v", name, s, ready)
		}
		id, err := c.Connect(ctxFor(t, 5*time.Second), "mdns:"+name)
		if err != nil {
			t.Fatal(err)
		}
		if id != s.PeerID {
			t.Fatalf("connected to %q, want %q", id, s.PeerID)
		}
		if _, err := c.SendRaw(ctxFor(t, 5*time.Second), []byte("ping "+name), id); err != nil {
			t.Fatal(err)
		}
		m, err := c.Receive(ctxFor(t, 5*time.Second), id)
		if err != nil || string(m.Raw) != "echo:ping "+name {
			t.Fatalf("reply %q, %v", m.Raw, err)
		}
	}
	// A third process connects by name too.
	r := startProc(t, nil, "connect", "-name", nameB, "-iface", "lo").next(30 * time.Second)
	if r["ok"] != true || r["peer"] != readyB["node"] {
		t.Fatalf("helper connect: %v", r)
	}

	// A browse in progress sees A's goodbye.
	lost := make(chan *actors.ServiceLost, 1)
	seen := make(chan struct{}, 1)
	sub := c.ActorSystem().EventStream.Subscribe(func(ev any) {
		switch e := ev.(type) {
		case *actors.ServiceDiscovered:
			if e.Service.Name == nameA {
				select {
				case seen <- struct{}{}:
				default:
				}
			}
		case *actors.ServiceLost:
			if e.Service.Name == nameA {
				select {
				case lost <- e:
				default:
				}
			}
		}
	})
	defer c.ActorSystem().EventStream.Unsubscribe(sub)
	bctx, bcancel := context.WithCancel(context.Background())
	browseDone := make(chan struct{})
	go func() {
		defer close(browseDone)
		c.Discover(bctx, "")
	}()
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("the long browse did not see A")
	}
	procA.stop()
	select {
	case ev := <-lost:
		if ev.Reason != discovery.ReasonGoodbye || string(ev.Service.PeerID) != readyA["node"] {
			t.Fatalf("ServiceLost %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ServiceLost after A stopped advertising")
	}
	// A new browse, in this process and in another, does not find A.
	svcs, err = c.Discover(ctxFor(t, time.Second), nameA)
	if err != nil || len(svcs) != 0 {
		t.Fatalf("after goodbye, this process found %+v, %v", svcs, err)
	}
	d := startProc(t, nil, "discover", "-name", nameA, "-iface", "lo", "-timeout", "1s").next(30 * time.Second)
	if d["ok"] != true || d["services"] != nil && len(d["services"].([]any)) != 0 {
		t.Fatalf("after goodbye, another process found %v", d)
	}
	bcancel()
	<-browseDone
}

// TestCrossProcessReliability runs advertise→discover rounds between
// processes: each round starts an advertiser and, at the same moment, a
// process that connects to it by name and exchanges a message; this
// process's long-running browser must see it too. Three processes share
// UDP port 5353 throughout. Every round must succeed: one lost packet, or
// an advertiser that starts a moment after the first query, must cost a
// re-query, not the round.
func TestCrossProcessReliability(t *testing.T) {
	const rounds = 20
	br, err := discovery.NewBrowser(discovery.BrowseConfig{Interfaces: loOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	discovered := make(chan string, 4*rounds)
	defer br.Subscribe(func(ev discovery.Event) {
		if ev.Kind == discovery.Discovered {
			select {
			case discovered <- ev.Service.Name:
			default:
			}
		}
	})()
	found, seen := 0, 0
	var connectMS []int
	for i := range rounds {
		name := fmt.Sprintf("rel-%d-%d", os.Getpid(), i)
		adv := startProc(t, nil, "advertise", "-name", name, "-iface", "lo")
		con := startProc(t, nil, "connect", "-name", name, "-iface", "lo", "-timeout", "10s", "-v")
		ready := adv.next(30 * time.Second)
		if r := con.next(30 * time.Second); r["ok"] == true && r["peer"] == ready["node"] {
			found++
			connectMS = append(connectMS, int(r["connect_ms"].(float64)))
		} else {
			t.Errorf("round %d: the connecting process: %v; stderr:\n%s", i, r, con.stderr.String())
		}
		timeout := time.After(5 * time.Second)
	wait:
		for {
			select {
			case n := <-discovered:
				if n == name {
					seen++
					break wait
				}
			case <-timeout:
				t.Errorf("round %d: this process's browser did not see %s within 5s of its announcement", i, name)
				break wait
			}
		}
		adv.stop()
	}
	slices.Sort(connectMS)
	t.Logf("%d/%d rounds: found and connected by name from a separate process; %d/%d seen by this process's browser", found, rounds, seen, rounds)
	if len(connectMS) > 0 {
		t.Logf("connect by name, started with the advertiser: median %d ms, max %d ms (includes the advertiser's start and its 240 ms probe)",
			connectMS[len(connectMS)/2], connectMS[len(connectMS)-1])
	}
	if found != rounds || seen != rounds {
		t.Fatalf("discovery missed: %d/%d and %d/%d", found, rounds, seen, rounds)
	}
}
