package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// The idle-peers workload: one listener in this process, n peers that
// connect to it from a child process (this program again, in child mode),
// so that the memory this process gains is the listener's cost of its
// peers alone.
//
//	parent                          child (-child-idle SYSTEM)
//	listen, GC, measure memory
//	start child  ------------------> prepare n peers (nodes, sockets)
//	             <------------------ "ready"
//	"go" (clock starts) -----------> connect all, parallel at a time
//	             <------------------ "connected"
//	wait until the listener counts n (where it tells)
//	settle, GC, measure memory
//	close stdin -------------------> close the peers, exit

// idle is the result of an idle-peers cell.
type idle struct {
	perPeer float64 // bytes of live heap and stacks per peer
	connect time.Duration
}

// liveBytes returns the live heap and goroutine stacks after a full GC.
func liveBytes() uint64 {
	runtime.GC()
	runtime.GC() // the second cycle also drops the pools' victim caches
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

const idleSettle = 500 * time.Millisecond

func measureIdle(st *Settings, sys *System, n int) (idle, error) {
	srv, err := sys.Idle.Listen(n, st.Timeout)
	if err != nil {
		return idle{}, fmt.Errorf("listen: %w", err)
	}
	defer closeWithin(srv.Close, 15*time.Second)
	time.Sleep(50 * time.Millisecond)
	before := liveBytes()

	exe, err := os.Executable()
	if err != nil {
		return idle{}, err
	}
	cmd := exec.Command(exe, "-child-idle", sys.Name, "-child-addr", srv.Addr(),
		"-child-n", strconv.Itoa(n), "-child-parallel", strconv.Itoa(st.IdleParallel),
		"-child-timeout", st.Timeout.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return idle{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return idle{}, err
	}
	if err := cmd.Start(); err != nil {
		return idle{}, err
	}
	defer func() {
		stdin.Close() // the child closes its peers and exits
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(prefix string, timeout time.Duration) (string, error) {
		select {
		case l, ok := <-lines:
			if !ok {
				return "", errors.New("the child process ended")
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest, nil
			}
			return "", fmt.Errorf("child: %s", l)
		case <-time.After(timeout):
			return "", fmt.Errorf("child: no %q within %v", prefix, timeout)
		}
	}
	if _, err := expect("ready", 2*st.Timeout); err != nil {
		return idle{}, err
	}
	start := time.Now()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return idle{}, err
	}
	if _, err := expect("connected", 2*st.Timeout); err != nil {
		return idle{}, err
	}
	if srv.Connected() >= 0 {
		if err := waitFor(func() bool { return srv.Connected() >= n }, st.Timeout, "the listener to count every peer"); err != nil {
			return idle{}, fmt.Errorf("%w (%d of %d)", err, srv.Connected(), n)
		}
	}
	connect := time.Since(start)
	time.Sleep(idleSettle)
	after := liveBytes()
	if st.MemProfile != "" {
		if err := writeHeapProfile(st.MemProfile); err != nil {
			return idle{}, err
		}
	}
	if c := srv.Connected(); c >= 0 && c < n {
		return idle{}, fmt.Errorf("%d of %d peers still connected after %v", c, n, idleSettle)
	}
	return idle{perPeer: (float64(after) - float64(before)) / float64(n), connect: connect}, nil
}

// childFlags are the flags of the child mode.
type childFlags struct {
	system   string
	addr     string
	n        int
	parallel int
	timeout  time.Duration
}

func (c *childFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.system, "child-idle", "", "internal: run the peers of the idle workload of `system`")
	fs.StringVar(&c.addr, "child-addr", "", "internal: the listener's address")
	fs.IntVar(&c.n, "child-n", 0, "internal: the number of peers")
	fs.IntVar(&c.parallel, "child-parallel", 100, "internal: connections made at once")
	fs.DurationVar(&c.timeout, "child-timeout", 10*time.Second, "internal: connect timeout")
}

// runChild is the child process of the idle workload. It reports on
// stdout and ends when its stdin closes.
func runChild(c childFlags) int {
	sys := findSystem(c.system)
	if sys == nil || sys.Idle == nil {
		fmt.Printf("error: no idle workload for system %q\n", c.system)
		return 1
	}
	connect, closeAll, err := sys.Idle.Peers(c.addr, c.n, c.parallel, c.timeout)
	if err != nil {
		fmt.Printf("error: %v\n", oneLine(err))
		return 1
	}
	in := bufio.NewReader(os.Stdin)
	fmt.Println("ready")
	if l, err := in.ReadString('\n'); err != nil || strings.TrimSpace(l) != "go" {
		closeAll()
		return 1
	}
	if err := connect(); err != nil {
		fmt.Printf("error: %v\n", oneLine(err))
	} else {
		fmt.Println("connected")
	}
	io.Copy(io.Discard, in) // until the parent closes stdin
	closeAll()
	return 0
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
