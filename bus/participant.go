package bus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slc-go/slc"
	"github.com/slc-go/slc/actors"
)

// ErrClosed reports a participant, informer, listener or server that is
// closed.
var ErrClosed = errors.New("bus: closed")

// role is what a participant does on the bus right now.
type role int

const (
	roleJoining role = iota // looking for a server (at first, or in a changeover)
	roleClient              // connected to a server
	roleServer              // serving the bus
)

// Participant is a process's membership of a bus: it serves the bus or is
// connected to the participant that does, and carries the events of its
// informers and listeners. Create one with Join.
//
// All methods are safe for concurrent use.
type Participant struct {
	c        *slc.Communicator
	ownComm  bool
	cfg      config
	name     string
	instance uint64
	host     string
	pid      int
	now      func() time.Time
	log      *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	unhandle func()
	unsub    func()
	kick     chan struct{}

	out    *uplink
	locals atomic.Pointer[[]*Listener] // listeners, for the data path

	dedupMu sync.Mutex
	dedup   map[originKey]*atomic.Uint64 // the last sequence delivered from each remote publisher

	stats struct {
		published, received, duplicates, dropped atomic.Uint64
	}

	mu          sync.Mutex
	closed      bool
	canServe    bool
	role        role
	joined      bool   // a server acknowledged this participant (or it serves)
	server      string // the server, "" while joining
	lostServer  string // the server whose loss started the changeover
	busAddr     string // the bus address, as bound when serving
	rank        uint64
	version     uint64 // scope version
	listeners   []*Listener
	informers   map[*Informer]struct{}
	servers     map[*LocalServer]struct{}
	view        Membership
	viewCh      chan struct{} // closed at the next change of view, role or joined
	needJoin    bool
	first       bool
	joinErr     error
	srv         *server
	changeovers int
}

// Join joins the bus: in Auto mode it serves the bus if nobody does yet
// and connects to the server otherwise. It returns once the participant
// serves or a server has accepted it, or fails when ctx ends first.
func Join(ctx context.Context, opts ...Option) (*Participant, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	host, port, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("bus: address %q: %w", cfg.addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, fmt.Errorf("bus: address %q: invalid port", cfg.addr)
	} else if n == 0 && cfg.mode != ServerMode {
		return nil, fmt.Errorf("bus: address %q: port 0 is only for ServerMode", cfg.addr)
	}
	if cfg.conv == nil {
		cfg.conv = DefaultConverters()
	}
	c, own := cfg.comm, false
	if c == nil {
		c, err = slc.New(append([]slc.Option{slc.WithLinger(DefaultLinger)}, cfg.nodeOpts...)...)
		if err != nil {
			return nil, err
		}
		own = true
	}
	hostname, _ := os.Hostname()
	p := &Participant{
		c: c, ownComm: own, cfg: cfg,
		name: string(c.Name()), instance: randomInstance(), host: hostname, pid: os.Getpid(),
		now:       cfg.clock,
		log:       c.ActorSystem().Logger().With("bus", cfg.addr),
		kick:      make(chan struct{}, 1),
		dedup:     map[originKey]*atomic.Uint64{},
		informers: map[*Informer]struct{}{},
		servers:   map[*LocalServer]struct{}{},
		viewCh:    make(chan struct{}),
		canServe:  cfg.mode != ClientMode && isLocalHost(host),
		busAddr:   cfg.addr,
		needJoin:  true,
		first:     true,
	}
	if p.now == nil {
		p.now = processClock()
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.locals.Store(&[]*Listener{})
	p.out = newUplink(p)
	p.unhandle = c.Handle(p.handle, typeEvents, typeControl)
	es := c.ActorSystem().EventStream
	sub := es.Subscribe(p.onSlcEvent)
	p.unsub = func() { es.Unsubscribe(sub) }
	p.wg.Add(2)
	go p.loop()
	go p.out.run()
	p.kickLoop()

	if err := p.waitJoined(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// waitJoined waits until the participant serves or a server accepted it.
func (p *Participant) waitJoined(ctx context.Context) error {
	for {
		p.mu.Lock()
		joined, err, ch := p.joined, p.joinErr, p.viewCh
		p.mu.Unlock()
		switch {
		case err != nil:
			return err
		case joined:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("bus: join %s: %w", p.cfg.addr, ctx.Err())
		case <-p.ctx.Done():
			return ErrClosed
		}
	}
}

// Name returns the participant's name: its slc node name.
func (p *Participant) Name() string { return p.name }

// Instance returns the participant's instance: the EventID.Instance of
// its events.
func (p *Participant) Instance() uint64 { return p.instance }

// Addr returns the bus address (as bound, when this participant serves
// on port 0).
func (p *Participant) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busAddr
}

// Communicator returns the communicator the participant runs on.
func (p *Participant) Communicator() *slc.Communicator { return p.c }

// IsServer reports whether this participant serves the bus.
func (p *Participant) IsServer() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.role == roleServer
}

// Server returns the name of the serving participant, "" during a
// changeover.
func (p *Participant) Server() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.server
}

// Stats are a participant's counters.
type Stats struct {
	Published   uint64 // events published by this participant's informers
	Received    uint64 // events received from other participants (duplicates excluded)
	Duplicates  uint64 // events received again and dropped (after a changeover)
	Dropped     uint64 // unreliable events dropped over a queue limit
	Changeovers int    // times this participant looked for a new server
}

// Stats returns the participant's counters.
func (p *Participant) Stats() Stats {
	p.mu.Lock()
	ch := p.changeovers
	p.mu.Unlock()
	return Stats{
		Published:   p.stats.published.Load(),
		Received:    p.stats.received.Load(),
		Duplicates:  p.stats.duplicates.Load(),
		Dropped:     p.stats.dropped.Load(),
		Changeovers: ch,
	}
}

// Flush waits until every reliable event published so far has been
// acknowledged by the server: delivered to every participant with a
// matching listener (or to every one that stayed on the bus).
func (p *Participant) Flush(ctx context.Context) error { return p.out.flush(ctx) }

// Close leaves the bus: it stops every informer, listener and server of
// the participant and waits for their goroutines. A serving participant
// hands the bus over: the others elect a new server. Close closes the
// communicator if the participant created it. Events not yet
// acknowledged are dropped; call Flush first to wait for them.
func (p *Participant) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	srv, server, busAddr := p.srv, p.server, p.busAddr
	var present []string
	if srv != nil {
		for name, d := range srv.dests {
			if d.present {
				present = append(present, name)
			}
		}
	}
	listeners := slices.Clone(p.listeners)
	p.notifyLocked()
	p.mu.Unlock()

	// With a communicator of its own, Close's goodbye tells the others;
	// on a shared one, a leave message does.
	if !p.ownComm {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		leave := &controlMsg{Scope: ctlLeave}
		switch {
		case srv != nil:
			for _, name := range present {
				p.c.Send(ctx, leave, slc.PeerID(name))
			}
		case server != "":
			p.c.Send(ctx, leave, slc.PeerID(server))
		}
		cancel()
	}
	p.cancel()
	p.unhandle()
	p.unsub()
	if srv != nil {
		srv.stop()
	}
	for _, l := range listeners {
		l.stop()
	}
	p.wg.Wait()
	var err error
	if p.ownComm {
		err = p.c.Close()
	} else if srv != nil {
		if a, rerr := net.ResolveTCPAddr("tcp", busAddr); rerr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p.c.Unlisten(ctx, a)
			cancel()
		}
	}
	return err
}

// notifyLocked wakes everyone waiting for a change of view or role.
func (p *Participant) notifyLocked() {
	close(p.viewCh)
	p.viewCh = make(chan struct{})
}

func (p *Participant) kickLoop() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// loop joins the bus, at first and after each loss of the server.
func (p *Participant) loop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		}
		for {
			p.mu.Lock()
			if p.closed || !p.needJoin {
				p.mu.Unlock()
				break
			}
			p.needJoin = false
			first, lost, view := p.first, p.lostServer, p.view
			p.first = false
			p.mu.Unlock()
			if err := p.rejoin(first, lost, view); err != nil {
				p.mu.Lock()
				p.joinErr = err
				p.notifyLocked()
				p.mu.Unlock()
				return
			}
		}
	}
}

// rejoin finds the server: it binds the bus address if this participant
// should serve, and connects to it otherwise (see the package
// documentation, Changeover). It fails only in ServerMode, when the
// address cannot be bound at first.
func (p *Participant) rejoin(first bool, lost string, view Membership) error {
	if lost != "" {
		// End the session with the lost server, so that connecting to the
		// bus address makes a new session with whoever serves it now.
		ctx, cancel := context.WithCancel(p.ctx)
		cancel()
		p.c.Disconnect(ctx, slc.PeerID(lost))
	}
	p.mu.Lock()
	canServe := p.canServe
	p.mu.Unlock()
	pos := successorPosition(view, lost, p.name)
	if pos < 0 {
		pos = len(view.Members)
	}
	p.log.Debug("bus: looking for the server", "lost", lost, "first", first, "place", pos)
	start := time.Now()
	for attempt := 0; ; attempt++ {
		if p.ctx.Err() != nil {
			return nil
		}
		serve := p.cfg.mode == ServerMode ||
			canServe && (first || time.Since(start) >= time.Duration(pos)*p.cfg.failoverGrace)
		if serve {
			addr, err := p.c.Listen(p.ctx, p.cfg.addr)
			if err == nil {
				p.log.Info("bus: serving", "addr", addr.String(), "epoch", view.Epoch+1)
				p.becomeServer(addr.String(), view, lost)
				return nil
			}
			p.log.Debug("bus: cannot serve", "err", err)
			switch {
			case p.ctx.Err() != nil:
				return nil
			case p.cfg.mode == ServerMode && first:
				return fmt.Errorf("bus: serve on %s: %w", p.cfg.addr, err)
			case !errors.Is(err, syscall.EADDRINUSE) && p.cfg.mode != ServerMode:
				// This host cannot bind the address: only connect.
				canServe = false
				p.mu.Lock()
				p.canServe = false
				p.mu.Unlock()
			}
		}
		if p.cfg.mode != ServerMode {
			// A short attempt: slc backs off between its own retries, and
			// a new attempt starts again from the shortest delay.
			ctx, cancel := context.WithTimeout(p.ctx, connectAttempt)
			peer, err := p.c.Connect(ctx, p.cfg.addr)
			cancel()
			if err == nil {
				p.log.Info("bus: joining the server", "server", string(peer))
				p.becomeClient(string(peer))
				return nil
			}
			p.log.Debug("bus: no server yet", "attempt", attempt, "err", err)
		}
		select {
		case <-p.ctx.Done():
			return nil
		case <-time.After(min(5*time.Millisecond<<min(attempt, 4), 50*time.Millisecond)):
		}
	}
}

// connectAttempt bounds one attempt to connect to the bus address.
const connectAttempt = 300 * time.Millisecond

// successorPosition returns self's place among the participants that may
// serve after lost: those of view that can serve and were not away, in
// rank order (then by name). -1 if self is not among them.
func successorPosition(view Membership, lost, self string) int {
	var cands []ParticipantInfo
	for _, m := range view.Members {
		if m.CanServe && !m.Away && m.Name != lost {
			cands = append(cands, m)
		}
	}
	slices.SortFunc(cands, func(a, b ParticipantInfo) int {
		switch {
		case a.Rank != b.Rank:
			if a.Rank < b.Rank {
				return -1
			}
			return 1
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	for i, m := range cands {
		if m.Name == self {
			return i
		}
	}
	return -1
}

// becomeClient starts using peer as the server.
func (p *Participant) becomeClient(peer string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.role = roleClient
	p.server = peer
	p.lostServer = ""
	p.out.setTarget(peer, &controlMsg{Scope: ctlJoin, Member: p.selfMemberLocked()})
	p.notifyLocked()
}

// becomeServer starts serving the bus at addr. view is the membership of
// the lost server, whose members this server expects back.
func (p *Participant) becomeServer(addr string, view Membership, lost string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if p.rank == 0 {
		p.rank = 1
	}
	s := newServer(p, view.Epoch+1)
	s.nextRank = p.rank + 1
	for _, m := range view.Members {
		s.nextRank = max(s.nextRank, m.Rank+1)
		if m.Name == p.name || m.Name == lost || m.Server {
			continue
		}
		s.expect(m)
	}
	p.srv = s
	p.role = roleServer
	p.server = p.name
	p.lostServer = ""
	p.joined = true
	p.busAddr = addr
	s.changedLocked()
	p.out.setTarget(p.name, nil)
	if len(s.dests) > 0 {
		s.rejoinTimer = time.AfterFunc(p.cfg.rejoinTimeout, s.expireExpected)
	}
}

// handle takes the bus's slc messages (see Communicator.Handle). It runs
// on the connection's goroutine and never blocks.
func (p *Participant) handle(m slc.Message) {
	switch b := m.Body.(type) {
	case eventsMsg:
		events, err := eventsOf(&m, &b)
		if err != nil {
			p.log.Warn("bus: dropping a malformed events message", "from", string(m.From), "err", err)
			return
		}
		b.Events = events
		p.onEvents(string(m.From), &b)
	case controlMsg:
		p.onControl(string(m.From), &b)
	}
}

func (p *Participant) onControl(from string, m *controlMsg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	switch m.Scope {
	case ctlJoin, ctlScopes:
		if p.srv != nil && m.Member != nil && m.Member.Name == from {
			p.srv.join(from, m.Member, m.Scope == ctlJoin)
		}
	case ctlLeave:
		switch {
		case p.srv != nil:
			p.srv.remove(from)
		case from == p.server:
			p.serverLostLocked(from)
		}
	case ctlMembers:
		if p.role != roleClient || from != p.server {
			p.log.Debug("bus: membership from a server not mine ignored", "from", from, "server", p.server, "role", int(p.role))
			return
		}
		p.log.Debug("bus: membership", "server", from, "epoch", m.Epoch, "members", len(m.Members))
		p.view = membershipFromWire(m)
		for _, mw := range m.Members {
			if mw.Name == p.name && mw.Instance == p.instance {
				p.joined = true
				p.rank = mw.Rank
			}
		}
		p.notifyLocked()
	}
}

// onSlcEvent follows the communicator's events. It runs on the
// publishing goroutine and never blocks.
func (p *Participant) onSlcEvent(ev any) {
	switch e := ev.(type) {
	case *actors.MessagesAcknowledged:
		if s := p.serving(); s != nil {
			s.acknowledged(string(e.Peer), e.UpTo)
		}
	case *actors.PeerConnected:
		if s := p.serving(); s != nil {
			s.back(string(e.Peer))
		}
	case *actors.PeerDisconnected:
		p.peerDown(string(e.Peer), e.Final || !e.Reconnecting)
	case *actors.PeerLost:
		p.peerDown(string(e.Peer), true)
	}
}

// serving returns the server state while this participant serves.
func (p *Participant) serving() *server {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	return p.srv
}

func (p *Participant) peerDown(peer string, final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	switch {
	case p.srv != nil && final:
		p.srv.remove(peer)
	case p.srv != nil:
		p.srv.away(peer)
	case peer == p.server:
		p.serverLostLocked(peer)
	}
}

// serverLostLocked starts a changeover.
func (p *Participant) serverLostLocked(server string) {
	p.log.Info("bus: server lost", "server", server)
	p.role = roleJoining
	p.server = ""
	p.lostServer = server
	p.joined = false
	p.needJoin = true
	p.changeovers++
	p.out.setTarget("", nil)
	p.notifyLocked()
	p.kickLoop()
}

// selfMemberLocked describes this participant.
func (p *Participant) selfMemberLocked() *memberWire {
	m := &memberWire{
		Name: p.name, Instance: p.instance, Rank: p.rank, Host: p.host, PID: p.pid,
		CanServe: p.canServe, Version: p.version,
	}
	for _, l := range p.listeners {
		m.Listeners = append(m.Listeners, l.scope.String())
	}
	for i := range p.informers {
		m.Informers = append(m.Informers, i.scope.String())
	}
	for s := range p.servers {
		m.Servers = append(m.Servers, s.scope.String())
	}
	slices.Sort(m.Listeners)
	m.Listeners = slices.Compact(m.Listeners)
	slices.Sort(m.Informers)
	m.Informers = slices.Compact(m.Informers)
	slices.Sort(m.Servers)
	return m
}

// scopesChangedLocked tells the server about a change of this
// participant's listeners, informers or servers, and returns the version
// to wait for.
func (p *Participant) scopesChangedLocked() uint64 {
	p.version++
	switch {
	case p.srv != nil:
		p.srv.changedLocked()
	case p.role == roleClient:
		p.out.addControl(&controlMsg{Scope: ctlScopes, Member: p.selfMemberLocked()})
	}
	return p.version
}

// waitRouted waits until the server routes by scope version v.
func (p *Participant) waitRouted(ctx context.Context, v uint64) error {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		done := p.role == roleServer
		if !done && p.role == roleClient {
			for _, m := range p.view.Members {
				if m.Name == p.name && m.Instance == p.instance && m.version >= v {
					done = true
				}
			}
		}
		ch := p.viewCh
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// dedupEntry returns the last sequence delivered from k.
func (p *Participant) dedupEntry(k originKey) *atomic.Uint64 {
	p.dedupMu.Lock()
	defer p.dedupMu.Unlock()
	last := p.dedup[k]
	if last == nil {
		last = new(atomic.Uint64)
		p.dedup[k] = last
	}
	return last
}

// acceptSeq reports whether seq is new after *last, and records it. A
// publisher's events come through one connection at a time, so this
// rarely races; when it does, one side wins.
func acceptSeq(last *atomic.Uint64, seq uint64) bool {
	for {
		l := last.Load()
		if seq <= l {
			return false
		}
		if last.CompareAndSwap(l, seq) {
			return true
		}
	}
}

// monoClock returns a clock that advances base with the monotonic clock:
// time.Since reads only the monotonic clock, time.Now reads two clocks.
func monoClock(base time.Time) func() time.Time {
	return func() time.Time { return base.Add(time.Since(base)) }
}

// processClock returns the default clock, one for the whole process: the
// wall clock read at the first Join, advanced with the monotonic clock.
// Every participant of the process stamps its events on that one
// timeline, so their times never decrease from one participant to
// another either. It is no process setting: only the bus reads it.
var processClock = sync.OnceValue(func() func() time.Time { return monoClock(time.Now()) })

func randomInstance() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// isLocalHost reports whether this host can bind host: a loopback,
// unspecified or local interface address, or a name resolving to one.
func isLocalHost(host string) bool {
	if host == "" || host == "localhost" {
		return true
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		var err error
		if ips, err = net.LookupIP(host); err != nil {
			return false
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ip := range ips {
		if ip.IsLoopback() || ip.IsUnspecified() {
			return true
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return true
			}
		}
	}
	return false
}
