// Command gnode is one group member as a process, for the tests of
// package group: it joins a group, multicasts, and prints its history as
// JSON lines for the checker.
//
// Lines on stdout: "listening ADDR", "joined", "progress N", "finished",
// and "E {event}" for each traced event. A line "close" on stdin makes it
// close and exit.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/group"
	"github.com/slc-go/slc/group/internal/check"
)

var services = []group.Service{group.Reliable, group.FIFO, group.Causal, group.Agreed, group.Safe,
	group.Agreed | group.SelfDiscard, group.Unreliable}

func main() {
	name := flag.String("name", "", "node name")
	seeds := flag.String("seeds", "", "comma-separated seed addresses")
	n := flag.Int("n", 3, "members expected")
	k := flag.Int("k", 50, "messages to send")
	flag.Parse()
	if err := run(*name, *seeds, *n, *k); err != nil {
		fmt.Fprintln(os.Stderr, "gnode:", err)
		os.Exit(1)
	}
}

const doneType = -1

func run(name, seeds string, n, k int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var outMu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
		outMu.Unlock()
	}
	c, err := slc.New(slc.WithName(name), slc.WithRetries(3), slc.WithTimeout(300*time.Millisecond),
		slc.WithHeartbeat(100*time.Millisecond, 1500*time.Millisecond), slc.WithLinger(1500*time.Millisecond))
	if err != nil {
		return err
	}
	defer c.Close()
	addr, err := c.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	clock := func() int64 { return time.Now().UnixNano() }
	trace := func(kind group.TraceKind, d group.Delivery) {
		var e check.Event
		switch v := d.(type) {
		case *group.Message:
			e = check.Event{Msg: check.MsgID{Sender: string(v.Sender), Serial: v.Serial}, Service: int(v.Service),
				Groups: v.Groups, Time: clock()}
			switch kind {
			case group.TraceSend:
				e.Kind, e.Time = check.Send, 0
			case group.TraceReceive:
				e.Kind, e.Service, e.Groups = check.Receive, 0, nil
			default:
				e.Kind = check.Deliver
			}
		case *group.Membership:
			var ms []string
			for _, p := range v.Members {
				ms = append(ms, string(p))
			}
			e = check.Event{Kind: check.View, Group: v.Group, ViewID: v.ViewID.String(), Members: ms, Transitional: v.Transitional}
		}
		b, _ := json.Marshal(e)
		say("E %s", b)
	}
	opts := []group.Option{group.WithAddrs(addr.String()), group.WithTrace(trace), group.WithTick(10 * time.Millisecond)}
	if seeds != "" {
		opts = append(opts, group.WithSeeds(strings.Split(seeds, ",")...))
	}
	m, err := group.New(c, opts...)
	if err != nil {
		return err
	}
	defer m.Close()
	say("listening %s", addr)

	// Deliveries: the latest view of g, and who said done.
	var mu sync.Mutex
	changed := make(chan struct{}, 1)
	var members []slc.PeerID
	done := map[slc.PeerID]bool{}
	go func() {
		for {
			d, err := m.Receive(context.Background())
			if err != nil {
				return
			}
			mu.Lock()
			switch v := d.(type) {
			case *group.Membership:
				if v.Group == "g" && !v.Transitional {
					members = v.Members
				}
			case *group.Message:
				if v.MsgType == doneType {
					done[v.Sender] = true
				}
			}
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()
	wait := func(cond func() bool) error {
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return nil
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if _, err := m.WaitConfiguration(ctx, n); err != nil {
		return err
	}
	if err := m.Join(ctx, "g"); err != nil {
		return err
	}
	if err := wait(func() bool { return len(members) == n }); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	say("joined")
	for i := 0; i < k; i++ {
		if _, err := m.Multicast(ctx, services[i%len(services)], "g", int16(i), fmt.Sprintf("%s-%d", name, i)); err != nil {
			return err
		}
		if (i+1)%10 == 0 {
			say("progress %d", i+1)
		}
	}
	if _, err := m.Multicast(ctx, group.Safe, "g", doneType, "done"); err != nil {
		return err
	}
	if err := wait(func() bool {
		for _, p := range members {
			if !done[p] {
				return false
			}
		}
		return slices.Contains(members, slc.PeerID(name))
	}); err != nil {
		return fmt.Errorf("wait done: %w", err)
	}
	say("finished")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "close" {
			break
		}
	}
	return nil
}
