// Command busbench compares slc's scoped bus with NATS subjects and
// wildcards on this machine, in one process and one run: one publisher
// and four subscribers on overlapping scopes, over loopback TCP.
//
// The publisher sends events alternately on /robot/sensors/lidar/ and
// /robot/arm/joint1/ (NATS: robot.sensors.lidar and robot.arm.joint1).
// The subscribers listen on / (>), /robot/ (robot.>), /robot/sensors/
// (robot.sensors.>) and /robot/arm/ (robot.arm.>): two get every event,
// two get half. Each side has a server (a bus participant in ServerMode,
// an embedded nats-server) and every client is its own connection: a
// participant with its own slc node, a NATS connection.
//
// A cell publishes N events as fast as the publisher goes, and ends when
// every subscriber has its share; events/s is N over that time. Every
// subscriber checks that its events arrive once and in order; a cell
// where one did not is FAILED. The table shows the median of the runs
// and its ratio to NATS in the same run.
//
//	cd bench && go run ./busbench
//	cd bench && go run ./busbench -runs 5 -events 1000000
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/bus"
)

// The two publication scopes and the four subscriptions, as bus scopes
// and NATS subjects. share is the fraction of the events each subscriber
// gets.
var (
	pubScopes   = []string{"/robot/sensors/lidar/", "/robot/arm/joint1/"}
	pubSubjects = []string{"robot.sensors.lidar", "robot.arm.joint1"}
	subScopes   = []string{"/", "/robot/", "/robot/sensors/", "/robot/arm/"}
	subSubjects = []string{">", "robot.>", "robot.sensors.>", "robot.arm.>"}
	// wants[i][k]: subscriber i gets events published on scope k.
	wants = [][]bool{{true, true}, {true, true}, {true, false}, {false, true}}
)

func main() {
	runs := flag.Int("runs", 3, "runs of every cell; the table shows medians")
	events := flag.Int("events", 400_000, "events published per cell")
	sizes := flag.String("sizes", "64,1024", "payload sizes in bytes, comma-separated")
	timeout := flag.Duration("timeout", 60*time.Second, "bound on one cell")
	only := flag.String("only", "", "run only the systems whose name contains this (\"nats\", \"bus\")")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to `file`")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "busbench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var szs []int
	for _, s := range strings.Split(*sizes, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 8 {
			fmt.Fprintf(os.Stderr, "busbench: size %q: want an integer >= 8\n", s)
			os.Exit(2)
		}
		szs = append(szs, n)
	}
	systems := []system{
		{"nats", "core (at most once)", runNATS},
		{"slc bus", "reliable, ordered", func(n, size int, d time.Duration) (time.Duration, error) {
			return runBus(n, size, d, bus.Reliable)
		}},
		{"slc bus", "unreliable", func(n, size int, d time.Duration) (time.Duration, error) {
			return runBus(n, size, d, bus.Unreliable)
		}},
	}
	type key struct{ sys, size int }
	results := map[key][]float64{}
	cpus := map[key][]float64{}
	failed := map[key]string{}
	for run := 1; run <= *runs; run++ {
		for _, size := range szs {
			for si, s := range systems {
				k := key{si, size}
				if failed[k] != "" || !strings.Contains(s.name, *only) {
					continue
				}
				cpu0 := cpuTime()
				elapsed, err := s.run(*events, size, *timeout)
				cpu := cpuTime() - cpu0
				if err != nil {
					failed[k] = err.Error()
					fmt.Fprintf(os.Stderr, "run %d: %s (%s) %d B: FAILED: %v\n", run, s.name, s.qos, size, err)
					continue
				}
				rate := float64(*events) / elapsed.Seconds()
				perEvent := float64(cpu.Nanoseconds()) / float64(*events) / 1000
				results[k] = append(results[k], rate)
				cpus[k] = append(cpus[k], perEvent)
				fmt.Fprintf(os.Stderr, "run %d: %-8s %-20s %5d B  %10.0f events/s  %6.2f µs CPU/event\n",
					run, s.name, s.qos, size, rate, perEvent)
			}
		}
	}
	fmt.Printf("\n1 publisher, 4 subscribers on overlapping scopes (/, /robot/, /robot/sensors/, /robot/arm/),\n")
	fmt.Printf("%d events per cell alternating between two scopes, median of %d runs\n\n", *events, *runs)
	fmt.Printf("| system | QoS | payload | events/s (median) | range | deliveries/s | vs NATS | CPU µs/event (median) | vs NATS |\n")
	fmt.Printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, size := range szs {
		natsMed := median(results[key{0, size}])
		natsCPU := median(cpus[key{0, size}])
		for si, s := range systems {
			k := key{si, size}
			if failed[k] != "" {
				fmt.Printf("| %s | %s | %d B | FAILED: %s | | | |\n", s.name, s.qos, size, failed[k])
				continue
			}
			if len(results[k]) == 0 {
				continue
			}
			m := median(results[k])
			lo, hi := slices.Min(results[k]), slices.Max(results[k])
			ratio, cpuRatio := "-", "-"
			c := median(cpus[k])
			if natsMed > 0 {
				ratio = fmt.Sprintf("%.2f×", m/natsMed)
				cpuRatio = fmt.Sprintf("%.2f×", c/natsCPU)
			}
			fmt.Printf("| %s | %s | %d B | %.0f | %.0f–%.0f | %.0f | %s | %.2f | %s |\n",
				s.name, s.qos, size, m, lo, hi, m*3, ratio, c, cpuRatio)
		}
	}
}

// A system runs one cell: n events of size bytes, within timeout, and
// returns the time until every subscriber had its share.
type system struct {
	name, qos string
	run       func(n, size int, timeout time.Duration) (time.Duration, error)
}

// cpuTime returns the CPU time the process used so far (user and
// system): unlike throughput, it does not depend on what else the machine
// runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// tally counts one subscriber's events and checks their order.
type tally struct {
	want   int64
	got    atomic.Int64
	last   [2]uint64 // the last sequence number per publication scope
	err    atomic.Value
	done   chan struct{}
	closed sync.Once
}

func newTallies(n int) []*tally {
	ts := make([]*tally, len(subScopes))
	for i := range ts {
		for k := range n {
			if wants[i][k%2] {
				ts[i] = ensure(ts[i])
				ts[i].want++
			}
		}
	}
	return ts
}

func ensure(t *tally) *tally {
	if t == nil {
		return &tally{done: make(chan struct{})}
	}
	return t
}

// add records an event's payload; calls for one subscriber are
// sequential.
func (t *tally) add(b []byte) {
	if len(b) < 8 {
		t.fail(errors.New("short payload"))
		return
	}
	seq := binary.BigEndian.Uint64(b)
	k := seq % 2
	if seq <= t.last[k] && t.last[k] != 0 || seq == 0 && t.last[k] != 0 {
		t.fail(fmt.Errorf("event %d after %d: duplicated or reordered", seq, t.last[k]))
	}
	t.last[k] = seq
	if t.got.Add(1) == t.want {
		t.closed.Do(func() { close(t.done) })
	}
}

func (t *tally) fail(err error) {
	t.err.CompareAndSwap(nil, err)
	t.closed.Do(func() { close(t.done) })
}

// wait waits for every subscriber's share.
func wait(ts []*tally, deadline <-chan time.Time) error {
	for i, t := range ts {
		select {
		case <-t.done:
		case <-deadline:
			return fmt.Errorf("subscriber %d got %d of %d events in time", i, t.got.Load(), t.want)
		}
		if err, _ := t.err.Load().(error); err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
	}
	return nil
}

func payload(size int, seq uint64) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, seq)
	return b
}

func runNATS(n, size int, timeout time.Duration) (time.Duration, error) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		return 0, err
	}
	go srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		return 0, errors.New("nats-server did not start")
	}
	connect := func() (*nats.Conn, error) {
		return nats.Connect(srv.ClientURL(), nats.Timeout(10*time.Second), nats.NoReconnect())
	}
	ts := newTallies(n)
	for i, subj := range subSubjects {
		nc, err := connect()
		if err != nil {
			return 0, err
		}
		defer nc.Close()
		t := ts[i]
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) { t.add(m.Data) })
		if err != nil {
			return 0, err
		}
		// As the bench harness does: never drop as a slow consumer.
		sub.SetPendingLimits(-1, -1)
		if err := nc.Flush(); err != nil {
			return 0, err
		}
	}
	pub, err := connect()
	if err != nil {
		return 0, err
	}
	defer pub.Close()
	buf := payload(size, 0)
	deadline := time.After(timeout)
	start := time.Now()
	for seq := 1; seq <= n; seq++ {
		binary.BigEndian.PutUint64(buf, uint64(seq))
		if err := pub.Publish(pubSubjects[seq%2], buf); err != nil {
			return 0, err
		}
	}
	if err := pub.Flush(); err != nil {
		return 0, err
	}
	if err := wait(ts, deadline); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func runBus(n, size int, timeout time.Duration, rel bus.Reliability) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	qos := bus.QoS{Reliability: rel}
	join := func(name string, opts ...bus.Option) (*bus.Participant, error) {
		// As NATS is set up: queues never drop for a slow consumer.
		return bus.Join(ctx, append([]bus.Option{bus.WithQoS(qos), bus.WithQueueLimit(1 << 30),
			bus.WithNodeOptions(slc.WithName(name))}, opts...)...)
	}
	srv, err := join("bench-server", bus.WithAddr("127.0.0.1:0"), bus.WithMode(bus.ServerMode))
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	ts := newTallies(n)
	for i, scope := range subScopes {
		p, err := join(fmt.Sprintf("bench-sub-%d", i), bus.WithAddr(srv.Addr()), bus.WithMode(bus.ClientMode))
		if err != nil {
			return 0, err
		}
		defer p.Close()
		t := ts[i]
		if _, err := p.NewListener(ctx, scope, func(e *bus.Event) { t.add(e.Data.([]byte)) }); err != nil {
			return 0, err
		}
	}
	pub, err := join("bench-pub", bus.WithAddr(srv.Addr()), bus.WithMode(bus.ClientMode))
	if err != nil {
		return 0, err
	}
	defer pub.Close()
	infs := make([]*bus.Informer, len(pubScopes))
	for k, s := range pubScopes {
		if infs[k], err = pub.NewInformer(s); err != nil {
			return 0, err
		}
	}
	buf := payload(size, 0)
	deadline := time.After(timeout)
	start := time.Now()
	for seq := 1; seq <= n; seq++ {
		binary.BigEndian.PutUint64(buf, uint64(seq))
		if _, err := infs[seq%2].Publish(ctx, buf); err != nil {
			return 0, err
		}
	}
	if err := wait(ts, deadline); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	if st := pub.Stats(); st.Dropped > 0 {
		return 0, fmt.Errorf("%d events dropped", st.Dropped)
	}
	return elapsed, nil
}
