package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/rpc"
)

func init() { addCommand(newWatchCmd) }

func newWatchCmd(g *globals) *cobra.Command {
	var (
		rf    rpcFlags
		count int
	)
	cmd := &cobra.Command{
		Use:   "watch NODE PATH IFACE EVENT",
		Short: "Subscribe to an event of an rpc node and print each one",
		Long: `watch connects to the rpc node NODE (at the address given with --connect),
subscribes to EVENT of interface IFACE at PATH, and prints every event that
arrives, with its arguments, until Ctrl-C (or --count events).

It reports "subscribed" once NODE holds the subscription. The subscription
survives reconnects and restarts of NODE: watch keeps reconnecting (and dials
again, with a growing delay up to 5s, when NODE ends the session by shutting
down), and prints the connection's events as they happen.`,
		Example: `  slc watch --connect 127.0.0.1:7000 timer /timer com.example.Timer timeout
  slc watch -c 127.0.0.1:7000 timer /timer com.example.Timer timeout --json --count 1`,
		Args: cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd.Context(), g, &rf, count, args[0], args[1], args[2], args[3])
		},
	}
	rf.add(cmd)
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many events (0: run until interrupted)")
	return cmd
}

func runWatch(ctx context.Context, g *globals, rf *rpcFlags, count int, node, path, iface, event string) error {
	out := g.newPrinter()
	// Reconnect without end: a watch outlives restarts of the node.
	r, err := startRPC(ctx, g, out, rf, slc.PeerID(node), connectionEvent, slc.WithRetries(slc.RetryForever))
	if err != nil {
		return err
	}
	defer r.close()
	// A session that ends for good (the node said goodbye: it shut down,
	// or restarts) is not resumed by slc: watch dials again.
	ended := make(chan struct{}, 1)
	es := r.Communicator.ActorSystem().EventStream
	esSub := es.Subscribe(func(ev any) {
		var p slc.PeerID
		switch e := ev.(type) {
		case *actors.PeerDisconnected:
			if !e.Final {
				return
			}
			p = e.Peer
		case *actors.PeerLost:
			p = e.Peer
		default:
			return
		}
		if p == r.peer {
			select {
			case ended <- struct{}{}:
			default:
			}
		}
	})
	defer es.Unsubscribe(esSub)
	events := make(chan rpc.EventMessage, 64)
	sub, err := r.rn.On(r.peer, path, iface, event, func(ev rpc.EventMessage) {
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := sub.Wait(ctx); err != nil {
		return endedByInterrupt(ctx, err)
	}
	out.line(r.label, "info", "subscribed", f("peer", r.peer), f("path", path), f("event", iface+"."+event))
	for n := 0; count <= 0 || n < count; {
		select {
		case ev := <-events:
			out.line(r.label, "recv", "event", f("from", ev.Node), f("path", ev.Path),
				f("event", ev.Interface+"."+ev.Event), f("args", bodyValue{ev.Args}))
			n++
		case <-ended:
			// The rpc node sends the subscription again when the node
			// says hello on the new session.
			if err := redial(ctx, out, r, rf); err != nil {
				return endedByInterrupt(ctx, err)
			}
		case <-ctx.Done():
			return endedByInterrupt(ctx, fmt.Errorf("watch: %w", ctx.Err()))
		}
	}
	sub.Unsubscribe()
	if err := r.close(); err != nil {
		return err
	}
	return out.Err()
}

// Bounds of the delay between two dials of redial.
const (
	redialMin = 100 * time.Millisecond
	redialMax = 5 * time.Second
)

// redial connects r again to rf.connect, after its session ended, until
// it succeeds or ctx ends, doubling the delay between attempts up to
// redialMax.
func redial(ctx context.Context, out *printer, r *rpcNode, rf *rpcFlags) error {
	delay := redialMin
	for {
		p, err := r.connect(ctx, rf.connect, rf.connectTimeout)
		switch {
		case err == nil && p == r.peer:
			return nil
		case err == nil:
			return fmt.Errorf("the node at %s is now %q, not %q", rf.connect, p, r.peer)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		out.line(r.label, "info", "redialing", f("addr", rf.connect), f("in", delay), f("err", err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		delay = min(2*delay, redialMax)
	}
}
