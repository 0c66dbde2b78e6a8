package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/bus"
)

func init() { addCommand(newBusCmd) }

// busFlags are the flags every bus subcommand shares.
type busFlags struct {
	nodeFlags
	addr string
	mode string
}

func (bf *busFlags) add(cmd *cobra.Command) {
	bf.addNameFlag(cmd)
	cmd.Flags().StringVar(&bf.addr, "bus", bus.DefaultAddr, "the bus address, host:port")
	cmd.Flags().StringVar(&bf.mode, "mode", "auto", "auto (serve if nobody does, else connect), server or client")
	cmd.Flags().DurationVar(&bf.connectTimeout, "connect-timeout", defaultConnectTimeout,
		"give up joining the bus after this long (0: no limit)")
}

func newBusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bus",
		Short: "Publish and subscribe on a scoped event bus (RSB's model)",
		Long: `bus joins a scoped publish/subscribe bus. Events are published on scopes such
as /robot/arm/; a subscriber on /robot/ gets the events of /robot/ and of every
scope below it.

Every process joins the bus at one address (--bus, default ` + bus.DefaultAddr + `): the
first one serves it and the others connect, and when the serving process ends
another one takes over.`,
		Example: `  slc bus sub /robot/                              # in one terminal
  slc bus pub /robot/arm/ "hello"                   # in another
  slc bus pub --as double /robot/arm/joint1/ 0.25 0.5`,
	}
	cmd.AddCommand(newBusPubCmd(g), newBusSubCmd(g), newBusListCmd(g))
	return cmd
}

func parseMode(s string) (bus.Mode, error) {
	switch s {
	case "auto":
		return bus.Auto, nil
	case "server":
		return bus.ServerMode, nil
	case "client":
		return bus.ClientMode, nil
	}
	return 0, fmt.Errorf("--mode %q: want auto, server or client", s)
}

// busNode is a node of a bus command: a communicator with its events
// printed, and the participant on it.
type busNode struct {
	*node
	p *bus.Participant
}

// joinBus starts a node and joins the bus with it.
func joinBus(ctx context.Context, g *globals, out *printer, bf *busFlags, opts ...bus.Option) (*busNode, error) {
	mode, err := parseMode(bf.mode)
	if err != nil {
		return nil, err
	}
	// Acknowledgements and reconnect attempts are routine on a bus: -v
	// shows them.
	quiet := func(ev any) bool {
		switch ev.(type) {
		case *actors.MessagesAcknowledged, *actors.PeerReconnecting:
			return !g.verbose
		}
		return false
	}
	n, err := startNode(g, out, bf.name, quiet, nil)
	if err != nil {
		return nil, err
	}
	jctx := ctx
	if bf.connectTimeout > 0 {
		var cancel context.CancelFunc
		jctx, cancel = context.WithTimeout(ctx, bf.connectTimeout)
		defer cancel()
	}
	p, err := bus.Join(jctx, append([]bus.Option{bus.WithAddr(bf.addr), bus.WithMode(mode),
		bus.WithCommunicator(n.Communicator)}, opts...)...)
	if err != nil {
		n.close()
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("join the bus at %s: nobody serves it within %v", bf.addr, bf.connectTimeout)
		}
		return nil, err
	}
	out.line(n.label, "info", "joined", f("bus", p.Addr()), f("server", p.Server()), opt("serving", p.IsServer()))
	return &busNode{node: n, p: p}, nil
}

// watchServer prints the server whenever it changes, until ctx ends.
func (b *busNode) watchServer(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m, changed := b.p.Membership()
		last := m.Server
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			m, changed = b.p.Membership()
			if s := b.p.Server(); s != last {
				last = s
				if s == "" {
					b.out.line(b.label, "info", "server lost")
				} else {
					b.out.line(b.label, "info", "server", f("server", s), opt("serving", b.p.IsServer()), f("epoch", int(m.Epoch)))
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// leave closes the participant and the node.
func (b *busNode) leave() error {
	err := b.p.Close()
	if cerr := b.close(); err == nil {
		err = cerr
	}
	return err
}

// busPubFlags are the flags of slc bus pub.
type busPubFlags struct {
	busFlags
	as         string
	unreliable bool
	count      int
	interval   time.Duration
	flush      time.Duration
}

func newBusPubCmd(g *globals) *cobra.Command {
	var pf busPubFlags
	cmd := &cobra.Command{
		Use:   "pub SCOPE DATA...",
		Short: "Publish each DATA as an event on SCOPE",
		Long: `pub joins the bus, publishes every DATA as an event on SCOPE, waits until the
server has delivered them to every subscriber (reliable events), and leaves.

DATA is a string by default; --as sends it as another type: int (int64),
double, bool, bytes, or json (the JSON text, checked, under the schema
application/json).`,
		Example: `  slc bus pub /robot/arm/ hello
  slc bus pub --as double --count 10 --interval 100ms /robot/sensors/temp/ 21.5
  slc bus pub --as json /robot/status/ '{"battery":0.8}'`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBusPub(cmd.Context(), g, &pf, args[0], args[1:])
		},
	}
	pf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&pf.as, "as", "string", "the type of DATA: string, int, double, bool, bytes or json")
	fl.BoolVar(&pf.unreliable, "unreliable", false, "publish with unreliable QoS (no acknowledgement, may be lost)")
	fl.IntVar(&pf.count, "count", 1, "publish the DATA this many times")
	fl.DurationVar(&pf.interval, "interval", 0, "wait this long between events")
	fl.DurationVar(&pf.flush, "flush-timeout", 30*time.Second, "give up waiting for delivery after this long")
	return cmd
}

// busData converts DATA as --as says.
func busData(as, s string) (*bus.Event, error) {
	e := &bus.Event{}
	var err error
	switch as {
	case "string":
		e.Data = s
	case "int":
		e.Data, err = strconv.ParseInt(s, 0, 64)
	case "double":
		e.Data, err = strconv.ParseFloat(s, 64)
	case "bool":
		e.Data, err = strconv.ParseBool(s)
	case "bytes":
		e.Data = []byte(s)
	case "json":
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("%q is not valid JSON", s)
		}
		e.Data, e.Schema = []byte(s), schemaJSON
	default:
		return nil, fmt.Errorf("--as %q: want string, int, double, bool, bytes or json", as)
	}
	return e, err
}

// schemaJSON is the schema of --as json.
const schemaJSON = "application/json"

func runBusPub(ctx context.Context, g *globals, pf *busPubFlags, scope string, data []string) error {
	if _, err := bus.ParseScope(scope); err != nil {
		return err
	}
	events := make([]*bus.Event, len(data))
	for i, s := range data {
		e, err := busData(pf.as, s)
		if err != nil {
			return fmt.Errorf("DATA %d: %w", i+1, err)
		}
		events[i] = e
	}
	out := g.newPrinter()
	qos := bus.QoS{}
	if pf.unreliable {
		qos.Reliability = bus.Unreliable
	}
	b, err := joinBus(ctx, g, out, &pf.busFlags, bus.WithQoS(qos))
	if err != nil {
		return err
	}
	defer b.leave()
	inf, err := b.p.NewInformer(scope)
	if err != nil {
		return err
	}
	published := 0
	for round := 0; round < max(pf.count, 1); round++ {
		for _, tmpl := range events {
			if published > 0 && pf.interval > 0 {
				select {
				case <-time.After(pf.interval):
				case <-ctx.Done():
					return endedByInterrupt(ctx, ctx.Err())
				}
			}
			e := &bus.Event{Data: tmpl.Data, Schema: tmpl.Schema}
			if err := inf.PublishEvent(ctx, e); err != nil {
				return endedByInterrupt(ctx, err)
			}
			published++
			out.line(b.label, "send", "published", f("id", e.ID.String()), f("scope", e.Scope.String()),
				f("schema", e.Schema), f("data", busDataValue(e)))
		}
	}
	if !pf.unreliable {
		fctx, cancel := context.WithTimeout(ctx, pf.flush)
		err := b.p.Flush(fctx)
		cancel()
		if err != nil {
			return endedByInterrupt(ctx, fmt.Errorf("waiting for delivery: %w", err))
		}
		out.line(b.label, "ack", "delivered", f("events", published))
	}
	if err := b.leave(); err != nil {
		return err
	}
	return out.Err()
}

// busDataValue is how an event's data is printed: text for strings and
// JSON, a preview for bytes, the value otherwise.
func busDataValue(e *bus.Event) any {
	switch d := e.Data.(type) {
	case []byte:
		if e.Schema == schemaJSON && json.Valid(d) {
			return bodyValue{json.RawMessage(d)}
		}
		pv := rawPreview(d)
		return fmt.Sprintf("%d bytes, %s %v", len(d), pv[0].key, pv[0].val)
	case nil:
		return nil
	}
	return bodyValue{e.Data}
}

func newBusSubCmd(g *globals) *cobra.Command {
	var (
		bf    busFlags
		count int
	)
	cmd := &cobra.Command{
		Use:   "sub SCOPE",
		Short: "Print the events of SCOPE and its subscopes as they arrive",
		Long: `sub joins the bus and prints every event published on SCOPE or below it, as it
arrives, until Ctrl-C (or --count events). Each line shows the scope, the
event's ID (publisher/instance:sequence), the schema, the data and the time
from creation to delivery. It also reports when the server changes.`,
		Example: `  slc bus sub /robot/
  slc bus sub --json --count 10 /`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBusSub(cmd.Context(), g, &bf, args[0], count)
		},
	}
	bf.add(cmd)
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many events (0: run until interrupted)")
	return cmd
}

func runBusSub(ctx context.Context, g *globals, bf *busFlags, scope string, count int) error {
	if _, err := bus.ParseScope(scope); err != nil {
		return err
	}
	out := g.newPrinter()
	b, err := joinBus(ctx, g, out, bf)
	if err != nil {
		return err
	}
	defer b.leave()
	stop := b.watchServer(ctx)
	defer stop()
	l, err := b.p.NewChannelListener(ctx, scope)
	if err != nil {
		return endedByInterrupt(ctx, err)
	}
	out.line(b.label, "info", "subscribed", f("scope", l.Scope().String()))
	for received := 0; count <= 0 || received < count; received++ {
		var e *bus.Event
		select {
		case e = <-l.Events():
		case <-ctx.Done():
			return nil
		}
		m := e.Meta
		out.line(b.label, "recv", e.Scope.String(),
			f("id", e.ID.String()), f("from", e.ID.Sender), opt("method", e.Method),
			f("schema", e.Schema), f("data", busDataValue(e)), opt("err", e.Err),
			f("latency", m.DeliverTime.Sub(m.CreateTime).Round(time.Microsecond)))
	}
	stop()
	if err := b.leave(); err != nil {
		return err
	}
	return out.Err()
}

func newBusListCmd(g *globals) *cobra.Command {
	var bf busFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the participants of the bus and their scopes",
		Long: `list joins the bus as a client, prints each participant (by rank: the order in
which they joined) with the scopes of its informers, listeners and servers,
and leaves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bf.mode = "client"
			out := g.newPrinter()
			b, err := joinBus(cmd.Context(), g, out, &bf)
			if err != nil {
				return err
			}
			defer b.leave()
			ps, err := b.p.Participants(cmd.Context())
			if err != nil {
				return err
			}
			for _, p := range ps {
				if p.Name == b.p.Name() {
					continue
				}
				out.line(b.label, "member", p.Name, f("rank", int(p.Rank)), opt("server", p.Server),
					f("host", p.Host), f("pid", p.PID), opt("away", p.Away),
					opt("informers", scopeList(p.Informers)), opt("listeners", scopeList(p.Listeners)),
					opt("servers", scopeList(p.Servers)))
			}
			if err := b.leave(); err != nil {
				return err
			}
			return out.Err()
		},
	}
	bf.add(cmd)
	cmd.Flags().Lookup("mode").Hidden = true
	return cmd
}

// scopeList formats scopes for a field: "" when there are none.
func scopeList(ss []bus.Scope) string {
	s := ""
	for i, sc := range ss {
		if i > 0 {
			s += ","
		}
		s += sc.String()
	}
	return s
}
