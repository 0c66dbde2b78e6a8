// Command busnode is a bus participant driven by the failover test
// through its standard input and output, one command or report per line.
//
// Every node prints "joined server=NAME rank=N" once it is on the bus,
// "server NAME published=N" whenever the server changes (N: the events
// it had published then), and on "stats" its counters: "stats
// published=.. received=.. duplicates=.. dropped=.. changeovers=..
// backwards=..", the last the events whose timestamps decreased along the
// pipeline. A listener (-listen)
// counts the int64 events on its scope, prints "got N" every 100 events,
// and on the end marker (the string "end:N") prints
// "result sent=.. received=.. lost=.. duplicated=.. reordered=..". An
// informer (-publish) publishes 1, 2, 3, ... after "start" until "stop",
// then publishes the end marker reliably, waits until the server has it
// and prints "sent N". "quit" (or the end of the input) closes the node.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/bus"
	"github.com/slc-go/slc/internal/testutil"
)

func main() {
	addr := flag.String("addr", bus.DefaultAddr, "bus address")
	name := flag.String("name", "", "node name")
	listen := flag.String("listen", "", "listen on this scope")
	publish := flag.String("publish", "", "publish on this scope")
	unreliable := flag.Bool("unreliable", false, "publish with unreliable QoS")
	flag.Parse()
	if err := run(*addr, *name, *listen, *publish, *unreliable); err != nil {
		fmt.Fprintln(os.Stderr, "busnode:", err)
		os.Exit(1)
	}
}

type output struct {
	mu sync.Mutex
}

func (o *output) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func run(addr, name, listenScope, publishScope string, unreliable bool) error {
	ctx := context.Background()
	qos := bus.QoS{}
	if unreliable {
		qos.Reliability = bus.Unreliable
	}
	p, err := bus.Join(ctx, bus.WithAddr(addr), bus.WithQoS(qos),
		// A long grace: only the elected successor serves, so the test
		// can check the election.
		bus.WithFailover(time.Minute, time.Minute),
		bus.WithNodeOptions(slc.WithName(name), slc.WithTimeout(2*time.Second),
			slc.WithHeartbeat(100*time.Millisecond, 2*time.Second)))
	if err != nil {
		return err
	}
	defer p.Close()
	out := &output{}
	m, changed := p.Membership()
	rank := uint64(0)
	for _, mi := range m.Members {
		if mi.Name == p.Name() {
			rank = mi.Rank
		}
	}
	out.printf("joined server=%s rank=%d", p.Server(), rank)
	go func() {
		last := m.Server
		for {
			<-changed
			m, changed = p.Membership()
			if s := p.Server(); s != "" && s != last {
				last = s
				// What this node had published once it had the new server:
				// bounds what the changeover can lose.
				out.printf("server %s published=%d", s, p.Stats().Published)
			}
		}
	}()

	// Events whose times decreased along the pipeline (from another
	// process on this host: the default clocks agree).
	var backwards atomic.Int64
	if listenScope != "" {
		var mu sync.Mutex
		var got []uint64
		_, err := p.NewListener(ctx, listenScope, func(e *bus.Event) {
			if m := e.Meta; m.SendTime.Before(m.CreateTime) || m.ReceiveTime.Before(m.SendTime) || m.DeliverTime.Before(m.ReceiveTime) {
				backwards.Add(1)
			}
			switch v := e.Data.(type) {
			case int64:
				mu.Lock()
				got = append(got, uint64(v))
				n := len(got)
				mu.Unlock()
				if n%100 == 0 {
					out.printf("got %d", n)
				}
			case string:
				sent, err := strconv.Atoi(strings.TrimPrefix(v, "end:"))
				if err != nil {
					return
				}
				mu.Lock()
				t := testutil.CheckSequence(sent, got)
				mu.Unlock()
				out.printf("result %s", t)
			}
		})
		if err != nil {
			return err
		}
		out.printf("listening")
	}

	var stop chan struct{}
	var done chan int
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "start":
			if publishScope == "" || stop != nil {
				continue
			}
			inf, err := p.NewInformer(publishScope)
			if err != nil {
				return err
			}
			stop, done = make(chan struct{}), make(chan int, 1)
			go func() {
				n := 0
				defer func() { done <- n }()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := inf.Publish(ctx, int64(n+1)); err != nil {
						out.printf("error %v", err)
						return
					}
					n++
					if n%20 == 0 {
						// A moderate rate: unreliable events are then lost to
						// the changeover, not to a full queue.
						time.Sleep(time.Millisecond)
					}
				}
			}()
		case "stop":
			if stop == nil {
				continue
			}
			close(stop)
			n := <-done
			marker, err := p.NewInformer(publishScope, bus.WithReliability(bus.Reliable))
			if err != nil {
				return err
			}
			if _, err := marker.Publish(ctx, fmt.Sprintf("end:%d", n)); err != nil {
				return err
			}
			if err := p.Flush(ctx); err != nil {
				return err
			}
			out.printf("sent %d", n)
		case "stats":
			st := p.Stats()
			out.printf("stats published=%d received=%d duplicates=%d dropped=%d changeovers=%d backwards=%d",
				st.Published, st.Received, st.Duplicates, st.Dropped, st.Changeovers, backwards.Load())
		case "quit":
			return nil
		}
	}
	return nil
}
