package group

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slc-go/slc/group/internal/check"
	"github.com/slc-go/slc/internal/testutil"
)

// A member as a separate process (internal/gnode).
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	lines map[string]bool // status lines seen
	addr  string
	evs   []check.Event
	done  chan struct{} // stdout closed
}

func startProc(t *testing.T, name, seeds string, n, k int) *proc {
	t.Helper()
	cmd := exec.Command(gnodeBin, "-name", name, "-seeds", seeds, "-n", fmt.Sprint(n), "-k", fmt.Sprint(k))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, stdin: stdin, lines: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			switch {
			case strings.HasPrefix(line, "E "):
				var e check.Event
				if json.Unmarshal([]byte(line[2:]), &e) == nil {
					p.evs = append(p.evs, e)
				}
			case strings.HasPrefix(line, "listening "):
				p.addr = strings.TrimPrefix(line, "listening ")
				p.lines["listening"] = true
			default:
				p.lines[line] = true
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("%s stderr: %s", name, stderr.String())
		}
	})
	return p
}

func (p *proc) saw(line string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines[line]
}

// TestProcesses runs five members as processes. They meet through one
// seed address behind a fault proxy that keeps resetting its
// connections, and connect to each other through the addresses they
// gossip. One is killed (SIGKILL) while they multicast; the rest finish,
// and the checker verifies the histories they printed.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n, k = 5, 60
	first := startProc(t, "p0", "", n, k)
	testutil.Eventually(t, 20*time.Second, func() bool { return first.saw("listening") }, "p0 did not start")
	proxy, err := testutil.NewProxy(first.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	procs := []*proc{first}
	for i := 1; i < n; i++ {
		procs = append(procs, startProc(t, fmt.Sprintf("p%d", i), proxy.Addr(), n, k))
	}
	for _, p := range procs {
		testutil.Eventually(t, 60*time.Second, func() bool { return p.saw("joined") }, "%s did not join", p.name)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				proxy.Reset()
			}
		}
	}()
	victim := procs[n-1]
	testutil.Eventually(t, 60*time.Second, func() bool { return victim.saw("progress 20") || victim.saw("finished") },
		"the victim did not make progress")
	victim.cmd.Process.Kill()
	survivors := procs[:n-1]
	for _, p := range survivors {
		testutil.Eventually(t, 90*time.Second, func() bool { return p.saw("finished") }, "%s did not finish", p.name)
	}
	close(stop)
	wg.Wait()
	for _, p := range survivors {
		fmt.Fprintln(p.stdin, "close")
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not exit", p.name)
		}
	}
	h := check.History{}
	for _, p := range procs {
		p.mu.Lock()
		h[p.name] = p.evs
		p.mu.Unlock()
	}
	r := check.Check(h)
	if !r.OK() {
		t.Fatalf("the checker found:\n%s", r)
	}
	t.Logf("checks: %s", r)
	if r.Counts[check.GVirtual] == 0 || r.Counts[check.GSafe] == 0 {
		t.Fatalf("nothing checked across a view change: %s", r)
	}
}
