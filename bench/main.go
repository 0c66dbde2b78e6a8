// Command bench measures slc side by side with its peers over loopback
// TCP, in one process and one run: raw TCP (the ceiling), raw TCP behind
// a channel and a writer goroutine, raw TCP sealed with AES-256-GCM,
// embedded NATS, protoactor-go remote, mangos v3, zmq4, and slc (typed,
// raw, and secure once it builds).
//
// Workloads: one-way throughput at each size, with the receiver checking
// order and content; request/echo latency (p50, p99); fan-out from one
// sender to 8 receivers; 1000 idle peers on one listener (memory per peer,
// time to connect them all). A cell in which a system lost, duplicated,
// reordered or corrupted a message is FAILED, with the reason, instead of
// a number.
//
// It prints a table of medians over the runs, their range, and the ratio
// to raw TCP in the same run, and writes CSV files, a Markdown table and a
// PNG chart to -out.
//
//	cd bench && go run . -runs 3
//	cd bench && go run . -quick            # about half a minute
//	cd bench && go run . -only 'slc*,tcp' -sizes 64,1M -workloads oneway
//
// With BENCH_DEBUG=1 in the environment, each progress line also shows the
// goroutines left running and the CPU the process uses while idle, to spot
// a system that leaves work behind.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() { os.Exit(run()) }

func run() int {
	defer runAtExit()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var (
		runs      = fs.Int("runs", 3, "runs of every cell; the table shows medians (default 1 with -quick)")
		only      = fs.String("only", "", "systems to measure: comma-separated names or patterns (\"slc*,tcp\"); all when empty")
		sizes     = fs.String("sizes", "64,1K,64K,1M", "message sizes of the one-way workload, comma-separated (K = KiB, M = MiB)")
		workloads = fs.String("workloads", strings.Join(allWorkloads, ","), "workloads to run: "+strings.Join(allWorkloads, ","))
		quick     = fs.Bool("quick", false, "a CI-sized run: short cells, 100 idle peers, one run")
		out       = fs.String("out", defaultOut(), "directory for the CSV files, the Markdown table and the PNG chart")
		peers     = fs.Int("peers", 1000, "peers of the idle workload (default 100 with -quick)")
		duration  = fs.Duration("duration", time.Second, "send phase of a throughput cell (default 100ms with -quick)")
		list      = fs.Bool("list", false, "list the systems and exit")
		cpuprof   = fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file` (use with -only)")
		memprof   = fs.String("memprofile", "", "write a heap profile of the listener with every idle peer connected to `file` (with -workloads idle -only SYSTEM)")
	)
	var child childFlags
	child.register(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if child.system != "" {
		return runChild(child)
	}
	if *list {
		for _, s := range systems {
			fmt.Printf("%-16s %-8s %s\n", s.Name, payloadName(s.Typed), s.About)
		}
		return 0
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	st := &Settings{
		Runs: *runs, Duration: *duration, EchoDuration: 500 * time.Millisecond,
		MaxBytes: 2 << 30, MaxMessages: 20_000_000, Timeout: 20 * time.Second, Stall: 8 * time.Second, Drain: 10 * time.Second,
		IdlePeers: *peers, IdleParallel: 100,
	}
	if *quick {
		if !set["runs"] {
			st.Runs = 1
		}
		if !set["duration"] {
			st.Duration = 100 * time.Millisecond
		}
		if !set["peers"] {
			st.IdlePeers = 100
		}
		st.EchoDuration = 100 * time.Millisecond
		st.MaxBytes = 128 << 20
		st.Timeout = 10 * time.Second
		st.Stall = 3 * time.Second
		st.Drain = 3 * time.Second
	}
	var err error
	if st.Sizes, err = parseSizes(*sizes); err != nil {
		return usage(err)
	}
	if st.Workloads, err = parseWorkloads(*workloads); err != nil {
		return usage(err)
	}
	if st.Systems, err = selectSystems(*only); err != nil {
		return usage(err)
	}
	if st.Runs < 1 || st.IdlePeers < 1 || st.Duration <= 0 {
		return usage(fmt.Errorf("-runs, -peers and -duration must be positive"))
	}

	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return usage(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return usage(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	st.MemProfile = *memprof

	m := describeMachine()
	load0 := loadAvg()
	fmt.Fprintf(os.Stderr, "bench: %s\n", m)
	fmt.Fprintf(os.Stderr, "bench: %d run(s) of %s; systems: %s\n", st.Runs, strings.Join(workloadList(st.Workloads), ", "), names(st.Systems))
	start := time.Now()
	obs := measureAll(st)
	m.load = fmt.Sprintf("load average %s at the start, %s at the end", load0, loadAvg())
	sum := summarize(st, obs)
	fmt.Fprintf(os.Stderr, "bench: done in %v\n\n", time.Since(start).Round(time.Second))

	fmt.Print(sum.text(m))
	if err := sum.write(*out, m, obs); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Printf("\nwrote %s\n", strings.Join(sum.files, ", "))
	return 0
}

func usage(err error) int {
	fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	return 2
}

// defaultOut is results/ beside the bench module: bench/results from the
// repository root, results from bench/.
func defaultOut() string {
	if b, err := os.ReadFile("go.mod"); err == nil && strings.Contains(string(b), "module github.com/slc-go/slc/bench") {
		return "results"
	}
	if _, err := os.Stat(filepath.Join("bench", "go.mod")); err == nil {
		return filepath.Join("bench", "results")
	}
	return "results"
}

// parseSizes reads "64,1K,64K,1M".
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(f, "K"), strings.HasSuffix(f, "k"):
			mult, f = 1<<10, f[:len(f)-1]
		case strings.HasSuffix(f, "M"), strings.HasSuffix(f, "m"):
			mult, f = 1<<20, f[:len(f)-1]
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n*mult > 64<<20 {
			return nil, fmt.Errorf("-sizes: bad size %q (want e.g. 64, 1K, 1M; at most 64M)", f)
		}
		out = append(out, n*mult)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-sizes: no size")
	}
	return out, nil
}

func parseWorkloads(s string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, w := range allWorkloads {
			if f == w {
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Errorf("-workloads: unknown workload %q (want %s)", f, strings.Join(allWorkloads, ","))
		}
		set[f] = true
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("-workloads: none")
	}
	return set, nil
}

func workloadList(set map[string]bool) []string {
	var out []string
	for _, w := range allWorkloads {
		if set[w] {
			out = append(out, w)
		}
	}
	return out
}

func names(ss []*System) string {
	n := make([]string, len(ss))
	for i, s := range ss {
		n[i] = s.Name
	}
	return strings.Join(n, ", ")
}

// measureAll runs every cell st.Runs times. Within a run, every system
// measures a cell before the next cell starts, so that a noisy moment on
// the machine spreads over the systems instead of hitting one.
func measureAll(st *Settings) []Obs {
	var obs []Obs
	add := func(o Obs) { obs = append(obs, o) }
	for run := 1; run <= st.Runs; run++ {
		prefix := fmt.Sprintf("[run %d/%d]", run, st.Runs)
		// Every other run goes through the systems backwards, so that no
		// system is always measured last, after a drift of the machine.
		systems := slices.Clone(st.Systems)
		if run%2 == 0 {
			slices.Reverse(systems)
		}
		if st.Workloads[wOneWay] {
			for _, size := range st.Sizes {
				for _, sys := range systems {
					if sys.OneWay == nil {
						continue
					}
					r, err := measureThroughput(st, sys, size, 1)
					base := Obs{Run: run, System: sys.Name, Typed: sys.Typed, Workload: wOneWay, Size: size}
					report(prefix, base, err, func() string {
						return fmt.Sprintf("%s msg/s  %s  %.1f allocs/msg%s", si(r.rate()), mbps(r.rate()*float64(size)), r.allocsPerMsg(), r.cutNote())
					})
					addThroughput(add, base, r, err, size)
				}
			}
		}
		if st.Workloads[wFanout] {
			for _, sys := range systems {
				if sys.OneWay == nil {
					continue
				}
				r, err := measureThroughput(st, sys, smallSize, fanoutReceivers)
				base := Obs{Run: run, System: sys.Name, Typed: sys.Typed, Workload: wFanout, Size: smallSize}
				report(prefix, base, err, func() string {
					return fmt.Sprintf("%s msg/s to each of %d receivers%s", si(r.rate()), fanoutReceivers, r.cutNote())
				})
				addThroughput(add, base, r, err, smallSize)
			}
		}
		if st.Workloads[wEcho] {
			for _, sys := range systems {
				if sys.Echo == nil {
					continue
				}
				l, err := measureEcho(st, sys, smallSize)
				base := Obs{Run: run, System: sys.Name, Typed: sys.Typed, Workload: wEcho, Size: smallSize}
				report(prefix, base, err, func() string {
					return fmt.Sprintf("p50 %s  p99 %s  (%d round trips)", dur(l.p50), dur(l.p99), l.n)
				})
				if err != nil {
					add(failed(base, err))
					continue
				}
				add(with(base, mP50, float64(l.p50)))
				add(with(base, mP99, float64(l.p99)))
			}
		}
		if st.Workloads[wIdle] {
			for _, sys := range systems {
				if sys.Idle == nil {
					continue
				}
				r, err := measureIdle(st, sys, st.IdlePeers)
				base := Obs{Run: run, System: sys.Name, Typed: sys.Typed, Workload: wIdle, Size: st.IdlePeers}
				report(prefix, base, err, func() string {
					return fmt.Sprintf("%s per peer, all connected in %s", bytesIEC(r.perPeer), dur(r.connect))
				})
				if err != nil {
					add(failed(base, err))
					continue
				}
				add(with(base, mMemPeer, r.perPeer))
				add(with(base, mConnect, float64(r.connect)))
			}
		}
	}
	return obs
}

func (r throughput) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.msgs) / r.elapsed.Seconds()
}

func (r throughput) cutNote() string {
	if r.cut {
		return "  (cut: still draining its queue)"
	}
	return ""
}

func (r throughput) allocsPerMsg() float64 {
	if r.msgs == 0 {
		return 0
	}
	return float64(r.allocs) / float64(r.msgs)
}

func addThroughput(add func(Obs), base Obs, r throughput, err error, size int) {
	if err != nil {
		add(failed(base, err))
		return
	}
	if r.cut {
		base.Note = noteCut
	}
	add(with(base, mRate, r.rate()))
	add(with(base, mMBps, r.rate()*float64(size)/1e6))
	add(with(base, mAllocs, r.allocsPerMsg()))
}

func with(o Obs, metric string, v float64) Obs {
	o.Metric, o.Value = metric, v
	return o
}

func failed(o Obs, err error) Obs {
	o.Err = oneLine(err)
	return o
}

// report prints the progress line of a cell.
func report(prefix string, o Obs, err error, ok func() string) {
	what := fmt.Sprintf("%-7s %-7s %-15s", o.Workload, sizeName(o.Size), o.System)
	if o.Workload == wIdle {
		what = fmt.Sprintf("%-7s %-7s %-15s", o.Workload, strconv.Itoa(o.Size), o.System)
	}
	if os.Getenv("BENCH_DEBUG") != "" {
		what += fmt.Sprintf(" [%d goroutines, idle CPU %.0f%%]", runtime.NumGoroutine(), idleCPU(200*time.Millisecond)*100)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %s FAILED: %s\n", prefix, what, oneLine(err))
		return
	}
	fmt.Fprintf(os.Stderr, "%s %s %s\n", prefix, what, ok())
}

// idleCPU returns the CPU this process uses while the harness sleeps for
// d, as a fraction of one core: what the cells before left running.
func idleCPU(d time.Duration) float64 {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0 := cpu()
	time.Sleep(d)
	return float64(cpu()-c0) / float64(d)
}
