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
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/slc-go/slc/internal/testutil"
)

// nodeBin is the node program, built once for the whole run.
var nodeBin string

func TestMain(m *testing.M) {
	removeStaleHosts()
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
//
// Names carry the test process's pid: namespaces "slc<pid>-<seq>-<i>",
// the bridge "slcb<pid36>-<seq36>" and the root ends of the veth pairs
// "slcv<pid36>-<seq36><i>" (pid36 and seq36 in base 36, to fit the
// 15-byte limit on interface names), so that removeStaleHosts can tell
// which ones a dead run left behind.
type hosts struct {
	ns     []string // namespace names; nil on loopback
	addrs  []string // the hosts' IP addresses
	bridge string
	gw     string // the test process's address on the bridge
}

// loopbackHosts is the loopback form: n hosts, all 127.0.0.1.
func loopbackHosts(n int) *hosts {
	h := &hosts{addrs: make([]string, n), gw: "127.0.0.1"}
	for i := range h.addrs {
		h.addrs[i] = "127.0.0.1"
	}
	return h
}

// netnsNotice makes the "namespaces unavailable" notice appear once per
// run, on standard error, however many scenarios fall back to loopback.
var netnsNotice sync.Once

// hostSeq numbers the sets of hosts made by this process.
var hostSeq atomic.Int64

func newHosts(t *testing.T, n int) *hosts {
	t.Helper()
	h := &hosts{}
	// Cleanup removes whatever was made, also when create stops half way.
	t.Cleanup(h.destroy)
	if err := h.create(n); err != nil {
		netnsNotice.Do(func() {
			fmt.Fprintf(os.Stderr, "reliability: network namespaces unavailable (%v): running on loopback\n", err)
		})
		return loopbackHosts(n)
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

// create makes n namespaces on a bridge. Every object is recorded in h
// before the next step, so destroy removes what a failed create made.
func (h *hosts) create(n int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return err
	}
	pid, seq := os.Getpid(), hostSeq.Add(1)
	id := strconv.FormatInt(int64(pid), 36) + "-" + strconv.FormatInt(seq, 36)
	net3 := fmt.Sprintf("10.%d.%d", 100+pid%100, seq%250)
	bridge := "slcb" + id
	if err := ip("link", "add", bridge, "type", "bridge"); err != nil {
		return err
	}
	h.bridge = bridge
	h.gw = net3 + ".254"
	if err := ip("addr", "add", h.gw+"/24", "dev", h.bridge); err != nil {
		return err
	}
	if err := ip("link", "set", h.bridge, "up"); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("slc%d-%d-%d", pid, seq, i)
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
		h.ns = append(h.ns, ns)
		outer, inner := fmt.Sprintf("slcv%s%d", id, i), "slc0"
		addr := fmt.Sprintf("%s.%d", net3, i+1)
		// The inner end is made inside the namespace, so a failure
		// between steps leaves nothing outside it but the outer end,
		// which goes with its peer when the namespace is deleted.
		steps := [][]string{
			{"link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns},
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

// removeStaleHosts removes the namespaces and bridges of earlier runs
// whose process is gone (killed, or stopped by a test timeout before its
// cleanup ran). Those of live processes, other runs in progress, stay.
func removeStaleHosts() {
	if os.Geteuid() != 0 {
		return
	}
	dead := func(pid int64) bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return pid != int64(os.Getpid()) && os.IsNotExist(err)
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			var pid, seq, i int64
			var rest string
			if n, _ := fmt.Sscanf(f[0], "slc%d-%d-%d%s", &pid, &seq, &i, &rest); n == 3 && dead(pid) {
				exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "type", "bridge").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name := strings.TrimSuffix(f[1], ":")
			p36, _, ok := strings.Cut(strings.TrimPrefix(name, "slcb"), "-")
			if !strings.HasPrefix(name, "slcb") || !ok {
				continue
			}
			if pid, err := strconv.ParseInt(p36, 36, 64); err == nil && dead(pid) {
				exec.Command("ip", "link", "del", name).Run()
			}
		}
	}
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

// where says, for a row's notes, what the hosts are.
func (h *hosts) where() string {
	if h.netns() {
		return "on network namespaces"
	}
	return "on loopback"
}

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
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "slc0@") {
			dev = "slc0"
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
