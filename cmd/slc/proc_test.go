package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// procTimeout bounds every wait for a line of a running binary, and its
// whole run.
const procTimeout = 90 * time.Second

// proc is a running slc binary whose stdout is read line by line as it
// comes, so that a test can wait for what the process reports instead of
// sleeping.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	cancel context.CancelFunc

	mu      sync.Mutex
	lines   []string
	stderr  strings.Builder
	changed chan struct{} // closed and replaced on each new line and at EOF
	eof     bool
	readers sync.WaitGroup

	waitOnce sync.Once
	waitErr  error
}

// start runs the binary with args; name labels it in failures. The process
// is killed and waited for when the test ends, if it has not ended.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	p := &proc{t: t, name: name, cancel: cancel, changed: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, slcBin, args...)
	p.cmd.WaitDelay = 5 * time.Second
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.readers.Go(func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.eof = true
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	})
	p.readers.Go(func() {
		b, _ := io.ReadAll(stderr)
		p.mu.Lock()
		p.stderr.Write(b)
		p.mu.Unlock()
	})
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		p.wait()
		cancel()
	})
	return p
}

// output returns stdout so far and stderr, for failure messages.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "stdout of " + p.name + ":\n" + strings.Join(p.lines, "\n") + "\nstderr of " + p.name + ":\n" + p.stderr.String()
}

// waitLine returns the first line from index from on that matches, and
// its index, waiting for it. It fails the test if the process ends first
// or procTimeout passes.
func (p *proc) waitLine(from int, what string, match func(string) bool) (string, int) {
	p.t.Helper()
	timeout := time.NewTimer(procTimeout)
	defer timeout.Stop()
	for i := from; ; {
		p.mu.Lock()
		for ; i < len(p.lines); i++ {
			if match(p.lines[i]) {
				l := p.lines[i]
				p.mu.Unlock()
				return l, i
			}
		}
		eof, changed := p.eof, p.changed
		p.mu.Unlock()
		if eof {
			p.wait()
			p.t.Fatalf("%s ended without printing %s (%v)\n%s", p.name, what, p.waitErr, p.output())
		}
		select {
		case <-changed:
		case <-timeout.C:
			p.t.Fatalf("%s did not print %s within %v\n%s", p.name, what, procTimeout, p.output())
		}
	}
}

// waitRecord returns the first JSON record from index from on whose
// fields have the values in want, waiting for it.
func (p *proc) waitRecord(from int, want map[string]any) (map[string]any, int) {
	p.t.Helper()
	what, _ := json.Marshal(want)
	return p.waitRecordFunc(from, "a record with "+string(what), func(r map[string]any) bool { return matches(r, want) })
}

// waitRecordFunc returns the first JSON record from index from on for
// which match is true, waiting for it; what describes it in failures.
func (p *proc) waitRecordFunc(from int, what string, match func(map[string]any) bool) (map[string]any, int) {
	p.t.Helper()
	var rec map[string]any
	_, i := p.waitLine(from, what, func(l string) bool {
		r, ok := parseRecord(l)
		if !ok || !match(r) {
			return false
		}
		rec = r
		return true
	})
	return rec, i
}

// records returns the JSON records printed so far that match want.
func (p *proc) records(want map[string]any) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var rs []map[string]any
	for _, l := range p.lines {
		if r, ok := parseRecord(l); ok && matches(r, want) {
			rs = append(rs, r)
		}
	}
	return rs
}

func parseRecord(l string) (map[string]any, bool) {
	var r map[string]any
	if json.Unmarshal([]byte(l), &r) != nil {
		return nil, false
	}
	return r, true
}

func matches(r, want map[string]any) bool {
	for k, v := range want {
		if r[k] != v {
			return false
		}
	}
	return true
}

// wait waits for the process to end and returns its exit code.
func (p *proc) wait() int {
	p.waitOnce.Do(func() {
		p.readers.Wait()
		p.waitErr = p.cmd.Wait()
	})
	var exit *exec.ExitError
	switch {
	case p.waitErr == nil:
		return 0
	case errors.As(p.waitErr, &exit):
		return exit.ExitCode()
	}
	return -1
}

// expectExit waits for the process to end and checks its exit code.
func (p *proc) expectExit(code int) {
	p.t.Helper()
	if got := p.wait(); got != code {
		p.t.Fatalf("%s: exit code %d (%v), want %d\n%s", p.name, got, p.waitErr, code, p.output())
	}
}

// closeStdin sends EOF to the process.
func (p *proc) closeStdin() {
	p.t.Helper()
	if err := p.stdin.Close(); err != nil {
		p.t.Fatal(err)
	}
}

// writeLine writes a line to the process's stdin.
func (p *proc) writeLine(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, s+"\n"); err != nil {
		p.t.Fatalf("write to %s: %v", p.name, err)
	}
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) kill() { p.signal(syscall.SIGKILL) }

// stderrText returns what the process wrote to stderr; call it after wait.
func (p *proc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// listenAddr waits for the "listening" record of a --json process and
// returns the address.
func (p *proc) listenAddr() string {
	p.t.Helper()
	r, _ := p.waitRecord(0, map[string]any{"kind": "info", "msg": "listening"})
	addr, _ := r["addr"].(string)
	if addr == "" {
		p.t.Fatalf("%s: no address in %v", p.name, r)
	}
	return addr
}

// testRelay is a TCP relay on loopback between a client and a target. It
// counts the bytes going up (client to target) and can stop forwarding
// them at a given count (pause), or reset every connection at a given
// count (cut), as a network failure would.
type testRelay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu       sync.Mutex
	up       int64
	pauseAt  int64 // stop forwarding up at this count; 0: never
	cutAt    int64 // reset every connection at this count; 0: never
	cuts     int
	conns    map[net.Conn]struct{}
	closed   chan struct{}
	cutDone  chan struct{} // closed after the cut
	unpaused chan struct{} // closed by unpause
}

// newTestRelay starts a relay to target that pauses after pauseAt bytes
// up and cuts after cutAt (0: never).
func newTestRelay(t *testing.T, target string, pauseAt, cutAt int64) *testRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testRelay{ln: ln, target: target, pauseAt: pauseAt, cutAt: cutAt, conns: map[net.Conn]struct{}{},
		closed: make(chan struct{}), cutDone: make(chan struct{}), unpaused: make(chan struct{})}
	r.wg.Go(r.accept)
	t.Cleanup(r.close)
	return r
}

func (r *testRelay) addr() string { return r.ln.Addr().String() }

// upBytes returns the bytes forwarded from clients to the target.
func (r *testRelay) upBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

func (r *testRelay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Go(func() { r.serve(c) })
	}
}

func (r *testRelay) serve(client net.Conn) {
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		client.Close()
		return
	}
	r.mu.Lock()
	select {
	case <-r.closed:
		r.mu.Unlock()
		client.Close()
		server.Close()
		return
	default:
	}
	r.conns[client], r.conns[server] = struct{}{}, struct{}{}
	r.mu.Unlock()
	var both sync.WaitGroup
	both.Go(func() {
		_, _ = io.Copy(client, server)
		client.Close()
		server.Close()
	})
	both.Go(func() {
		r.forwardUp(server, client)
		client.Close()
		server.Close()
	})
	both.Wait()
	r.mu.Lock()
	delete(r.conns, client)
	delete(r.conns, server)
	r.mu.Unlock()
}

// forwardUp copies src to dst, counting, pausing and cutting.
func (r *testRelay) forwardUp(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b := buf[:n]
			r.mu.Lock()
			limit := int64(-1)
			if r.pauseAt > 0 {
				limit = r.pauseAt
			}
			if r.cutAt > 0 && r.cuts == 0 && (limit < 0 || r.cutAt < limit) {
				limit = r.cutAt
			}
			if limit >= 0 && r.up+int64(len(b)) >= limit {
				b = b[:max(limit-r.up, 0)]
			}
			r.up += int64(len(b))
			reached := limit >= 0 && r.up >= limit
			cut := reached && r.cutAt > 0 && r.cuts == 0 && r.up >= r.cutAt
			r.mu.Unlock()
			if _, werr := dst.Write(b); werr != nil {
				return
			}
			if cut {
				r.cut()
				return
			}
			if reached {
				// Paused: hold the connection open, forwarding nothing more
				// until unpause.
				select {
				case <-r.closed:
					return
				case <-r.unpaused:
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// unpause forwards again, without limit.
func (r *testRelay) unpause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pauseAt = 0
	close(r.unpaused)
}

// cut resets every connection the relay carries.
func (r *testRelay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	r.cuts++
	close(r.cutDone)
}

// close stops the relay and closes its connections.
func (r *testRelay) close() {
	r.mu.Lock()
	select {
	case <-r.closed:
		r.mu.Unlock()
		return
	default:
	}
	close(r.closed)
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
}
