// Command groupbench measures group multicast on this machine: the
// throughput and latency of Agreed and Safe multicast in groups of 3 and
// 7 members, with FIFO as the reference, each as a ratio to slc's own
// point-to-point throughput measured in the same run.
//
// Every member is a goroutine with its own communicator, connected to
// every other over loopback TCP. One member (not the sequencer)
// multicasts; a cell ends when every member has delivered every message.
// Throughput is messages per second over that time; latency is the
// median and 99th percentile, over single messages sent one at a time,
// of the time from Multicast until every member delivered the message.
// Point-to-point is one communicator sending to one other.
//
//	cd bench && go run ./groupbench
//	cd bench && go run ./groupbench -msgs 50000 -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/group"
)

func main() {
	msgs := flag.Int("msgs", 20000, "messages per throughput cell")
	pings := flag.Int("pings", 200, "messages per latency cell")
	size := flag.Int("size", 64, "payload size in bytes")
	runs := flag.Int("runs", 3, "runs of every cell; the table shows medians")
	flag.IntVar(&window, "window", group.DefaultConfig().Window, "multicasts in flight per member (group.WithWindow)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "groupbench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*msgs, *pings, *size, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "groupbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

var window int

type result struct {
	rate     float64 // messages/s
	p50, p99 time.Duration
}

func run(msgs, pings, size, runs int) error {
	payload := make([]byte, size)
	var p2p []result
	for r := 0; r < runs; r++ {
		res, err := pointToPoint(msgs, pings, payload)
		if err != nil {
			return fmt.Errorf("point-to-point: %w", err)
		}
		p2p = append(p2p, res)
	}
	ref := median(p2p)
	fmt.Printf("groupbench: %d-byte messages, %d per throughput cell, %d latency samples, median of %d runs\n",
		size, msgs, pings, runs)
	fmt.Printf("%-22s %12s %8s %10s %10s\n", "cell", "msgs/s", "ratio", "lat p50", "lat p99")
	fmt.Printf("%-22s %12.0f %8.2f %10s %10s\n", "slc point-to-point", ref.rate, 1.0, ref.p50.Round(time.Microsecond), ref.p99.Round(time.Microsecond))
	for _, n := range []int{3, 7} {
		for _, svc := range []group.Service{group.FIFO, group.Agreed, group.Safe} {
			var rs []result
			for r := 0; r < runs; r++ {
				res, err := groupCell(n, svc, msgs, pings, payload)
				if err != nil {
					return fmt.Errorf("%d members %s: %w", n, svc, err)
				}
				rs = append(rs, res)
			}
			m := median(rs)
			fmt.Printf("%-22s %12.0f %8.2f %10s %10s\n", fmt.Sprintf("group of %d, %s", n, svc), m.rate, m.rate/ref.rate,
				m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond))
		}
	}
	return nil
}

func median(rs []result) result {
	slices.SortFunc(rs, func(a, b result) int {
		switch {
		case a.rate < b.rate:
			return -1
		case a.rate > b.rate:
			return 1
		}
		return 0
	})
	m := rs[len(rs)/2]
	var p50s, p99s []time.Duration
	for _, r := range rs {
		p50s = append(p50s, r.p50)
		p99s = append(p99s, r.p99)
	}
	slices.Sort(p50s)
	slices.Sort(p99s)
	m.p50, m.p99 = p50s[len(p50s)/2], p99s[len(p99s)/2]
	return m
}

func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return ds[int(float64(len(ds)-1)*p)]
}

func pointToPoint(msgs, pings int, payload []byte) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, err := slc.New(slc.WithName("sender"))
	if err != nil {
		return result{}, err
	}
	defer a.Close()
	b, err := slc.New(slc.WithName("receiver"))
	if err != nil {
		return result{}, err
	}
	defer b.Close()
	addr, err := b.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	to, err := a.Connect(ctx, addr.String())
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < msgs; i++ {
			if _, err := a.SendRaw(ctx, payload, to); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := 0; i < msgs; i++ {
		if _, err := b.Receive(ctx); err != nil {
			return result{}, err
		}
	}
	if err := <-errc; err != nil {
		return result{}, err
	}
	res := result{rate: float64(msgs) / time.Since(start).Seconds()}
	lat := make([]time.Duration, 0, pings)
	for i := 0; i < pings; i++ {
		t0 := time.Now()
		if _, err := a.SendRaw(ctx, payload, to); err != nil {
			return result{}, err
		}
		if _, err := b.Receive(ctx); err != nil {
			return result{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	res.p50, res.p99 = percentile(lat, 0.5), percentile(lat, 0.99)
	return res, nil
}

// counter counts a member's deliveries and wakes waiters.
type counter struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int
	err  error
}

func (c *counter) waitFor(n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n < n && c.err == nil {
		c.cond.Wait()
	}
	return c.err
}

func groupCell(n int, svc group.Service, msgs, pings int, payload []byte) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type member struct {
		c   *slc.Communicator
		m   *group.Member
		cnt *counter
	}
	var ms []*member
	var addrs []string
	var wg sync.WaitGroup // the receivers
	defer func() {
		for _, m := range ms {
			m.m.Close()
			m.c.Close()
		}
		wg.Wait()
	}()
	for i := 0; i < n; i++ {
		c, err := slc.New(slc.WithName(fmt.Sprintf("m%d", i)))
		if err != nil {
			return result{}, err
		}
		addr, err := c.Listen(ctx, "127.0.0.1:0")
		if err != nil {
			c.Close()
			return result{}, err
		}
		gm, err := group.New(c, group.WithAddrs(addr.String()), group.WithWindow(window))
		if err != nil {
			c.Close()
			return result{}, err
		}
		cnt := &counter{}
		cnt.cond = sync.NewCond(&cnt.mu)
		ms = append(ms, &member{c: c, m: gm, cnt: cnt})
		addrs = append(addrs, addr.String())
	}
	for i := 1; i < n; i++ {
		for j := 0; j < i; j++ {
			if _, err := ms[i].c.Connect(ctx, addrs[j]); err != nil {
				return result{}, err
			}
		}
	}
	for _, m := range ms {
		if _, err := m.m.WaitConfiguration(ctx, n); err != nil {
			return result{}, err
		}
		if err := m.m.Join(ctx, "bench"); err != nil {
			return result{}, err
		}
	}
	joined := make(chan struct{}, n)
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := false
			for {
				d, err := m.m.Receive(context.Background())
				m.cnt.mu.Lock()
				if err != nil {
					m.cnt.err = err
					m.cnt.cond.Broadcast()
					m.cnt.mu.Unlock()
					return
				}
				switch d := d.(type) {
				case *group.Message:
					m.cnt.n++
					m.cnt.cond.Broadcast()
				case *group.Membership:
					if !seen && len(d.Members) == n {
						seen = true
						joined <- struct{}{}
					}
				}
				m.cnt.mu.Unlock()
			}
		}()
	}
	for range ms {
		select {
		case <-joined:
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
	}
	sender := ms[n-1] // m0 is the sequencer
	start := time.Now()
	for i := 0; i < msgs; i++ {
		if _, err := sender.m.Multicast(ctx, svc, "bench", 0, payload); err != nil {
			return result{}, err
		}
	}
	for _, m := range ms {
		if err := m.cnt.waitFor(msgs); err != nil {
			return result{}, err
		}
	}
	res := result{rate: float64(msgs) / time.Since(start).Seconds()}
	lat := make([]time.Duration, 0, pings)
	for i := 1; i <= pings; i++ {
		t0 := time.Now()
		if _, err := sender.m.Multicast(ctx, svc, "bench", 0, payload); err != nil {
			return result{}, err
		}
		for _, m := range ms {
			if err := m.cnt.waitFor(msgs + i); err != nil {
				return result{}, err
			}
		}
		lat = append(lat, time.Since(t0))
	}
	res.p50, res.p99 = percentile(lat, 0.5), percentile(lat, 0.99)
	return res, nil
}
