package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
)

// BenchMessage is the typed message of slc bench.
type BenchMessage struct {
	Seq  uint64
	Data []byte
}

func init() {
	slc.Register[BenchMessage]("slc.BenchMessage")
	addCommand(newBenchCmd)
}

// benchFlags are the flags of slc bench.
type benchFlags struct {
	nodeFlags
	remote   string
	size     int
	duration time.Duration
	count    int
	pings    int
	raw      bool
	progress bool

	// Hidden: the receiving side.
	serve  bool
	addr   string
	parent bool // started by slc bench: end when stdin closes
}

const (
	benchWarmup        = 100
	benchServeReady    = "listening "
	benchServeTimeout  = 10 * time.Second
	benchDefaultSize   = 64
	benchDefaultPings  = 1000
	benchMaxSize       = 64 << 20
	benchDefaultLength = 5 * time.Second
)

func newBenchCmd(g *globals) *cobra.Command {
	var bf benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure acknowledged throughput and round-trip latency between two slc processes",
		Long: `bench measures slc between two processes. It starts a node that connects to a
receiver, sends messages of --size bytes as fast as the receiver acknowledges
them, then sends --pings messages one at a time and times each until it is
acknowledged (the message is in the receiver's mailbox).

Without --remote, bench starts the receiver itself: a child process of this
program listening on 127.0.0.1. With --remote ADDR it sends to the node at
ADDR, for instance one started with "slc listen" on another machine (a
receiver that prints every message will be the bottleneck).

A progress bar shows the acknowledged rate while it runs (on a terminal).
Throughput counts acknowledged messages; latency is from Send to the
acknowledgement, so it includes one round trip.

For slc side by side with other messaging systems, run the harness in the
repository's bench directory: cd bench && go run . -runs 3`,
		Example: `  slc bench
  slc bench --size 1MiB --duration 10s
  slc bench --remote 192.0.2.10:7000 --raw --pings 5000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bf.serve {
				return runBenchServe(cmd.Context(), g, &bf)
			}
			return runBench(cmd.Context(), g, &bf)
		},
	}
	bf.addNameFlag(cmd)
	bf.addConnectFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&bf.remote, "remote", "", "send to the node at this address instead of a receiver started here")
	fl.Var((*sizeFlag)(&bf.size), "size", "message size in bytes (suffixes KiB, MiB; the typed message's Data field is this long)")
	bf.size = benchDefaultSize
	fl.DurationVar(&bf.duration, "duration", benchDefaultLength, "how long the throughput phase sends")
	fl.IntVar(&bf.count, "count", 0, "send this many messages in the throughput phase instead of sending for --duration")
	fl.IntVar(&bf.pings, "pings", benchDefaultPings, "messages timed one at a time in the latency phase (0: skip it)")
	fl.BoolVar(&bf.raw, "raw", false, "send raw bytes (SendRaw) instead of typed messages")
	fl.BoolVar(&bf.progress, "progress", true, "show a progress bar on a terminal")
	fl.BoolVar(&bf.serve, "serve", false, "run as the receiver: listen on --addr, print the address, receive until Ctrl-C")
	fl.StringVar(&bf.addr, "addr", "127.0.0.1:0", "with --serve, the address to listen on")
	fl.BoolVar(&bf.parent, "serve-child", false, "with --serve, end when stdin closes")
	fl.MarkHidden("serve")
	fl.MarkHidden("addr")
	fl.MarkHidden("serve-child")
	return cmd
}

// sizeFlag is a byte count with an optional KiB or MiB suffix.
type sizeFlag int

func (s *sizeFlag) String() string { return fmt.Sprint(int(*s)) }
func (s *sizeFlag) Type() string   { return "size" }
func (s *sizeFlag) Set(v string) error {
	mult := 1
	t := strings.TrimSpace(v)
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 1 || n*mult > benchMaxSize {
		return fmt.Errorf("want a size from 1 byte to 64MiB, like 64, 1KiB or 1MiB")
	}
	*s = sizeFlag(n * mult)
	return nil
}

// benchResult is what a run measured.
type benchResult struct {
	messages uint64
	elapsed  time.Duration
	lat      []time.Duration
}

func runBench(ctx context.Context, g *globals, bf *benchFlags) error {
	if bf.duration <= 0 && bf.count <= 0 {
		return errors.New("--duration or --count must be positive")
	}
	if bf.pings < 0 || bf.count < 0 {
		return errors.New("--pings and --count must not be negative")
	}
	out := g.newPrinter()
	addr := bf.remote
	if addr == "" {
		child, a, err := startBenchServer(ctx, g)
		if err != nil {
			return err
		}
		defer child.stop()
		addr = a
		out.line("bench", "info", "receiver started", f("addr", addr), f("pid", child.cmd.Process.Pid))
	}
	c, err := slc.New(g.nodeOptions(bf.name)...)
	if err != nil {
		return err
	}
	defer c.Close()
	n := &node{Communicator: c, label: "bench", out: out, lastErrs: map[string]error{}}
	to, err := n.connect(ctx, addr, bf.connectTimeout)
	if err != nil {
		return err
	}
	msg := newBenchSender(c, to, bf.size, bf.raw)

	// Warm-up: the connection, the buffers, the receiver's decoder.
	for i := 0; i < benchWarmup; i++ {
		if _, err := msg.send(ctx); err != nil {
			return err
		}
	}
	if err := msg.waitLast(ctx); err != nil {
		return err
	}

	res, err := benchThroughput(ctx, g, bf, msg)
	if err != nil {
		return err
	}
	rate := float64(res.messages) / res.elapsed.Seconds()
	out.line("bench", "result", "throughput", f("messages", res.messages), f("size", bf.size),
		f("payload", payloadKind(bf.raw)), f("elapsed", res.elapsed.Round(time.Millisecond)),
		f("msg_per_s", int64(rate+0.5)), f("mb_per_s", round1(rate*float64(bf.size)/1e6)))

	if bf.pings > 0 {
		lat, err := benchLatency(ctx, g, bf, msg)
		if err != nil {
			return err
		}
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		out.line("bench", "result", "latency", f("pings", len(lat)), f("size", bf.size),
			f("p50", q(0.50)), f("p90", q(0.90)), f("p99", q(0.99)), f("max", lat[len(lat)-1]),
			f("p50_us", micros(q(0.50))), f("p99_us", micros(q(0.99))))
	}

	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Disconnect(dctx, to); err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	return out.Err()
}

func payloadKind(raw bool) string {
	if raw {
		return "raw"
	}
	return "typed"
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func micros(d time.Duration) float64 { return round1(float64(d) / 1e3) }

// benchSender sends the benchmark's messages and remembers the last ID.
type benchSender struct {
	c     *slc.Communicator
	to    slc.PeerID
	raw   bool
	msg   BenchMessage
	buf   []byte
	first slc.MsgID
	last  slc.MsgID
	sent  uint64
}

func newBenchSender(c *slc.Communicator, to slc.PeerID, size int, raw bool) *benchSender {
	s := &benchSender{c: c, to: to, raw: raw}
	if raw {
		s.buf = make([]byte, size)
	} else {
		s.msg.Data = make([]byte, size)
	}
	for i := range size {
		if raw {
			s.buf[i] = byte(i)
		} else {
			s.msg.Data[i] = byte(i)
		}
	}
	return s
}

func (s *benchSender) send(ctx context.Context) (slc.MsgID, error) {
	var (
		id  slc.MsgID
		err error
	)
	s.sent++
	if s.raw {
		id, err = s.c.SendRaw(ctx, s.buf, s.to)
	} else {
		s.msg.Seq = s.sent
		id, err = s.c.Send(ctx, &s.msg, s.to)
	}
	if err != nil {
		return 0, err
	}
	if s.first == 0 {
		s.first = id
	}
	s.last = id
	return id, nil
}

func (s *benchSender) waitLast(ctx context.Context) error {
	if s.last == 0 {
		return nil
	}
	return s.c.WaitAcknowledged(ctx, s.last, s.to)
}

// benchThroughput sends for --duration (or --count messages) and returns
// once the last one is acknowledged.
func benchThroughput(ctx context.Context, g *globals, bf *benchFlags, s *benchSender) (benchResult, error) {
	startID := s.last
	total := int64(bf.count)
	bar := newBenchBar(g, bf, "throughput", total, bf.duration)
	start := time.Now()
	stop := bar.follow(func() (int64, string) {
		st, _ := s.c.PeerStats(s.to)
		acked := int64(st.Acked) - int64(startID)
		el := time.Since(start)
		rate := float64(acked) / el.Seconds()
		if total > 0 {
			return acked, fmt.Sprintf("%s msg/s acknowledged", siRate(rate))
		}
		return el.Milliseconds(), fmt.Sprintf("%s msg/s acknowledged", siRate(rate))
	})
	var n uint64
	deadline := start.Add(bf.duration)
	for {
		if bf.count > 0 && n >= uint64(bf.count) {
			break
		}
		if bf.count <= 0 && n%64 == 0 && time.Now().After(deadline) {
			break
		}
		if _, err := s.send(ctx); err != nil {
			stop(false)
			return benchResult{}, err
		}
		n++
	}
	if err := s.waitLast(ctx); err != nil {
		stop(false)
		return benchResult{}, err
	}
	elapsed := time.Since(start)
	stop(true)
	return benchResult{messages: n, elapsed: elapsed}, nil
}

// benchLatency sends --pings messages one at a time, each after the
// previous one is acknowledged.
func benchLatency(ctx context.Context, g *globals, bf *benchFlags, s *benchSender) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, bf.pings)
	var mu sync.Mutex
	bar := newBenchBar(g, bf, "latency", int64(bf.pings), 0)
	stop := bar.follow(func() (int64, string) {
		mu.Lock()
		defer mu.Unlock()
		if len(lat) == 0 {
			return 0, "round trips"
		}
		return int64(len(lat)), fmt.Sprintf("round trips, last %s", lat[len(lat)-1].Round(time.Microsecond))
	})
	for i := 0; i < bf.pings; i++ {
		t0 := time.Now()
		id, err := s.send(ctx)
		if err == nil {
			err = s.c.WaitAcknowledged(ctx, id, s.to)
		}
		if err != nil {
			stop(false)
			return nil, err
		}
		d := time.Since(t0)
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	}
	stop(true)
	return lat, nil
}

func siRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// benchBar is a progress bar on stderr, or nothing when stderr is not a
// terminal, with --json or --progress=false.
type benchBar struct {
	bar *progressbar.ProgressBar
}

func newBenchBar(g *globals, bf *benchFlags, title string, total int64, d time.Duration) *benchBar {
	if !bf.progress || g.json || !isTerminal(g.stderr) {
		return &benchBar{}
	}
	max := total
	if max <= 0 {
		max = d.Milliseconds() // a bar over time
	}
	return &benchBar{bar: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(g.stderr),
		progressbar.OptionSetDescription(title),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true))}
}

// follow updates the bar from poll every 100ms until the returned stop is
// called; stop(true) fills the bar, and both clear it.
func (b *benchBar) follow(poll func() (int64, string)) (stop func(done bool)) {
	if b.bar == nil {
		return func(bool) {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				v, desc := poll()
				b.bar.Describe(desc)
				b.bar.Set64(min(v, b.bar.GetMax64()))
			}
		}
	}()
	var once sync.Once
	return func(done bool) {
		once.Do(func() {
			close(quit)
			wg.Wait()
			if done {
				b.bar.Finish()
			}
			b.bar.Clear()
		})
	}
}

// The receiver: a child process of this program in --serve mode.

type benchChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// startBenchServer starts "slc bench --serve" and returns the address it
// listens on.
func startBenchServer(ctx context.Context, g *globals) (*benchChild, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	args := []string{"bench", "--serve", "--serve-child"}
	switch {
	case g.verbose:
		args = append(args, "-v")
	case g.logLevel.set:
		args = append(args, "--log-level", g.logLevel.String())
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = g.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start the receiver: %w", err)
	}
	child := &benchChild{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() { cmd.Wait(); close(child.done) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-lines:
		if addr, ok := strings.CutPrefix(l, benchServeReady); ok {
			return child, addr, nil
		}
		child.stop()
		return nil, "", fmt.Errorf("the receiver said %q", l)
	case <-child.done:
		return nil, "", errors.New("the receiver ended before it listened")
	case <-time.After(benchServeTimeout):
		child.stop()
		return nil, "", errors.New("the receiver did not start listening in time")
	case <-ctx.Done():
		child.stop()
		return nil, "", ctx.Err()
	}
}

// stop closes the child's stdin, which ends it, and waits; a child that
// does not end is killed.
func (c *benchChild) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// runBenchServe is the receiver: it listens, prints its address as
// "listening ADDR", and takes every message from its mailbox until it is
// interrupted or, started by slc bench, its stdin closes.
func runBenchServe(ctx context.Context, g *globals, bf *benchFlags) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	name := bf.name
	if name == "" {
		name = fmt.Sprintf("bench-receiver-%d", os.Getpid())
	}
	c, err := slc.New(g.nodeOptions(name)...)
	if err != nil {
		return err
	}
	defer c.Close()
	a, err := c.Listen(ctx, bf.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", bf.addr, err)
	}
	fmt.Fprintf(g.stdout, "%s%s\n", benchServeReady, formatAddr(a.Network(), a.String()))
	if bf.parent {
		go func() {
			io.Copy(io.Discard, os.Stdin) // until the parent closes it
			cancel()
		}()
	}
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		m.Release()
	}
}
