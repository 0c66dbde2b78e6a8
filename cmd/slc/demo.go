package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
	"github.com/slc-go/slc/secure"
)

// Reading is the typed message the camera sends.
type Reading struct {
	Sensor  string
	Celsius float64
	Seq     int
}

// Setpoint is the typed reply the workstation sends back.
type Setpoint struct {
	Sensor  string
	Celsius float64
}

func init() {
	slc.Register[Reading]("demo.Reading")
	slc.Register[Setpoint]("demo.Setpoint")
	addCommand(newDemoCmd)
}

const (
	cameraName  = "lab-camera"
	stationName = "workstation"

	demoReadings = 3   // typed readings sent one by one
	burstSize    = 200 // readings in the burst the relay cuts
	cutAfter     = 100 // the relay cuts the connection after this reading
	// demoTimeout bounds the whole demo; it normally takes well under a
	// second.
	demoTimeout = 20 * time.Second
)

func newDemoCmd(g *globals) *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run two nodes in this process and watch typed messages, acknowledgements and a reconnect",
		Long: `demo starts two nodes in this process: "lab-camera" listens on 127.0.0.1 and
"workstation" connects to it through a TCP relay that the demo controls.

It prints every event of both nodes as it happens, sends typed messages both
ways, waits for acknowledgements, then cuts the connection in the middle of a
burst of ` + fmt.Sprint(burstSize) + ` messages: the workstation reconnects by itself and every
message arrives exactly once, in order. It takes well under a second.

The nodes run in secure mode: each makes a key pair and accepts only the
other's public key, under the other's name, so everything after the
preamble is encrypted and authenticated (Noise XX). --insecure runs them in
plain mode instead.

With --json every line is a JSON object with the fields t_ms, node, kind and
msg, plus the record's own fields; events have kind "event" and their name
in msg.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), g, !insecure)
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "run the nodes in plain mode, without encryption or keys")
	return cmd
}

// demo is one run of the demo: two nodes, the relay between them and
// the events both publish.
type demo struct {
	g      *globals
	out    *printer
	events eventLog

	camera, station *slc.Communicator
	unwatch         []func()
	relay           *relay

	// Set by the steps, for the summary.
	typedTypes   []string // the Go types of the received bodies
	readingBytes int64    // the size of a reading on the wire
	firstID      slc.MsgID
	cutAt        time.Duration
	reconnected  time.Duration // when the workstation's session resumed
	tally        tally
	acksObserved int

	// ids are the nodes' key pairs in secure mode, nil in plain mode.
	ids map[string]*secure.Identity
}

func runDemo(ctx context.Context, g *globals, secureMode bool) error {
	if g.secure.set() {
		return errors.New("demo makes its own keys for its two nodes: --identity, --authorized-keys, --known-peers and --network-secret-file do not apply")
	}
	d := &demo{g: g, out: g.newPrinter()}
	if secureMode {
		d.ids = map[string]*secure.Identity{}
		for _, name := range []string{cameraName, stationName} {
			id, err := secure.GenerateIdentity()
			if err != nil {
				return err
			}
			d.ids[name] = id
		}
	}
	d.events.changed = make(chan struct{})
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	defer d.close()

	steps := []struct {
		name, about string
		run         func(context.Context) error
	}{
		{"start", "two nodes" + d.mode() + ": " + cameraName + " listens, " + stationName + " connects through a relay", d.start},
		{"typed messages", cameraName + " sends Readings, " + stationName + " replies with a Setpoint", d.typed},
		{"acknowledgements", "a message is acknowledged once it is in the receiver's mailbox", d.acks},
		{"reconnect", fmt.Sprintf("the relay cuts the connection in the middle of a burst of %d readings", burstSize), d.burst},
		{"goodbye", stationName + " disconnects, then both nodes close", d.goodbye},
	}
	for _, s := range steps {
		d.out.step(s.name + ": " + s.about)
		if err := s.run(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				err = fmt.Errorf("did not finish within %v: %w", demoTimeout, err)
			}
			return fmt.Errorf("demo: %s: %w", s.name, err)
		}
	}
	d.summary()
	return d.out.Err()
}

// node starts a communicator named name and prints its events.
func (d *demo) node(name string) (*slc.Communicator, error) {
	c, err := slc.New(d.g.nodeOptions(name, d.secureOptions(name)...)...)
	if err != nil {
		return nil, err
	}
	d.unwatch = append(d.unwatch, watchEvents(c, name, d.out, func(ev any) {
		d.events.add(name, d.out.since(), ev)
	}))
	return c, nil
}

// mode describes how the nodes run, for the first step's title.
func (d *demo) mode() string {
	if d.ids == nil {
		return " in plain mode (--insecure)"
	}
	return " in secure mode"
}

// secureOptions puts the node named name in secure mode: its own key pair,
// and the other node's public key as the only one it accepts, under the
// other node's name.
func (d *demo) secureOptions(name string) []slc.Option {
	if d.ids == nil {
		return nil
	}
	other := stationName
	if name == stationName {
		other = cameraName
	}
	return []slc.Option{slc.WithIdentity(d.ids[name]), slc.WithAuthorizedPeer(other, d.ids[other].PublicKey())}
}

// showKeys prints each node's key, before they start.
func (d *demo) showKeys() {
	if d.ids == nil {
		d.out.line("demo", "info", "plain mode: messages cross the network unencrypted")
		return
	}
	for _, name := range []string{cameraName, stationName} {
		d.out.line(name, "info", "key pair made", f("fingerprint", d.ids[name].PublicKey().Fingerprint()))
	}
	// Both nodes run here with the default preference (auto): they agree
	// on AES-256-GCM when this CPU has AES instructions.
	ciph := "ChaCha20-Poly1305"
	if secure.HardwareAESGCM() {
		ciph = "AES-256-GCM"
	}
	d.out.line("demo", "info", "secure mode: Noise XX handshake; each node accepts only the other's key, under its name",
		f("cipher", ciph))
}

func (d *demo) start(ctx context.Context) error {
	var err error
	d.showKeys()
	if d.camera, err = d.node(cameraName); err != nil {
		return err
	}
	addr, err := d.camera.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		return err
	}
	d.out.line(cameraName, "info", "listening", f("addr", addr.String()))

	if d.relay, err = newRelay(addr.String()); err != nil {
		return err
	}
	d.relay.onAccept = func(n int) {
		d.out.line("relay", "info", "relaying connection", f("n", n), f("to", addr.String()))
	}
	d.out.line("relay", "info", "listening", f("addr", d.relay.Addr()), f("to", addr.String()))

	if d.station, err = d.node(stationName); err != nil {
		return err
	}
	p, err := d.station.Connect(ctx, d.relay.Addr())
	if err != nil {
		return err
	}
	d.out.line(stationName, "info", "Connect returned", f("peer", p), f("via", d.relay.Addr()))
	if p != cameraName {
		return fmt.Errorf("connected to %q, want %q", p, cameraName)
	}
	// The camera's side of the handshake is reported on its own
	// goroutines: wait for it so the output stays in order.
	_, err = d.events.wait(ctx, "PeerConnected on "+cameraName, func(e nodeEvent) bool {
		pc, ok := e.ev.(*actors.PeerConnected)
		return ok && e.node == cameraName && pc.Peer == stationName
	})
	return err
}

func (d *demo) typed(ctx context.Context) error {
	down := d.relay.Down()
	for i := 1; i <= demoReadings; i++ {
		r := Reading{Sensor: "ccd-temp", Celsius: -20 - 0.5*float64(i), Seq: i}
		id, err := d.camera.Send(ctx, r, stationName)
		if err != nil {
			return err
		}
		d.out.line(cameraName, "send", "Send", f("id", id), f("to", stationName), f("body", goValue{r}))
		if i == 1 {
			d.firstID = id
		}
	}
	for i := range demoReadings {
		m, err := d.receive(ctx, d.station, cameraName)
		if err != nil {
			return err
		}
		if _, ok := m.Body.(Reading); !ok {
			return fmt.Errorf("message %d: body is a %T, want a main.Reading", m.ID, m.Body)
		}
		if i == 0 {
			d.typedTypes = append(d.typedTypes, fmt.Sprintf("%T", m.Body))
		}
	}
	// Nothing else went from the camera meanwhile: this is the size of a
	// reading on the wire, which places the cut of the burst.
	d.readingBytes = max((d.relay.Down()-down)/demoReadings, 1)

	sp := Setpoint{Sensor: "ccd-temp", Celsius: -25}
	id, err := d.station.Send(ctx, sp, cameraName)
	if err != nil {
		return err
	}
	d.out.line(stationName, "send", "Send", f("id", id), f("to", cameraName), f("body", goValue{sp}))
	m, err := d.receive(ctx, d.camera, stationName)
	if err != nil {
		return err
	}
	if _, ok := m.Body.(Setpoint); !ok {
		return fmt.Errorf("message %d: body is a %T, want a main.Setpoint", m.ID, m.Body)
	}
	d.typedTypes = append(d.typedTypes, fmt.Sprintf("%T", m.Body))
	return nil
}

// receive takes the next message from the peer named from and prints it.
func (d *demo) receive(ctx context.Context, c *slc.Communicator, from slc.PeerID) (slc.Message, error) {
	m, err := c.Receive(ctx, from)
	if err != nil {
		return m, err
	}
	if m.Err != nil {
		return m, fmt.Errorf("message %d from %s: %w", m.ID, m.From, m.Err)
	}
	d.out.line(string(c.Name()), "recv", "Receive", f("id", m.ID), f("from", m.From), f("type", m.Type),
		f("go_type", fmt.Sprintf("%T", m.Body)), f("body", goValue{m.Body}))
	return m, nil
}

func (d *demo) acks(ctx context.Context) error {
	id, err := d.camera.Send(ctx, Reading{Sensor: "ccd-temp", Celsius: -22, Seq: demoReadings + 1}, stationName)
	if err != nil {
		return err
	}
	d.out.line(cameraName, "send", "Send", f("id", id), f("to", stationName))
	start := time.Now()
	if err := d.camera.WaitAcknowledged(ctx, id, stationName); err != nil {
		return err
	}
	d.out.line(cameraName, "ack", "WaitAcknowledged returned", f("id", id), f("peer", stationName),
		f("waited", time.Since(start).Round(time.Microsecond)))
	// Acknowledgements are cumulative: every earlier message is
	// acknowledged too.
	for prev := d.firstID; prev <= id; prev++ {
		acked := d.camera.IsAcknowledged(prev, stationName)
		d.out.line(cameraName, "ack", "IsAcknowledged", f("id", prev), f("peer", stationName), f("acknowledged", acked))
		if !acked {
			return fmt.Errorf("message %d is not acknowledged although %d is", prev, id)
		}
	}
	// Take the message out of the workstation's mailbox.
	_, err = d.receive(ctx, d.station, cameraName)
	return err
}

func (d *demo) burst(ctx context.Context) error {
	connected := d.events.count(d.stationConnected)

	// Cut the connection when half the burst's bytes have passed the
	// relay: the cut lands inside a frame, with readings on the wire and
	// acknowledgements on their way back.
	at := int64(burstSize/2)*d.readingBytes + d.readingBytes/2
	cut := make(chan time.Duration, 1)
	d.relay.CutAfter(at, func(n int) {
		cut <- d.out.since()
		fields := []field{f("connections", n), f("after_bytes", at), f("bytes_per_reading", d.readingBytes)}
		if st, ok := d.camera.PeerStats(stationName); ok {
			fields = append(fields, f("camera_acknowledged_up_to", st.Acked))
		}
		d.out.line("relay", "cut", fmt.Sprintf("connection reset after about %.1f readings", float64(at)/float64(d.readingBytes)),
			fields...)
	})

	// The workstation takes the readings as they come.
	got := make(chan []int, 1)
	recvErr := make(chan error, 1)
	go func() {
		seqs := make([]int, 0, burstSize)
		for len(seqs) < burstSize {
			m, err := d.station.Receive(ctx, cameraName)
			if err != nil {
				recvErr <- fmt.Errorf("after %d readings: %w", len(seqs), err)
				return
			}
			r, ok := m.Body.(Reading)
			if !ok {
				recvErr <- fmt.Errorf("message %d: body is a %T (%v)", m.ID, m.Body, m.Err)
				return
			}
			seqs = append(seqs, r.Seq)
		}
		got <- seqs
	}()

	var first, last slc.MsgID
	for i := 1; i <= burstSize; i++ {
		id, err := d.camera.Send(ctx, Reading{Sensor: "ccd-temp", Celsius: -22 + float64(i%10)/10, Seq: i}, stationName)
		if err != nil {
			return fmt.Errorf("send reading %d: %w", i, err)
		}
		if i == 1 {
			first = id
		}
		last = id
	}
	d.out.line(cameraName, "send", fmt.Sprintf("Send x%d", burstSize), f("first_id", first), f("last_id", last),
		f("to", stationName))

	var seqs []int
	select {
	case seqs = <-got:
	case err := <-recvErr:
		return err
	}
	if d.relay.CutPending() {
		// Not reached: the burst is twice as long as the cut's budget.
		return fmt.Errorf("all %d readings arrived but the relay did not cut the connection (%d bytes relayed)",
			burstSize, d.relay.Down())
	}
	select {
	case d.cutAt = <-cut:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the relay's cut: %w", ctx.Err())
	}
	if err := d.camera.WaitAcknowledged(ctx, last, stationName); err != nil {
		return err
	}
	d.out.line(cameraName, "ack", "WaitAcknowledged returned", f("id", last), f("peer", stationName),
		f("note", "the whole burst is acknowledged"))

	// The session resumed: wait for both nodes' PeerConnected, so they are
	// printed before the results.
	e, err := d.events.waitCount(ctx, "PeerConnected after the cut on "+stationName, connected+1, d.stationConnected)
	if err != nil {
		return err
	}
	d.reconnected = e.at
	if _, err := d.events.wait(ctx, "resumed PeerConnected on "+cameraName, func(e nodeEvent) bool {
		pc, ok := e.ev.(*actors.PeerConnected)
		return ok && e.node == cameraName && pc.Resumed
	}); err != nil {
		return err
	}

	// Everything sent is acknowledged, so it is all in the mailbox:
	// anything left after the 200 would be a duplicate.
	for {
		m, ok := d.station.TryReceive(cameraName)
		if !ok {
			break
		}
		if r, ok := m.Body.(Reading); ok {
			seqs = append(seqs, r.Seq)
		}
	}
	d.tally = countSeqs(burstSize, seqs)
	t := d.tally
	d.out.line(stationName, "result", "burst", f("sent", burstSize), f("received", t.received),
		f("lost", t.lost), f("duplicated", t.duplicated), f("reordered", t.reordered))
	if !t.ok() {
		return fmt.Errorf("delivery broken: sent=%d received=%d lost=%d duplicated=%d reordered=%d",
			burstSize, t.received, t.lost, t.duplicated, t.reordered)
	}
	return nil
}

// stationConnected matches the workstation's PeerConnected events.
func (d *demo) stationConnected(e nodeEvent) bool {
	_, ok := e.ev.(*actors.PeerConnected)
	return ok && e.node == stationName
}

func (d *demo) goodbye(ctx context.Context) error {
	if err := d.station.Disconnect(ctx, cameraName); err != nil {
		return err
	}
	d.out.line(stationName, "info", "Disconnect returned", f("peer", cameraName))
	if _, err := d.events.wait(ctx, "final PeerDisconnected on "+cameraName, func(e nodeEvent) bool {
		pd, ok := e.ev.(*actors.PeerDisconnected)
		return ok && e.node == cameraName && pd.Final
	}); err != nil {
		return err
	}
	d.acksObserved = d.events.count(func(e nodeEvent) bool {
		_, ok := e.ev.(*actors.MessagesAcknowledged)
		return ok
	})
	if err := d.close(); err != nil {
		return err
	}
	d.out.line("demo", "info", "closed both nodes and the relay")
	return nil
}

// close closes the nodes and the relay. It is idempotent.
func (d *demo) close() error {
	var errs []error
	for _, c := range []*slc.Communicator{d.station, d.camera} {
		if c != nil {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", c.Name(), err))
			}
		}
	}
	for _, stop := range d.unwatch {
		stop()
	}
	d.unwatch = nil
	if d.relay != nil {
		if err := d.relay.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close relay: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (d *demo) summary() {
	d.out.step("summary")
	t := d.tally
	d.out.line("demo", "summary", "typed: message bodies arrived as Go values of their registered types",
		f("types", strings.Join(d.typedTypes, ",")))
	d.out.line("demo", "summary", "acknowledged: every message, announced by MessagesAcknowledged events",
		f("events", d.acksObserved))
	d.out.line("demo", "summary", "reconnected: the workstation redialed by itself; the session resumed where it left off",
		f("after", (d.reconnected-d.cutAt).Round(time.Millisecond)))
	d.out.line("demo", "summary", "delivered: exactly once, in order, across the cut", f("sent", burstSize),
		f("received", t.received), f("lost", t.lost), f("duplicated", t.duplicated))
	if d.ids != nil {
		d.out.line("demo", "summary", "secure: hello and messages encrypted end to end; each node proved its key",
			f(cameraName, d.ids[cameraName].PublicKey().Fingerprint()), f(stationName, d.ids[stationName].PublicKey().Fingerprint()))
	}
}

// tally counts how a sequence 1..n arrived.
type tally struct {
	received, lost, duplicated, reordered int
}

func (t tally) ok() bool { return t.lost == 0 && t.duplicated == 0 && t.reordered == 0 }

// countSeqs checks that got holds 1..n, each once and in order.
func countSeqs(n int, got []int) tally {
	t := tally{received: len(got)}
	seen := make(map[int]bool, n)
	next := 1
	for _, s := range got {
		switch {
		case seen[s]:
			t.duplicated++
			continue
		case s != next:
			t.reordered++
		}
		seen[s] = true
		next = s + 1
	}
	for s := 1; s <= n; s++ {
		if !seen[s] {
			t.lost++
		}
	}
	return t
}

// nodeEvent is an slc event and the node that published it.
type nodeEvent struct {
	node string
	at   time.Duration // since the demo started
	ev   any
}

// eventLog records the events of both nodes so that the demo can wait for
// one. add runs in EventStream handlers: it never blocks.
type eventLog struct {
	mu      sync.Mutex
	all     []nodeEvent
	changed chan struct{} // closed and replaced by add
}

func (l *eventLog) add(node string, at time.Duration, ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, nodeEvent{node: node, at: at, ev: ev})
	close(l.changed)
	l.changed = make(chan struct{})
}

// wait returns the first event that matches, waiting for it until ctx
// ends; what describes it in the error.
func (l *eventLog) wait(ctx context.Context, what string, match func(nodeEvent) bool) (nodeEvent, error) {
	return l.waitCount(ctx, what, 1, match)
}

// waitCount returns the n-th event that matches, waiting for it.
func (l *eventLog) waitCount(ctx context.Context, what string, n int, match func(nodeEvent) bool) (nodeEvent, error) {
	for {
		l.mu.Lock()
		k := 0
		for _, e := range l.all {
			if match(e) {
				if k++; k == n {
					l.mu.Unlock()
					return e, nil
				}
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nodeEvent{}, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

func (l *eventLog) count(match func(nodeEvent) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := 0
	for _, e := range l.all {
		if match(e) {
			k++
		}
	}
	return k
}
