package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/discovery"
	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/peer"
	"github.com/slc-go/slc/supervisor"
)

// DefaultDiscoverTimeout is how long Discover browses when it is given no
// timeout.
const DefaultDiscoverTimeout = 2 * time.Second

// ErrNotListening: Advertise needs a TCP listener to advertise.
var ErrNotListening = errors.New("slc: advertise needs a TCP listener: call Listen with a host:port address first")

// ErrRetrying is wrapped by an Advertise error when the registration
// failed and its advertiser retries with backoff.
var ErrRetrying = errors.New("retrying with backoff until StopAdvertising")

// DiscoveryConfig configures mDNS discovery.
type DiscoveryConfig struct {
	// Interfaces names the network interfaces to advertise and browse on
	// (default: every multicast-capable interface that is up).
	Interfaces []string
}

// Discovery commands. Advertising and browsing use mDNS (DNS-SD service
// type _slc._tcp); see docs/discovery.md.
type (
	// Advertise advertises this node under Name ("" = the node's name)
	// on the configured interfaces, with the port of a TCP listener. The
	// reply comes once the first registration attempt is done; a failed
	// one is retried with backoff by the advertiser's supervisor until
	// StopAdvertising. Advertising a name again returns the state of its
	// latest attempt. Reply: *AdvertiseResult.
	Advertise struct {
		Name string
	}
	// AdvertiseResult answers Advertise. Interfaces lists where the name
	// is announced.
	AdvertiseResult struct {
		Name       string
		Interfaces []string
		Err        error
	}

	// StopAdvertising stops advertising Name ("" = every name). The
	// reply comes once the goodbye is sent: a browse that starts after it
	// does not find the name. Reply: *StoppedAdvertising.
	StopAdvertising struct {
		Name string
	}
	// StoppedAdvertising answers StopAdvertising.
	StoppedAdvertising struct {
		Err error
	}

	// Discover browses for nodes advertising Name ("" = any name) for
	// Timeout (0 = DefaultDiscoverTimeout), querying again and again while
	// it waits, and replies with every one that answered.
	// Reply: *DiscoverResult.
	Discover struct {
		Name    string
		Timeout time.Duration
	}
	// DiscoverResult answers Discover.
	DiscoverResult struct {
		Services []discovery.Service
		Err      error
	}

	// CancelDiscover ends the Discover whose reply goes to ReplyTo now:
	// it replies with what it found so far.
	CancelDiscover struct {
		ReplyTo *actor.PID
	}
)

// Discovery events, published while a browse runs (Discover, or Connect
// to an "mdns:NAME" address). Several browses of one communicator share
// one browser, and so one set of events.
type (
	// ServiceDiscovered: a node advertising Service.Name answered, or its
	// details (addresses, instance, port) changed.
	ServiceDiscovered struct {
		Service discovery.Service
	}
	// ServiceLost: a node stopped advertising (Reason
	// discovery.ReasonGoodbye), its records expired (ReasonExpired), or
	// its records turned invalid (ReasonInvalid).
	ServiceLost struct {
		Service discovery.Service
		Reason  string
	}
)

// discoveryMsg marks the messages the facade hands to its discovery part.
type discoveryMsg interface{ discoveryMsg() }

func (*Advertise) discoveryMsg()       {}
func (*StopAdvertising) discoveryMsg() {}
func (*Discover) discoveryMsg()        {}
func (*CancelDiscover) discoveryMsg()  {}
func (*advertReport) discoveryMsg()    {}
func (*browseDone) discoveryMsg()      {}
func (*connectVerified) discoveryMsg() {}

// Internal messages may reach the facade after it stopped.
func (*advertReport) IgnoreDeadLetterLogging()    {}
func (*browseDone) IgnoreDeadLetterLogging()      {}
func (*connectVerified) IgnoreDeadLetterLogging() {}
func (*CancelDiscover) IgnoreDeadLetterLogging()  {}

// advertReport carries an advertiser's report to the facade.
type advertReport struct {
	a *advert
	r discovery.Report
}

// browseDone: a browse or a connect by name finished.
type browseDone struct{ key int }

// connectVerified is a Connect that the node at Addr must pass: its name
// must be Node and, when Fingerprint is set, its key must have that
// fingerprint. Reply: *ConnectResult.
type connectVerified struct {
	Addr        string
	Timeout     time.Duration
	Node        peer.ID
	Fingerprint string
}

// advert is the facade's view of one advertised name.
type advert struct {
	name     string
	pid      *actor.PID
	waiters  []*actor.PID // Advertise calls waiting for the first report
	reported bool
	lastErr  error
	ifaces   []string
	stopping bool
}

// expectation is what Connect("mdns:NAME") was told about a session's node.
type expectation struct {
	node        peer.ID
	fingerprint string
}

// discoveryState is the facade's discovery part. Its fields belong to the
// facade's goroutine, except hub.
type discoveryState struct {
	cfg      DiscoveryConfig
	ads      map[string]*advert // by lower-case name: the names being advertised
	adByPID  map[string]*advert // every advertiser actor alive, by PID ID
	stops    []*stopWaiter
	running  map[int]*running // browses and connects by name
	nrunning int
	expect   map[*peer.Session]expectation
	hub      *browseHub
}

// running is a browse or a connect by name in progress.
type running struct {
	connect bool
	replyTo string
	cancel  context.CancelFunc
}

type stopWaiter struct {
	replyTo *actor.PID
	pending map[string]bool // advertiser PID IDs
}

func newDiscoveryState(cfg DiscoveryConfig, sys *actor.ActorSystem, log *slog.Logger) *discoveryState {
	return &discoveryState{
		cfg:     cfg,
		ads:     map[string]*advert{},
		adByPID: map[string]*advert{},
		running: map[int]*running{},
		expect:  map[*peer.Session]expectation{},
		hub:     &browseHub{sys: sys, cfg: discovery.BrowseConfig{Interfaces: cfg.Interfaces, Logger: log}},
	}
}

// discovery handles the discovery messages.
func (f *facade) discovery(ctx actor.Context, m discoveryMsg) {
	d := f.disc
	switch m := m.(type) {
	case *Advertise:
		f.advertise(ctx, m)
	case *advertReport:
		f.advertReported(ctx, m)
	case *StopAdvertising:
		f.stopAdvertising(ctx, m)
	case *Discover:
		f.discover(ctx, m)
	case *CancelDiscover:
		f.cancelRunning(m.ReplyTo, false)
	case *browseDone:
		delete(d.running, m.key)
	case *connectVerified:
		f.connectVerified(ctx, m)
	}
}

// --- advertising ---

func (f *facade) advertise(ctx actor.Context, m *Advertise) {
	d := f.disc
	name := m.Name
	if name == "" {
		name = f.core.cfg.Name
	}
	if f.closing {
		ctx.Respond(&AdvertiseResult{Name: name, Err: peer.ErrClosed})
		return
	}
	if err := discovery.ValidName(name); err != nil {
		ctx.Respond(&AdvertiseResult{Name: name, Err: err})
		return
	}
	key := strings.ToLower(name)
	if a := d.ads[key]; a != nil {
		if !a.reported {
			if s := ctx.Sender(); s != nil {
				a.waiters = append(a.waiters, s)
			}
			return
		}
		ctx.Respond(a.result(f.strategy))
		return
	}
	lns := f.tcpListeners()
	if len(lns) == 0 {
		ctx.Respond(&AdvertiseResult{Name: name, Err: ErrNotListening})
		return
	}
	cfg := discovery.AdvertiseConfig{
		Name:        name,
		Node:        f.core.cfg.Name,
		Instance:    f.core.cfg.Instance,
		Fingerprint: localFingerprint(f.core.cfg.Security),
		Listeners:   lns,
		Interfaces:  d.cfg.Interfaces,
		Logger:      f.log,
	}
	a := &advert{name: name}
	if s := ctx.Sender(); s != nil {
		a.waiters = append(a.waiters, s)
	}
	self, root := ctx.Self(), f.sys.Root
	a.pid = f.spawn(ctx, discovery.AdvertiserProps(cfg, func(r discovery.Report) {
		root.Send(self, &advertReport{a: a, r: r})
	}), "advertiser")
	d.ads[key] = a
	d.adByPID[a.pid.Id] = a
}

// localFingerprint returns the fingerprint of this node's key that
// Advertise puts in the TXT record: the one the Security reports through
// a LocalFingerprint() string method, "" in plain mode or when it has
// none.
func localFingerprint(sec peer.Security) string {
	if lf, ok := sec.(interface{ LocalFingerprint() string }); ok {
		return lf.LocalFingerprint()
	}
	return ""
}

func (a *advert) result(strategy actor.SupervisorStrategy) *AdvertiseResult {
	r := &AdvertiseResult{Name: a.name, Interfaces: a.ifaces}
	if a.lastErr != nil {
		r.Err = a.lastErr
		if b, ok := strategy.(*supervisor.Backoff); !ok || b.Retries > supervisor.NoRetries {
			r.Err = fmt.Errorf("%w (%w)", a.lastErr, ErrRetrying)
		}
	}
	return r
}

func (f *facade) advertReported(ctx actor.Context, m *advertReport) {
	a := m.a
	if a.stopping || f.disc.adByPID[a.pid.Id] != a {
		return
	}
	a.lastErr = m.r.Err
	if m.r.Err == nil {
		a.ifaces = m.r.Interfaces
		if m.r.Attempt > 1 {
			f.log.Info("slc: advertising again", "name", a.name, "attempt", m.r.Attempt, "interfaces", a.ifaces)
		}
	} else {
		f.log.Warn("slc: advertising failed; retrying with backoff", "name", a.name, "attempt", m.r.Attempt, "err", m.r.Err)
	}
	if !a.reported {
		a.reported = true
		res := a.result(f.strategy)
		for _, w := range a.waiters {
			ctx.Send(w, res)
		}
		a.waiters = nil
	}
}

func (f *facade) stopAdvertising(ctx actor.Context, m *StopAdvertising) {
	d := f.disc
	var targets []*advert
	if m.Name == "" {
		for _, a := range d.ads {
			targets = append(targets, a)
		}
	} else if a := d.ads[strings.ToLower(m.Name)]; a != nil {
		targets = append(targets, a)
	} else {
		ctx.Respond(&StoppedAdvertising{Err: fmt.Errorf("slc: not advertising %q", m.Name)})
		return
	}
	w := &stopWaiter{replyTo: ctx.Sender(), pending: map[string]bool{}}
	for _, a := range targets {
		a.stopping = true
		delete(d.ads, strings.ToLower(a.name))
		for _, r := range a.waiters {
			ctx.Send(r, &AdvertiseResult{Name: a.name, Err: fmt.Errorf("slc: advertise %q: stopped", a.name)})
		}
		a.waiters = nil
		if b, ok := f.strategy.(*supervisor.Backoff); ok {
			b.Cancel(a.pid)
		}
		ctx.Stop(a.pid)
		w.pending[a.pid.Id] = true
	}
	// Every advertiser being stopped counts, including those a previous
	// StopAdvertising is stopping: the reply means they are all gone.
	for id, a := range d.adByPID {
		if a.stopping {
			w.pending[id] = true
		}
	}
	if len(w.pending) == 0 {
		ctx.Respond(&StoppedAdvertising{})
		return
	}
	d.stops = append(d.stops, w)
}

// advertiserTerminated handles a child that stopped, if it is an
// advertiser.
func (f *facade) advertiserTerminated(ctx actor.Context, who *actor.PID) bool {
	d := f.disc
	a := d.adByPID[who.Id]
	if a == nil {
		return false
	}
	delete(d.adByPID, who.Id)
	if key := strings.ToLower(a.name); d.ads[key] == a {
		// Stopped by its supervisor: the retry budget is spent.
		delete(d.ads, key)
		f.log.Error("slc: advertising stopped: registration kept failing", "name", a.name, "err", a.lastErr)
		err := a.lastErr
		if err == nil {
			err = errors.New("advertiser stopped")
		}
		for _, w := range a.waiters {
			ctx.Send(w, &AdvertiseResult{Name: a.name, Err: err})
		}
	}
	kept := d.stops[:0]
	for _, w := range d.stops {
		delete(w.pending, who.Id)
		if len(w.pending) == 0 {
			if w.replyTo != nil {
				ctx.Send(w.replyTo, &StoppedAdvertising{})
			}
			continue
		}
		kept = append(kept, w)
	}
	d.stops = kept
	return true
}

// tcpListeners lists the node's TCP listeners, those bound to every
// address first.
func (f *facade) tcpListeners() []discovery.Listener {
	switch f.core.cfg.Transport.(type) {
	case peer.NetTransport, *peer.NetTransport:
	default:
		return nil
	}
	var out []discovery.Listener
	for addr := range f.lns {
		network, address, err := peer.SplitAddr(addr)
		if err != nil || network != "tcp" {
			continue
		}
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			continue
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			continue
		}
		host, _, _ = strings.Cut(host, "%")
		ip := net.ParseIP(host)
		if ip == nil && host != "" {
			continue
		}
		out = append(out, discovery.Listener{IP: ip, Port: p})
	}
	slices.SortFunc(out, func(a, b discovery.Listener) int {
		wa, wb := a.IP == nil || a.IP.IsUnspecified(), b.IP == nil || b.IP.IsUnspecified()
		switch {
		case wa && !wb:
			return -1
		case wb && !wa:
			return 1
		}
		return a.Port - b.Port
	})
	return out
}

// --- browsing ---

// browseHub shares one browser among the browses of a communicator, so
// that they share sockets, queries and one set of events.
type browseHub struct {
	sys *actor.ActorSystem
	cfg discovery.BrowseConfig

	mu     sync.Mutex
	b      *discovery.Browser
	users  int
	closed bool
}

func (h *browseHub) acquire() (*discovery.Browser, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, peer.ErrClosed
	}
	if h.b == nil {
		cfg := h.cfg
		cfg.OnEvent = h.publish
		b, err := discovery.NewBrowser(cfg)
		if err != nil {
			return nil, err
		}
		h.b = b
	}
	h.users++
	return h.b, nil
}

func (h *browseHub) release() {
	h.mu.Lock()
	h.users--
	var b *discovery.Browser
	if h.users == 0 {
		b, h.b = h.b, nil
	}
	h.mu.Unlock()
	if b != nil {
		b.Close()
	}
}

func (h *browseHub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

func (h *browseHub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

func (h *browseHub) publish(ev discovery.Event) {
	if h.isClosed() {
		return
	}
	switch ev.Kind {
	case discovery.Discovered:
		h.sys.EventStream.Publish(&ServiceDiscovered{Service: ev.Service})
	case discovery.Lost:
		h.sys.EventStream.Publish(&ServiceLost{Service: ev.Service, Reason: ev.Reason})
	}
}

// track starts fn on a goroutine the facade waits for when it stops, with
// a context that CancelDiscover or CancelConnect from replyTo (or the
// facade's stop) cancels.
func (f *facade) track(ctx actor.Context, connect bool, timeout time.Duration, fn func(context.Context) any) {
	d := f.disc
	d.nrunning++
	key, replyTo := d.nrunning, ctx.Sender()
	rctx, cancel := context.WithTimeout(context.Background(), timeout)
	r := &running{connect: connect, cancel: cancel}
	if replyTo != nil {
		r.replyTo = replyTo.String()
	}
	d.running[key] = r
	self, root := ctx.Self(), f.sys.Root
	f.core.wg.Add(1)
	go func() {
		defer f.core.wg.Done()
		defer cancel()
		res := fn(rctx)
		root.Send(self, &browseDone{key: key})
		if replyTo != nil {
			root.Send(replyTo, res)
		}
	}()
}

func (f *facade) discover(ctx actor.Context, m *Discover) {
	if f.closing {
		ctx.Respond(&DiscoverResult{Err: peer.ErrClosed})
		return
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultDiscoverTimeout
	}
	hub, name := f.disc.hub, m.Name
	f.track(ctx, false, timeout, func(c context.Context) any {
		b, err := hub.acquire()
		if err != nil {
			return &DiscoverResult{Err: err}
		}
		defer hub.release()
		svcs, err := b.Collect(c, name)
		return &DiscoverResult{Services: svcs, Err: err}
	})
}

// --- connecting by name ---

// connectByName handles Connect to "mdns:NAME": resolve the name, then
// dial the addresses found in turn, each as a Connect that checks the
// node's name and, in secure mode, that its key is the advertised one.
func (f *facade) connectByName(ctx actor.Context, m *Connect, name string) {
	if f.closing {
		ctx.Respond(&ConnectResult{Err: peer.ErrClosed})
		return
	}
	if err := discovery.ValidName(name); err != nil {
		ctx.Respond(&ConnectResult{Err: fmt.Errorf("slc: connect to %s: %w", m.Addr, err)})
		return
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = f.core.cfg.Timeout
	}
	hub, attempt, log := f.disc.hub, f.core.cfg.Timeout, f.log
	self, sys := ctx.Self(), f.sys
	f.track(ctx, true, timeout, func(c context.Context) any {
		id, err := dialByName(c, sys, self, hub, name, attempt, log)
		if err != nil && hub.isClosed() {
			err = peer.ErrClosed
		}
		if err != nil {
			err = fmt.Errorf("slc: connect to mdns:%s: %w", name, err)
		}
		return &ConnectResult{Peer: id, Err: err}
	})
}

func dialByName(ctx context.Context, sys *actor.ActorSystem, facade *actor.PID, hub *browseHub, name string, attempt time.Duration, log *slog.Logger) (peer.ID, error) {
	b, err := hub.acquire()
	if err != nil {
		return "", err
	}
	start := time.Now()
	svcs, err := b.Resolve(ctx, name)
	hub.release()
	if err != nil {
		log.Debug("slc: mdns: name not resolved", "name", name, "after", time.Since(start), "err", err)
		return "", err
	}
	log.Debug("slc: mdns: name resolved", "name", name, "after", time.Since(start), "services", svcs)
	var errs []error
	for i, s := range svcs {
		for j, addr := range s.Addrs {
			last := i == len(svcs)-1 && j == len(s.Addrs)-1
			d, ok := ctx.Deadline()
			if !ok {
				d = time.Now().Add(attempt)
			}
			per := time.Until(d)
			if !last {
				per = min(per, attempt)
			}
			if per <= 0 {
				break
			}
			id, err := connectOnce(ctx, sys, facade, &connectVerified{Addr: addr, Timeout: per, Node: s.PeerID, Fingerprint: s.Fingerprint})
			if err == nil {
				return id, nil
			}
			log.Debug("slc: mdns: connect to a resolved address failed", "name", name, "addr", addr, "err", err)
			errs = append(errs, err)
			if ctx.Err() != nil || isKeyMismatch(err) {
				return "", errors.Join(errs...)
			}
		}
	}
	if len(errs) == 0 {
		return "", ctx.Err()
	}
	return "", errors.Join(errs...)
}

// isKeyMismatch reports a rejection for the key: the node's key is not
// the advertised one (or the node refused this one's key). Another
// address of the same node would not change that.
func isKeyMismatch(err error) bool {
	var pe *wire.ProtocolError
	return errors.As(err, &pe) && pe.Code == wire.CodeUnauthorized
}

// connectOnce sends a connectVerified to the facade and waits for its
// answer, abandoning it when ctx ends.
func connectOnce(ctx context.Context, sys *actor.ActorSystem, facade *actor.PID, m *connectVerified) (peer.ID, error) {
	r := NewReply(sys)
	defer r.Close()
	r.Request(facade, m)
	res, err := r.Wait(ctx)
	if err != nil {
		sys.Root.Send(facade, &CancelConnect{ReplyTo: r.PID()})
		wctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r.Wait(wctx)
		cancel()
		return "", err
	}
	cr := res.(*ConnectResult)
	return cr.Peer, cr.Err
}

// cancelByName cancels a connect by name whose reply goes to replyTo.
func (f *facade) cancelByName(replyTo *actor.PID) bool { return f.cancelRunning(replyTo, true) }

// cancelRunning cancels the connects by name (or the browses) whose
// replies go to replyTo.
func (f *facade) cancelRunning(replyTo *actor.PID, connect bool) bool {
	if replyTo == nil {
		return false
	}
	key, found := replyTo.String(), false
	for _, r := range f.disc.running {
		if r.connect == connect && r.replyTo == key {
			r.cancel()
			found = true
		}
	}
	return found
}

func (f *facade) connectVerified(ctx actor.Context, m *connectVerified) {
	want := expectation{node: m.Node, fingerprint: m.Fingerprint}
	if s := f.byAddr[m.Addr]; s != nil && s.live && s.cur != nil && s.s.State() != peer.StateEnded {
		if err := want.check(s.cur); err != nil {
			ctx.Respond(&ConnectResult{Err: fmt.Errorf("slc: connect to %s: %w", m.Addr, err)})
			return
		}
	}
	f.connect(ctx, &Connect{Addr: m.Addr, Timeout: m.Timeout})
	if s := f.byAddr[m.Addr]; s != nil && s.s.State() != peer.StateEnded {
		for ps := range f.disc.expect {
			if ps.State() == peer.StateEnded {
				delete(f.disc.expect, ps)
			}
		}
		f.disc.expect[s.s] = want
	}
}

// checkAdvertisedKey checks a connection dialed for Connect("mdns:NAME")
// against what the node advertised: a node of another name is a stale
// address, a key other than the advertised one a permanent rejection.
func (f *facade) checkAdvertisedKey(req *sess, hs *peer.Handshake) error {
	want, ok := f.disc.expect[req.s]
	if !ok {
		return nil
	}
	return want.check(hs)
}

func (e expectation) check(hs *peer.Handshake) error {
	if e.node != "" && hs.Remote != nil && peer.ID(hs.Remote.Name) != e.node {
		return &wire.ProtocolError{Code: wire.CodeNameMismatch,
			Reason: fmt.Sprintf("expected node %q at %s (as advertised over mDNS), found %q", e.node, hs.Addr, hs.Remote.Name)}
	}
	if e.fingerprint == "" {
		return nil
	}
	got := "none (plain mode)"
	if hs.Identity != nil {
		got = hs.Identity.Fingerprint()
	}
	if got != e.fingerprint {
		return &wire.ProtocolError{Code: wire.CodeUnauthorized,
			Reason: fmt.Sprintf("the node at %s proved key %s, not the key %s advertised over mDNS", hs.Addr, got, e.fingerprint)}
	}
	return nil
}

// stopDiscovery ends every browse and connect by name and answers the
// discovery commands still waiting; advertisers stop with the facade's
// other children.
func (f *facade) stopDiscovery(ctx actor.Context) {
	d := f.disc
	d.hub.close()
	for _, r := range d.running {
		r.cancel()
	}
	for _, a := range d.adByPID {
		for _, w := range a.waiters {
			ctx.Send(w, &AdvertiseResult{Name: a.name, Err: peer.ErrClosed})
		}
		a.waiters = nil
	}
	for _, w := range d.stops {
		if w.replyTo != nil {
			ctx.Send(w.replyTo, &StoppedAdvertising{})
		}
	}
	d.stops = nil
}
