// Command node is the process the reliability suite starts, kills and
// restarts: a minimal slc node that sends or receives numbered messages and
// reports, one line per event, on standard output.
//
//	node recv -name R -listen ADDR          prints "ready ADDR", then "got FROM N" per message
//	node send -name S -to ADDR -n N [-from K] [-size B] [-rate R]
//	                                        prints "sent N" per message, "acked N", "done"
//	node churn -to ADDR -peers P -for D     connects and disconnects P peers in a loop;
//	                                        prints "acked P K" per acknowledged message
//	                                        (number P*1000000+K, from node NAME-P)
//
// With -store DIR a node keeps its state in a store (slc.WithStore) and
// -sync picks the fsync policy. "recv -die-after N" kills its own process
// with SIGKILL right after printing its Nth message. "send -resume" sends
// nothing new: it restarts from its store, lets the restored sessions
// deliver what the previous run left, prints "drained" and exits.
//
// Every node also prints its slc events ("event ..."). It exits 0 when its
// work is done, and on SIGTERM or SIGINT after closing cleanly.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/store"
)

// Seq is the numbered message; the tests decode nothing else.
type Seq struct {
	N       int
	Payload []byte
}

func init() { slc.Register[Seq]("reliability.Seq") }

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriterSize(os.Stdout, 64<<10)}

func say(format string, args ...any) {
	out.Lock()
	fmt.Fprintf(out.w, format+"\n", args...)
	out.Unlock()
}

func flush() {
	out.Lock()
	out.w.Flush()
	out.Unlock()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: node recv|send|churn [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Output is flushed often so a SIGKILL loses little, and always before
	// a line the test waits for.
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				flush()
			case <-ctx.Done():
				return
			}
		}
	}()
	var err error
	switch os.Args[1] {
	case "recv":
		err = recv(ctx, os.Args[2:])
	case "send":
		err = send(ctx, os.Args[2:])
	case "churn":
		err = churn(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	flush()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

// common flags
type common struct {
	name      string
	heartbeat time.Duration
	timeout   time.Duration
	linger    time.Duration
	events    bool
	store     string
	sync      string
	// disconnected, if set, adds to the "event disconnected" line; it
	// runs on the goroutine that publishes the event.
	disconnected func(peer slc.PeerID) string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "name", "", "node name")
	fs.DurationVar(&c.heartbeat, "heartbeat", 100*time.Millisecond, "heartbeat interval")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Second, "connect timeout; the heartbeat timeout is 5x the interval")
	fs.BoolVar(&c.events, "events", true, "print slc events")
	fs.DurationVar(&c.linger, "linger", time.Hour, "how long a session a peer dialed waits for it to come back")
	fs.StringVar(&c.store, "store", "", "keep the node's state in this directory (slc.WithStore)")
	fs.StringVar(&c.sync, "sync", "batch", "the store's fsync policy: batch, interval or never")
}

func (c *common) node(extra ...slc.Option) (*slc.Communicator, error) {
	if c.store != "" {
		policy, err := store.ParseSync(c.sync)
		if err != nil {
			return nil, err
		}
		extra = append(extra, slc.WithStore(c.store), slc.WithStoreOptions(store.Options{Sync: policy}))
	}
	opts := append([]slc.Option{
		slc.WithName(c.name),
		slc.WithTimeout(c.timeout),
		slc.WithHeartbeat(c.heartbeat, 5*c.heartbeat),
		slc.WithRetries(slc.RetryForever),
		slc.WithLinger(c.linger),
	}, extra...)
	comm, err := slc.New(opts...)
	if err != nil {
		return nil, err
	}
	if !c.events {
		return comm, nil
	}
	comm.ActorSystem().EventStream.Subscribe(func(ev any) {
		switch e := ev.(type) {
		case *actors.PeerConnected:
			say("event connected %s resumed=%v restarted=%v", e.Peer, e.Resumed, e.Restarted)
		case *actors.PeerDisconnected:
			extra := ""
			if c.disconnected != nil {
				extra = c.disconnected(e.Peer)
			}
			say("event disconnected %s final=%v%s", e.Peer, e.Final, extra)
		case *actors.PeerLost:
			say("event lost %s undelivered=%d", e.Peer, len(e.Undelivered))
		case *actors.PeerReconnecting:
			say("event reconnecting attempt=%d", e.Attempt)
		}
	})
	return comm, nil
}

func recv(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("recv", flag.ExitOnError)
	var c common
	c.register(fs)
	addr := fs.String("listen", "127.0.0.1:0", "listen address")
	stats := fs.Duration("stats", 0, "print goroutine and heap figures at this interval")
	dieAfter := fs.Int("die-after", 0, "SIGKILL this process right after printing this many messages")
	fs.Parse(args)
	comm, err := c.node()
	if err != nil {
		return err
	}
	defer comm.Close()
	bound, err := comm.Listen(ctx, *addr)
	if err != nil {
		return err
	}
	say("ready %s", bound)
	flush()
	if *stats > 0 {
		go func() {
			t := time.NewTicker(*stats)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					var ms runtime.MemStats
					if *stats >= 100*time.Millisecond {
						runtime.GC()
					}
					runtime.ReadMemStats(&ms)
					say("stats goroutines=%d heap=%d peers=%d pending=%d", runtime.NumGoroutine(), ms.HeapAlloc, len(comm.Peers()), comm.Pending())
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	got := 0
	for {
		m, err := comm.Receive(ctx)
		if err != nil {
			return err
		}
		if s, ok := m.Body.(Seq); ok {
			// Written at once: a message the application took must be
			// counted even if the process is killed right after.
			out.Lock()
			out.w.Flush()
			fmt.Fprintf(os.Stdout, "got %s %d\n", m.From, s.N)
			out.Unlock()
			if got++; got == *dieAfter {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
	}
}

func send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	var c common
	c.register(fs)
	to := fs.String("to", "", "address to connect to")
	n := fs.Int("n", 1000, "messages to send")
	from := fs.Int("from", 1, "first message number")
	size := fs.Int("size", 0, "payload bytes per message")
	rate := fs.Int("rate", 0, "messages per second (0: as fast as possible)")
	resume := fs.Bool("resume", false, "send nothing new: deliver what the store holds, then exit")
	fs.Parse(args)
	// On a disconnect the sender reports the highest message number the
	// peer had acknowledged ("acked=N"): no acknowledgement can arrive
	// until the next connection, so a test that waits for this line
	// before it lets the peer back knows exactly what the peer's last
	// instance took.
	var idsMu sync.Mutex
	var ids []slc.MsgID // ids[i] is the ID of message *from+i
	var comm *slc.Communicator
	c.disconnected = func(peer slc.PeerID) string {
		st, ok := comm.PeerStats(peer)
		if !ok {
			return ""
		}
		idsMu.Lock()
		defer idsMu.Unlock()
		k := sort.Search(len(ids), func(i int) bool { return ids[i] > st.Acked })
		if k == len(ids) && (k == 0 && st.Acked > 0 || k > 0 && st.Acked > ids[k-1]) {
			// The message being sent was acknowledged before its ID was
			// recorded: count it.
			k++
		}
		return fmt.Sprintf(" acked=%d", *from+k-1)
	}
	comm, err := c.node()
	if err != nil {
		return err
	}
	defer comm.Close()
	if *resume {
		return drain(ctx, comm)
	}
	peer, err := comm.Connect(ctx, *to)
	if err != nil {
		return err
	}
	say("connected %s", peer)
	payload := make([]byte, *size)
	var tick *time.Ticker
	if *rate > 0 {
		tick = time.NewTicker(time.Second / time.Duration(*rate))
		defer tick.Stop()
	}
	var last slc.MsgID
	for i := *from; i < *from+*n; i++ {
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		id, err := comm.Send(ctx, Seq{N: i, Payload: payload}, peer)
		if err != nil {
			return fmt.Errorf("send %d: %w", i, err)
		}
		idsMu.Lock()
		ids = append(ids, id)
		idsMu.Unlock()
		last = id
		say("sent %d", i)
	}
	if err := comm.WaitAcknowledged(ctx, last, peer); err != nil {
		return err
	}
	say("acked %d", *from+*n-1)
	if err := comm.Disconnect(ctx, peer); err != nil {
		return err
	}
	say("done")
	return nil
}

func churn(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("churn", flag.ExitOnError)
	var c common
	c.register(fs)
	to := fs.String("to", "", "address to connect to")
	peers := fs.Int("peers", 100, "peers")
	dur := fs.Duration("for", 10*time.Second, "how long to churn")
	fs.Parse(args)
	c.events = false
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cycles, connected, sent, acked int
	var firstErr error
	for p := 0; p < *peers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			pc := c
			pc.name = fmt.Sprintf("%s-%d", c.name, p)
			for k := 0; ctx.Err() == nil; k++ {
				comm, err := pc.node()
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				var conn, snt, ack bool
				if peer, err := comm.Connect(ctx, *to); err == nil {
					conn = true
					id, err := comm.Send(ctx, Seq{N: p*1000000 + k}, peer)
					snt = err == nil
					if snt && comm.WaitAcknowledged(ctx, id, peer) == nil {
						ack = true
						// One line per acknowledged message: the test
						// checks that each arrived, once.
						say("acked %d %d", p, k)
						comm.Disconnect(ctx, peer)
					}
				}
				comm.Close()
				mu.Lock()
				cycles++
				connected += b2i(conn)
				sent += b2i(snt)
				acked += b2i(ack)
				mu.Unlock()
			}
		}(p)
	}
	wg.Wait()
	say("churned cycles=%d connected=%d sent=%d acked=%d", cycles, connected, sent, acked)
	return firstErr
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// drain waits until the store holds no unacknowledged message.
func drain(ctx context.Context, comm *slc.Communicator) error {
	st := comm.Store()
	if st == nil {
		return errors.New("-resume needs -store")
	}
	say("restored %d peers", len(st.Restored()))
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for st.Stats().OutBytes > 0 {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	say("drained")
	return nil
}
