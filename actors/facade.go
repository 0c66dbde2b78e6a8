package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/slc-go/slc/internal/wire"
	"github.com/slc-go/slc/listener"
	"github.com/slc-go/slc/mailbox"
	"github.com/slc-go/slc/peer"
	"github.com/slc-go/slc/store"
	"github.com/slc-go/slc/supervisor"
)

// Config configures the facade and everything under it.
type Config struct {
	// Peer holds the node's name, codecs, buffers, timeouts, transport and
	// security. Zero fields take their defaults.
	Peer peer.Config
	// Inbox sizes the mailbox.
	Inbox mailbox.Config
	// Supervisor supervises the peer and listener actors: it decides how
	// connections are retried. Default: supervisor.DefaultBackoff() with
	// Retries.
	Supervisor actor.SupervisorStrategy
	// Retries is the reconnect budget of the default supervisor, in
	// supervisor.Backoff's terms: 0 is its default, supervisor.Forever
	// retries without limit, supervisor.NoRetries never reconnects.
	Retries int
	// MaxHandshakes bounds the handshakes a listener runs at once.
	MaxHandshakes int
	// MaxPeers bounds the sessions; a node that connects past it is
	// refused as busy (0: no limit).
	MaxPeers int
	// Discovery configures mDNS advertising and browsing.
	Discovery DiscoveryConfig
	// Store, if not nil, makes delivery durable (see package store): the
	// facade restores the sessions and mailbox a previous run left in it.
	// Its name and instance must be Peer's. The caller closes it after
	// Core.Stop.
	Store *store.Store
}

// Start spawns a facade actor on sys and returns its data path and PID.
// Stop it with Core.Stop, which ends every goroutine it started.
func Start(sys *actor.ActorSystem, cfg Config) (*Core, *actor.PID, error) {
	st := cfg.Store
	if st != nil {
		cfg.Inbox.Taken = st.Taken
	}
	inbox := mailbox.New(cfg.Inbox)
	pc := cfg.Peer.WithDefaults()
	pc.Inbox = inbox
	if st != nil {
		if pc.Name != st.Name() || pc.Instance != st.Instance() {
			return nil, nil, fmt.Errorf("slc: the store in %s belongs to node %q instance %016x, not %q instance %016x",
				st.Dir(), st.Name(), st.Instance(), pc.Name, pc.Instance)
		}
		// What the previous run had in the mailbox comes first.
		for _, r := range st.RestoredInbox() {
			if err := inbox.PushAll(r.From, r.Msgs); err != nil {
				return nil, nil, err
			}
		}
		pc.Inbox = st.Sink(inbox)
		pc.Store = st
		if cfg.Peer.ReadBuffer == 0 {
			// Each batch read is a commit: read in larger batches.
			pc.ReadBuffer = peer.DefaultReadBufferStored
		}
	}
	if err := pc.Validate(); err != nil {
		return nil, nil, err
	}
	strategy := cfg.Supervisor
	if strategy == nil {
		b := supervisor.DefaultBackoff()
		b.Retries = cfg.Retries
		strategy = b
	}
	core := newCore(&pc, inbox)
	pc.IDs = &core.nextID
	if st != nil {
		core.nextID.Store(st.FirstID())
	}
	f := &facade{
		core:     core,
		sys:      sys,
		strategy: strategy,
		maxHS:    cfg.MaxHandshakes,
		maxPeers: cfg.MaxPeers,
		log:      pc.Logger,
		sessions: map[peer.ID]*sess{},
		ended:    map[peer.ID]*peer.Session{},
		bySess:   map[*peer.Session]*sess{},
		byPID:    map[string]*sess{},
		byAddr:   map[string]*sess{},
		lns:      map[string]*actor.PID{},
		lnByPID:  map[string]string{},
		subs:     map[string]func(){},
		disc:     newDiscoveryState(cfg.Discovery, sys, pc.Logger),
		store:    st,
	}
	pc.Hooks.Acked = func(p peer.ID, upTo peer.MsgID) {
		sys.EventStream.Publish(&MessagesAcknowledged{Peer: p, UpTo: upTo})
	}
	props := actor.PropsFromProducer(func() actor.Actor { return f }, actor.WithSupervisor(strategy))
	pid := sys.Root.SpawnPrefix(props, "slc-"+sanitize(pc.Name)+"-")
	// Wait until the facade has run Started (it subscribes to the event
	// stream there), so nothing the caller does next races with it.
	if _, err := sys.Root.RequestFuture(pid, &GetPeers{}, 10*time.Second).Result(); err != nil {
		sys.Root.Stop(pid)
		return nil, nil, fmt.Errorf("slc: start: %w", err)
	}
	core.stop = func() error {
		core.closed.Store(true)
		err := sys.Root.StopFuture(pid).Wait()
		f.wait()
		inbox.Close()
		return err
	}
	return core, pid, nil
}

// Stop stops the facade and everything under it, and waits for every
// goroutine they started. Safe to call more than once.
func (c *Core) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '$' || r < ' ' {
			return '_'
		}
		return r
	}, s)
}

// sess is the facade's view of one session.
type sess struct {
	s          *peer.Session
	pid        *actor.PID
	live       bool            // cur completed its RESUME exchange
	cur        *peer.Handshake // the connection serving the session, or about to
	dialedByUs bool            // this side dialed cur
	instance   uint64          // the remote instance behind cur
	addr       string
	waiters    []*waiter
	redirected bool // its connection went to another session; end silently
	reported   bool // its end was reported already (Disconnect)
	// key is the fingerprint of the key the remote proved on the first
	// connection bound to the session (secure mode; "" until then, and in
	// plain mode). Every later connection bound to the session, in either
	// direction, must prove the same key: the name stays bound to it for
	// as long as the session lives (reconnecting and linger included).
	key string
}

// addrOr returns the address to report for the session.
func (s *sess) addrOr() string {
	if d := s.s.DialAddr(); d != "" {
		return d
	}
	return s.addr
}

// waiter is a Connect waiting for its session to come up.
type waiter struct {
	replyTo *actor.PID
	timer   *time.Timer
}

type connectExpired struct {
	s       *peer.Session
	replyTo *actor.PID
}

// supervision carries a supervisor's announcement to the facade.
type supervision struct{ ev any }

// Internal messages may reach the facade after it stopped; they are not
// logged as dead letters.
func (*connectExpired) IgnoreDeadLetterLogging() {}
func (*supervision) IgnoreDeadLetterLogging()    {}
func (*disconnectNow) IgnoreDeadLetterLogging()  {}
func (*CancelConnect) IgnoreDeadLetterLogging()  {}

// CancelConnect abandons the Connect whose reply goes to ReplyTo (the
// blocking API sends it when its context ends first).
type CancelConnect struct{ ReplyTo *actor.PID }

// facade is the actor that owns the tree: listeners and peer actors are
// its children, supervised by the configured strategy. All its fields
// belong to its mailbox goroutine.
type facade struct {
	core     *Core
	sys      *actor.ActorSystem
	strategy actor.SupervisorStrategy
	maxHS    int
	maxPeers int
	log      *slog.Logger
	self     *actor.PID
	sub      *eventstream.Subscription
	worker   *worker

	sessions map[peer.ID]*sess // named, not ended
	ended    map[peer.ID]*peer.Session
	bySess   map[*peer.Session]*sess
	byPID    map[string]*sess
	byAddr   map[string]*sess // by dial address
	lns      map[string]*actor.PID
	lnByPID  map[string]string
	subs     map[string]func()
	closing  bool
	nchild   int
	disc     *discoveryState // actors/discovery.go
	store    *store.Store
}

func (f *facade) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		f.self = ctx.Self()
		f.worker = newWorker(&f.core.wg)
		f.watchSupervision()
		f.restore(ctx)
	case *actor.Stopping:
		f.closing = true
		for _, cancel := range f.subs {
			cancel()
		}
		f.subs = map[string]func(){}
		for _, s := range f.bySess {
			s.s.End(peer.ErrClosed)
			for _, w := range s.waiters {
				f.reply(ctx, w, "", peer.ErrClosed)
			}
			s.waiters = nil
		}
		if f.sub != nil {
			f.sys.EventStream.Unsubscribe(f.sub)
		}
		if b, ok := f.strategy.(*supervisor.Backoff); ok {
			b.Cancel(ctx.Children()...)
		}
		f.stopDiscovery(ctx)
		f.worker.stop()

	case *Listen:
		ctx.Respond(f.listen(ctx, m.Addr))
	case *Unlisten:
		ctx.Respond(f.unlisten(ctx, m.Addr))
	case *Connect:
		f.connect(ctx, m)
	case *CancelConnect:
		f.cancelConnect(ctx, m.ReplyTo, context.Canceled)
	case *connectExpired:
		if s := f.bySess[m.s]; s != nil {
			f.expire(ctx, s, m.replyTo)
		}

	case *peer.BindRequest:
		ctx.Respond(f.bindOutbound(ctx, m))
	case *listener.Inbound:
		m.Reply <- f.bindInbound(ctx, m.Handshake)
	case *peer.Up:
		f.up(ctx, m)
	case *peer.HandshakeFailed:
		ev := &HandshakeRejected{Addr: m.Addr, Peer: m.Session.ID(), Err: m.Err}
		if pe, ok := wire.AsProtocolError(m.Err); ok {
			ev.ByRemote = pe.Remote
		}
		f.publish(ev)
	case *peer.Down:
		if s := f.bySess[m.Session]; s != nil && s.cur == m.Conn {
			wasLive := s.live
			s.cur, s.live = nil, false
			if wasLive {
				f.publish(&PeerDisconnected{Peer: m.Session.ID(), Err: m.Err, Reconnecting: true})
			}
		}
	case *actor.Terminated:
		f.terminated(ctx, m.Who)

	case *supervision:
		f.supervised(m.ev)

	case *Disconnect:
		f.disconnectCmd(ctx, m)
	case *disconnectNow:
		f.disconnect(ctx, m.peers)
		m.reply <- nil
	case *Send, *WaitAcknowledged, *Forward:
		f.dataCmd(ctx, m)
	case *IsAcknowledged:
		ctx.Respond(&AckStatus{ID: m.ID, Acknowledged: f.core.IsAcknowledged(m.ID, m.Peers...)})
	case *Subscribe:
		f.subscribe(ctx, m)
		ctx.Respond(&Subscribed{})
	case *Unsubscribe:
		f.unsubscribe(ctx, m.Subscriber)
		ctx.Respond(&Unsubscribed{})
	case *GetPeers:
		ctx.Respond(&Peers{Peers: f.peerInfos()})
	case discoveryMsg:
		f.discovery(ctx, m)
	}
}

// supervised turns a supervisor's announcement about a child into events.
func (f *facade) supervised(ev any) {
	switch m := ev.(type) {
	case *supervisor.RestartScheduled:
		err, _ := m.Reason.(error)
		if s := f.byPID[m.Child.Id]; s != nil {
			f.publish(&PeerReconnecting{Peer: s.s.ID(), Addr: s.s.DialAddr(), Attempt: m.Attempt, Delay: m.Delay, Err: err})
		} else if addr, ok := f.lnByPID[m.Child.Id]; ok {
			f.publish(&ListenerFailed{Addr: addr, Err: err})
		}
	case *actor.SupervisorEvent:
		// Only for strategies that do not announce their own schedule.
		if s := f.byPID[m.Child.Id]; s != nil && m.Directive == actor.RestartDirective {
			err, _ := m.Reason.(error)
			f.publish(&PeerReconnecting{Peer: s.s.ID(), Addr: s.s.DialAddr(), Err: err})
		}
	}
}

// wait waits for every goroutine the facade's subtree started.
func (f *facade) wait() {
	for _, s := range f.bySess {
		s.s.Wait()
	}
	f.core.wg.Wait()
}

func (f *facade) publish(ev any) {
	if !f.closing {
		f.sys.EventStream.Publish(ev)
	}
}

// watchSupervision forwards the supervisor's announcements about this
// facade's children to its mailbox.
func (f *facade) watchSupervision() {
	prefix := f.self.Id + "/"
	self, root := f.self, f.sys.Root
	_, announces := f.strategy.(*supervisor.Backoff)
	f.sub = f.sys.EventStream.SubscribeWithPredicate(func(ev any) {
		root.Send(self, &supervision{ev: ev})
	}, func(ev any) bool {
		switch e := ev.(type) {
		case *supervisor.RestartScheduled:
			return e.Child != nil && strings.HasPrefix(e.Child.Id, prefix)
		case *actor.SupervisorEvent:
			return !announces && e.Child != nil && strings.HasPrefix(e.Child.Id, prefix)
		}
		return false
	})
}

// stopChild stops a child that is still alive, first cancelling any
// restart its supervisor has pending, so that no Restart follows the Stop.
func (f *facade) stopChild(ctx actor.Context, pid *actor.PID) {
	if b, ok := f.strategy.(*supervisor.Backoff); ok {
		b.Cancel(pid)
	}
	if _, alive := f.byPID[pid.Id]; alive || f.lnByPID[pid.Id] != "" {
		ctx.Stop(pid)
	}
}

func (f *facade) spawn(ctx actor.Context, props *actor.Props, kind string) *actor.PID {
	f.nchild++
	pid, err := ctx.SpawnNamed(props, fmt.Sprintf("%s-%d", kind, f.nchild))
	if err != nil {
		// Names are unique within this facade: a clash is a bug.
		panic(err)
	}
	return pid
}

// --- listeners ---

func (f *facade) listen(ctx actor.Context, addr string) *ListenResult {
	if f.closing {
		return &ListenResult{Err: peer.ErrClosed}
	}
	cfg := f.core.cfg
	ln, err := cfg.Transport.Listen(context.Background(), addr)
	if err != nil {
		return &ListenResult{Err: fmt.Errorf("slc: listen on %s: %w", addr, err)}
	}
	bound := peer.FormatAddr(ln.Addr())
	lcfg := listener.Config{Peer: cfg, MaxHandshakes: f.maxHS, Rejected: f.rejected}
	pid := f.spawn(ctx, listener.Props(ln, lcfg), "listener")
	f.lns[bound] = pid
	f.lnByPID[pid.Id] = bound
	return &ListenResult{Addr: ln.Addr()}
}

func (f *facade) unlisten(ctx actor.Context, addr string) *Unlistened {
	pid, ok := f.lns[addr]
	if !ok {
		return &Unlistened{Err: fmt.Errorf("slc: not listening on %s", addr)}
	}
	f.stopChild(ctx, pid)
	delete(f.lns, addr)
	delete(f.lnByPID, pid.Id)
	return &Unlistened{}
}

// rejected publishes a failed inbound connection. It runs on listener
// goroutines.
func (f *facade) rejected(addr, name string, err error) {
	ev := &HandshakeRejected{Addr: addr, Peer: peer.ID(name), Err: err}
	if pe, ok := wire.AsProtocolError(err); ok {
		ev.ByRemote = pe.Remote
	}
	f.sys.EventStream.Publish(ev)
}

// --- connect ---

func (f *facade) connect(ctx actor.Context, m *Connect) {
	if name, ok := strings.CutPrefix(m.Addr, "mdns:"); ok {
		f.connectByName(ctx, m, name)
		return
	}
	replyTo := ctx.Sender()
	if f.closing {
		ctx.Respond(&ConnectResult{Err: peer.ErrClosed})
		return
	}
	if _, ok := f.core.cfg.Transport.(peer.NetTransport); ok {
		if _, _, err := peer.SplitAddr(m.Addr); err != nil {
			ctx.Respond(&ConnectResult{Err: err})
			return
		}
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = f.core.cfg.Timeout
	}
	s := f.byAddr[m.Addr]
	if s != nil && s.s.State() != peer.StateEnded {
		if s.live {
			ctx.Respond(&ConnectResult{Peer: s.s.ID()})
			return
		}
	} else {
		ps := peer.NewSession(f.core.cfg, m.Addr)
		s = &sess{s: ps}
		s.pid = f.spawn(ctx, peer.Props(ps), "peer")
		f.bySess[ps] = s
		f.byPID[s.pid.Id] = s
		f.byAddr[m.Addr] = s
	}
	if replyTo == nil {
		return
	}
	w := &waiter{replyTo: replyTo}
	self, root, key := ctx.Self(), f.sys.Root, s.s
	w.timer = time.AfterFunc(timeout, func() { root.Send(self, &connectExpired{s: key, replyTo: replyTo}) })
	s.waiters = append(s.waiters, w)
}

func (f *facade) reply(ctx actor.Context, w *waiter, id peer.ID, err error) {
	if w.timer != nil {
		w.timer.Stop()
	}
	ctx.Send(w.replyTo, &ConnectResult{Peer: id, Err: err})
}

func (f *facade) resolve(ctx actor.Context, s *sess, err error) {
	for _, w := range s.waiters {
		f.reply(ctx, w, s.s.ID(), err)
	}
	s.waiters = nil
}

func (f *facade) expire(ctx actor.Context, s *sess, replyTo *actor.PID) {
	f.cancelWaiter(ctx, s, replyTo, fmt.Errorf("connect to %s: %w", s.s.DialAddr(), context.DeadlineExceeded))
}

func (f *facade) cancelConnect(ctx actor.Context, replyTo *actor.PID, err error) {
	if f.cancelByName(replyTo) {
		return
	}
	for _, s := range f.bySess {
		for _, w := range s.waiters {
			if w.replyTo.Equal(replyTo) {
				f.cancelWaiter(ctx, s, replyTo, err)
				return
			}
		}
	}
}

// cancelWaiter answers one Connect with err. A session that never came up
// and has nobody else waiting is abandoned.
func (f *facade) cancelWaiter(ctx actor.Context, s *sess, replyTo *actor.PID, err error) {
	for i, w := range s.waiters {
		if w.replyTo.Equal(replyTo) {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			if last := s.s.LastErr(); last != nil && errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w (last attempt: %v)", err, last)
			}
			f.reply(ctx, w, "", err)
			break
		}
	}
	if len(s.waiters) == 0 && s.s.ID() == "" && s.s.State() == peer.StateConnecting {
		s.redirected = true // end without a PeerLost: nobody knew its name
		s.s.End(fmt.Errorf("%w: connect abandoned", peer.ErrDisconnected))
		f.stopChild(ctx, s.pid)
	}
}

// --- binding connections to sessions ---

// decide applies the rule both ends of a pair of nodes follow when a new
// connection arrives for a session that may already have one (serving, or
// still in its RESUME exchange), so that both ends keep the same one:
//
//   - a session without a connection takes the new one;
//   - a connection from another instance of the remote is refused while
//     the old instance's connection is still there, unless this side
//     dialed it (then the old connection must be dead);
//   - when the same side dialed both, the newer connection wins (the
//     dialer saw the old one die, or asked twice);
//   - when each side dialed one (a simultaneous connect), the connection
//     dialed by the node with the smaller name wins, and the other is
//     refused as a duplicate.
//
// Before any of these, in secure mode, a connection that proves another
// key than the one the session is pinned to is refused (see checkKey).
func (f *facade) decide(s *sess, hs *peer.Handshake) error {
	if err := s.checkKey(hs); err != nil {
		return err
	}
	if s.cur == nil {
		return nil
	}
	remote := hs.Remote.Name
	if s.instance != hs.Remote.Instance {
		if hs.Dialed {
			return nil
		}
		return &wire.ProtocolError{Code: wire.CodeNameInUse, Reason: fmt.Sprintf("a connection from another instance of %q exists", remote)}
	}
	if s.dialedByUs == hs.Dialed {
		return nil
	}
	usSmaller := f.core.cfg.Name < remote
	if s.dialedByUs == usSmaller {
		return &wire.ProtocolError{Code: wire.CodeDuplicate, Reason: "a connection between these nodes already exists"}
	}
	return nil
}

// fingerprint returns the fingerprint of the key hs proved, "" in plain
// mode.
func fingerprint(hs *peer.Handshake) string {
	if hs == nil || hs.Identity == nil {
		return ""
	}
	return hs.Identity.Fingerprint()
}

// checkKey refuses a connection for s whose remote proved another key than
// the one s is pinned to. Trust decisions (secure.Config.Authorize) bind a
// name to a key only in some modes; with a network secret alone any holder
// of the secret may use any name, so without this check it could take over
// a live session by claiming its peer's name. The refusal is permanent:
// retrying with the same key cannot help while the session lives.
func (s *sess) checkKey(hs *peer.Handshake) error {
	got := fingerprint(hs)
	if s.key == "" || got == s.key {
		return nil
	}
	if got == "" {
		got = "none (plain mode)"
	}
	return &wire.ProtocolError{Code: wire.CodeUnauthorized, Reason: fmt.Sprintf(
		"node %q proved key %s; this connection proves key %s (the name stays bound to the first key while its session lives)",
		s.s.ID(), s.key, got)}
}

func isDuplicate(err error) bool {
	pe, ok := wire.AsProtocolError(err)
	return ok && pe.Code == wire.CodeDuplicate
}

// adopt makes hs the session's current connection. The first one pins
// the session to the key its remote proved (see checkKey).
func (s *sess) adopt(hs *peer.Handshake) {
	s.cur, s.live, s.dialedByUs, s.instance = hs, false, hs.Dialed, hs.Remote.Instance
	if s.key == "" {
		s.key = fingerprint(hs)
	}
}

func (f *facade) bindOutbound(ctx actor.Context, m *peer.BindRequest) *peer.BindReply {
	req := f.bySess[m.Session]
	hs := m.Handshake
	if req == nil || f.closing {
		hs.Close()
		return &peer.BindReply{Err: peer.ErrClosed}
	}
	if err := f.checkAdvertisedKey(req, hs); err != nil {
		return &peer.BindReply{Err: err}
	}
	name := peer.ID(hs.Remote.Name)
	if id := req.s.ID(); id != "" {
		// A reconnect of a named session.
		if name != id {
			return &peer.BindReply{Err: &wire.ProtocolError{Code: wire.CodeNameMismatch,
				Reason: fmt.Sprintf("expected node %q at %s, found %q", id, req.s.DialAddr(), name)}}
		}
		if err := f.decide(req, hs); err != nil {
			if isDuplicate(err) {
				pe, _ := wire.AsProtocolError(err)
				hs.Reject(pe.Code, pe.Reason)
				return &peer.BindReply{Duplicate: true}
			}
			return &peer.BindReply{Err: err}
		}
		req.adopt(hs)
		return &peer.BindReply{}
	}
	s := f.sessions[name]
	if s == nil {
		m.Session.SetID(name)
		f.sessions[name] = req
		delete(f.ended, name)
		req.adopt(hs)
		f.table()
		if f.store != nil {
			f.store.SetAddr(name, req.s.DialAddr())
		}
		return &peer.BindReply{}
	}
	// The address leads to a node this side already has a session with:
	// the connection, and the Connect calls waiting on it, go to that
	// session.
	if err := f.decide(s, hs); err != nil {
		if isDuplicate(err) {
			pe, _ := wire.AsProtocolError(err)
			hs.Reject(pe.Code, pe.Reason)
			f.redirect(ctx, req, s)
			return &peer.BindReply{Redirected: true}
		}
		return &peer.BindReply{Err: err}
	}
	if s.s.DialAddr() == "" {
		s.s.SetDialAddr(m.Session.DialAddr())
		f.byAddr[m.Session.DialAddr()] = s
		if f.store != nil {
			f.store.SetAddr(name, m.Session.DialAddr())
		}
	}
	f.attach(ctx, s, hs)
	f.redirect(ctx, req, s)
	return &peer.BindReply{Redirected: true}
}

// redirect moves the Connect waiters of req to s, and retires req.
func (f *facade) redirect(ctx actor.Context, req, s *sess) {
	req.redirected = true
	req.s.End(fmt.Errorf("%w: connection handed to the session with %s", peer.ErrDisconnected, s.s.ID()))
	if f.byAddr[req.s.DialAddr()] == req {
		f.byAddr[req.s.DialAddr()] = s
	}
	if s.live {
		f.resolveWaiters(ctx, req.waiters, s.s.ID())
	} else {
		s.waiters = append(s.waiters, req.waiters...)
	}
	req.waiters = nil
}

func (f *facade) resolveWaiters(ctx actor.Context, ws []*waiter, id peer.ID) {
	for _, w := range ws {
		f.reply(ctx, w, id, nil)
	}
}

func (f *facade) bindInbound(ctx actor.Context, hs *peer.Handshake) error {
	if f.closing {
		return &wire.ProtocolError{Code: wire.CodeShutdown, Reason: "node is shutting down"}
	}
	name := peer.ID(hs.Remote.Name)
	if s := f.sessions[name]; s != nil {
		if err := f.decide(s, hs); err != nil {
			return err // the listener reports it
		}
		f.attach(ctx, s, hs)
		return nil
	}
	if f.maxPeers > 0 && f.livePeers() >= f.maxPeers {
		return &wire.ProtocolError{Code: wire.CodeBusy, Reason: fmt.Sprintf("the node has its maximum of %d peers", f.maxPeers)}
	}
	ps := peer.NewSession(f.core.cfg, "")
	ps.SetID(name)
	ps.Handoff(hs)
	s := &sess{s: ps}
	s.adopt(hs)
	// The session is in the table before its actor serves the connection:
	// a message that arrives on it may be answered at once.
	f.sessions[name] = s
	delete(f.ended, name)
	f.table()
	s.pid = f.spawn(ctx, peer.Props(ps), "peer")
	f.bySess[ps] = s
	f.byPID[s.pid.Id] = s
	return nil
}

// livePeers counts the sessions that hold a place under MaxPeers: every
// session with an actor, but those already ended. A session Disconnect
// ended frees its place at once, though its actor stops a moment later.
func (f *facade) livePeers() int {
	n := 0
	for ps := range f.bySess {
		if ps.State() != peer.StateEnded {
			n++
		}
	}
	return n
}

// attach hands hs to s's actor. An actor waiting out a reconnect backoff
// is restarted at once, so the connection is served without delay.
func (f *facade) attach(ctx actor.Context, s *sess, hs *peer.Handshake) {
	if !s.s.Handoff(hs) {
		return
	}
	s.adopt(hs)
	if r, ok := f.strategy.(interface{ RestartNow(*actor.PID) bool }); ok {
		r.RestartNow(s.pid)
	}
	ctx.Send(s.pid, &peer.Attach{})
}

// --- session lifecycle ---

func (f *facade) up(ctx actor.Context, m *peer.Up) {
	s := f.bySess[m.Session]
	if s == nil || s.cur != m.Conn {
		return // superseded already: the actor is replacing it
	}
	s.live, s.addr = true, m.Addr
	key := fingerprint(m.Conn)
	if s.key == "" {
		s.key = key // adopt pinned it already; this covers any other path
	}
	f.publish(&PeerConnected{Peer: m.Session.ID(), Addr: m.Addr, Inbound: !m.Dialed, Resumed: m.Resumed, Restarted: m.Restarted, Instance: m.Instance, Key: key, Abandoned: m.Abandoned})
	f.resolve(ctx, s, nil)
}

// terminated handles a child that stopped.
func (f *facade) terminated(ctx actor.Context, who *actor.PID) {
	if f.advertiserTerminated(ctx, who) {
		return
	}
	if addr, ok := f.lnByPID[who.Id]; ok {
		delete(f.lnByPID, who.Id)
		if f.lns[addr] != nil && f.lns[addr].Equal(who) {
			delete(f.lns, addr)
			f.publish(&ListenerFailed{Addr: addr, Err: errors.New("slc: listener stopped by its supervisor")})
		}
		return
	}
	if sub, ok := f.subs[who.String()]; ok {
		sub()
		delete(f.subs, who.String())
		return
	}
	s := f.byPID[who.Id]
	if s == nil {
		return
	}
	delete(f.byPID, who.Id)
	delete(f.bySess, s.s)
	if s.s.State() != peer.StateEnded {
		// Stopped by the supervisor: the retry budget is spent, or the
		// failure is permanent.
		last := s.s.LastErr()
		err := fmt.Errorf("%w: %w", peer.ErrPeerLost, last)
		if last == nil {
			err = peer.ErrPeerLost
		}
		s.s.End(err)
	}
	// The session is over; its actor or its supervisor ended it. It leaves
	// the table before the event is published, so whoever handles the
	// event sees the peer gone. Sessions this side ended on purpose
	// (Disconnect, Close, a redirected first connection) were reported
	// already, or need no report.
	f.retire(ctx, s, s.s.Err())
	// A session that never came up was reported by HandshakeRejected or
	// by its Connect's error; it is not a lost peer.
	if err := s.s.Err(); s.s.ID() != "" && s.s.EverUp() && !s.redirected && !s.reported {
		var gb *peer.GoodbyeError
		if errors.As(err, &gb) {
			f.publish(&PeerDisconnected{Peer: s.s.ID(), Err: err, Final: true, Undelivered: s.s.Undelivered()})
		} else {
			f.publish(&PeerLost{Peer: s.s.ID(), Addr: s.addrOr(), Err: err, Undelivered: s.s.Undelivered()})
		}
	}
	s.s.Wait()
	if f.byAddr[s.s.DialAddr()] == s {
		delete(f.byAddr, s.s.DialAddr())
	}
}

// retire removes an ended session from the live table; Connect waiters
// get err.
func (f *facade) retire(ctx actor.Context, s *sess, err error) {
	for _, w := range s.waiters {
		f.reply(ctx, w, "", fmt.Errorf("connect to %s: %w", s.s.DialAddr(), err))
	}
	s.waiters = nil
	id := s.s.ID()
	if id != "" && f.sessions[id] == s {
		if f.store != nil && !s.redirected && !errors.Is(err, peer.ErrClosed) {
			// The session is over for good and its unacknowledged
			// messages were reported undelivered: a restart must not
			// send them. (On Close they stay, for the next run.)
			f.store.Forget(id)
		}
		delete(f.sessions, id)
		if !s.redirected {
			f.ended[id] = s.s
			if len(f.ended) > maxEnded {
				for k := range f.ended {
					delete(f.ended, k)
					break
				}
			}
		}
		f.table()
	}
}

func (f *facade) table() {
	live := make(map[peer.ID]*peer.Session, len(f.sessions))
	for id, s := range f.sessions {
		live[id] = s.s
	}
	f.core.publishTable(live, f.ended)
}

// --- disconnect ---

type disconnectNow struct {
	peers []peer.ID
	reply chan error
}

// Disconnect ends the named sessions now (the caller has flushed).
func (f *facade) disconnect(ctx actor.Context, ids []peer.ID) {
	if len(ids) == 0 {
		for id := range f.sessions {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		s := f.sessions[id]
		if s == nil {
			delete(f.ended, id)
			continue
		}
		lost := s.s.End(fmt.Errorf("%w by this node", peer.ErrDisconnected))
		f.stopChild(ctx, s.pid)
		s.reported = true // no PeerLost when it terminates
		f.retire(ctx, s, peer.ErrDisconnected)
		f.publish(&PeerDisconnected{Peer: id, Final: true, Undelivered: lost})
	}
	f.table()
}

// DisconnectNow is the second half of Communicator.Disconnect: end the
// sessions with the named peers now. The blocking API flushes first.
func (c *Core) DisconnectNow(sys *actor.ActorSystem, pid *actor.PID, peers []peer.ID) error {
	reply := make(chan error, 1)
	sys.Root.Send(pid, &disconnectNow{peers: peers, reply: reply})
	select {
	case err := <-reply:
		return err
	case <-time.After(c.cfg.Timeout):
		return fmt.Errorf("slc: disconnect: facade did not answer within %v", c.cfg.Timeout)
	}
}

func (f *facade) disconnectCmd(ctx actor.Context, m *Disconnect) {
	replyTo, self, root := ctx.Sender(), ctx.Self(), f.sys.Root
	peers := m.Peers
	timeout := m.Timeout
	f.worker.do(func() {
		fctx, cancel := context.Background(), context.CancelFunc(func() {})
		if timeout > 0 {
			fctx, cancel = context.WithTimeout(fctx, timeout)
		}
		defer cancel()
		err := f.core.Flush(fctx, peers...)
		reply := make(chan error, 1)
		root.Send(self, &disconnectNow{peers: peers, reply: reply})
		select {
		case <-reply:
		case <-f.worker.quit:
			err = peer.ErrClosed
		}
		if replyTo != nil {
			root.Send(replyTo, &DisconnectResult{Err: err})
		}
	})
}

// --- actor-level data commands ---

func (f *facade) dataCmd(ctx actor.Context, m any) {
	replyTo, root, core := ctx.Sender(), f.sys.Root, f.core
	withTimeout := func(d time.Duration) (context.Context, context.CancelFunc) {
		if d > 0 {
			return context.WithTimeout(context.Background(), d)
		}
		return context.WithCancel(context.Background())
	}
	answer := func(v any) {
		if replyTo != nil {
			root.Send(replyTo, v)
		}
	}
	f.worker.do(func() {
		switch m := m.(type) {
		case *Send:
			c, cancel := withTimeout(m.Timeout)
			defer cancel()
			var id peer.MsgID
			var err error
			if m.Raw {
				b, ok := m.Body.([]byte)
				if !ok {
					answer(&SendResult{Err: fmt.Errorf("slc: raw send needs []byte, got %T", m.Body)})
					return
				}
				id, err = core.SendRaw(c, b, m.To...)
			} else {
				id, err = core.Send(c, m.Body, m.To...)
			}
			answer(&SendResult{ID: id, Err: err})
		case *WaitAcknowledged:
			c, cancel := withTimeout(m.Timeout)
			defer cancel()
			answer(&AckResult{ID: m.ID, Err: core.WaitAcknowledged(c, m.ID, m.Peers...)})
		case *Forward:
			c, cancel := withTimeout(m.Timeout)
			defer cancel()
			n, err := core.Forward(c, m.From, m.To)
			answer(&ForwardResult{N: n, Err: err})
		}
	})
}

// --- subscriptions ---

func (f *facade) subscribe(ctx actor.Context, m *Subscribe) {
	if m.Subscriber == nil {
		return
	}
	key := m.Subscriber.String()
	if old, ok := f.subs[key]; ok {
		old()
	} else {
		ctx.Watch(m.Subscriber)
	}
	root, pid := f.sys.Root, m.Subscriber
	f.subs[key] = f.core.inbox.Subscribe(mailbox.SubscriberFunc(func(msg peer.Message) {
		root.Send(pid, &Received{Message: msg})
	}), m.From...)
}

func (f *facade) unsubscribe(ctx actor.Context, pid *actor.PID) {
	if pid == nil {
		return
	}
	if cancel, ok := f.subs[pid.String()]; ok {
		cancel()
		delete(f.subs, pid.String())
		ctx.Unwatch(pid)
	}
}

func (f *facade) peerInfos() []PeerInfo {
	out := make([]PeerInfo, 0, len(f.sessions))
	for _, id := range f.core.PeerIDs() {
		s := f.sessions[id]
		if s == nil {
			continue
		}
		out = append(out, PeerInfo{ID: id, Addr: s.addr, Dial: s.s.DialAddr(), State: s.s.State(), Session: s.s.Stats()})
	}
	return out
}

// worker runs actor-level commands that may block (sends under
// BufferCap, waits for acknowledgements) one at a time, in order, off the
// facade's mailbox.
type worker struct {
	mu   sync.Mutex
	q    []func()
	sig  chan struct{}
	quit chan struct{}
	done chan struct{}
}

func newWorker(wg *sync.WaitGroup) *worker {
	w := &worker{sig: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(w.done)
		for {
			w.mu.Lock()
			var job func()
			if len(w.q) > 0 {
				job = w.q[0]
				w.q[0] = nil
				w.q = w.q[1:]
			}
			w.mu.Unlock()
			if job != nil {
				job()
				continue
			}
			select {
			case <-w.sig:
			case <-w.quit:
				return
			}
		}
	}()
	return w
}

func (w *worker) do(job func()) {
	w.mu.Lock()
	w.q = append(w.q, job)
	w.mu.Unlock()
	select {
	case w.sig <- struct{}{}:
	default:
	}
}

// stop ends the worker once the current job returns; queued jobs are
// dropped (their senders get no reply, as with any stopped actor).
func (w *worker) stop() {
	if w == nil {
		return
	}
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
}

// restore brings back the sessions a previous run left in the store: each
// reconnects (or waits for its peer to) and re-sends what was never
// acknowledged.
func (f *facade) restore(ctx actor.Context) {
	if f.store == nil {
		return
	}
	for _, r := range f.store.Restored() {
		if _, ok := f.sessions[r.ID]; ok {
			continue
		}
		ps, err := peer.RestoreSession(f.core.cfg, r.ID, r.Addr, r.Acked, r.Frames)
		if err != nil {
			f.log.Error("slc: cannot restore the session from the store", "peer", r.ID, "err", err)
			continue
		}
		s := &sess{s: ps}
		f.sessions[r.ID] = s
		f.table()
		s.pid = f.spawn(ctx, peer.Props(ps), "peer")
		f.bySess[ps] = s
		f.byPID[s.pid.Id] = s
		if r.Addr != "" {
			f.byAddr[r.Addr] = s
		}
	}
}
