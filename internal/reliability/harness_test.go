package reliability_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/slc-go/slc/internal/testutil"
)

// nodeBin is the node program, built once for the whole run.
var nodeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slc-reliability")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nodeBin = filepath.Join(dir, "node")
	build := exec.Command("go", "build", "-o", nodeBin, "./node")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build node:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, append(testutil.LeakOptions(), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}

// --- test hosts ---

// hosts are network namespaces joined by a bridge, each with an address
// that exists only inside them. When namespaces cannot be made (not root,
// no iproute2), every host is the local machine on 127.0.0.1.
type hosts struct {
	ns     []string // namespace names; nil on loopback
	addrs  []string // the hosts' IP addresses
	bridge string
	gw     string // the test process's address on the bridge
}

var netnsOnce sync.Once
var netnsErr error

func newHosts(t *testing.T, n int) *hosts {
	t.Helper()
	h := &hosts{}
	if err := h.create(t, n); err != nil {
		netnsOnce.Do(func() { netnsErr = err })
		t.Logf("network namespaces unavailable (%v): running on loopback", err)
		h.ns = nil
		h.addrs = make([]string, n)
		for i := range h.addrs {
			h.addrs[i] = "127.0.0.1"
		}
		h.gw = "127.0.0.1"
	}
	return h
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (h *hosts) create(t *testing.T, n int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return err
	}
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, time.Now().UnixNano()%1000)
	net3 := fmt.Sprintf("10.%d.%d", 100+os.Getpid()%100, time.Now().UnixNano()%250)
	h.bridge = "slcbr" + id
	// Cleanup runs even when the test fails or setup stops half way.
	t.Cleanup(h.destroy)
	if err := ip("link", "add", h.bridge, "type", "bridge"); err != nil {
		return err
	}
	h.gw = net3 + ".254"
	if err := ip("addr", "add", h.gw+"/24", "dev", h.bridge); err != nil {
		return err
	}
	if err := ip("link", "set", h.bridge, "up"); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("slc%s-%d", id, i)
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
		h.ns = append(h.ns, ns)
		outer, inner := fmt.Sprintf("slcv%s%da", id, i), fmt.Sprintf("slcv%s%db", id, i)
		addr := fmt.Sprintf("%s.%d", net3, i+1)
		steps := [][]string{
			{"link", "add", outer, "type", "veth", "peer", "name", inner},
			{"link", "set", inner, "netns", ns},
			{"link", "set", outer, "master", h.bridge},
			{"link", "set", outer, "up"},
			{"-n", ns, "addr", "add", addr + "/24", "dev", inner},
			{"-n", ns, "link", "set", inner, "up"},
			{"-n", ns, "link", "set", "lo", "up"},
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				return err
			}
		}
		h.addrs = append(h.addrs, addr)
	}
	return nil
}

func (h *hosts) destroy() {
	for _, ns := range h.ns {
		exec.Command("ip", "netns", "del", ns).Run() // removes the veth ends inside
	}
	if h.bridge != "" {
		exec.Command("ip", "link", "del", h.bridge).Run()
	}
}

// netns reports whether the hosts are real namespaces.
func (h *hosts) netns() bool { return h.ns != nil }

// command returns the command line that runs args on host i.
func (h *hosts) command(i int, args ...string) []string {
	if h.ns == nil {
		return args
	}
	return append([]string{"ip", "netns", "exec", h.ns[i]}, args...)
}

// shape limits the bandwidth into host i with tc tbf.
func (h *hosts) shape(t *testing.T, i int, rate string) bool {
	if h.ns == nil {
		return false
	}
	dev := ""
	out, _ := exec.Command("ip", "-n", h.ns[i], "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "slcv") {
			dev = strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		}
	}
	if dev == "" {
		t.Logf("no veth found in %s", h.ns[i])
		return false
	}
	cmd := exec.Command("ip", "netns", "exec", h.ns[i], "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("tc tbf unavailable: %v: %s", err, out)
		return false
	}
	return true
}

// --- processes ---

// proc is a running node process whose output lines the test reads.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	sig  chan struct{} // a new line, or the end
	done chan struct{}
	err  error
	mu   sync.Mutex
	all  []string
	next int // where waitLine goes on reading
}

func (h *hosts) start(t *testing.T, i int, label string, args ...string) *proc {
	t.Helper()
	argv := h.command(i, append([]string{nodeBin}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &prefixWriter{t: t, prefix: label + ": "}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", label, err)
	}
	p := &proc{t: t, name: label, cmd: cmd, sig: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.all = append(p.all, sc.Text())
			p.mu.Unlock()
			select {
			case p.sig <- struct{}{}:
			default:
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(); <-p.done })
	return p
}

type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(b), nil
}

// waitLine returns the first line with the prefix, reading on from where
// the last wait stopped. Every line is kept, so none is missed however
// much the process prints.
func (p *proc) waitLine(ctx context.Context, prefix string) string {
	p.t.Helper()
	for {
		p.mu.Lock()
		for p.next < len(p.all) {
			line := p.all[p.next]
			p.next++
			if strings.HasPrefix(line, prefix) {
				p.mu.Unlock()
				return line
			}
		}
		p.mu.Unlock()
		select {
		case <-p.sig:
		case <-p.done:
			// The output is complete once done is closed: look once more.
			p.mu.Lock()
			rest := p.all[p.next:]
			p.next = len(p.all)
			p.mu.Unlock()
			for _, line := range rest {
				if strings.HasPrefix(line, prefix) {
					return line
				}
			}
			p.t.Fatalf("%s exited (%v) before printing %q", p.name, p.err, prefix)
		case <-ctx.Done():
			p.t.Fatalf("%s: no %q: %v", p.name, prefix, ctx.Err())
		}
	}
}

// kill sends SIGKILL: the process gets no chance to say goodbye.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// wait waits for the process to exit by itself.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// output returns every line printed so far.
func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.all...)
}

// received returns the message numbers a receiver printed ("got FROM N").
func received(ps ...*proc) []uint64 {
	var got []uint64
	for _, p := range ps {
		for _, line := range p.output() {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "got" {
				if n, err := strconv.ParseUint(f[2], 10, 64); err == nil {
					got = append(got, n)
				}
			}
		}
	}
	return got
}

// freePort returns a TCP port free on the host at addr (loopback form) or
// a fixed port (namespaces, where every port is free).
func freePort(t *testing.T, h *hosts) int {
	if h.netns() {
		return 7400
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// report collects the scenario rows the suite prints at the end.
var report = struct {
	sync.Mutex
	rows []string
}{}

func addRow(format string, args ...any) {
	report.Lock()
	report.rows = append(report.rows, fmt.Sprintf(format, args...))
	report.Unlock()
}

var _ = io.Discard
